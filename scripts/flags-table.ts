/**
 * Prints the README's flags table from the settings table in src/config.ts,
 * so the README cannot drift from the code (test/unit/readme.test.ts checks it).
 * Usage: node dist/scripts/flags-table.js
 */
import { SETTINGS, flagUsage, shownDefault } from '../src/config';

export function flagsTable(): string {
  const rows = SETTINGS.map((s) => `| \`${flagUsage(s)}\` | \`${shownDefault(s)}\` | ${s.env.map((e) => `\`${e}\``).join(', ')} | ${s.description} |`);
  return ['| flag | default | environment | what it does |', '|---|---|---|---|', ...rows].join('\n');
}

if (require.main === module) process.stdout.write(flagsTable() + '\n');

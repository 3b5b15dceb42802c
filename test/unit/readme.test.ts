import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flagsTable } from '../../scripts/flags-table';

test('the README flags table is the one generated from src/config.ts', () => {
  const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const table = /<!-- flags:start[^>]*-->\n([\s\S]*?)\n<!-- flags:end -->/.exec(readme);
  assert.ok(table, 'README.md has the flags:start/flags:end markers');
  assert.equal(table[1], flagsTable());
});

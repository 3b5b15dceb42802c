/**
 * The short soak (scripts/soak.ts): the real broker process under load while
 * backends are killed and restarted, with bad lines and oversized frames.
 * `node dist/scripts/soak.js --minutes N` runs the long one by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { CHECK_NAMES } from '../../scripts/soak';

const SOAK = join(__dirname, '..', '..', 'scripts', 'soak.js');

test('a 15 s soak passes every check', { timeout: 120_000 }, async (t) => {
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    execFile(process.execPath, [SOAK, '--seconds', '15'], { timeout: 110_000, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout: out + errOut }),
    );
  });
  // What the run went through, for the test log: kills, and what was lost in flight to them.
  for (const line of stdout.split('\n')) if (/^ {2}(phases|PASS nothing lost silently):? /.test(line)) t.diagnostic(line.trim());
  assert.equal(code, 0, `the soak failed:\n${stdout}`);
  for (const name of CHECK_NAMES) assert.match(stdout, new RegExp(`^  PASS ${name}: `, 'm'), `no "PASS ${name}" in the report:\n${stdout}`);
});

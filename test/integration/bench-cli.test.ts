/**
 * `strands bench` as the strands command runs it: loaded only on use, and
 * quiet when its reader goes away.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { sep } from 'node:path';
import { MAIN_JS, modulesLoadedBy, spawnStrands } from '../helpers/spawn-broker';

/** Runs `node ...argv` to its end. */
async function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

test('the broker runs without loading the bench harness; `strands bench` loads it', async () => {
  const loaded = await modulesLoadedBy('bench', ['bench', '--help']);
  assert.deepEqual(loaded.withBroker, [], 'no src/bench module while the broker runs');
  assert.ok(loaded.afterCommand.some((f) => f.endsWith(`${sep}bench${sep}cli.js`)), `strands bench loads src/bench/cli.js: ${loaded.afterCommand.join(', ')}`);
  assert.match(loaded.stdout, /^Usage: strands bench \[options\] <scenario>/);
});

test('`strands bench --help` through the stand-in: the harness help, scenarios and all', async () => {
  const { code, stdout } = await run([MAIN_JS, 'bench', '--help']);
  assert.equal(code, 0);
  // Commander wraps lines at spaces.
  const help = stdout.replace(/\s+/g, ' ');
  for (const text of ['--target-pid <pid>', '--room-size <n>', 'scenarios:', 'pingpong closed loop', '(default: "ws://127.0.0.1:8080/ws/bench")']) assert.ok(help.includes(text), `help mentions ${text}`);
});

test('`strands bench` with a bad scenario: one line on stderr, status 2', async () => {
  const { code, stderr } = await run([MAIN_JS, 'bench', 'nope', '--clients', '3']);
  assert.equal(code, 2);
  assert.match(stderr, /^strands: command-argument value 'nope' is invalid for argument 'scenario'\. Allowed choices are pingpong, throughput, fanout, broadcast, connect\.\n$/);
});

const SHORT_RUN = ['bench', 'pingpong', '--spawn', '--clients', '2', '--duration', '0.2', '--warmup', '0'];

for (const args of [SHORT_RUN, ['--help'], ['--version']]) {
  test(`\`strands ${args.join(' ')}\` into a reader that is gone: exit 0, no EPIPE trace`, async (t) => {
    const proc = spawnStrands(t, args);
    // Closed before node has even started, so that every write to stdout meets EPIPE.
    proc.child.stdout!.destroy();
    assert.deepEqual(await proc.exited, { code: 0, signal: null }, proc.stderr());
    // A bench run's status lines go to stderr, which is still open.
    assert.doesNotMatch(proc.stderr(), /EPIPE|Error|\bat /);
  });
}

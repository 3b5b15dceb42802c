/**
 * Which process `--target-pid` measures: the one listening on the target's
 * port, found below the pid given when that is a wrapper (npm, a shell).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { portOf, resolveTargetProcess } from '../../src/bench/target-process';

/** Listens on a free port of 127.0.0.1 and prints it; with `share`, hands the listening socket to a child that keeps it open. */
const LISTENER = `
const server = require('node:net').createServer().listen(0, '127.0.0.1', () => {
  if (process.argv[1] === 'share') require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: ['ignore', 'ignore', 'ignore', server._handle.fd] });
  console.log(server.address().port);
});`;

interface Listener {
  /** The process started: node itself, or the shell around it. */
  pid: number;
  port: number;
}

/**
 * Runs the listener, under `sh -c '...; true'` when `wrapped` (the `; true` keeps
 * the shell from exec'ing node, as a shell running a script does). Its process
 * group is killed when the test ends.
 */
async function startListener(t: TestContext, { wrapped = false, share = false } = {}): Promise<Listener> {
  const node = [process.execPath, '-e', LISTENER, ...(share ? ['share'] : [])];
  const [command, ...args] = wrapped ? ['sh', '-c', '"$0" "$@"; true', ...node] : node;
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  t.after(() => process.kill(-child.pid!, 'SIGKILL'));
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { pid: child.pid!, port: Number(line) };
}

test('a pid that listens on the port is measured as given', async (t) => {
  const server = await startListener(t);
  assert.deepEqual(resolveTargetProcess(server.pid, server.port), { pid: server.pid, note: undefined });
});

test("a shell's pid: its child that listens on the port is measured, and the note says so", async (t) => {
  const shell = await startListener(t, { wrapped: true });
  const found = resolveTargetProcess(shell.pid, shell.port);
  assert.notEqual(found.pid, shell.pid);
  assert.match(readFileSync(`/proc/${found.pid}/cmdline`, 'utf8'), /createServer/);
  assert.equal(found.note, `--target-pid ${shell.pid} (sh) does not listen on port ${shell.port}: measuring its descendant ${found.pid} (node), which does`);
});

test('a pid neither it nor its descendants listen on the port: refused', async (t) => {
  const shell = await startListener(t, { wrapped: true });
  const otherPort = shell.port === 65535 ? 65534 : shell.port + 1;
  assert.throws(
    () => resolveTargetProcess(shell.pid, otherPort),
    new RegExp(`^Error: --target-pid ${shell.pid} \\(sh\\) is not the server: it does not listen on port ${otherPort} and neither does its one descendant`),
  );
});

test('two descendants share the listening socket: refused, naming both', async (t) => {
  const shell = await startListener(t, { wrapped: true, share: true });
  assert.throws(() => resolveTargetProcess(shell.pid, shell.port), new RegExp(`^Error: --target-pid ${shell.pid} \\(sh\\): 2 of its descendants listen on port ${shell.port} \\(\\d+, \\d+\\)`));
});

test('a pid with no process: refused', () => {
  const beyondMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;
  assert.throws(() => resolveTargetProcess(beyondMax, 8080), { message: `--target-pid ${beyondMax}: no such process` });
});

test('the port a ws:// or wss:// URL connects to', () => {
  assert.equal(portOf('ws://127.0.0.1:8080/ws/bench'), 8080);
  assert.equal(portOf('ws://example.com/ws/bench'), 80);
  assert.equal(portOf('wss://example.com/ws/bench'), 443);
  assert.equal(portOf('ws://[::1]:9000/'), 9000);
});

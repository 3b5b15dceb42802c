/**
 * The `strands` command as a user runs it: a real subprocess (dist/src/main.js),
 * its pino log on stdout, its exit status and stderr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { SETTINGS, flagUsage } from '../../src/config';
import { RawBackend } from '../helpers/raw-backend';
import { portOf, spawnBroker, spawnStrands } from '../helpers/spawn-broker';
import { openClient } from '../helpers/ws-client';

/** stderr's non-empty lines. */
function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** A TCP server holding a free port of 127.0.0.1, closed when the test ends. */
async function occupiedPort(t: { after(fn: () => unknown): void }): Promise<number> {
  const server: Server = createServer((socket) => socket.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as { port: number }).port;
}

test('SIGTERM with a client connected: the client gets 1001, the backend its disconnected, exit status 0', async (t) => {
  const broker = await spawnBroker(t);
  const backend = await RawBackend.connect(broker.tcpPort, { accept: true });
  t.after(() => backend.kill());
  await broker.log('backend connected');
  const client = await openClient(`ws://127.0.0.1:${broker.wsPort}/room?client_id=sig`);
  t.after(() => client.ws.terminate());
  await backend.next('new_connection');
  broker.child.kill('SIGTERM');
  assert.equal((await client.closed).code, 1001);
  assert.deepEqual(await broker.exited, { code: 0, signal: null });
  assert.equal((await backend.next('disconnected')).params.context.client_id, 'sig');
});

test('--ws-port abc: exit status 2 and exactly one stderr line naming --ws-port', async (t) => {
  const proc = spawnStrands(t, ['--ws-port', 'abc']);
  assert.equal((await proc.exited).code, 2);
  const err = lines(proc.stderr());
  assert.equal(err.length, 1, `stderr: ${proc.stderr()}`);
  assert.match(err[0] as string, /--ws-port/);
  assert.match(err[0] as string, /abc/);
});

test('a stdout that went away (a log shipper that died) does not hang the shutdown', { timeout: 10_000 }, async (t) => {
  const broker = await spawnBroker(t);
  broker.child.stdout?.destroy();
  broker.child.kill('SIGTERM');
  assert.deepEqual(await broker.exited, { code: 0, signal: null });
});

test('a stdout that went away does not stop the broker serving', async (t) => {
  const broker = await spawnBroker(t);
  broker.child.stdout?.destroy();
  // Each of these logs into the closed pipe.
  const backend = await RawBackend.connect(broker.tcpPort, { accept: true });
  t.after(() => backend.kill());
  const client = await openClient(`ws://127.0.0.1:${broker.wsPort}/room?client_id=after-stdout`);
  t.after(() => client.ws.terminate());
  await backend.next('new_connection');
  broker.child.kill('SIGTERM');
  assert.equal((await client.closed).code, 1001);
  assert.deepEqual(await broker.exited, { code: 0, signal: null });
});

test('uWebSockets.js on its JavaScript fallback: the broker refuses to start, naming the Node.js version', async (t) => {
  // The package's own switch forces the fallback, as a failed native load would.
  const proc = spawnStrands(t, ['--ws-port', '0', '--tcp-port', '0'], { UWS_USE_FALLBACK: 'true' });
  assert.equal((await proc.exited).code, 1);
  const stderr = proc.stderr();
  assert.match(stderr, /refusing to run on its JavaScript fallback/);
  assert.ok(stderr.includes(process.version), `names ${process.version}: ${stderr}`);
  assert.equal(proc.stdout.pending.some((line) => line.msg === 'strands broker listening'), false);
});

test('STRANDS_QUEUE_SIZE=abc: exit status 2 and one stderr line naming STRANDS_QUEUE_SIZE', async (t) => {
  const proc = spawnStrands(t, ['--ws-port', '0', '--tcp-port', '0'], { STRANDS_QUEUE_SIZE: 'abc' });
  assert.equal((await proc.exited).code, 2);
  const err = lines(proc.stderr());
  assert.equal(err.length, 1, `stderr: ${proc.stderr()}`);
  assert.match(err[0] as string, /STRANDS_QUEUE_SIZE/);
});

test('flags beat the environment (STRANDS_TCP_PORT=1 and a bad STRANDS_WS_PORT are ignored under --tcp-port 0 --ws-port 0)', async (t) => {
  const broker = await spawnBroker(t, [], { STRANDS_TCP_PORT: '1', STRANDS_WS_PORT: 'abc' });
  assert.notEqual(broker.tcpPort, 1);
  assert.ok(broker.tcpPort > 0 && broker.wsPort > 0);
});

test('the Go broker\'s PYSTRAND_* variables work as aliases', async (t) => {
  const proc = spawnStrands(t, ['--host', '127.0.0.1'], { PYSTRAND_WS_PORT: '0', PYSTRAND_TCP_PORT: '0', PYSTRAND_QUEUE_SIZE: '7' });
  const listening = await proc.log('strands broker listening');
  assert.ok(![0, 8080].includes(portOf(listening.ws)), `ws ${String(listening.ws)}: PYSTRAND_WS_PORT=0 was not used`);
  assert.ok(![0, 8081].includes(portOf(listening.tcp)), `tcp ${String(listening.tcp)}: PYSTRAND_TCP_PORT=0 was not used`);
  assert.equal(listening.queueSize, 7);
  assert.match(String(listening.tcp), /^127\.0\.0\.1:/, 'the backend port listens on 127.0.0.1 unless told otherwise');
});

test('STRANDS_* beats its PYSTRAND_* alias', async (t) => {
  const broker = await spawnBroker(t, [], { STRANDS_QUEUE_SIZE: '9', PYSTRAND_QUEUE_SIZE: 'abc' });
  assert.equal(broker.listening.queueSize, 9);
});

test('a backend port in use: non-zero exit and one clear stderr line', async (t) => {
  const port = await occupiedPort(t);
  const proc = spawnStrands(t, ['--ws-port', '0', '--tcp-port', String(port)]);
  const { code } = await proc.exited;
  assert.notEqual(code, 0);
  const err = lines(proc.stderr());
  assert.equal(err.length, 1, `stderr: ${proc.stderr()}`);
  assert.match(err[0] as string, new RegExp(`${port}`));
  assert.match(err[0] as string, /in use|EADDRINUSE/i);
});

test('a WebSocket port in use: non-zero exit and one clear stderr line', async (t) => {
  const port = await occupiedPort(t);
  const proc = spawnStrands(t, ['--host', '127.0.0.1', '--ws-port', String(port), '--tcp-port', '0']);
  const { code } = await proc.exited;
  assert.notEqual(code, 0);
  const err = lines(proc.stderr());
  assert.equal(err.length, 1, `stderr: ${proc.stderr()}`);
  assert.match(err[0] as string, new RegExp(`${port}`));
});

test('--help lists every setting with its placeholder, default and environment variables', async (t) => {
  const proc = spawnStrands(t, ['--help']);
  let out = '';
  proc.child.stdout?.on('data', (text: string) => (out += text));
  assert.equal((await proc.exited).code, 0);
  // One entry per option: a line indented by two spaces, then its wrapped continuation lines.
  const entries = out.split(/\n(?= {2}-)/).map((entry) => entry.replace(/\s+/g, ' ').trim());
  for (const s of SETTINGS) {
    const entry = entries.find((e) => e.startsWith(`${flagUsage(s)} `));
    assert.ok(entry !== undefined, `${flagUsage(s)} is not in --help`);
    // A setting may say how its default reads (`shown`); an unset one reads "none".
    const shown = (s as { shown?: string }).shown ?? (s.default === undefined ? 'none' : Array.isArray(s.default) ? s.default.join(',') : String(s.default));
    assert.ok(entry.includes(`default: ${shown}`), `--${s.flag}: no "default: ${shown}" in ${JSON.stringify(entry)}`);
    for (const name of s.env) assert.ok(entry.includes(name), `--${s.flag}: ${name} is not in ${JSON.stringify(entry)}`);
  }
});

test('strands echo-backend echoes a message end to end', async (t) => {
  const broker = await spawnBroker(t);
  const echo = spawnStrands(t, ['echo-backend', '--tcp-port', String(broker.tcpPort)]);
  await broker.log('backend connected');
  for (const path of ['/echo?client_id=e1', '/echo']) {
    const client = await openClient(`ws://127.0.0.1:${broker.wsPort}${path}`);
    t.after(() => client.ws.terminate());
    client.ws.send(`ping ${path} ✓`);
    assert.equal(await client.nextMessage(), `ping ${path} ✓`);
    await client.close();
  }
  echo.child.kill('SIGTERM');
  assert.equal((await echo.exited).code, 0);
});

/**
 * `strands demo` without a browser: its HTTP server, its chat backend as
 * WebSocket clients see it (including the inputs a careless or hostile page
 * could send), and the command's flags and failures as a user meets them.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { sep } from 'node:path';
import { BURST, MAX_TEXT, type ChatEvent } from '../../src/demo/chat-backend';
import { CLIENT_BUNDLE, demoSettings, startDemo, type Demo } from '../../src/demo/demo';
import { waitUntil } from '../helpers/fixtures';
import { modulesLoadedBy, spawnStrands } from '../helpers/spawn-broker';
import { openClient, upgradeStatus, type TestClient } from '../helpers/ws-client';

interface RunningDemo extends Demo {
  origin: string;
  wsPort: number;
}

async function demoFor(t: TestContext): Promise<RunningDemo> {
  const demo = await startDemo(demoSettings({ host: '127.0.0.1', port: '0', wsPort: '0', tcpPort: '0' }));
  t.after(() => demo.stop());
  const origin = new URL(demo.pageUrls[0] as string).origin;
  const page = await (await fetch(origin + '/room/lobby')).text();
  const wsPort = Number(/name="strands-ws-port" content="(\d+)"/.exec(page)?.[1]);
  return { ...demo, origin, wsPort };
}

/** A chat member, with the events it received parsed. */
async function member(t: TestContext, demo: RunningDemo, room: string, name: string): Promise<TestClient & { event(type: ChatEvent['type']): Promise<ChatEvent> }> {
  const client = await openClient(`ws://127.0.0.1:${demo.wsPort}/room/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}`);
  t.after(() => client.ws.terminate());
  return {
    ...client,
    event: async (type) => {
      for (;;) {
        const event = JSON.parse(await client.nextMessage()) as ChatEvent;
        if (event.type === type) return event;
      }
    },
  };
}

test('the demo serves the chat page at / and /room/<name>, its script, its style and the browser client; nothing else', async (t) => {
  const demo = await demoFor(t);
  assert.match(demo.pageUrls[0] as string, /^http:\/\/127\.0\.0\.1:\d+\/room\/lobby$/);
  assert.match(demo.statusUrl, /^http:\/\/127\.0\.0\.1:\d+\/status$/);
  for (const path of ['/', '/room/lobby', '/room/caf%C3%A9', '/?room=x']) {
    const page = await fetch(demo.origin + path);
    assert.equal(page.status, 200, path);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await page.text(), new RegExp(`content="${demo.wsPort}"`), 'the WebSocket port is written into the page');
  }
  assert.equal(await (await fetch(demo.origin + '/strands-client.js')).text(), readFileSync(CLIENT_BUNDLE, 'utf8'));
  assert.match(await (await fetch(demo.origin + '/chat.js')).text(), /import \{ StrandsClient \} from '\/strands-client\.js'/);
  assert.equal((await fetch(demo.origin + '/chat.css')).headers.get('content-type'), 'text/css; charset=utf-8');
  for (const path of ['/nope', '/chat.html', '/..%2f..%2fpackage.json', '/room']) assert.equal((await fetch(demo.origin + path)).status, 404, path);
  assert.equal((await fetch(demo.origin + '/', { method: 'POST' })).status, 405);
  assert.equal((await fetch(demo.statusUrl)).status, 200, 'the broker\'s status page is on');
});

test('chat: a message reaches the others in the room and not its sender; member counts follow joins and leaves', async (t) => {
  const demo = await demoFor(t);
  const alice = await member(t, demo, 'r1', 'alice');
  assert.deepEqual(await alice.event('members'), { type: 'members', count: 1 });
  const bob = await member(t, demo, 'r1', 'bob');
  assert.deepEqual(await bob.event('members'), { type: 'members', count: 2 });
  assert.deepEqual(await alice.event('joined'), { type: 'joined', name: 'bob' });
  assert.deepEqual(await alice.event('members'), { type: 'members', count: 2 });
  const elsewhere = await member(t, demo, 'r2', 'carol');
  assert.deepEqual(await elsewhere.event('members'), { type: 'members', count: 1 });

  alice.ws.send('  hello bob \u0007 ');
  assert.deepEqual(await bob.event('message'), { type: 'message', from: 'alice', text: 'hello bob' });
  bob.ws.send('hi alice');
  // Alice's own message would have come first: the backend sent it to the room before bob answered.
  assert.deepEqual(JSON.parse(await alice.nextMessage()), { type: 'message', from: 'bob', text: 'hi alice' });
  await bob.close();
  assert.deepEqual(await alice.event('left'), { type: 'left', name: 'bob' });
  assert.deepEqual(await alice.event('members'), { type: 'members', count: 1 });
  assert.equal(elsewhere.messages.pending.length, 0, 'nothing from room r1 reached room r2');
});

test('chat: what a careless or hostile client sends is cut, refused or dropped', async (t) => {
  const demo = await demoFor(t);
  for (const path of ['/', '/lobby', '/room/', '/room/%20lobby', `/room/${'r'.repeat(65)}`, '/room/a%09b']) {
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${demo.wsPort}${path}`), 403, path);
  }
  const listener = await member(t, demo, 'r', 'listener');
  await listener.event('members');
  const sender = await member(t, demo, 'r', `${'n'.repeat(40)}\u0000`);
  assert.deepEqual(await listener.event('joined'), { type: 'joined', name: 'n'.repeat(32) });

  sender.ws.send(Buffer.from('binary is not chat'), { binary: true });
  sender.ws.send('   ');
  sender.ws.send('x'.repeat(MAX_TEXT + 500));
  assert.deepEqual(await listener.event('message'), { type: 'message', from: 'n'.repeat(32), text: 'x'.repeat(MAX_TEXT) });

  // A flood: past the burst, messages are dropped and the sender is told, once for each.
  for (let i = 0; i < 30; i++) sender.ws.send(`flood ${i}`);
  const count = (client: TestClient, type: ChatEvent['type']): number => client.messages.pending.filter((line) => (JSON.parse(line) as ChatEvent).type === type).length;
  await waitUntil(() => count(listener, 'message') + count(sender, 'notice') === 30, 'every flood message passed or refused');
  const heard = count(listener, 'message');
  // The long message took one token; the bucket refills at 5/s while the flood is read: one more at most.
  assert.ok(heard >= BURST - 1 && heard <= BURST, `${heard} flood messages passed`);

  sender.ws.send('x'.repeat(16 * 1024 + 1));
  assert.equal((await sender.closed).code, 1009, 'a frame over the demo\'s 16 KiB is closed by the broker');
});

test('strands demo: a bad flag exits 2 with one line naming it; a page port in use exits 1 naming the port, leaving nothing running', async (t) => {
  for (const [flag, value] of [
    ['--port', 'http'],
    ['--port', '65536'],
    ['--ws-port', '-1'],
    ['--tcp-port', 'x'],
    ['--host', ' '],
  ] as const) {
    const proc = spawnStrands(t, ['demo', flag, value]);
    assert.equal((await proc.exited).code, 2, `${flag} ${value}`);
    const lines = proc.stderr().trim().split('\n');
    assert.equal(lines.length, 1, proc.stderr());
    assert.match(lines[0] as string, new RegExp(`^strands: invalid value for ${flag}`));
  }
  const taken = createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const proc = spawnStrands(t, ['demo', '--port', String(port)]);
  const { code } = await proc.exited;
  assert.equal(code, 1);
  assert.match(proc.stderr(), new RegExp(`cannot listen for the demo page on 127\\.0\\.0\\.1:${port}: EADDRINUSE \\(--port 0 picks a free port\\)`));
});

test('strands demo prints where to go, serves it, and stops with status 0 on SIGTERM', async (t) => {
  const proc = spawnStrands(t, ['demo', '--port', '0']);
  const open = await proc.stdout.next((l) => typeof l.raw === 'string' && l.raw.startsWith('strands demo: open '), 10_000, 'the URL to open');
  const url = /open (\S+)/.exec(open.raw as string)?.[1] as string;
  assert.equal((await fetch(url)).status, 200);
  const status = await proc.stdout.next((l) => typeof l.raw === 'string' && l.raw.includes('status page: '), 1000, 'the status page');
  assert.equal((await fetch(/status page: (\S+)/.exec(status.raw as string)?.[1] as string)).status, 200);
  proc.child.kill('SIGTERM');
  assert.deepEqual(await proc.exited, { code: 0, signal: null });
  await assert.rejects(fetch(url), 'the page server is gone');
});

test('the broker runs without loading src/demo; `strands demo` loads it', async () => {
  const loaded = await modulesLoadedBy('demo', ['demo', '--port', '0']);
  assert.deepEqual(loaded.withBroker, [], 'no src/demo module while the broker runs');
  assert.ok(loaded.afterCommand.some((f) => f.endsWith(`${sep}demo${sep}demo.js`)), loaded.afterCommand.join(', '));
  assert.match(loaded.stdout, /^strands demo: open http:/m);
});

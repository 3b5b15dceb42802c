/**
 * examples/chat as its README runs it: the broker, the Python backend (which
 * also serves the page), and pages in Chromium that use the browser client.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Browser, Page } from 'playwright-core';
import { CLIENT_BUNDLE, collectErrors, launchChromium } from '../helpers/browser';
import { within } from '../helpers/deadline';
import { spawnBroker } from '../helpers/spawn-broker';
import { openClient, upgradeStatus, type TestClient } from '../helpers/ws-client';

const ROOT = resolve(__dirname, '..', '..', '..');
/** Debian's Python, as the SDK's own tests use it. */
const PYTHON = '/usr/bin/python3';
const WAIT_MS = 10_000;
/** A broker restart waits for the backend's and the page's jittered backoffs, each growing while the broker is down. */
const RESTART_WAIT_MS = 30_000;

type Broker = Awaited<ReturnType<typeof spawnBroker>>;

interface Chat {
  broker: Broker;
  /** The page, as the backend printed its address. */
  pageUrl: string;
  /** The broker's WebSocket URL, which the page is given. */
  wsUrl: string;
}

/**
 * Starts the example's backend (`backend.py` with PYTHONPATH=python, as the README runs it) against
 * `broker`, its page server on a free port; resolves once the page is served and the broker has the backend.
 */
async function startBackend(t: TestContext, broker: Broker): Promise<Chat> {
  const wsUrl = `ws://127.0.0.1:${broker.wsPort}/`;
  const env: NodeJS.ProcessEnv = { PYTHONPATH: 'python' };
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('STRANDS_') && name !== 'PYTHONPATH') env[name] = value;
  const args = ['examples/chat/backend.py', '--broker-port', String(broker.tcpPort), '--http-port', '0', '--ws-url', wsUrl];
  const backend = spawn(PYTHON, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (backend.exitCode === null && backend.signalCode === null) backend.kill('SIGKILL');
  });
  let stderr = '';
  backend.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const backendConnected = broker.log('backend connected', WAIT_MS);
  const served = new Promise<string>((found, failed) => {
    createInterface({ input: backend.stdout }).on('line', (line) => {
      const match = /^chat page: (http:\/\/\S+)$/.exec(line);
      if (match) found(match[1] as string);
    });
    backend.once('close', (code) => failed(new Error(`backend.py exited (${code}) before serving its page: ${stderr}`)));
  });
  const pageUrl = await within(served, WAIT_MS, 'backend.py to print its page address');
  await backendConnected;
  return { broker, pageUrl, wsUrl };
}

async function startChat(t: TestContext): Promise<Chat> {
  return startBackend(t, await spawnBroker(t));
}

interface ChatPage {
  page: Page;
  errors: string[];
}

/** The chat page in a context of its own (as on another device), entered as `name`, once it is online. */
async function enter(browser: Browser, chat: Chat, name: string): Promise<ChatPage> {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(WAIT_MS);
  const errors = collectErrors(page);
  assert.equal((await page.goto(chat.pageUrl))?.status(), 200);
  await page.fill('#name', name);
  await page.click('#login button');
  await state(page, 'open');
  assert.equal(await page.isVisible('#login'), false, 'the name form is gone');
  return { page, errors };
}

/** Waits until the status shows `name` (its data-state). */
async function state(page: Page, name: string, timeout = WAIT_MS): Promise<void> {
  await page.locator(`#status[data-state="${name}"]`).waitFor({ timeout });
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** The texts of the elements `selector` matches, in order. */
function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (elements) => elements.map((e) => e.textContent ?? ''));
}

/** As much of the page's document as `shows` reads (this file is compiled without the DOM's types). */
type PageDocument = { querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> };

/** Waits until the elements `selector` matches hold exactly `expected`, in order. */
async function shows(page: Page, selector: string, expected: string[]): Promise<void> {
  // A function, not a string: the page's Content-Security-Policy forbids eval.
  const holds = ([sel, want]: readonly [string, string]) =>
    JSON.stringify(Array.from((globalThis as unknown as { document: PageDocument }).document.querySelectorAll(sel), (e) => e.textContent)) === want;
  await page.waitForFunction(holds, [selector, JSON.stringify(expected)] as const).catch(async (err: Error) => {
    throw new Error(`${selector} shows ${JSON.stringify(await texts(page, selector))}, not ${JSON.stringify(expected)}: ${err.message}`);
  });
}

/** Waits until a line of the page's chat log reads `line`. */
async function logged(page: Page, line: string): Promise<void> {
  await page.locator('#log li').filter({ hasText: line }).first().waitFor();
}

test('two Chromium pages chat through the Python backend: room messages without an echo, member lists, /join and /kick', async (t) => {
  const chat = await startChat(t);
  const browser = await launchChromium(t);
  const alice = await enter(browser, chat, 'alice');
  const bob = await enter(browser, chat, 'bob');
  for (const { page } of [alice, bob]) {
    await shows(page, '#members li', ['alice', 'bob']);
    assert.equal(await page.textContent('#room'), 'lobby');
  }

  // Markup in a message is text, and the room's copy skips its sender (exclude), who sees it once, as "you".
  await say(alice.page, 'hello <b>bob</b>');
  await logged(bob.page, 'alice: hello <b>bob</b>');
  await logged(alice.page, 'you: hello <b>bob</b>');
  // The backend sends the room's copy first, on the same link: had it reached alice, it would be in her log already.
  assert.deepEqual(await texts(alice.page, '#log li'), ['you: hello <b>bob</b>']);
  await say(bob.page, 'hi alice');
  await logged(alice.page, 'bob: hi alice');

  // /join moves bob: join_room + leave_room, and both rooms get their member lists.
  await say(bob.page, '/join kitchen');
  await shows(bob.page, '#room', ['kitchen']);
  await shows(bob.page, '#members li', ['bob']);
  await shows(alice.page, '#members li', ['alice']);
  await say(alice.page, 'anyone here?');
  await logged(alice.page, 'you: anyone here?');
  await say(alice.page, '/join kitchen');
  await shows(alice.page, '#room', ['kitchen']);
  for (const { page } of [alice, bob]) await shows(page, '#members li', ['alice', 'bob']);
  await say(alice.page, 'found you');
  await logged(bob.page, 'alice: found you');
  // What alice said in the lobby after bob left it would have reached bob before this.
  assert.deepEqual(await texts(bob.page, '#log li'), ['alice: hello <b>bob</b>', 'you: hi alice', 'alice: found you']);

  // /kick closes bob's socket with 4001: his client stops (no reconnect) and his page says why.
  await say(alice.page, '/kick bob');
  await state(bob.page, 'kicked');
  assert.equal(await bob.page.textContent('#status'), 'kicked by alice (close 4001): reload to come back');
  assert.equal(await bob.page.isDisabled('#text'), true);
  assert.deepEqual(await texts(bob.page, '#members li'), []);
  await logged(alice.page, 'alice kicked bob');
  await shows(alice.page, '#members li', ['alice']);
  assert.deepEqual(alice.errors, []);
  assert.deepEqual(bob.errors, []);

  // The broker restarts: alice's page shows it reconnecting, and comes back in the room she moved to.
  const { wsPort, tcpPort } = chat.broker;
  chat.broker.child.kill('SIGTERM');
  await state(alice.page, 'reconnecting');
  assert.deepEqual(await chat.broker.exited, { code: 0, signal: null });
  const restarted = await spawnBroker(t, ['--ws-port', String(wsPort), '--tcp-port', String(tcpPort)]);
  await restarted.log('backend connected', RESTART_WAIT_MS);
  await state(alice.page, 'open', RESTART_WAIT_MS);
  await shows(alice.page, '#room', ['kitchen']);
  await shows(alice.page, '#members li', ['alice']);
  assert.equal(await bob.page.getAttribute('#status', 'data-state'), 'kicked');
});

test('the chat backend refuses bad names and rooms, answers bad input with a notice, and serves only the page', async (t) => {
  const chat = await startChat(t);
  for (const query of ['room=lobby', 'name=', 'name=a%20b', `name=${'x'.repeat(33)}`, 'name=ok&room=a/b', 'name=%3Cscript%3E']) {
    assert.equal(await upgradeStatus(`${chat.wsUrl}?${query}`), 403, query);
  }

  const next = async (client: TestClient): Promise<Record<string, unknown>> => JSON.parse(await client.nextMessage()) as Record<string, unknown>;
  const notice = async (client: TestClient, send: string | Buffer, text: string | RegExp): Promise<void> => {
    client.ws.send(send);
    const answer = await next(client);
    assert.equal(answer.type, 'notice', JSON.stringify(answer));
    if (typeof text === 'string') assert.equal(answer.text, text);
    else assert.match(String(answer.text), text);
  };
  const eve = await openClient(`${chat.wsUrl}?name=eve&room=attic`);
  assert.deepEqual(await next(eve), { type: 'joined', room: 'attic' });
  assert.deepEqual(await next(eve), { type: 'members', room: 'attic', members: ['eve'] });
  await notice(eve, Buffer.from([1, 2, 3]), 'text only: binary frames are not chat messages');
  await notice(eve, 'x'.repeat(1001), 'not sent: over 1000 characters');
  // Blank text is dropped without an answer: the next answer is the next command's.
  eve.ws.send('   ');
  await notice(eve, '/kick eve', 'you cannot kick yourself');
  await notice(eve, '/kick nobody', 'no nobody in attic');
  for (const command of ['/join', '/join a b', '/join ../x', '/', '/shout hi']) await notice(eve, command, /^not understood; commands: \/join <room>, \/kick <name>/);
  await notice(eve, '/join attic', 'already in attic');
  eve.ws.send('y'.repeat(1000));
  assert.deepEqual(await next(eve), { type: 'mine', text: 'y'.repeat(1000) });

  // A second tab of a name is the same person: it joins them in their room, and a kick closes every tab.
  const eveAgain = await openClient(`${chat.wsUrl}?name=eve&room=lobby`);
  assert.deepEqual(await next(eveAgain), { type: 'joined', room: 'attic' });
  assert.deepEqual(await next(eveAgain), { type: 'members', room: 'attic', members: ['eve'] });
  const mallory = await openClient(`${chat.wsUrl}?name=mallory&room=attic`);
  assert.deepEqual((await next(mallory)).type, 'joined');
  assert.deepEqual(await next(mallory), { type: 'members', room: 'attic', members: ['eve', 'mallory'] });
  mallory.ws.send('/kick eve');
  for (const tab of [eve, eveAgain]) assert.deepEqual(await within(tab.closed, WAIT_MS, 'the kick'), { code: 4001, reason: 'kicked by mallory' });
  assert.deepEqual(await next(mallory), { type: 'notice', text: 'mallory kicked eve' });
  assert.deepEqual(await next(mallory), { type: 'members', room: 'attic', members: ['mallory'] });
  await mallory.close();
  // Gone entirely, eve is forgotten: coming back, she gets the room she asks for.
  const eveBack = await openClient(`${chat.wsUrl}?name=eve&room=lobby`);
  assert.deepEqual(await next(eveBack), { type: 'joined', room: 'lobby' });
  await eveBack.close();

  const get = (path: string) => fetch(new URL(path, chat.pageUrl));
  // Sent as written (fetch would resolve the dots): the server maps whole paths, it never joins them to a folder.
  const rawStatus = (path: string) =>
    new Promise<number | undefined>((answered, failed) => {
      request(new URL(chat.pageUrl), { path }, (res) => answered(res.resume().statusCode)).on('error', failed).end();
    });
  for (const path of ['/backend.py', '/../backend.py', '/%2e%2e/backend.py', '/..%2fbackend.py', '/README.md', '/dist/browser/strands-client.js', '//etc/passwd']) {
    assert.equal(await rawStatus(path), 404, path);
  }
  assert.equal(await (await get('/strands-client.js')).text(), readFileSync(CLIENT_BUNDLE, 'utf8'));
  assert.deepEqual(await (await get('/config.json')).json(), { brokerUrl: chat.wsUrl });
  assert.equal((await get('/')).headers.get('content-type'), 'text/html; charset=utf-8');
});

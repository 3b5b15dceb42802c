/**
 * `strands demo` as someone trying it: the command in a subprocess on free
 * ports, its printed URL opened in headless Chromium, two pages (two devices:
 * their own storage) chatting in one room.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { collectErrors, launchChromium } from '../helpers/browser';
import { spawnStrands } from '../helpers/spawn-broker';

const PHONE = { viewport: { width: 390, height: 760 } };

interface Tab {
  page: Page;
  errors: string[];
}

/** A page in a context of its own (as on another device), with its name already chosen. */
async function tab(browser: Browser, url: string, name: string): Promise<Tab> {
  const context = await browser.newContext(PHONE);
  await context.addInitScript(`localStorage.setItem('strands-demo-name', ${JSON.stringify(name)})`);
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(url);
  return { page, errors };
}

/** Waits until the element's text is `text` (fails with what it was). Locators, not page functions: the page's policy forbids eval. */
async function textIs(page: Page, selector: string, text: string): Promise<void> {
  const exactly = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  try {
    await page.locator(selector, { hasText: exactly }).waitFor({ state: 'attached', timeout: 10_000 });
  } catch {
    assert.equal(await page.textContent(selector), text, selector);
  }
}

/** Each line of the chat log: its class and its text. */
function log(page: Page): Promise<{ kind: string; from: string | null; text: string }[]> {
  return page.$$eval('#log li', (items) => items.map((li) => ({ kind: li.className, from: li.querySelector('.from')?.textContent ?? null, text: li.lastChild?.textContent ?? '' })));
}

test('two pages chat through `strands demo`: the room from the URL, the sender excluded, the member count right, reconnecting shown when the broker goes', async (t) => {
  const demo = spawnStrands(t, ['demo', '--port', '0', '--ws-port', '0', '--tcp-port', '0', '--host', '127.0.0.1']);
  const printed = await demo.stdout.next((l) => typeof l.raw === 'string' && l.raw.startsWith('strands demo: open '), 15_000, 'the URL to open');
  const lobby = new URL(/open (\S+)/.exec(printed.raw as string)?.[1] as string);
  assert.equal(lobby.pathname, '/room/lobby');
  const browser = await launchChromium(t);
  const room = 'café ☕';
  const roomPath = '/room/' + encodeURIComponent(room);

  const alice = await tab(browser, lobby.origin + roomPath, 'alice');
  await textIs(alice.page, '#status', 'online');
  await textIs(alice.page, '#members', '1 here (just you)');
  assert.equal(await alice.page.textContent('#room'), room);

  // The room may come as ?room= too: the page moves to the room's own address.
  const bob = await tab(browser, `${lobby.origin}/?room=${encodeURIComponent(room)}`, 'bob');
  await textIs(bob.page, '#status', 'online');
  assert.equal(new URL(bob.page.url()).pathname, roomPath);
  await textIs(bob.page, '#members', '2 here');
  await textIs(alice.page, '#members', '2 here');
  await textIs(alice.page, '#log li.system', 'bob joined');

  await alice.page.fill('#text', 'hello bob ☃');
  await alice.page.press('#text', 'Enter');
  await textIs(bob.page, '#log li.theirs', 'alicehello bob ☃');
  await bob.page.fill('#text', 'hi alice');
  await bob.page.click('#send button');
  await textIs(alice.page, '#log li.theirs', 'bobhi alice');
  // Alice's own message, had it come back, would be in her log before bob's answer.
  assert.deepEqual(await log(alice.page), [
    { kind: 'system', from: null, text: 'bob joined' },
    { kind: 'mine', from: 'alice', text: 'hello bob ☃' },
    { kind: 'theirs', from: 'bob', text: 'hi alice' },
  ]);
  assert.deepEqual(await log(bob.page), [
    { kind: 'theirs', from: 'alice', text: 'hello bob ☃' },
    { kind: 'mine', from: 'bob', text: 'hi alice' },
  ]);
  for (const { page } of [alice, bob]) {
    assert.ok(await page.locator('html').evaluate((html) => html.scrollWidth <= html.clientWidth), 'no sideways scrolling on a phone');
  }
  assert.deepEqual([alice.errors, bob.errors], [[], []]);

  // A new name is a new member: bob sees alice leave and come back under it.
  await alice.page.fill('#name', 'alice ii');
  await alice.page.click('#settings button');
  await textIs(bob.page, '#log li.system:last-child', 'alice ii joined');
  await textIs(alice.page, '#members', '2 here');
  await alice.page.fill('#text', 'renamed');
  await alice.page.press('#text', 'Enter');
  await textIs(bob.page, '#log li.theirs:last-child', 'alice iirenamed');
  assert.deepEqual((await log(bob.page)).slice(2), [
    { kind: 'system', from: null, text: 'alice left' },
    { kind: 'system', from: null, text: 'alice ii joined' },
    { kind: 'theirs', from: 'alice ii', text: 'renamed' },
  ]);

  await bob.page.close();
  await textIs(alice.page, '#members', '1 here (just you)');
  await textIs(alice.page, '#log li.system:last-child', 'bob left');

  demo.child.kill('SIGTERM');
  assert.deepEqual(await demo.exited, { code: 0, signal: null });
  await alice.page.waitForSelector('#status[data-state="reconnecting"]', { timeout: 10_000 });
  assert.match((await alice.page.textContent('#status')) ?? '', /^reconnecting/);
  assert.equal(await alice.page.textContent('#members'), '', 'no member count while not connected');
});

test('two tabs of one browser are two guests until a name is chosen', async (t) => {
  const demo = spawnStrands(t, ['demo', '--port', '0']);
  const printed = await demo.stdout.next((l) => typeof l.raw === 'string' && l.raw.startsWith('strands demo: open '), 15_000, 'the URL to open');
  const lobby = /open (\S+)/.exec(printed.raw as string)?.[1] as string;
  const browser = await launchChromium(t);
  const context = await browser.newContext(PHONE);
  const first = await context.newPage();
  const second = await context.newPage();
  const errors = [collectErrors(first), collectErrors(second)];
  // Each tab draws its guest number; pinned here so that the two draws differ for sure.
  await first.addInitScript('Math.random = () => 0.1');
  await second.addInitScript('Math.random = () => 0.5');
  for (const page of [first, second]) await page.goto(lobby);
  await textIs(second, '#members', '2 here');
  assert.deepEqual(await Promise.all([first, second].map((page) => page.inputValue('#name'))), ['guest-1900', 'guest-5500']);
  // Another draw after the reload would give guest-9100.
  await second.addInitScript('Math.random = () => 0.9');
  await second.reload();
  await textIs(second, '#members', '2 here');
  assert.equal(await second.inputValue('#name'), 'guest-5500', 'a reload keeps the tab\'s name');
  assert.deepEqual(errors, [[], []]);
});

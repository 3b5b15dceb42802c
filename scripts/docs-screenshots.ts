/**
 * The screenshots in docs/images/, made anew: `strands demo` with two people
 * chatting (docs/images/demo.png) and the status page of its broker after a
 * little traffic (docs/images/status-page.png), in Debian's headless
 * Chromium. Run by hand when the pages change (not by the tests):
 *
 *   npm run docs:screenshots
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { demoSettings, startDemo } from '../src/demo/demo';
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from '../test/helpers/browser';

const OUT = join(__dirname, '..', '..', 'docs', 'images');
const VIEWPORT = { width: 900, height: 640 };

/** A person at the chat: their own browser context (own storage), their name chosen. */
async function person(browser: Browser, url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  await context.addInitScript(`localStorage.setItem('strands-demo-name', ${JSON.stringify(name)})`);
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('#status', { hasText: /^online$/ }).waitFor();
  return page;
}

async function say(page: Page, text: string, seenBy: Page): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await seenBy.locator('#log li.theirs', { hasText: text }).waitFor();
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const demo = await startDemo(demoSettings({ host: '127.0.0.1', port: '0', wsPort: '0', tcpPort: '0' }));
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS });
  try {
    const url = demo.pageUrls[0] as string;
    const ada = await person(browser, url, 'ada');
    const grace = await person(browser, url, 'grace');
    await ada.locator('#members', { hasText: /^2 here/ }).waitFor();
    await say(ada, 'hello from the first tab', grace);
    await say(grace, 'hi! this came through strands', ada);
    await say(ada, 'each message goes to the room, the sender left out', grace);
    await ada.screenshot({ path: join(OUT, 'demo.png') });

    const status = await browser.newPage({ viewport: { width: 900, height: 860 } });
    await status.goto(demo.statusUrl);
    await status.locator('#state', { hasText: /^live/ }).waitFor();
    // Twenty seconds of conversation (within the demo's 5 messages a second), so the rate charts have a shape.
    for (let i = 0; i < 60; i++) {
      await say(i % 2 === 0 ? ada : grace, `message ${i}`, i % 2 === 0 ? grace : ada);
      await status.waitForTimeout(300);
    }
    await status.waitForTimeout(1500);
    await status.screenshot({ path: join(OUT, 'status-page.png') });
    process.stdout.write(`wrote ${join(OUT, 'demo.png')} and ${join(OUT, 'status-page.png')}\n`);
  } finally {
    await browser.close();
    await demo.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`docs:screenshots: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

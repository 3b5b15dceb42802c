import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium: .ci/run installs it; playwright-core never downloads a browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags that work as root in a sandbox on a machine without a network:
 * without the background-networking ones Chromium's own connections are
 * refused and it stalls. --user-data-dir is a fresh directory per launch.
 */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The browser client's bundle as the build writes it: dist/browser/strands-client.js, found from dist/test/helpers/. */
export const CLIENT_BUNDLE = resolve(__dirname, '..', '..', 'browser', 'strands-client.js');

/** Files a test serves, by URL path ('/index.html'); the content type follows the extension. */
export type Site = Record<string, string | Buffer>;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
};

export interface TestPage {
  page: Page;
  /** http://127.0.0.1:<port>, where the site is served. */
  origin: string;
  /** Console messages of type error and uncaught exceptions in the page, in order, as text. */
  errors: string[];
}

export interface OpenPageOptions {
  /** The path opened first. Default /index.html. */
  path?: string;
  /** Runs before the page loads: for page.exposeFunction and the like. */
  beforeLoad?: (page: Page) => Promise<unknown>;
}

/**
 * Launches Chromium with a fresh profile; it is closed and the profile removed
 * when the test ends. Fails, never skips, without Chromium.
 */
export async function launchChromium(t: TestContext): Promise<BrowserContext> {
  await access(CHROMIUM_PATH, constants.X_OK).catch(() => {
    throw new Error(`the browser tests need Chromium at ${CHROMIUM_PATH} (Debian: apt-get install chromium; .ci/run installs it)`);
  });
  const profile = await mkdtemp(join(tmpdir(), 'strands-chromium-'));
  let context: BrowserContext | undefined;
  // One hook, so that the browser is gone before its profile is removed.
  t.after(async () => {
    await context?.close();
    await rm(profile, { recursive: true, force: true });
  });
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS });
  return context;
}

/** Console messages of type error and uncaught exceptions in `page` from now on, in order, as text; the array fills as they come. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  return errors;
}

/** Opens `url` in `page` and waits for its load event; throws unless it answered 200. */
export async function load(page: Page, url: string): Promise<void> {
  const response = await page.goto(url, { waitUntil: 'load' });
  if (response?.status() !== 200) throw new Error(`${url} answered ${response?.status()}`);
  // A round trip: what the page logged while loading has been reported once it answers.
  await page.evaluate('0');
}

/**
 * Serves `site` on 127.0.0.1 (port 0), launches Chromium (launchChromium),
 * opens `path` and waits for its load event. The server stops when the test ends.
 */
export async function openPage(t: TestContext, site: Site, options: OpenPageOptions = {}): Promise<TestPage> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const body = site[path];
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
  });
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const context = await launchChromium(t);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = pageErrors(page);
  await options.beforeLoad?.(page);
  await load(page, origin + (options.path ?? '/index.html'));
  return { page, origin, errors };
}

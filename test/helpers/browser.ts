import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

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
type Site = Record<string, string | Buffer>;

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

interface OpenPageOptions {
  /** The path opened first. Default /index.html. */
  path?: string;
  /** Runs before the page loads: for page.exposeFunction and the like. */
  beforeLoad?: (page: Page) => Promise<unknown>;
}

/** Fails, never skips, without Chromium. */
async function checkChromium(): Promise<void> {
  await access(CHROMIUM_PATH, constants.X_OK).catch(() => {
    throw new Error(`the browser tests need Chromium at ${CHROMIUM_PATH} (Debian: apt-get install chromium; .ci/run installs it)`);
  });
}

/** Console messages of type error and uncaught exceptions in `page`, in order, as text, from now on. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  return errors;
}

/**
 * Launches Chromium (a fresh temporary profile), closed when the test ends:
 * for tests that open pages other servers serve, each in its own context
 * (`browser.newContext()`: its own storage, as another device would have).
 */
export async function launchChromium(t: TestContext): Promise<Browser> {
  await checkChromium();
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS });
  t.after(() => browser.close());
  return browser;
}

/**
 * Serves `site` on 127.0.0.1 (port 0), launches Chromium with a fresh profile,
 * opens `path` and waits for its load event. Everything is closed and the
 * profile removed when the test ends. Fails, never skips, without Chromium.
 */
export async function openPage(t: TestContext, site: Site, options: OpenPageOptions = {}): Promise<TestPage> {
  await checkChromium();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const body = site[path];
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
  });
  const profile = await mkdtemp(join(tmpdir(), 'strands-chromium-'));
  let context: BrowserContext | undefined;
  // One hook, so that the browser is gone before its profile is removed.
  t.after(async () => {
    await context?.close();
    await rm(profile, { recursive: true, force: true });
    server.closeAllConnections();
    server.close();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS });

  const page = context.pages()[0] ?? (await context.newPage());
  const errors = collectErrors(page);
  await options.beforeLoad?.(page);
  const response = await page.goto(origin + (options.path ?? '/index.html'), { waitUntil: 'load' });
  if (response?.status() !== 200) throw new Error(`${options.path ?? '/index.html'} answered ${response?.status()}`);
  // A round trip: what the page logged while loading has arrived in `errors` once it answers.
  await page.evaluate('0');
  return { page, origin, errors };
}

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import { Broker } from '../broker';
import { portFlag, resolveConfig, type BrokerConfig } from '../config';
import { Lifecycle, type Component } from '../lifecycle';
import { createLogger } from '../logger';
import { CSS, HTML, JS, contentPolicy, sendFile, type PageFile } from '../page-files';
import type { StrandsBackend } from '../sdk';
import { ROOM_PREFIX, chatBackend } from './chat-backend';
import { CHAT_CSS, CHAT_JS, chatHtml } from './chat-page-files';

/** The browser client as the build writes it: dist/browser/strands-client.js, found from dist/src/demo/. */
export const CLIENT_BUNDLE = resolve(__dirname, '..', '..', 'browser', 'strands-client.js');

/** The flags of `strands demo`, as typed. */
export interface DemoFlags {
  host: string;
  port: string;
  wsPort: string;
  tcpPort: string;
}

interface DemoSettings {
  host: string;
  /** The page's HTTP port. */
  port: number;
  broker: BrokerConfig;
}

export interface Demo {
  /** Where to open the chat: one URL per address the page is reachable at. */
  pageUrls: string[];
  statusUrl: string;
  stop(): Promise<void>;
}

/** A chat message is short: anything larger is closed with 1009 by the broker before the backend sees it. */
const MAX_FRAME = 16 * 1024;

/**
 * The demo's settings, checked as the broker checks its own (a bad value is a
 * ConfigError naming the flag). The broker's environment variables are not
 * read: a STRANDS_WS_PORT meant for a real broker must not move the demo. The
 * backend port stays on the loopback (the backend runs in this process), and
 * so does the status page, which names rooms.
 */
export function demoSettings(flags: DemoFlags): DemoSettings {
  const pagePort = portFlag('--port', flags.port);
  const broker = resolveConfig(
    {
      host: flags.host,
      'ws-port': flags.wsPort,
      'tcp-port': flags.tcpPort,
      'tcp-host': '127.0.0.1',
      'max-payload': String(MAX_FRAME),
      'log-level': 'warn',
      'metrics-port': '0',
      'metrics-host': '127.0.0.1',
      'status-page': 'true',
      'status-page-rooms': 'true',
    },
    {},
  );
  return { host: broker.host, port: pagePort, broker };
}

/**
 * Starts a broker, the chat backend (the TypeScript SDK) and the page's HTTP
 * server, in this process; rejects, with nothing left running, if one of them
 * cannot start (a port in use, the browser client not built).
 */
export async function startDemo(settings: DemoSettings): Promise<Demo> {
  const bundle = readBundle();
  const broker = new Broker(settings.broker, createLogger(settings.broker.logLevel));
  const backend = new ChatBackendPart(() => broker.tcpPort);
  const page = new PageServer(settings, () => chatFiles(broker.wsPort, bundle));
  const lifecycle = new Lifecycle([broker, backend, page]);
  await lifecycle.start(() => Date.now());
  return {
    pageUrls: pageHosts(settings.host).map((host) => `http://${host}:${page.port}/room/lobby`),
    statusUrl: `http://127.0.0.1:${broker.metricsPort}/status`,
    stop: () => lifecycle.stop(Date.now() + settings.broker.shutdownTimeout),
  };
}

/** The chat backend, connected to the broker's backend port once the broker listens. */
class ChatBackendPart implements Component {
  private backend: StrandsBackend | undefined;

  constructor(private readonly brokerPort: () => number) {}

  async start(): Promise<void> {
    this.backend = chatBackend(this.brokerPort());
    await this.backend.connect();
    // The broker answers room_info only to a backend it has admitted: from here on, pages are not refused for want of one.
    await this.backend.roomInfoPage('lobby');
  }

  async stop(): Promise<void> {
    await this.backend?.close();
  }
}

/** The page's HTTP server: / and /room/<anything> are the chat page, which reads its room from the address (/?room= works too). */
class PageServer implements Component {
  private readonly server: Server;

  constructor(
    private readonly settings: DemoSettings,
    private readonly files: () => ChatFiles,
  ) {
    this.server = createServer();
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  start(): Promise<void> {
    const files = this.files();
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => answer(req, res, files));
    const { host, port } = this.settings;
    return new Promise((done, fail) => {
      this.server.once('error', (err: NodeJS.ErrnoException) =>
        fail(new Error(`cannot listen for the demo page on ${host}:${port}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (--port 0 picks a free port)' : ''}`)),
      );
      this.server.listen(port, host, () => {
        // From here an error is one failed accept (EMFILE), not a reason to stop serving.
        this.server.removeAllListeners('error');
        this.server.on('error', (err: NodeJS.ErrnoException) => process.stderr.write(`strands demo: page server: ${err.code ?? err.message}\n`));
        done();
      });
    });
  }

  stop(): Promise<void> {
    return new Promise((done) => {
      this.server.close(() => done());
      this.server.closeAllConnections();
    });
  }
}

/**
 * `strands demo`: starts everything, prints where to go, and stops on SIGINT
 * or SIGTERM (a second signal exits at once).
 */
export async function runDemo(settings: DemoSettings): Promise<void> {
  const demo = await startDemo(settings);
  const [first, ...others] = demo.pageUrls;
  const lines = [`strands demo: open ${first} in two tabs (or /room/<name> for another room)`];
  if (others.length > 0) lines.push(`  from a phone on this network: ${others.join(' or ')}`);
  else lines.push('  to try it from a phone on your network: strands demo --host 0.0.0.0');
  lines.push(`  the broker's status page: ${demo.statusUrl}`, '  Ctrl-C stops it.');
  process.stdout.write(lines.join('\n') + '\n');
  let signals = 0;
  const stop = (): void => {
    if (++signals > 1) process.exit(1);
    void demo.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function readBundle(): Buffer {
  try {
    return readFileSync(CLIENT_BUNDLE);
  } catch (err) {
    throw new Error(`the browser client is not built (${CLIENT_BUNDLE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): run npm run build`);
  }
}

/** The chat page, at / and every /room/<name>, and the files it loads. */
interface ChatFiles {
  page: PageFile;
  assets: Readonly<Record<string, PageFile>>;
}

function chatFiles(wsPort: number, bundle: Buffer): ChatFiles {
  return {
    page: { type: HTML, body: chatHtml(wsPort) },
    assets: {
      '/chat.css': { type: CSS, body: CHAT_CSS },
      '/chat.js': { type: JS, body: CHAT_JS },
      '/strands-client.js': { type: JS, body: bundle },
    },
  };
}

/** The page may open WebSockets to the broker's port, on whichever address it was loaded from. */
const POLICY = contentPolicy('ws: wss:');

function answer(req: IncomingMessage, res: ServerResponse, files: ChatFiles): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const path = (req.url ?? '/').split('?')[0] as string;
  const file = path === '/' || path.startsWith(ROOM_PREFIX) ? files.page : files.assets[path];
  if (file === undefined) res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: the chat is at /room/<name>\n');
  else sendFile(res, file, file.type === HTML ? POLICY : undefined);
}

/** Addresses to print: the one bound to, or for a wildcard this machine's own (a phone on the same network uses one of those). */
function pageHosts(host: string): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [host.includes(':') ? `[${host}]` : host];
  const external = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal && a.family === 'IPv4')
    .map((a) => (a as { address: string }).address);
  return ['127.0.0.1', ...external];
}

import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import WebSocket, { WebSocketServer, type ServerOptions } from 'ws';
import type { BrokerConfig } from '../../src/config';
import { startEchoBackend } from '../../src/sdk';
import { AsyncQueue } from '../helpers/async-queue';
import type { TestBroker } from '../helpers/broker';
import { brokerFor, waitUntil } from '../helpers/fixtures';

/** A broker with the SDK's echo backend connected (it echoes each message to its sender); both stop when the test ends. */
export async function echoBroker(t: TestContext, overrides: Partial<BrokerConfig> = {}): Promise<TestBroker> {
  const broker = await brokerFor(t, overrides);
  const backend = startEchoBackend({ port: broker.tcpPort });
  t.after(() => backend.close());
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the echo backend is connected');
  return broker;
}

interface TinyServer {
  port: number;
  url(path?: string): string;
  /** Each accepted socket with its request path, in order. */
  connections: AsyncQueue<{ ws: WebSocket; path: string }>;
}

/** A bare `ws` server on 127.0.0.1, for what the broker never does (closes with chosen codes, binary echoes, held upgrades). */
export async function tinyServer(t: TestContext, onConnection: (ws: WebSocket, req: IncomingMessage) => void = () => undefined, options: ServerOptions = {}): Promise<TinyServer> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  await new Promise((resolve) => server.once('listening', resolve));
  const connections = new AsyncQueue<{ ws: WebSocket; path: string }>();
  server.on('connection', (ws, req) => {
    connections.push({ ws, path: req.url ?? '' });
    onConnection(ws, req);
  });
  t.after(() => {
    for (const ws of server.clients) ws.terminate();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return { port, url: (path = '/') => `ws://127.0.0.1:${port}${path}`, connections };
}

/** Echoes each message back as it came (text as text, binary as binary). */
export function echo(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

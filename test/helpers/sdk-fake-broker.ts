import { once } from 'node:events';
import * as net from 'node:net';
import type { TestContext } from 'node:test';
import { StrandsBackend, type StrandsBackendOptions } from '../../src/sdk';
import { LineFramer } from '../../src/protocol/line-framer';
import { AsyncQueue } from './async-queue';

/** The broker's end of one backend link, for tests of the SDK: it reads the SDK's lines and writes what a test gives it. */
export class Peer {
  readonly lines = new AsyncQueue<string>();

  constructor(readonly socket: net.Socket) {
    const framer = new LineFramer(64 * 1024 * 1024, (line) => this.lines.push(line), () => {});
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', () => {});
  }

  /** The next line, parsed. */
  async next(): Promise<any> {
    return JSON.parse(await this.lines.next());
  }

  send(obj: object): void {
    this.socket.write(JSON.stringify(obj) + '\n');
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  kill(): void {
    this.socket.destroy();
  }
}

/** A TCP server standing in for the broker's backend port; `onPeer` (if given) acts on each link as it is accepted. */
export class FakeBroker {
  readonly peers = new AsyncQueue<Peer>();
  /** Links accepted so far. */
  accepted = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  port = 0;

  private constructor(onPeer: ((peer: Peer) => void) | undefined) {
    this.server = net.createServer((socket) => {
      this.accepted++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      const peer = new Peer(socket);
      onPeer?.(peer);
      this.peers.push(peer);
    });
  }

  static async start(onPeer?: (peer: Peer) => void): Promise<FakeBroker> {
    const broker = new FakeBroker(onPeer);
    await broker.listen(0);
    return broker;
  }

  async listen(port: number): Promise<void> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Stops accepting; existing links stay up. */
  stopListening(): void {
    this.server.close();
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await new Promise((resolve) => this.server.close(resolve));
  }
}

/** What the broker sends a backend whose token is wrong, just before it closes the link. */
export function authFailedLine(why = 'invalid token'): object {
  return { request_id: 'e1', action: 'error', params: { error: `authentication failed: ${why}`, context: {} } };
}

/** A fake broker and a StrandsBackend connected to it (both closed when the test ends), with the broker's end of the link. */
export async function connectedBackend(t: TestContext, opts: Partial<StrandsBackendOptions> = {}): Promise<{ broker: FakeBroker; backend: StrandsBackend; peer: Peer }> {
  const broker = await FakeBroker.start();
  const backend = new StrandsBackend({ port: broker.port, ...opts });
  t.after(async () => {
    await backend.close();
    await broker.stop();
  });
  await backend.connect();
  const peer = await broker.peers.next();
  return { broker, backend, peer };
}

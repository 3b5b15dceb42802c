import { readFileSync } from 'node:fs';
import { connect, createInbox, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { withoutCredentials } from './urls';
import { BusRequestError, type BusMessage, type BusSubscription, type Transport } from './transport';

interface NatsSettings {
  /** nats:// or tls:// URLs, credentials in them as NATS clients accept them. */
  servers: string[];
  /** A NATS .creds file (JWT and NKey seed). */
  credsFile: string | undefined;
  tlsCaFile: string | undefined;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  /** The connection's name on the server: the node id. */
  name: string;
}

/** Bytes published and not yet confirmed by the server past which publishes are dropped. */
const MAX_UNCONFIRMED = 32 * 1024 * 1024;
/** How often unconfirmed bytes are confirmed (a PING/PONG) while there are any. */
const CONFIRM_INTERVAL_MS = 100;
/** Reconnect delays grow from the first to the last, with up to a fifth of random jitter. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;
const FIRST_CONNECT_TIMEOUT_MS = 5000;
/** How long a closing node waits for the server to take what it published last (the `disconnected` events of its clients). */
const CLOSE_FLUSH_MS = 1000;

/**
 * The bus over NATS: one connection per node, no echo of its own messages,
 * reconnecting forever with backoff (the client resubscribes by itself).
 * While disconnected nothing is handed to the client (it would buffer without
 * bound); while connected, what the server has not confirmed is bounded.
 */
export class NatsTransport implements Transport {
  private nc: NatsConnection | undefined;
  private up = false;
  private published = 0;
  private confirmed = 0;
  private confirming = false;
  private confirmTimer: NodeJS.Timeout | undefined;
  private reconnects = 0;
  private readonly listeners: ((up: boolean) => void)[] = [];

  constructor(
    private readonly settings: NatsSettings,
    private readonly log: Logger,
  ) {}

  get connected(): boolean {
    return this.up;
  }

  get maxPayload(): number {
    return this.nc?.info?.max_payload ?? 0;
  }

  /** Connects, or rejects naming the servers if none answers within a few seconds. */
  async start(): Promise<void> {
    const { servers, credsFile, tlsCaFile, tlsCertFile, tlsKeyFile, name } = this.settings;
    const options: NodeConnectionOptions = {
      servers,
      name,
      noEcho: true,
      timeout: FIRST_CONNECT_TIMEOUT_MS,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => {
        const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.reconnects++);
        return base + Math.random() * base * 0.2;
      },
    };
    if (credsFile !== undefined) options.authenticator = credsAuthenticator(readFileSync(credsFile));
    if (tlsCaFile !== undefined || tlsCertFile !== undefined) options.tls = { caFile: tlsCaFile, certFile: tlsCertFile, keyFile: tlsKeyFile };
    try {
      this.nc = await connect(options);
    } catch (err) {
      throw new Error(`cannot connect to the cluster bus at ${servers.map(withoutCredentials).join(', ')}: ${(err as Error).message}`);
    }
    this.up = true;
    void this.watch(this.nc);
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'close') this.setUp(false);
      else if (status.type === 'reconnect') {
        this.reconnects = 0;
        // What was published before the drop was never confirmed and never will be.
        this.confirmed = this.published;
        this.setUp(true);
      } else if (status.type === 'slowConsumer') this.log.warn({ subject: status.sub.getSubject(), pending: status.pending }, 'cluster bus: this node reads a subscription too slowly');
    }
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    for (const listener of this.listeners) listener(up);
  }

  onStatus(listener: (up: boolean) => void): void {
    this.listeners.push(listener);
  }

  publish(subject: string, data: Uint8Array, reply?: string): boolean {
    const nc = this.nc;
    // The client throws on a message over the server's max_payload: refused here, like any message the bus cannot take.
    if (nc === undefined || !this.up || data.length > this.maxPayload || this.published - this.confirmed + data.length > MAX_UNCONFIRMED) return false;
    nc.publish(subject, data, reply === undefined ? undefined : { reply });
    this.published += data.length;
    if (this.confirmTimer === undefined) {
      this.confirmTimer = setTimeout(() => this.confirm(), CONFIRM_INTERVAL_MS);
      this.confirmTimer.unref();
    }
    return true;
  }

  /** A PING/PONG: once it returns, the server has taken everything published before it. */
  private confirm(): void {
    this.confirmTimer = undefined;
    const nc = this.nc;
    if (nc === undefined || this.confirming || !this.up) return;
    this.confirming = true;
    const mark = this.published;
    nc.flush().then(
      () => {
        this.confirmed = Math.max(this.confirmed, mark);
        this.confirming = false;
        if (this.published > this.confirmed) this.confirm();
      },
      () => {
        this.confirming = false;
      },
    );
  }

  subscribe(subject: string, onMessage: (message: BusMessage) => void, queue?: string): BusSubscription {
    const nc = this.connection();
    const sub = nc.subscribe(subject, {
      queue,
      callback: (err, msg) => {
        if (err === null) onMessage({ subject: msg.subject, data: msg.data, reply: msg.reply });
      },
    });
    return { unsubscribe: () => sub.unsubscribe() };
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (!this.up) throw new BusRequestError('down', 'the cluster bus is down');
    try {
      return (await this.connection().request(subject, data, { timeout: timeoutMs })).data;
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'NoRespondersError') throw new BusRequestError('no_responders', 'no node with a backend answered');
      if (name === 'TimeoutError' || name === 'RequestError') throw new BusRequestError('timeout', `no answer within ${timeoutMs} ms`);
      throw new BusRequestError('down', (err as Error).message);
    }
  }

  inbox(): string {
    return createInbox();
  }

  /** Sends what was published (bounded by CLOSE_FLUSH_MS when the server is slow or gone), then closes. */
  async close(): Promise<void> {
    clearTimeout(this.confirmTimer);
    const nc = this.nc;
    this.nc = undefined;
    const wasUp = this.up;
    this.setUp(false);
    if (nc === undefined || nc.isClosed()) return;
    if (wasUp) await Promise.race([nc.flush().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_FLUSH_MS).unref())]);
    await nc.close();
  }

  private connection(): NatsConnection {
    if (this.nc === undefined) throw new BusRequestError('down', 'the cluster bus is not connected');
    return this.nc;
  }
}

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Action, type ClientContext } from '../protocol/actions';
import { LineFramer } from '../protocol/line-framer';

export type { ClientContext };

export interface ConnectionRequest {
  requestId: string;
  /** Go-canonical header names -> every value, in order. */
  headers: Record<string, string[]>;
  url: string;
  remoteAddr: string;
  /** The raw query string after `?`; '' when there is none or the broker does not send it. */
  query: string;
  /** First value of a header, the name matched case-insensitively. */
  header(name: string): string | undefined;
  queryParam(name: string): string | undefined;
}

export interface ConnectionDecision {
  accepted: boolean;
  /** Omitted: the broker picks a fresh UUID. */
  client_id?: string;
  /** Omitted: the broker uses the request's url. */
  room_id?: string;
  metadata?: Record<string, unknown>;
}

export interface StrandsBackendOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** Default true. */
  reconnect?: boolean;
  /** Default 100: the ceiling of the first retry's delay. */
  minBackoffMs?: number;
  /** Default 10_000. Retries wait random(0, min(max, min * 2^attempt)) ms ("full jitter"). */
  maxBackoffMs?: number;
  tls?: boolean | tls.ConnectionOptions;
  /** Sent as an `auth` line first after each connect (PROTOCOL.md part 3). */
  token?: string;
  /** Longest accepted line from the broker, in bytes. Default 16 MiB. */
  maxLine?: number;
}

type RequestHandler = (req: ConnectionRequest) => ConnectionDecision | Promise<ConnectionDecision>;
type Params = Record<string, unknown>;

/**
 * Text held for the broker (waiting for the next flush, for a reconnect, or in
 * the socket because the broker reads slowly), in UTF-16 units and bytes; sends
 * beyond it are dropped and counted.
 */
const MAX_PENDING = 8 * 1024 * 1024;
/** How long close() waits for the broker to close its side after ours is ended. */
const CLOSE_GRACE_MS = 1000;
const REJECT: Params = { accepted: false };

function isObject(v: unknown): v is Params {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null | undefined)?.then === 'function';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

class Request implements ConnectionRequest {
  private params: URLSearchParams | undefined;

  constructor(
    readonly requestId: string,
    readonly headers: Record<string, string[]>,
    readonly url: string,
    readonly remoteAddr: string,
    readonly query: string,
  ) {}

  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    for (const key of Object.keys(this.headers)) {
      if (key.toLowerCase() === lower) return this.headers[key]?.[0];
    }
    return undefined;
  }

  queryParam(name: string): string | undefined {
    this.params ??= new URLSearchParams(this.query);
    return this.params.get(name) ?? undefined;
  }
}

/**
 * A backend on the broker's TCP link. Events: 'connect', 'disconnect' (error?),
 * 'reconnecting' (delayMs), 'protocol-error' (reason, line), 'response'
 * (request_id, params) for extension answers, and 'handler-error' (error, action)
 * when a handler throws or rejects (printed with console.error if nobody listens).
 */
export class StrandsBackend extends EventEmitter {
  private readonly host: string;
  private readonly port: number;
  private readonly reconnect: boolean;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private readonly tlsOptions: tls.ConnectionOptions | undefined;
  private readonly token: string | undefined;
  private readonly maxLine: number;

  private requestHandler: RequestHandler = () => ({ accepted: true });
  private connectionHandler: (ctx: ClientContext) => void = () => {};
  private messageHandler: (message: string, ctx: ClientContext) => void = () => {};
  private disconnectHandler: (ctx: ClientContext) => void = () => {};
  private errorHandler: (error: string, ctx: ClientContext | Record<string, never>) => void = () => {};

  /** The socket connecting or connected, if any. */
  private socket: net.Socket | undefined;
  private isOpen = false;
  private closed = false;
  /** Bumped per socket, so an answer computed for a dead link is not sent on the next one. */
  private generation = 0;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private waiting: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } | undefined;
  private closing: Promise<void> | undefined;

  private out = '';
  private flushScheduled = false;
  private dropped = 0;
  private readonly idPrefix = randomUUID().slice(0, 8) + '-';
  private seq = 0;

  constructor(opts: StrandsBackendOptions) {
    super();
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port;
    this.reconnect = opts.reconnect ?? true;
    this.minBackoff = opts.minBackoffMs ?? 100;
    this.maxBackoff = opts.maxBackoffMs ?? 10_000;
    this.tlsOptions = opts.tls === true ? {} : opts.tls || undefined;
    this.token = opts.token;
    this.maxLine = opts.maxLine ?? 16 * 1024 * 1024;
  }

  onConnectionRequest(h: RequestHandler): this {
    this.requestHandler = h;
    return this;
  }

  onNewConnection(h: (ctx: ClientContext) => void): this {
    this.connectionHandler = h;
    return this;
  }

  onMessage(h: (message: string, ctx: ClientContext) => void): this {
    this.messageHandler = h;
    return this;
  }

  onDisconnect(h: (ctx: ClientContext) => void): this {
    this.disconnectHandler = h;
    return this;
  }

  onError(h: (error: string, ctx: ClientContext | Record<string, never>) => void): this {
    this.errorHandler = h;
    return this;
  }

  get connected(): boolean {
    return this.isOpen && !this.closed;
  }

  /** Sends dropped because MAX_PENDING was held already (disconnected, or a broker not reading) or the backend was closed. */
  get droppedSends(): number {
    return this.dropped;
  }

  /**
   * Resolves once connected. Rejects only when `reconnect` is false and the
   * attempt fails; resolves without connecting if close() is called first.
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('StrandsBackend is closed'));
    if (this.isOpen) return Promise.resolve();
    if (!this.waiting) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.waiting = { promise, resolve, reject };
    }
    const { promise } = this.waiting;
    if (!this.socket && !this.retryTimer) this.open();
    return promise;
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.waiting?.resolve();
    this.waiting = undefined;
    const socket = this.socket;
    const pending = this.out;
    this.out = '';
    this.closing = new Promise<void>((resolve) => {
      if (!socket) return resolve();
      socket.once('close', () => resolve());
      if (this.isOpen) {
        socket.end(pending);
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      } else {
        socket.destroy();
      }
    });
    return this.closing;
  }

  sendToRoom(roomId: string, message: string): void {
    this.enqueue(
      '{"request_id":"' + this.nextId() + '","action":"message_to_room","params":{"room_id":' +
        JSON.stringify(roomId) + ',"message":' + JSON.stringify(message) + '}}\n',
    );
  }

  sendToConnection(clientId: string, message: string): void {
    this.enqueue(
      '{"request_id":"' + this.nextId() + '","action":"message_to_connection","params":{"conn_id":' +
        JSON.stringify(clientId) + ',"message":' + JSON.stringify(message) + '}}\n',
    );
  }

  broadcast(message: string): void {
    this.enqueue(
      '{"request_id":"' + this.nextId() + '","action":"broadcast","params":{"message":' +
        JSON.stringify(message) + '}}\n',
    );
  }

  private nextId(): string {
    return this.idPrefix + (++this.seq).toString(36);
  }

  private enqueue(line: string): void {
    if (this.closed || this.out.length + line.length + (this.socket?.writableLength ?? 0) > MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.out += line;
    if (this.isOpen && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (!this.isOpen || this.closed || this.out === '') return;
    const text = this.out;
    this.out = '';
    this.socket?.write(text);
  };

  private open(): void {
    this.generation++;
    const socket = this.tlsOptions
      ? tls.connect({ ...this.tlsOptions, host: this.host, port: this.port })
      : net.connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setNoDelay(true);
    const framer = new LineFramer(
      this.maxLine,
      (line) => this.onLine(line),
      (bytes) => this.emit('protocol-error', `line of ${bytes} bytes exceeds maxLine`, ''),
    );
    let lastError: Error | undefined;
    socket.once(this.tlsOptions ? 'secureConnect' : 'connect', () => this.onOpen());
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', (err) => {
      lastError = err;
    });
    socket.on('close', () => this.onClose(socket, lastError));
  }

  private onOpen(): void {
    this.isOpen = true;
    this.attempt = 0;
    if (this.token !== undefined) {
      const auth = { request_id: this.nextId(), action: 'auth', params: { token: this.token } };
      this.out = JSON.stringify(auth) + '\n' + this.out;
    }
    this.flush();
    this.emit('connect');
    this.waiting?.resolve();
    this.waiting = undefined;
  }

  private onClose(socket: net.Socket, err: Error | undefined): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    const wasOpen = this.isOpen;
    this.isOpen = false;
    if (wasOpen) this.emit('disconnect', err);
    if (this.closed) return;
    if (this.reconnect) {
      const ceiling = Math.min(this.maxBackoff, this.minBackoff * 2 ** this.attempt++);
      const delay = Math.round(Math.random() * ceiling);
      this.emit('reconnecting', delay);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.open();
      }, delay);
    } else if (!wasOpen && this.waiting) {
      this.waiting.reject(err ?? new Error('connection closed before it was established'));
      this.waiting = undefined;
    }
  }

  private onLine(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.emit('protocol-error', 'invalid JSON', text);
      return;
    }
    if (!isObject(msg) || typeof msg.action !== 'string') {
      this.emit('protocol-error', 'not an envelope', text);
      return;
    }
    const action = msg.action;
    const params = isObject(msg.params) ? msg.params : {};
    // Heartbeats, like actions this SDK does not know, need no answer and are ignored.
    switch (action) {
      case Action.ConnectionRequest:
        if (typeof msg.request_id !== 'string') {
          this.emit('protocol-error', 'connection_request without request_id', text);
          return;
        }
        this.handleRequest(msg.request_id, params);
        return;
      case Action.NewMessage:
      case Action.NewConnection:
      case Action.Disconnected: {
        const ctx = params.context;
        if (!isObject(ctx)) {
          this.emit('protocol-error', `${action} without context`, text);
          return;
        }
        const context = ctx as unknown as ClientContext;
        // Called in place rather than through a closure: this runs once per client message.
        try {
          const result =
            action === Action.NewMessage
              ? this.messageHandler(str(params.message), context)
              : action === Action.NewConnection
                ? this.connectionHandler(context)
                : this.disconnectHandler(context);
          this.watch(result, action);
        } catch (err) {
          this.handlerError(err, action);
        }
        return;
      }
      case Action.Error: {
        const ctx = (isObject(params.context) ? params.context : {}) as ClientContext | Record<string, never>;
        try {
          this.watch(this.errorHandler(str(params.error), ctx), action);
        } catch (err) {
          this.handlerError(err, action);
        }
        return;
      }
      case Action.Response:
        this.emit('response', msg.request_id, params);
        return;
    }
  }

  private handleRequest(requestId: string, params: Params): void {
    const req = new Request(
      requestId,
      (isObject(params.headers) ? params.headers : {}) as Record<string, string[]>,
      str(params.url),
      str(params.remote_addr),
      str(params.query),
    );
    const generation = this.generation;
    let decision: unknown;
    try {
      decision = this.requestHandler(req);
    } catch (err) {
      this.handlerError(err, Action.ConnectionRequest);
      decision = REJECT;
    }
    if (isThenable(decision)) {
      decision.then(
        (d) => this.respond(generation, requestId, d),
        (err) => {
          this.handlerError(err, Action.ConnectionRequest);
          this.respond(generation, requestId, REJECT);
        },
      );
    } else {
      this.respond(generation, requestId, decision);
    }
  }

  private respond(generation: number, requestId: string, d: unknown): void {
    // The broker retries a request whose link died on another backend, so an
    // answer meant for an earlier link must not reach the current one.
    if (generation !== this.generation || !this.connected) return;
    let line: string;
    try {
      line = responseLine(requestId, isObject(d) ? d : REJECT);
    } catch (err) {
      // e.g. metadata that JSON cannot encode (a cycle, a BigInt)
      this.handlerError(err, Action.ConnectionRequest);
      line = responseLine(requestId, REJECT);
    }
    this.enqueue(line);
  }

  /** Reports the rejection of a handler that returned a promise. */
  private watch(result: unknown, action: string): void {
    if (isThenable(result)) result.then(undefined, (err) => this.handlerError(err, action));
  }

  private handlerError(err: unknown, action: string): void {
    if (this.listenerCount('handler-error') > 0) this.emit('handler-error', err, action);
    else console.error(`strands: ${action} handler failed:`, err);
  }
}

function responseLine(requestId: string, d: Params): string {
  const params = { accepted: d.accepted === true, client_id: d.client_id, room_id: d.room_id, metadata: d.metadata };
  return JSON.stringify({ request_id: requestId, action: Action.Response, params }) + '\n';
}

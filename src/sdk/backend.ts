import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Action, type ClientContext } from '../protocol/actions';
import { isObject } from '../protocol/json';
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
  /** Default 10_000. Retry n waits random(0, min(max, min * 2^(n-1))) ms ("full jitter"). */
  maxBackoffMs?: number;
  /**
   * Default 5000. A link must stay up this long, without an authentication
   * failure, before the backoff starts again from minBackoffMs: a broker that
   * accepts and then closes at once (a wrong token) is retried ever more slowly.
   */
  healthyAfterMs?: number;
  tls?: boolean | tls.ConnectionOptions;
  /** Sent as an `auth` line first after each connect, for a broker run with --backend-token. */
  token?: string;
  /** Longest accepted line from the broker, in bytes. Default 16 MiB. */
  maxLine?: number;
  /** Default 10_000: how long an acked send or a roomInfo page waits for its answer. */
  requestTimeoutMs?: number;
  /** Default 10_000: answers awaited at once; a request beyond it is rejected with code 'too_many_pending'. */
  maxPendingRequests?: number;
}

/** Text goes to clients as a text frame; bytes (a Buffer or any Uint8Array) as a binary frame. */
export type Message = string | Uint8Array;

/** Ask the broker to confirm: the method then returns a promise of the broker's answer. */
export interface AckOptions {
  ack: true;
  /** Default: the backend's requestTimeoutMs. */
  timeoutMs?: number;
}

/** Fire and forget (the default): the method returns nothing and costs one string concatenation. */
export interface NoAckOptions {
  ack?: false;
}

export interface ExcludeOptions {
  /** client_id(s) that must not receive the message, at most 1000. */
  exclude?: string | readonly string[];
}

export interface CloseOptions {
  /** 1000 (the default) or 4000..4999. */
  code?: number;
  /** At most 123 UTF-8 bytes. */
  reason?: string;
}

/** The broker's answer to an acked send, join, leave or disconnect. */
export interface AckResult {
  ok: boolean;
  /** Sockets on the answering node that the message was handed to (join/leave/disconnect: sockets affected). */
  delivered: number;
  /** Why, when ok is false. */
  error?: string;
}

export interface RoomInfo {
  room_id: string;
  /** Distinct client_ids in the room, across the cluster. */
  count: number;
  /** Sorted by UTF-16 code units, ascending, distinct. */
  client_ids: string[];
  /** Cluster only: how many nodes answered. */
  nodes?: number;
  /** Cluster only: how many nodes the directory knew. */
  nodes_total?: number;
}

export interface RoomInfoPage extends RoomInfo {
  /** Present when more ids follow: pass it as `cursor` to get them. */
  next?: string;
}

export interface RoomInfoOptions {
  /** Per page. Default: the backend's requestTimeoutMs. */
  timeoutMs?: number;
}

export type RequestErrorCode =
  /** No answer within the timeout. */
  | 'timeout'
  /** The link the request went out on closed before the answer came. */
  | 'disconnected'
  /** close() was called, or the link closed with reconnect off. */
  | 'closed'
  /** maxPendingRequests answers were awaited already. */
  | 'too_many_pending'
  /** Not sent: 8 MiB were held for the broker already. */
  | 'dropped'
  /** The broker answered room_info with ok: false. */
  | 'refused'
  /** The broker's answer did not have the documented shape. */
  | 'bad_response';

/** How an acked send or a roomInfo call failed; `code` says which way. */
export class StrandsRequestError extends Error {
  constructor(
    readonly code: RequestErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StrandsRequestError';
  }
}

/** The events a StrandsBackend emits, with their arguments. */
export interface StrandsBackendEvents {
  /** The link is up (and the auth line, if any, is on its way). */
  connect: [];
  /** The link closed: the socket error, or the broker's authentication failure, when there was one. */
  disconnect: [error: Error | undefined];
  /** The next attempt starts in delayMs; attempt counts from 1 since the last healthy link; error as for disconnect. */
  reconnecting: [delayMs: number, attempt: number, error: Error | undefined];
  /**
   * The broker refused the token (or got none) and closes the link: reason is its message, e.g.
   * "authentication failed: invalid token". It also reaches onError; with neither listening it is printed with console.error.
   */
  'auth-failed': [reason: string];
  /** A line from the broker that is not a valid envelope. */
  'protocol-error': [reason: string, line: string];
  /** A `response` line this backend did not ask about (or no longer waits for). */
  response: [requestId: unknown, params: Record<string, unknown>];
  /** A handler threw or rejected (printed with console.error if nobody listens). */
  'handler-error': [error: unknown, action: string];
}

type RequestHandler = (req: ConnectionRequest) => ConnectionDecision | Promise<ConnectionDecision>;
type Params = Record<string, unknown>;

interface PendingRequest {
  /** The request's sequence number: it went out on the current link once flushedSeq reaches it. */
  seq: number;
  timer: NodeJS.Timeout;
  answer(params: Params): void;
  fail(err: StrandsRequestError): void;
}

/**
 * Text held for the broker (waiting for the next flush, for a reconnect, or in
 * the socket because the broker reads slowly), in UTF-16 units and bytes; sends
 * beyond it are dropped and counted.
 */
const MAX_PENDING = 8 * 1024 * 1024;
/** How long close() waits for the broker to close its side after ours is ended. */
const CLOSE_GRACE_MS = 1000;
/** Backoff exponents past this would only overflow: the ceiling is maxBackoffMs long before. */
const MAX_BACKOFF_EXPONENT = 30;
/** setTimeout's largest delay. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const MAX_EXCLUDE = 1000;
const MAX_REASON_BYTES = 123;
const AUTH_FAILED_PREFIX = 'authentication failed';
const REJECT: Params = { accepted: false };

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null | undefined)?.then === 'function';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** `value`, or a RangeError naming the option when it is not a number in [min, max]. */
function bounded(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v >= min && v <= max)) throw new RangeError(`${name} must be a number from ${min} to ${max}, got ${String(v)}`);
  return v;
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
 * A backend on the broker's TCP link: typed handlers for the broker's events,
 * sends (fire and forget, or acked), room membership, client disconnects and
 * room queries. Events: see StrandsBackendEvents.
 */
export class StrandsBackend extends EventEmitter<StrandsBackendEvents> {
  private readonly host: string;
  private readonly port: number;
  private readonly reconnect: boolean;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private readonly healthyAfter: number;
  private readonly tlsOptions: tls.ConnectionOptions | undefined;
  private readonly token: string | undefined;
  private readonly maxLine: number;
  private readonly requestTimeout: number;
  private readonly maxPendingRequests: number;

  private requestHandler: RequestHandler = () => ({ accepted: true });
  private connectionHandler: (ctx: ClientContext) => void = () => {};
  private messageHandler: (message: string, ctx: ClientContext) => void = () => {};
  private binaryHandler: ((data: Buffer, ctx: ClientContext) => void) | undefined;
  private disconnectHandler: (ctx: ClientContext) => void = () => {};
  private errorHandler: ((error: string, ctx: ClientContext | Record<string, never>) => void) | undefined;

  /** The socket connecting or connected, if any. */
  private socket: net.Socket | undefined;
  private isOpen = false;
  private closed = false;
  /** Bumped per socket, so an answer computed for a dead link is not sent on the next one. */
  private generation = 0;
  /** Failed attempts since the last healthy link. */
  private attempt = 0;
  /** Set once the current link has been up for healthyAfterMs. */
  private linkHealthy = false;
  private healthyTimer: NodeJS.Timeout | undefined;
  /** The broker's authentication failure on the current link, if it sent one. */
  private authFailure: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private waiting: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } | undefined;
  private closing: Promise<void> | undefined;

  private out = '';
  private flushScheduled = false;
  private dropped = 0;
  private readonly idPrefix = randomUUID().slice(0, 8) + '-';
  private seq = 0;
  /** Every line numbered up to this one has been written to a socket. */
  private flushedSeq = 0;
  private readonly pending = new Map<string, PendingRequest>();

  constructor(opts: StrandsBackendOptions) {
    super();
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port;
    this.reconnect = opts.reconnect ?? true;
    this.minBackoff = bounded('minBackoffMs', opts.minBackoffMs, 100, 0, MAX_TIMEOUT_MS);
    this.maxBackoff = bounded('maxBackoffMs', opts.maxBackoffMs, Math.max(10_000, this.minBackoff), this.minBackoff, MAX_TIMEOUT_MS);
    this.healthyAfter = bounded('healthyAfterMs', opts.healthyAfterMs, 5000, 0, MAX_TIMEOUT_MS);
    this.tlsOptions = opts.tls === true ? {} : opts.tls || undefined;
    this.token = opts.token;
    this.maxLine = opts.maxLine ?? 16 * 1024 * 1024;
    this.requestTimeout = bounded('requestTimeoutMs', opts.requestTimeoutMs, 10_000, 1, MAX_TIMEOUT_MS);
    this.maxPendingRequests = bounded('maxPendingRequests', opts.maxPendingRequests, 10_000, 0, Number.MAX_SAFE_INTEGER);
  }

  onConnectionRequest(h: RequestHandler): this {
    this.requestHandler = h;
    return this;
  }

  onNewConnection(h: (ctx: ClientContext) => void): this {
    this.connectionHandler = h;
    return this;
  }

  /** Text messages; also binary ones, decoded as UTF-8, while no onBinaryMessage handler is set. */
  onMessage(h: (message: string, ctx: ClientContext) => void): this {
    this.messageHandler = h;
    return this;
  }

  /** Binary messages (the client sent a binary frame), as the frame's bytes. */
  onBinaryMessage(h: (data: Buffer, ctx: ClientContext) => void): this {
    this.binaryHandler = h;
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
   * What is held for the broker and not yet sent: lines waiting for the next
   * flush or for a link, plus what the socket has not written out yet. Sends
   * that would take it past 8 MiB are dropped (droppedSends).
   */
  get bufferedAmount(): number {
    return this.out.length + (this.socket?.writableLength ?? 0);
  }

  /** Acked sends and roomInfo pages waiting for their answer. */
  get pendingRequests(): number {
    return this.pending.size;
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

  /** Ends the link after what is queued; requests still waiting for an answer reject with code 'closed'. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearTimeout(this.healthyTimer);
    this.waiting?.resolve();
    this.waiting = undefined;
    this.failPending(Infinity, 'closed', 'the backend was closed');
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

  sendToRoom(roomId: string, message: Message, opts: ExcludeOptions & AckOptions): Promise<AckResult>;
  sendToRoom(roomId: string, message: Message, opts?: ExcludeOptions & NoAckOptions): void;
  sendToRoom(roomId: string, message: Message, opts?: ExcludeOptions & (AckOptions | NoAckOptions)): Promise<AckResult> | void {
    return this.sendMessage('","action":"message_to_room","params":{"room_id":' + idJson('roomId', roomId) + ',"message":', message, opts, opts?.exclude);
  }

  sendToConnection(clientId: string, message: Message, opts: AckOptions): Promise<AckResult>;
  sendToConnection(clientId: string, message: Message, opts?: NoAckOptions): void;
  sendToConnection(clientId: string, message: Message, opts?: AckOptions | NoAckOptions): Promise<AckResult> | void {
    return this.sendMessage('","action":"message_to_connection","params":{"conn_id":' + idJson('clientId', clientId) + ',"message":', message, opts, undefined);
  }

  broadcast(message: Message, opts: ExcludeOptions & AckOptions): Promise<AckResult>;
  broadcast(message: Message, opts?: ExcludeOptions & NoAckOptions): void;
  broadcast(message: Message, opts?: ExcludeOptions & (AckOptions | NoAckOptions)): Promise<AckResult> | void {
    return this.sendMessage('","action":"broadcast","params":{"message":', message, opts, opts?.exclude);
  }

  /** Every socket of that client_id joins the room (the broker caps rooms per socket: past it, an error). */
  joinRoom(clientId: string, roomId: string, opts: AckOptions): Promise<AckResult>;
  joinRoom(clientId: string, roomId: string, opts?: NoAckOptions): void;
  joinRoom(clientId: string, roomId: string, opts?: AckOptions | NoAckOptions): Promise<AckResult> | void {
    return this.sendLine('","action":"join_room","params":{' + membershipParams(clientId, roomId), opts);
  }

  /** Every socket of that client_id leaves the room (its events keep the room it connected with in context.room_id). */
  leaveRoom(clientId: string, roomId: string, opts: AckOptions): Promise<AckResult>;
  leaveRoom(clientId: string, roomId: string, opts?: NoAckOptions): void;
  leaveRoom(clientId: string, roomId: string, opts?: AckOptions | NoAckOptions): Promise<AckResult> | void {
    return this.sendLine('","action":"leave_room","params":{' + membershipParams(clientId, roomId), opts);
  }

  /** Closes every socket of that client_id with the code and reason; throws a RangeError for a code or reason the protocol does not allow. */
  disconnectClient(clientId: string, opts: CloseOptions & AckOptions): Promise<AckResult>;
  disconnectClient(clientId: string, opts?: CloseOptions & NoAckOptions): void;
  disconnectClient(clientId: string, opts?: CloseOptions & (AckOptions | NoAckOptions)): Promise<AckResult> | void {
    let body = '","action":"disconnect","params":{"conn_id":' + idJson('clientId', clientId);
    const code = opts?.code;
    if (code !== undefined) {
      if (code !== 1000 && !(Number.isInteger(code) && code >= 4000 && code <= 4999)) throw new RangeError(`close code must be 1000 or 4000..4999, got ${String(code)}`);
      body += ',"code":' + code;
    }
    const reason = opts?.reason;
    if (reason !== undefined) {
      if (typeof reason !== 'string' || Buffer.byteLength(reason) > MAX_REASON_BYTES) throw new RangeError(`close reason must be a string of at most ${MAX_REASON_BYTES} UTF-8 bytes`);
      body += ',"reason":' + JSON.stringify(reason);
    }
    return this.sendLine(body, opts);
  }

  /**
   * Everyone in the room: follows the broker's pages until the last one, so
   * client_ids is the union of the pages and count (and nodes) come from the
   * last page. Rejects with a StrandsRequestError when a page times out, its
   * link closes, or the broker refuses. roomInfoPage() gets one page at a time.
   */
  async roomInfo(roomId: string, opts: RoomInfoOptions = {}): Promise<RoomInfo> {
    let page = await this.roomInfoPage(roomId, opts);
    const clientIds = page.client_ids;
    while (page.next !== undefined) {
      const cursor = page.next;
      page = await this.roomInfoPage(roomId, { ...opts, cursor });
      // A cursor that does not move on would page forever.
      if (page.next !== undefined && (page.next <= cursor || page.client_ids.length === 0)) {
        throw new StrandsRequestError('bad_response', `room_info page after cursor ${JSON.stringify(cursor)} does not move past it`);
      }
      for (const id of page.client_ids) clientIds.push(id);
    }
    const info: RoomInfo = { room_id: page.room_id, count: page.count, client_ids: clientIds };
    if (page.nodes !== undefined) info.nodes = page.nodes;
    if (page.nodes_total !== undefined) info.nodes_total = page.nodes_total;
    return info;
  }

  /** One page of the room's client_ids (at most 1000, those after `cursor` when given); `next` is the cursor for the following page. */
  roomInfoPage(roomId: string, opts: RoomInfoOptions & { cursor?: string } = {}): Promise<RoomInfoPage> {
    let params = '"room_id":' + idJson('roomId', roomId);
    if (opts.cursor !== undefined) params += ',"cursor":' + idJson('cursor', opts.cursor);
    const seq = ++this.seq;
    const id = this.idPrefix + seq.toString(36);
    return this.request(seq, id, '{"request_id":"' + id + '","action":"room_info","params":{' + params + '}}\n', opts.timeoutMs, roomInfoPage);
  }

  /**
   * `head` is the line from after its request_id up to the message. Text with
   * no options is the hot path: one concatenation of few pieces, appended to
   * the batch that the next turn writes (the general path's extra pieces cost
   * about 10 % more per send).
   */
  private sendMessage(head: string, message: Message, opts: AckOptions | NoAckOptions | undefined, exclude: ExcludeOptions['exclude']): Promise<AckResult> | void {
    if (opts === undefined && typeof message === 'string') {
      this.enqueue('{"request_id":"' + this.nextId() + head + JSON.stringify(message) + '}}\n');
      return;
    }
    return this.sendLine(head + messageJson(message) + excludeJson(exclude), opts);
  }

  /** `body` is the line from after its request_id to the end of its params. */
  private sendLine(body: string, opts: AckOptions | NoAckOptions | undefined): Promise<AckResult> | void {
    const seq = ++this.seq;
    const id = this.idPrefix + seq.toString(36);
    if (opts?.ack !== true) {
      this.enqueue('{"request_id":"' + id + body + '}}\n');
      return;
    }
    return this.request(seq, id, '{"request_id":"' + id + body + '},"ack":true}\n', opts.timeoutMs, ackResult);
  }

  private request<T>(seq: number, id: string, line: string, timeoutMs: number | undefined, read: (params: Params) => T): Promise<T> {
    if (this.closed) return Promise.reject(new StrandsRequestError('closed', 'the backend is closed'));
    const timeout = timeoutMs ?? this.requestTimeout;
    if (!(timeout >= 1 && timeout <= MAX_TIMEOUT_MS)) return Promise.reject(new RangeError(`timeoutMs must be from 1 to ${MAX_TIMEOUT_MS}, got ${String(timeoutMs)}`));
    if (this.pending.size >= this.maxPendingRequests) {
      return Promise.reject(new StrandsRequestError('too_many_pending', `${this.pending.size} requests already wait for an answer (maxPendingRequests)`));
    }
    if (!this.enqueue(line)) return Promise.reject(new StrandsRequestError('dropped', `not sent: ${MAX_PENDING} bytes are held for the broker already`));
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {
        seq,
        timer: setTimeout(() => {
          this.pending.delete(id);
          reject(new StrandsRequestError('timeout', `no answer to request ${id} within ${timeout} ms`));
        }, timeout),
        answer: (params) => {
          try {
            resolve(read(params));
          } catch (err) {
            reject(err);
          }
        },
        fail: reject,
      });
    });
  }

  /** Rejects the requests numbered up to `seq` (those sent on the link that closed). */
  private failPending(seq: number, code: RequestErrorCode, message: string): void {
    for (const [id, request] of this.pending) {
      if (request.seq > seq) continue;
      this.pending.delete(id);
      clearTimeout(request.timer);
      request.fail(new StrandsRequestError(code, `request ${id}: ${message}`));
    }
  }

  private nextId(): string {
    return this.idPrefix + (++this.seq).toString(36);
  }

  /** False when the line was dropped. */
  private enqueue(line: string): boolean {
    if (this.closed || this.bufferedAmount + line.length > MAX_PENDING) {
      this.dropped++;
      return false;
    }
    this.out += line;
    if (this.isOpen && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (!this.isOpen || this.closed || this.out === '') return;
    const text = this.out;
    this.out = '';
    this.flushedSeq = this.seq;
    this.socket?.write(text);
  };

  private open(): void {
    this.generation++;
    this.linkHealthy = false;
    this.authFailure = undefined;
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
    this.healthyTimer = setTimeout(() => {
      this.healthyTimer = undefined;
      this.linkHealthy = true;
    }, this.healthyAfter);
    if (this.token !== undefined) {
      const auth = { request_id: this.nextId(), action: Action.Auth, params: { token: this.token } };
      this.out = JSON.stringify(auth) + '\n' + this.out;
    }
    this.flush();
    this.emit('connect');
    this.waiting?.resolve();
    this.waiting = undefined;
  }

  private onClose(socket: net.Socket, socketError: Error | undefined): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    clearTimeout(this.healthyTimer);
    this.healthyTimer = undefined;
    const wasOpen = this.isOpen;
    this.isOpen = false;
    const err = socketError ?? (this.authFailure !== undefined ? new Error(this.authFailure) : undefined);
    const retry = this.reconnect && !this.closed;
    // Requests still queued go out on the next link; with none to come, every one fails now.
    this.failPending(retry ? this.flushedSeq : Infinity, retry ? 'disconnected' : 'closed', 'the link to the broker closed before the answer came');
    if (wasOpen) this.emit('disconnect', err);
    if (this.closed) return;
    if (retry) {
      if (this.linkHealthy && this.authFailure === undefined) this.attempt = 0;
      const ceiling = Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.min(this.attempt++, MAX_BACKOFF_EXPONENT));
      const delay = Math.round(Math.random() * ceiling);
      this.emit('reconnecting', delay, this.attempt, err);
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
              ? params.binary === true
                ? this.binaryMessage(str(params.message), context)
                : this.messageHandler(str(params.message), context)
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
        const error = str(params.error);
        const ctx = (isObject(params.context) ? params.context : {}) as ClientContext | Record<string, never>;
        // The broker sends this to a backend it has not admitted, then closes the link.
        if (error.startsWith(AUTH_FAILED_PREFIX)) this.authFailed(error);
        if (this.errorHandler === undefined) return;
        try {
          this.watch(this.errorHandler(error, ctx), action);
        } catch (err) {
          this.handlerError(err, action);
        }
        return;
      }
      case Action.Response: {
        const request = typeof msg.request_id === 'string' ? this.pending.get(msg.request_id) : undefined;
        if (request === undefined) {
          this.emit('response', msg.request_id, params);
          return;
        }
        this.pending.delete(msg.request_id as string);
        clearTimeout(request.timer);
        request.answer(params);
        return;
      }
    }
  }

  private binaryMessage(base64: string, ctx: ClientContext): unknown {
    const data = Buffer.from(base64, 'base64');
    // Without a binary handler, the frame reaches onMessage as brokers without the extension deliver it: decoded as UTF-8.
    return this.binaryHandler ? this.binaryHandler(data, ctx) : this.messageHandler(data.toString('utf8'), ctx);
  }

  private authFailed(reason: string): void {
    this.authFailure = reason;
    if (this.listenerCount('auth-failed') > 0) this.emit('auth-failed', reason);
    // Nobody would hear of it otherwise, and the backend would only seem to reconnect now and then.
    else if (this.errorHandler === undefined) console.error(`strands: the broker at ${this.host}:${this.port} refused this backend: ${reason}`);
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

/** The message's JSON: a string as is, bytes as base64 followed by `"binary":true`. */
function messageJson(message: Message): string {
  if (typeof message === 'string') return JSON.stringify(message);
  if (message instanceof Uint8Array) return '"' + Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('base64') + '","binary":true';
  throw new TypeError(`message must be a string or a Uint8Array, got ${typeof message}`);
}

/** A client_id, room_id or cursor as JSON; anything but a string would make a line the broker cannot read. */
function idJson(name: string, value: string): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${typeof value}`);
  return JSON.stringify(value);
}

/** `,"exclude":...`, or '' when there is none. */
function excludeJson(exclude: ExcludeOptions['exclude']): string {
  if (exclude === undefined) return '';
  if (typeof exclude !== 'string' && (!Array.isArray(exclude) || exclude.length > MAX_EXCLUDE || !exclude.every((id) => typeof id === 'string'))) {
    throw new RangeError(`exclude must be a client_id or an array of at most ${MAX_EXCLUDE} of them`);
  }
  return ',"exclude":' + JSON.stringify(exclude);
}

function membershipParams(clientId: string, roomId: string): string {
  return '"conn_id":' + idJson('clientId', clientId) + ',"room_id":' + idJson('roomId', roomId);
}

function ackResult(params: Params): AckResult {
  const result: AckResult = { ok: params.ok === true, delivered: typeof params.delivered === 'number' ? params.delivered : 0 };
  if (typeof params.error === 'string') result.error = params.error;
  return result;
}

function roomInfoPage(params: Params): RoomInfoPage {
  if (params.ok === false) throw new StrandsRequestError('refused', `room_info refused: ${str(params.error)}`);
  const { room_id, count, client_ids, next, nodes, nodes_total } = params;
  if (
    typeof room_id !== 'string' ||
    !Number.isInteger(count) ||
    !Array.isArray(client_ids) ||
    !client_ids.every((id) => typeof id === 'string') ||
    (next !== undefined && typeof next !== 'string') ||
    (nodes !== undefined && !Number.isInteger(nodes)) ||
    (nodes_total !== undefined && !Number.isInteger(nodes_total))
  ) {
    throw new StrandsRequestError('bad_response', `room_info answer without the documented fields: ${JSON.stringify(params).slice(0, 200)}`);
  }
  const page: RoomInfoPage = { room_id, count: count as number, client_ids: client_ids as string[] };
  if (next !== undefined) page.next = next;
  if (nodes !== undefined) page.nodes = nodes as number;
  if (nodes_total !== undefined) page.nodes_total = nodes_total as number;
  return page;
}

function responseLine(requestId: string, d: Params): string {
  const params = { accepted: d.accepted === true, client_id: d.client_id, room_id: d.room_id, metadata: d.metadata };
  return JSON.stringify({ request_id: requestId, action: Action.Response, params }) + '\n';
}

/**
 * A WebSocket client for a strands broker that reconnects by itself. One ES
 * module without dependencies: import it in a browser, serve it as one file, or
 * run it in Node with the `ws` package. docs/client.md describes it.
 */

/** What `send` takes: text, or binary as an ArrayBuffer or a view of one (Uint8Array, DataView, ...). */
export type Outgoing = string | ArrayBuffer | ArrayBufferView;
/** What `message` events carry: text frames as strings, binary frames as bytes. */
export type Incoming = string | Uint8Array;
/** Query parameters added to the URL of an attempt; null and undefined ones are left out. */
export type Query = Record<string, string | number | boolean | null | undefined>;

/**
 * The part of the WebSocket API the client uses, which browsers' WebSocket and
 * the `ws` package share. Events are `any`: their classes differ between the two,
 * and only `data`, `code` and `reason` are read.
 */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface StrandsClientOptions {
  /** Added to the URL on every attempt; a function is called on every attempt (so a token can be refreshed), and may return a promise. */
  query?: Query | (() => Query | PromiseLike<Query>);
  /** Default: globalThis.WebSocket. In Node before 22, pass the `ws` package's WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Ceiling of the first retry's delay. Default 500 ms. */
  minDelayMs?: number;
  /** Largest ceiling of a retry's delay. Default 30 000 ms. */
  maxDelayMs?: number;
  /** Handshakes that may fail in a row (the first connect counts) before `failed`. Default 10; Infinity never gives up. */
  maxAttempts?: number;
  /** After a 1001 "going away", reconnect after a random delay below this. Default 2000 ms. */
  goingAwayDelayMs?: number;
  /** A handshake (with the query function's promise) not open within this is abandoned and counts as failed. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** A connection that stayed open this long restarts the backoff at its first step. Default 5000 ms. */
  stableAfterMs?: number;
  /** Sends held while not connected. Default 1000; 0 refuses every send made while not connected. */
  maxBufferedMessages?: number;
  /** Bytes (UTF-8 for text) held while not connected. Default 1 MiB. */
  maxBufferedBytes?: number;
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StrandsClientEvents {
  /** A connection opened; `flushed` buffered sends were written to it first. */
  open: { flushed: number };
  message: { data: Incoming };
  /** An open connection closed; `willReconnect` is false when the client has stopped. */
  close: { code: number; reason: string; willReconnect: boolean };
  /** The next attempt starts in `delay` ms; `attempt` counts from 1 since the last connection that stayed open `stableAfterMs`. */
  reconnecting: { attempt: number; delay: number };
  /** `attempts` handshakes failed in a row: the client has stopped. */
  failed: { attempts: number };
  /** The query function or the WebSocket constructor threw (or the promise rejected); the attempt counts as failed. */
  error: { error: unknown };
}

type Listener<K extends keyof StrandsClientEvents> = (event: StrandsClientEvents[K]) => void;

const OPEN = 1;
const GOING_AWAY = 1001;
const POLICY_VIOLATION = 1008;
const MAX_CLOSE_REASON_BYTES = 123;
const utf8 = new TextEncoder();
const ignore = (): void => undefined;

function isArrayBuffer(data: unknown): data is ArrayBuffer {
  // Not instanceof: an ArrayBuffer from another realm (an iframe) is one too.
  return Object.prototype.toString.call(data) === '[object ArrayBuffer]';
}

/** Text as is; binary copied, so that a caller reusing its buffer cannot change a send that waits. */
function held(data: Outgoing): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (isArrayBuffer(data)) return new Uint8Array(data.slice(0));
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

function byteLength(data: Outgoing, limit: number): number {
  // A UTF-16 unit is at least one UTF-8 byte: a string longer than the limit is not encoded to be refused.
  if (typeof data !== 'string') return data.byteLength;
  return data.length > limit ? data.length : utf8.encode(data).byteLength;
}

function urlFrom(url: string | URL): URL {
  const parsed = new URL(String(url), (globalThis as { location?: { href: string } }).location?.href);
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') parsed.protocol = parsed.protocol === 'http:' ? 'ws:' : 'wss:';
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new SyntaxError(`StrandsClient: not a ws:, wss:, http: or https: URL: ${parsed.href}`);
  parsed.hash = '';
  return parsed;
}

function withQuery(base: URL, query: Query | undefined): string {
  if (query === undefined) return base.href;
  if (typeof query !== 'object' || query === null) throw new TypeError('StrandsClient: query must be an object of parameters');
  const url = new URL(base.href);
  for (const [name, value] of Object.entries(query)) if (value !== null && value !== undefined) url.searchParams.set(name, String(value));
  return url.href;
}

/** `value ?? fallback`, checked to be a finite number (an integer if `integer`) of at least `min`. */
function option(value: number | undefined, fallback: number, name: string, min: number, integer = false): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new RangeError(`StrandsClient: ${name} must be ${integer ? 'an integer' : 'a finite number'} >= ${min}, got ${String(value)}`);
  }
  return v;
}

export class StrandsClient {
  private readonly url: URL;
  private readonly query: StrandsClientOptions['query'];
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private readonly maxAttempts: number;
  private readonly goingAwayDelay: number;
  private readonly connectTimeout: number;
  private readonly stableAfter: number;
  private readonly maxBuffered: number;
  private readonly maxBufferedBytesHeld: number;

  private currentState: ClientState = 'connecting';
  private socket: WebSocketLike | undefined;
  /** The connect timeout while connecting, the retry delay while reconnecting. */
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped when an attempt ends, so that its late callbacks (a query promise, a timer) do nothing. */
  private attemptId = 0;
  private failures = 0;
  private retries = 0;
  private openedAt = 0;
  private queue: (string | Uint8Array)[] = [];
  private queueBytes = 0;
  private droppedCount = 0;
  private readonly listeners = new Map<keyof StrandsClientEvents, Set<Listener<never>>>();

  /** Connects at once (in a microtask, so that listeners added right after the constructor see every event). */
  constructor(url: string | URL, options: StrandsClientOptions = {}) {
    this.url = urlFrom(url);
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (typeof WebSocketImpl !== 'function') throw new TypeError('StrandsClient: no WebSocket here: pass options.WebSocket (in Node, the `ws` package)');
    this.WebSocketImpl = WebSocketImpl;
    this.query = options.query;
    this.minDelay = option(options.minDelayMs, 500, 'minDelayMs', 0);
    this.maxDelay = option(options.maxDelayMs, 30_000, 'maxDelayMs', this.minDelay);
    this.maxAttempts = options.maxAttempts === Infinity ? Infinity : option(options.maxAttempts, 10, 'maxAttempts', 1, true);
    this.goingAwayDelay = option(options.goingAwayDelayMs, 2000, 'goingAwayDelayMs', 0);
    this.connectTimeout = option(options.connectTimeoutMs, 10_000, 'connectTimeoutMs', 1);
    this.stableAfter = option(options.stableAfterMs, 5000, 'stableAfterMs', 0);
    this.maxBuffered = option(options.maxBufferedMessages, 1000, 'maxBufferedMessages', 0, true);
    this.maxBufferedBytesHeld = option(options.maxBufferedBytes, 1024 * 1024, 'maxBufferedBytes', 0);
    queueMicrotask(() => this.connect());
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** Sends waiting for the next connection. */
  get buffered(): number {
    return this.queue.length;
  }

  /** Their size in bytes (UTF-8 for text). */
  get bufferedBytes(): number {
    return this.queueBytes;
  }

  /** Sends refused (the buffer was full, or the client had stopped) plus buffered sends discarded when it stopped. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof StrandsClientEvents>(type: K, listener: Listener<K>): () => void {
    let listeners = this.listeners.get(type);
    if (!listeners) this.listeners.set(type, (listeners = new Set()));
    listeners.add(listener as Listener<never>);
    return () => this.off(type, listener);
  }

  off<K extends keyof StrandsClientEvents>(type: K, listener: Listener<K>): void {
    this.listeners.get(type)?.delete(listener as Listener<never>);
  }

  /**
   * Sends on the open connection, or holds the send for the next one (in
   * order, before anything sent from an `open` listener). Returns false, and
   * counts it in `dropped`, when the buffer has no room or the client has stopped.
   */
  send(data: Outgoing): boolean {
    if (typeof data !== 'string' && !isArrayBuffer(data) && !ArrayBuffer.isView(data)) {
      throw new TypeError('StrandsClient: send takes a string, an ArrayBuffer or an ArrayBufferView');
    }
    if (this.currentState === 'open' && this.socket?.readyState === OPEN) {
      this.socket.send(data);
      return true;
    }
    // Also while an open socket is closing: the send waits for the next connection instead of vanishing.
    if (this.currentState !== 'closed' && this.queue.length < this.maxBuffered) {
      // Measured before it is copied: a send that does not fit is refused without one.
      const bytes = byteLength(data, this.maxBufferedBytesHeld - this.queueBytes);
      if (this.queueBytes + bytes <= this.maxBufferedBytesHeld) {
        this.queue.push(held(data));
        this.queueBytes += bytes;
        return true;
      }
    }
    this.droppedCount++;
    return false;
  }

  /**
   * Stops for good: closes the connection (`code` 1000 or 3000-4999, `reason`
   * at most 123 UTF-8 bytes), cancels any retry and discards the buffer. A
   * `close` event follows if the connection was open.
   */
  close(code = 1000, reason = ''): void {
    if (code !== 1000 && !(Number.isInteger(code) && code >= 3000 && code <= 4999)) throw new RangeError(`StrandsClient: close code must be 1000 or 3000-4999, got ${code}`);
    if (utf8.encode(reason).byteLength > MAX_CLOSE_REASON_BYTES) throw new RangeError(`StrandsClient: close reason over ${MAX_CLOSE_REASON_BYTES} UTF-8 bytes`);
    if (this.currentState === 'closed') return;
    const { socket } = this;
    const wasOpen = this.currentState === 'open';
    this.stop();
    if (socket && wasOpen) {
      socket.onmessage = null;
      socket.close(code, reason);
    } else if (socket) {
      this.abort(socket);
    }
  }

  private connect(): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'connecting';
    const id = ++this.attemptId;
    this.timer = setTimeout(() => {
      if (this.socket) this.abort(this.socket);
      this.attemptFailed(id);
    }, this.connectTimeout);
    let query: Query | PromiseLike<Query> | undefined;
    try {
      query = typeof this.query === 'function' ? this.query() : this.query;
    } catch (error) {
      this.attemptFailed(id, error);
      return;
    }
    if (typeof (query as PromiseLike<Query> | undefined)?.then === 'function') {
      (query as PromiseLike<Query>).then(
        (q) => this.dial(id, q),
        (error: unknown) => this.attemptFailed(id, error),
      );
    } else {
      this.dial(id, query as Query | undefined);
    }
  }

  private dial(id: number, query: Query | undefined): void {
    if (id !== this.attemptId) return;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(withQuery(this.url, query));
    } catch (error) {
      this.attemptFailed(id, error);
      return;
    }
    this.socket = socket;
    socket.binaryType = 'arraybuffer';
    // The close event that follows an error says all a browser may know.
    socket.onerror = ignore;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.opened(socket);
    };
    socket.onmessage = (event: { data: string | ArrayBuffer }) => this.emit('message', { data: typeof event.data === 'string' ? event.data : new Uint8Array(event.data) });
    socket.onclose = (event: { code: number; reason: string }) => (opened ? this.lost(event.code, event.reason) : this.attemptFailed(id));
  }

  private opened(socket: WebSocketLike): void {
    clearTimeout(this.timer);
    this.currentState = 'open';
    this.failures = 0;
    this.openedAt = Date.now();
    const queued = this.queue;
    this.queue = [];
    this.queueBytes = 0;
    for (const data of queued) socket.send(data);
    this.emit('open', { flushed: queued.length });
  }

  /** An open connection closed. */
  private lost(code: number, reason: string): void {
    this.socket = undefined;
    if (this.currentState === 'closed') {
      this.emit('close', { code, reason, willReconnect: false });
      return;
    }
    // 1008 and 4000-4999 are closes on purpose (the backend's `disconnect`): coming back would meet the same.
    if (code === POLICY_VIOLATION || (code >= 4000 && code <= 4999)) {
      this.stop();
      this.emit('close', { code, reason, willReconnect: false });
      return;
    }
    if (Date.now() - this.openedAt >= this.stableAfter) this.retries = 0;
    // After 1001 every client of the broker reconnects: spread them, and back off if it keeps happening.
    const delay = this.retry(code === GOING_AWAY ? this.goingAwayDelay : 0);
    this.emit('close', { code, reason, willReconnect: true });
    if (this.currentState === 'reconnecting') this.emit('reconnecting', { attempt: this.retries, delay });
  }

  /** A handshake failed: a browser cannot tell a 403 or 503 from a dead network, so each is retried with backoff up to maxAttempts. */
  private attemptFailed(id: number, error?: unknown): void {
    if (id !== this.attemptId) return;
    clearTimeout(this.timer);
    this.socket = undefined;
    const gaveUp = ++this.failures >= this.maxAttempts;
    const delay = gaveUp ? 0 : this.retry(0);
    if (gaveUp) this.stop();
    if (error !== undefined) this.emit('error', { error });
    if (gaveUp) this.emit('failed', { attempts: this.failures });
    // An `error` listener may have closed the client.
    else if (this.currentState === 'reconnecting') this.emit('reconnecting', { attempt: this.retries, delay });
  }

  /** Waits a random delay below the larger of `floor` and the backoff's next ceiling ("full jitter"), then connects; returns the delay. */
  private retry(floor: number): number {
    this.attemptId++;
    this.retries++;
    const delay = Math.round(Math.random() * Math.max(floor, Math.min(this.maxDelay, this.minDelay * 2 ** Math.min(this.retries - 1, 30))));
    this.currentState = 'reconnecting';
    this.timer = setTimeout(() => this.connect(), delay);
    return delay;
  }

  private stop(): void {
    this.currentState = 'closed';
    this.attemptId++;
    clearTimeout(this.timer);
    this.droppedCount += this.queue.length;
    this.queue = [];
    this.queueBytes = 0;
  }

  /** Ends a socket that has not opened, without hearing from it again. */
  private abort(socket: WebSocketLike): void {
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.close();
    this.socket = undefined;
  }

  private emit<K extends keyof StrandsClientEvents>(type: K, event: StrandsClientEvents[K]): void {
    const listeners = this.listeners.get(type);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      try {
        (listener as Listener<K>)(event);
      } catch (err) {
        // Reported as uncaught, without breaking the client's own state or the other listeners.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

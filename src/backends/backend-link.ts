import type { Socket } from 'node:net';
import { LineFramer } from '../protocol/line-framer';

export interface BackendLinkEvents {
  /** A line from the backend, decoded as UTF-8 (invalid bytes become U+FFFD). */
  onLine(link: BackendLink, line: string): void;
  onOversizedLine(link: BackendLink, bytes: number): void;
  /** The socket can take more: a good moment to move queued events to it. */
  onWritable(link: BackendLink): void;
  /** The link went over twice its high-water mark and is being dropped. */
  onOverflow(link: BackendLink): void;
  /** `error` is the socket error that ended the link, if one did. */
  onClose(link: BackendLink, error: Error | undefined): void;
}

/** An event waiting to go out, with the balancing key it was picked with. */
export interface OutgoingEvent {
  line: string;
  affinity: number;
  /** Set on an event another node handed over: it goes to a backend here or waits here, never to the bus again. */
  fromPeer?: true;
}

/** The affinity of lines that must not be queued again if their backend dies (heartbeats, connection requests, errors about that backend). */
export const NOT_REQUEUED = -1;

/**
 * Where a link stands with admission. It starts `authenticating` (fail closed:
 * nothing is sent to it and nothing it sends is acted on) and only admission
 * moves it on.
 */
export type LinkState = 'authenticating' | 'admitted' | 'expelled';

/** What a link could not deliver before it was cut at a deadline. */
export interface Undelivered {
  /** Events never handed to the socket. */
  events: number;
  /** Bytes of them, plus bytes handed to the socket that the kernel never took. */
  bytes: number;
}

let nextLinkId = 1;

/**
 * A link whose socket is backed up and that already owes this many times its
 * high-water mark when given another line is dropped.
 */
const HARD_LIMIT_FACTOR = 2;

/**
 * One connected backend. Lines sent in one event-loop turn go out in a single
 * socket write, or sooner once they pass the high-water mark, so what a link
 * owes stays under twice the mark plus one line. While the socket is backed
 * up, lines wait here rather than in Node's socket buffer, so that they can be
 * handed back to the queue if the backend goes away. Above its high-water mark
 * the link stops reading from the backend (a backend that does not read cannot
 * make the broker write more), and past twice the mark it is dropped.
 *
 * Lines to backends are ASCII (serializers.ts), so characters held here and
 * bytes in the socket are counted in the same unit.
 */
export class BackendLink {
  readonly id = nextLinkId++;
  readonly remote: string;
  readonly remoteIp: string;
  state: LinkState = 'authenticating';
  /** Heartbeats in a row at which this link was above its high-water mark. */
  hwmStrikes = 0;
  private lines: string[] = [];
  private affinities: number[] = [];
  private chars = 0;
  private flushScheduled = false;
  private isClosed = false;
  /** Set by end(): flush as the socket drains, then close. */
  private ending: (() => void) | undefined;
  private readonly framer: LineFramer;
  private readonly hardLimit: number;

  constructor(
    private readonly socket: Socket,
    private readonly highWaterMark: number,
    maxLine: number,
    private readonly events: BackendLinkEvents,
  ) {
    this.remoteIp = socket.remoteAddress ?? '';
    this.remote = `${this.remoteIp}:${socket.remotePort}`;
    this.hardLimit = HARD_LIMIT_FACTOR * highWaterMark;
    this.framer = new LineFramer(
      maxLine,
      (line) => events.onLine(this, line),
      (bytes) => events.onOversizedLine(this, bytes),
    );
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk);
      if (this.aboveHighWaterMark) socket.pause();
    });
    socket.on('drain', () => {
      this.flush();
      this.writable();
    });
    // 'close' follows every error; the error is passed on with it.
    let socketError: Error | undefined;
    socket.on('error', (err) => (socketError = err));
    socket.on('close', () => this.handleClose(socketError));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get admitted(): boolean {
    return this.state === 'admitted';
  }

  /** Bytes held here or in the socket, not yet taken by the kernel. */
  get unsentBytes(): number {
    return this.chars + this.socket.writableLength;
  }

  /** Events held here, not yet handed to the socket. */
  get heldEvents(): number {
    return this.lines.length;
  }

  get aboveHighWaterMark(): boolean {
    return this.unsentBytes > this.highWaterMark;
  }

  /** Lines can be given to this link without waiting for it (heartbeats, errors about its own lines). */
  send(line: string, affinity: number = NOT_REQUEUED): void {
    if (this.isClosed) return;
    this.lines.push(line);
    this.affinities.push(affinity);
    // Dropped and waiting for 'close', which hands what is held here back to the queue.
    if (this.socket.destroyed) return;
    // Only a backend that is not taking what it was sent can overflow.
    if (this.socket.writableNeedDrain && this.chars + this.socket.writableLength > this.hardLimit) {
      this.events.onOverflow(this);
      this.socket.destroy();
      return;
    }
    this.chars += line.length;
    // A burst past the mark goes out now: if the socket cannot take it, the hard limit above applies from the next line.
    if (this.chars > this.highWaterMark) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Writes everything held, unless the socket is still backed up (then 'drain'
   * calls again) or already ending: a socket ended by the backend drops writes
   * silently before its 'close', so lines stay here for takeUnsent to requeue.
   * Likewise when the write fails at once: the backend reset the socket before
   * this turn read the reset, and not a byte of the batch left the process.
   */
  flush(): void {
    this.flushScheduled = false;
    if (this.isClosed || this.lines.length === 0 || this.socket.writableNeedDrain || !this.socket.writable) return;
    const batch = this.lines.length === 1 ? (this.lines[0] as string) : this.lines.join('');
    const taken = this.socket.write(batch);
    if (this.socket.errored !== null) return;
    this.clear();
    // The kernel took it all: no 'drain' will come, so say now that more can be sent.
    if (taken) this.writable();
  }

  /** Reads again from a backend that was paused for being backed up, and offers the link queued events. */
  private writable(): void {
    if (this.isClosed) return;
    if (this.ending) {
      if (this.lines.length === 0) this.ending();
      return;
    }
    if (this.socket.isPaused() && !this.aboveHighWaterMark) this.socket.resume();
    this.events.onWritable(this);
  }

  /**
   * Sends what is held as the socket takes it, then half-closes. Resolves once
   * the socket is closed, or at `deadline` (Date.now() time) with what could
   * not be delivered, the socket then destroyed.
   */
  end(deadline: number): Promise<Undelivered> {
    const nothing: Undelivered = { events: 0, bytes: 0 };
    if (this.isClosed) return Promise.resolve(nothing);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const cut: Undelivered = { events: this.lines.length, bytes: this.unsentBytes };
        this.socket.destroy();
        resolve(cut);
      }, Math.max(0, deadline - Date.now()));
      timer.unref();
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(nothing);
      });
      this.ending = () => {
        this.ending = () => undefined;
        this.socket.end();
      };
      this.flush();
      if (this.lines.length === 0 && !this.socket.writableNeedDrain) this.ending();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The longest line accepted from this backend. */
  get maxLine(): number {
    return this.framer.maxLine;
  }

  set maxLine(bytes: number) {
    this.framer.maxLine = bytes;
  }

  private handleClose(error: Error | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.events.onClose(this, error);
  }

  /** Events never handed to the socket, in order, less those marked NOT_REQUEUED; only meaningful once closed. */
  takeUnsent(): OutgoingEvent[] {
    const out: OutgoingEvent[] = [];
    for (let i = 0; i < this.lines.length; i++) {
      const affinity = this.affinities[i] as number;
      if (affinity !== NOT_REQUEUED) out.push({ line: this.lines[i] as string, affinity });
    }
    this.clear();
    return out;
  }

  private clear(): void {
    this.lines = [];
    this.affinities = [];
    this.chars = 0;
  }
}

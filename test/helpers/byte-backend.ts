import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { AsyncQueue } from './async-queue';
import type { Line } from './raw-backend';

/**
 * A raw TCP backend that keeps every byte the broker wrote to it, undecoded
 * (RawBackend decodes its socket as UTF-8, which hides the bytes), and parses
 * the lines from those bytes. `answer` (if given) answers each
 * connection_request with a `response` whose params it returns.
 */
export class ByteBackend {
  readonly lines = new AsyncQueue<Line>();
  /** Every chunk read, in order. */
  readonly chunks: Buffer[] = [];
  readonly closed: Promise<void>;
  private partial = Buffer.alloc(0);

  private constructor(
    readonly socket: Socket,
    private readonly answer: ((line: Line) => Record<string, unknown> | undefined) | undefined,
  ) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.partial = Buffer.concat([this.partial, chunk]);
      let nl: number;
      while ((nl = this.partial.indexOf(10)) >= 0) {
        const raw = this.partial.subarray(0, nl);
        this.partial = this.partial.subarray(nl + 1);
        const line = JSON.parse(raw.toString('utf8')) as Line;
        const params = line.action === 'connection_request' ? this.answer?.(line) : undefined;
        if (params) this.send({ request_id: line.request_id, action: 'response', params });
        else this.lines.push(line);
      }
    });
    this.closed = once(socket, 'close').then(() => undefined);
  }

  static async connect(port: number, answer?: (line: Line) => Record<string, unknown> | undefined): Promise<ByteBackend> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new ByteBackend(socket, answer);
  }

  /** Everything received so far, as one buffer. */
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  send(message: unknown): void {
    this.socket.write(JSON.stringify(message) + '\n');
  }

  sendRaw(text: string | Buffer): void {
    this.socket.write(text);
  }

  next(action: string, timeoutMs = 5000, where: (line: Line) => boolean = () => true): Promise<Line> {
    return this.lines.next((l) => l.action === action && where(l), timeoutMs, `a ${action} line`);
  }

  kill(): void {
    this.socket.destroy();
  }
}

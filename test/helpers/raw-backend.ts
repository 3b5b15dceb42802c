import { connect, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { once } from 'node:events';
import { AsyncQueue } from './async-queue';

/** accept: answer every connection_request with an acceptance (true: the client_id of the query, the url as room), or with what the function returns. */
export interface RawBackendOptions {
  accept?: boolean | ((line: Line) => Record<string, unknown> | undefined);
  keepBytes?: boolean;
}

export interface Line {
  request_id: string;
  action: string;
  params: Record<string, any>;
}

/**
 * A backend made of a bare TCP socket: it sends exactly the bytes a test
 * gives it and records every line the broker sends, parsed.
 */
export class RawBackend {
  readonly lines = new AsyncQueue<Line>();
  readonly closed: Promise<void>;
  /** Every chunk read, undecoded, when connected with `keepBytes`. */
  readonly chunks: Buffer[] = [];
  private buffered = '';
  private readonly decoder = new StringDecoder('utf8');
  private autoAnswer: ((line: Line) => Record<string, unknown> | undefined) | undefined;

  private constructor(
    readonly socket: Socket,
    keepBytes: boolean,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (keepBytes) this.chunks.push(chunk);
      this.buffered += this.decoder.write(chunk);
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const raw = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        const line = JSON.parse(raw) as Line;
        if (line.action === 'connection_request' && this.autoAnswer) {
          const params = this.autoAnswer(line);
          if (params) {
            this.send({ request_id: line.request_id, action: 'response', params });
            continue;
          }
        }
        this.lines.push(line);
      }
    });
    this.closed = once(socket, 'close').then(() => undefined);
  }

  static async connect(port: number, options: RawBackendOptions = {}): Promise<RawBackend> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const backend = new RawBackend(socket, options.keepBytes === true);
    const { accept } = options;
    if (accept === true) backend.autoAnswer = (line) => ({ accepted: true, client_id: clientIdFromQuery(line), room_id: line.params.url });
    else if (typeof accept === 'function') backend.autoAnswer = accept;
    return backend;
  }

  send(message: unknown): void {
    this.socket.write(JSON.stringify(message) + '\n');
  }

  sendRaw(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** The next line with this action (others stay queued). */
  next(action: string, timeoutMs = 5000, where: (line: Line) => boolean = () => true): Promise<Line> {
    return this.lines.next((l) => l.action === action && where(l), timeoutMs, `a ${action} line`);
  }

  answer(request: Line, params: Record<string, unknown>): void {
    this.send({ request_id: request.request_id, action: 'response', params });
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    this.socket.end();
    await this.closed;
  }

  kill(): void {
    this.socket.destroy();
  }
}

/** `client_id` from the request's query string, if the test put one there. */
export function clientIdFromQuery(line: Line): string | undefined {
  return new URLSearchParams(String(line.params.query ?? '')).get('client_id') ?? undefined;
}

import type { Logger } from 'pino';
import type { ClientHub } from '../client-hub';
import { CloseCode } from '../protocol/close-codes';
import { addHeader } from '../protocol/headers';
import { BROADCAST_TOPIC, clientTopic, roomTopic } from './topics';
import { loadNativeUws, type HttpResponse, type TemplatedApp, type WebSocket, type us_listen_socket, type us_socket_context_t } from './uws';
import type { ClientSession, GatewayHandler, RejectStatus, UpgradeAttempt } from './session';

export interface GatewayOptions {
  /** PEM files: serve wss:// through uWS SSLApp. */
  tls?: { certFile: string; keyFile: string } | undefined;
  host: string;
  port: number;
  maxPayload: number;
  idleTimeout: number;
  maxBackpressure: number;
}

const STATUS_LINE: Record<RejectStatus, string> = {
  403: '403 Forbidden',
  429: '429 Too Many Requests',
  503: '503 Service Unavailable',
  504: '504 Gateway Timeout',
};

/** Why sockets closed, from their close code. */
export interface ClosedBy {
  /** 1000, or 1005 (a close frame without a code). */
  normal: number;
  /** 1001: the client navigated away, or the broker shut down. */
  going_away: number;
  /** 1009: a frame over --max-payload. */
  too_big: number;
  /** 1006 with uWS's "Received invalid UTF-8": a text frame that was not UTF-8. */
  invalid_utf8: number;
  /** 1006 with uWS's "WebSocket timed out from inactivity": silent past --idle-timeout. */
  idle_timeout: number;
  /** 1006, no close frame: over --max-backpressure, or the client vanished. */
  abnormal: number;
  other: number;
}

/** uWS reports the closes it forces as 1006; its message says why. */
const FORCED_CLOSE_REASONS: Record<string, keyof ClosedBy> = {
  'Received too big message': 'too_big',
  'Received invalid UTF-8': 'invalid_utf8',
  'WebSocket timed out from inactivity': 'idle_timeout',
};

/** Counters read by metrics and tests; plain numbers, bumped per connection. */
export interface GatewayStats {
  opened: number;
  closedBy: ClosedBy;
}

function closeReason(code: number, message: ArrayBuffer): keyof ClosedBy {
  if (code === CloseCode.Abnormal) return FORCED_CLOSE_REASONS[Buffer.from(message).toString()] ?? 'abnormal';
  switch (code) {
    case 1000:
    case 1005:
      return 'normal';
    case CloseCode.GoingAway:
      return 'going_away';
    case CloseCode.MessageTooBig:
      return 'too_big';
    default:
      return 'other';
  }
}

/**
 * The WebSocket side: a uWS app whose upgrades wait for the broker's verdict,
 * and whose rooms, client ids and broadcast are uWS topics. The only module
 * that imports uWebSockets.js.
 */
export class Gateway implements ClientHub {
  readonly stats: GatewayStats = { opened: 0, closedBy: { normal: 0, going_away: 0, too_big: 0, invalid_utf8: 0, idle_timeout: 0, abnormal: 0, other: 0 } };
  /** Open sockets per room, for the rooms gauge; uWS keeps the subscriptions themselves. */
  private readonly roomMembers = new Map<string, number>();
  private readonly uws = loadNativeUws();
  private readonly app: TemplatedApp;
  private readonly sockets = new Set<WebSocket<ClientSession>>();
  private listenSocket: us_listen_socket | null = null;
  private boundPort = 0;

  constructor(
    private readonly options: GatewayOptions,
    private readonly handler: GatewayHandler,
    private readonly log: Logger,
  ) {
    const uWS = this.uws;
    this.app = options.tls ? uWS.SSLApp({ cert_file_name: options.tls.certFile, key_file_name: options.tls.keyFile }) : uWS.App();
    this.app
      .ws<ClientSession>('/*', {
        // uWS drops frames over its own limit without a close frame; up to twice
        // --max-payload is buffered so that the message handler can answer 1009.
        maxPayloadLength: 2 * options.maxPayload,
        idleTimeout: options.idleTimeout,
        sendPingsAutomatically: true,
        maxBackpressure: options.maxBackpressure,
        closeOnBackpressureLimit: 1,
        compression: uWS.DISABLED,
        upgrade: (res, req, context) => this.upgrade(res, decodePath(req.getUrl()), req, context),
        open: (ws) => this.open(ws),
        message: (ws, message) => {
          if (message.byteLength > options.maxPayload) ws.end(CloseCode.MessageTooBig, 'message too big');
          else this.handler.onMessage(ws.getUserData(), utf8.decode(message));
        },
        close: (ws, code, message) => this.close(ws, code, message),
      })
      .any('/*', (res) => {
        res.writeStatus('426 Upgrade Required').writeHeader('Upgrade', 'websocket').end('This is a WebSocket endpoint.\n');
      });
  }

  /** Resolves with the bound port once listening; rejects if the port cannot be bound. */
  listen(): Promise<number> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (listenSocket) => {
        if (!listenSocket) {
          reject(new Error(`cannot listen for WebSockets on ${host}:${port} (address in use or not available)`));
          return;
        }
        this.listenSocket = listenSocket;
        this.boundPort = this.uws.us_socket_local_port(listenSocket);
        resolve(this.boundPort);
      });
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get openSockets(): number {
    return this.sockets.size;
  }

  get roomCount(): number {
    return this.roomMembers.size;
  }

  /** Stops accepting new connections; open sockets stay. */
  stopListening(): void {
    if (this.listenSocket) {
      this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  /** Closes every open socket with `code`; each one's close handler runs (and reports it) before this returns. */
  closeAll(code: number, reason: string): void {
    // Called from a signal or timer, outside uWS: corked (uWS rule 3).
    for (const ws of [...this.sockets]) ws.cork(() => ws.end(code, reason));
  }

  sendToClient(clientId: string, message: string): void {
    this.app.publish(clientTopic(clientId), message, false);
  }

  publishToRoom(roomId: string, message: string): void {
    this.app.publish(roomTopic(roomId), message, false);
  }

  broadcast(message: string): void {
    this.app.publish(BROADCAST_TOPIC, message, false);
  }

  private upgrade(res: HttpResponse, url: string, req: Parameters<NonNullable<Parameters<TemplatedApp['ws']>[1]['upgrade']>>[1], context: us_socket_context_t): void {
    // uWS rule: the abort handler first, and everything needed later copied out of `req` now.
    const attempt = new PendingUpgrade(res, context, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), this.log);
    const headers: Record<string, string[]> = Object.create(null);
    // Go moves Host out of r.Header (into r.Host); backends written for it never see it there.
    req.forEach((name, value) => name !== 'host' && addHeader(headers, name, value));
    const remoteIp = Buffer.from(res.getRemoteAddressAsText()).toString();
    this.handler.onUpgrade({ headers, url, query: req.getQuery() ?? '', remoteIp, remoteAddr: withPort(res, remoteIp) }, attempt);
  }

  private open(ws: WebSocket<ClientSession>): void {
    const session = ws.getUserData();
    this.sockets.add(ws);
    this.stats.opened++;
    this.roomMembers.set(session.roomId, (this.roomMembers.get(session.roomId) ?? 0) + 1);
    ws.subscribe(BROADCAST_TOPIC);
    ws.subscribe(roomTopic(session.roomId));
    ws.subscribe(clientTopic(session.clientId));
    this.handler.onOpen(session);
  }

  private close(ws: WebSocket<ClientSession>, code: number, message: ArrayBuffer): void {
    const session = ws.getUserData();
    // Nothing else keeps the socket, so no later path can touch it once it leaves this set (uWS rule 1).
    this.sockets.delete(ws);
    this.stats.closedBy[closeReason(code, message)]++;
    const members = this.roomMembers.get(session.roomId) ?? 1;
    if (members === 1) this.roomMembers.delete(session.roomId);
    else this.roomMembers.set(session.roomId, members - 1);
    this.handler.onClose(session, code);
  }
}

/** An upgrade waiting for a backend's answer; finished once, and never after the client left. */
class PendingUpgrade implements UpgradeAttempt {
  private finished = false;
  onAbort: (() => void) | undefined;

  constructor(
    private readonly res: HttpResponse,
    private readonly context: us_socket_context_t,
    private readonly key: string,
    private readonly protocol: string,
    private readonly extensions: string,
    private readonly log: Logger,
  ) {
    res.onAborted(() => {
      this.finished = true;
      this.log.debug('client left before its upgrade was answered');
      this.onAbort?.();
    });
  }

  get done(): boolean {
    return this.finished;
  }

  accept(session: ClientSession): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.res.cork(() => this.res.upgrade(session, this.key, this.protocol, this.extensions, this.context));
    return true;
  }

  reject(status: RejectStatus): void {
    if (this.finished) return;
    this.finished = true;
    this.res.cork(() => {
      this.res.writeStatus(STATUS_LINE[status]);
      if (status === 503 || status === 429) this.res.writeHeader('Retry-After', '1');
      this.res.end();
    });
  }
}

/** Decodes frames without wrapping each in a Buffer (half the cost); invalid bytes become U+FFFD. */
const utf8 = new TextDecoder();

let remotePortReadable: boolean | undefined;

/** `ip:port` as Go prints it ([v6]:port); builds of uWS without getRemotePort give the ip alone. */
function withPort(res: HttpResponse, ip: string): string {
  remotePortReadable ??= typeof res.getRemotePort === 'function';
  if (!remotePortReadable) return ip;
  const port = res.getRemotePort() as number;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The path percent-decoded, as Go's r.URL.Path is; left as sent if it is not valid percent-encoding. */
function decodePath(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

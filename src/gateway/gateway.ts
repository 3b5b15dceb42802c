import type { Logger } from 'pino';
import { roomPageOf, type Audience, type ClientHub, type Exclusions, type Membership, type Payload, type RoomPage } from '../client-hub';
import type { Component } from '../lifecycle';
import { CloseCode } from '../protocol/close-codes';
import { addHeader } from '../protocol/headers';
import { BROADCAST_TOPIC, clientTopic, roomTopic } from './topics';
import { loadNativeUws, type HttpResponse, type TemplatedApp, type WebSocket, type us_listen_socket, type us_socket_context_t } from './uws';
import type { ClientIdentity, ClientSession, GatewayHandler, RejectStatus, UpgradeAttempt } from './session';

export interface GatewayOptions {
  /** PEM files: serve wss:// through uWS SSLApp. */
  tls?: { certFile: string; keyFile: string } | undefined;
  host: string;
  port: number;
  maxPayload: number;
  idleTimeout: number;
  maxBackpressure: number;
  maxRoomsPerConnection: number;
}

const STATUS_LINE: Record<RejectStatus, string> = {
  403: '403 Forbidden',
  429: '429 Too Many Requests',
  502: '502 Bad Gateway',
  503: '503 Service Unavailable',
  504: '504 Gateway Timeout',
};

/** The close every client gets when the broker stops. */
export const GOING_AWAY_REASON = 'server going away, please reconnect';

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
  /** Sockets closed on a backend's `disconnect` (also counted in closedBy by their code). */
  disconnectedByBackend: number;
  /** Sockets uWS closed inside the cork that opened them (also counted in opened and closedBy). */
  closedInUpgrade: number;
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

type Socket = WebSocket<ClientSession>;

/** A room and how many distinct client ids are in it. */
export interface RoomSize {
  room: string;
  members: number;
}

/** Larger rooms first; among equals, the smaller room id. */
function ranksBefore(members: number, room: string, other: RoomSize): boolean {
  return members > other.members || (members === other.members && room < other.room);
}

/**
 * The WebSocket side: a uWS app whose upgrades wait for the broker's verdict,
 * and whose rooms, client ids and broadcast are uWS topics. It keeps each
 * client id's sockets and each room's members, for the actions that name a
 * client (join, leave, disconnect, exclude) and for `room_info`. The only
 * module that imports uWebSockets.js.
 */
export class Gateway implements ClientHub, Component {
  readonly stats: GatewayStats = {
    opened: 0,
    closedBy: { normal: 0, going_away: 0, too_big: 0, invalid_utf8: 0, idle_timeout: 0, abnormal: 0, other: 0 },
    disconnectedByBackend: 0,
    closedInUpgrade: 0,
  };
  /** Each room's members: client id -> its sockets in the room. uWS keeps the subscriptions themselves. */
  private readonly rooms = new Map<string, Map<string, number>>();
  /** Each client id's open sockets. */
  private readonly clients = new Map<string, Set<Socket>>();
  private readonly uws = loadNativeUws();
  private readonly app: TemplatedApp;
  private openCount = 0;
  /** Set once, in a cluster: told when a room or client id gets its first socket here, or loses its last. */
  membership: Membership | undefined;
  /**
   * Set while an upgrade is completed inside res.cork: the sockets it opened,
   * whose subscriptions and open event wait until the cork has returned.
   */
  private opened: Socket[] | undefined;
  /** Set while stop() waits: called once the last socket has closed. */
  private stopping: (() => void) | undefined;
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
        open: (ws) => {
          if (this.opened !== undefined) this.opened.push(ws);
          else this.open(ws);
        },
        message: (ws, message, isBinary) => {
          if (message.byteLength > options.maxPayload) ws.end(CloseCode.MessageTooBig, 'message too big');
          else if (isBinary) this.handler.onMessage(ws.getUserData(), Buffer.from(message).toString('base64'), true);
          else this.handler.onMessage(ws.getUserData(), utf8.decode(message), false);
        },
        drain: (ws) => {
          if (this.stopping !== undefined && ws.getBufferedAmount() <= options.maxBackpressure) this.goingAway(ws);
        },
        close: (ws, code, message) => this.close(ws, code, message),
      })
      .any('/*', (res) => {
        res.writeStatus('426 Upgrade Required').writeHeader('Upgrade', 'websocket').end('This is a WebSocket endpoint.\n');
      });
  }

  /** Resolves once listening; rejects if the port cannot be bound. */
  async start(): Promise<void> {
    const { host, port } = this.options;
    if (!(await this.listen(port))) throw new Error(`cannot listen for WebSockets on ${host}:${port} (address in use or not available)`);
    // uSockets sets SO_REUSEADDR only when listening on a given port, and sockets accepted without it keep
    // the port from being listened on again (resumeAccepting): a free port is picked, then listened on by number.
    if (port === 0) {
      this.pauseAccepting();
      if (!(await this.listen(this.boundPort)) && !(await this.listen(0))) throw new Error(`cannot listen for WebSockets on ${host}`);
    }
  }

  /**
   * Stops accepting, then closes every client with 1001; each one's close
   * handler, and so its `disconnected` event, runs before this resolves. A
   * socket over --max-backpressure would be dropped (1006) by a close frame
   * added to its backlog, so it first gets nothing more and is closed as soon
   * as it has drained below the limit, or at `deadline` whatever its state.
   */
  async stop(deadline: number): Promise<void> {
    this.pauseAccepting();
    if (this.openCount === 0) return;
    const allClosed = new Promise<void>((resolve) => (this.stopping = resolve));
    for (const sockets of [...this.clients.values()]) {
      for (const ws of [...sockets]) {
        for (const topic of ws.getTopics()) ws.unsubscribe(topic);
        if (ws.getBufferedAmount() <= this.options.maxBackpressure) this.goingAway(ws);
      }
    }
    const timer = setTimeout(() => {
      for (const sockets of [...this.clients.values()]) for (const ws of [...sockets]) this.goingAway(ws);
    }, Math.max(0, deadline - Date.now()));
    await allClosed;
    clearTimeout(timer);
  }

  /**
   * Not corked: uWS sends its FIN right after the close frame only when the
   * socket is not corked (and the frame went out whole); corked, the TCP
   * connection stays open until the client gives up on it (a browser waits).
   */
  private goingAway(ws: Socket): void {
    ws.end(CloseCode.GoingAway, GOING_AWAY_REASON);
  }

  get port(): number {
    return this.boundPort;
  }

  get openSockets(): number {
    return this.openCount;
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  /**
   * The `n` rooms with the most members (distinct client ids, as room_info
   * counts them), largest first, ties by room id. One pass over the rooms,
   * keeping only the `n` best: for the status page, not the hot path.
   */
  largestRooms(n: number): RoomSize[] {
    const top: RoomSize[] = [];
    if (n <= 0) return top;
    for (const [room, members] of this.rooms) {
      const size = members.size;
      if (top.length === n && !ranksBefore(size, room, top[n - 1] as RoomSize)) continue;
      let at = top.length;
      while (at > 0 && ranksBefore(size, room, top[at - 1] as RoomSize)) at--;
      top.splice(at, 0, { room, members: size });
      if (top.length > n) top.pop();
    }
    return top;
  }

  get accepting(): boolean {
    return this.listenSocket !== null;
  }

  /** Closes the listen socket: open sockets stay, new connections are refused by the kernel. */
  pauseAccepting(): void {
    if (this.listenSocket === null) return;
    this.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
  }

  /** Listens again on the port it had; false if the port could not be taken back. */
  resumeAccepting(): Promise<boolean> {
    return this.listenSocket !== null ? Promise.resolve(true) : this.listen(this.boundPort);
  }

  private listen(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.app.listen(this.options.host, port, (listenSocket) => {
        if (!listenSocket) return resolve(false);
        this.listenSocket = listenSocket;
        this.boundPort = this.uws.us_socket_local_port(listenSocket);
        resolve(true);
      });
    });
  }

  sendToClient(clientId: string, message: Payload, binary: boolean): void {
    this.app.publish(clientTopic(clientId), message, binary);
  }

  publishToRoom(roomId: string, message: Payload, binary: boolean, exclude: Exclusions): void {
    this.publish(roomTopic(roomId), message, binary, exclude);
  }

  broadcast(message: Payload, binary: boolean, exclude: Exclusions): void {
    this.publish(BROADCAST_TOPIC, message, binary, exclude);
  }

  reach(audience: Audience, exclude: Exclusions): number {
    const topic = audience === 'everyone' ? BROADCAST_TOPIC : 'room' in audience ? roomTopic(audience.room) : clientTopic(audience.client);
    let reached = this.app.numSubscribers(topic);
    if (exclude !== undefined) this.forEachSocket(exclude, (ws) => ws.isSubscribed(topic) && reached--);
    return reached;
  }

  joinRoom(clientId: string, roomId: string): { joined: number; refused: number } {
    let joined = 0;
    let refused = 0;
    this.forEachSocket([clientId], (ws) => {
      const session = ws.getUserData();
      if (session.rooms.has(roomId)) return;
      if (session.rooms.size >= this.options.maxRoomsPerConnection) refused++;
      else {
        this.join(ws, session, roomId);
        joined++;
      }
    });
    return { joined, refused };
  }

  leaveRoom(clientId: string, roomId: string): number {
    let left = 0;
    this.forEachSocket([clientId], (ws) => {
      const session = ws.getUserData();
      if (!session.rooms.has(roomId)) return;
      ws.unsubscribe(roomTopic(roomId));
      this.leave(session, roomId);
      left++;
    });
    return left;
  }

  disconnect(clientId: string, code: number, reason: string): number {
    const sockets = this.clients.get(clientId);
    if (sockets === undefined) return 0;
    const closing = [...sockets];
    this.stats.disconnectedByBackend += closing.length;
    // Not corked, though outside a uWS callback: see goingAway.
    for (const ws of closing) ws.end(code, reason);
    return closing.length;
  }

  roomPage(roomId: string, cursor: string, limit: number): RoomPage {
    const members = this.rooms.get(roomId);
    return roomPageOf(roomId, members?.keys() ?? [], members?.size ?? 0, cursor, limit);
  }

  /** The client ids with a socket in the room here, unordered. */
  roomMembers(roomId: string): Iterable<string> {
    return this.rooms.get(roomId)?.keys() ?? [];
  }

  /**
   * One publish: the excluded clients' sockets are taken off the topic for it
   * and put back right after, so no recipient is looped over in JavaScript.
   */
  private publish(topic: string, message: Payload, binary: boolean, exclude: Exclusions): void {
    if (exclude === undefined) {
      this.app.publish(topic, message, binary);
      return;
    }
    const paused: Socket[] = [];
    this.forEachSocket(exclude, (ws) => ws.unsubscribe(topic) && paused.push(ws));
    this.app.publish(topic, message, binary);
    for (const ws of paused) ws.subscribe(topic);
  }

  private forEachSocket(clientIds: readonly string[], visit: (ws: Socket) => unknown): void {
    for (const clientId of clientIds) {
      const sockets = this.clients.get(clientId);
      if (sockets !== undefined) for (const ws of sockets) visit(ws);
    }
  }

  private upgrade(res: HttpResponse, url: string, req: Parameters<NonNullable<Parameters<TemplatedApp['ws']>[1]['upgrade']>>[1], context: us_socket_context_t): void {
    // uWS rule: the abort handler first, and everything needed later copied out of `req` now.
    const attempt = new PendingUpgrade(res, context, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), (upgrade) => this.upgradeCorked(upgrade), this.log);
    const headers: Record<string, string[]> = Object.create(null);
    // Go moves Host out of r.Header (into r.Host); backends written for it never see it there.
    req.forEach((name, value) => name !== 'host' && addHeader(headers, name, value));
    const remoteIp = Buffer.from(res.getRemoteAddressAsText()).toString();
    this.handler.onUpgrade({ headers, url, query: req.getQuery() ?? '', remoteIp, remoteAddr: withPort(res, remoteIp) }, attempt);
  }

  /**
   * Completes an upgrade that waited for a backend. uWS wants it corked, and
   * its cork() then reads the response's state from memory that may by now
   * be the new socket's (github.com/uNetworking/uWebSockets/pull/1929, fixed after the
   * v20.30 bundled here): what the open handler wrote there (subscriptions)
   * can make it close the socket it just opened. So nothing is written to
   * the socket until the cork has returned.
   */
  private upgradeCorked(upgrade: () => void): void {
    const opened: Socket[] = [];
    this.opened = opened;
    try {
      upgrade();
    } finally {
      this.opened = undefined;
    }
    for (const ws of opened) this.open(ws);
  }

  private open(ws: Socket): void {
    const session = ws.getUserData();
    this.openCount++;
    this.stats.opened++;
    const sockets = this.clients.get(session.clientId);
    if (sockets === undefined) {
      this.clients.set(session.clientId, new Set([ws]));
      this.membership?.clientOpened(session.clientId);
    } else {
      sockets.add(ws);
    }
    ws.subscribe(BROADCAST_TOPIC);
    ws.subscribe(clientTopic(session.clientId));
    this.join(ws, session, session.roomId);
    this.handler.onOpen(session);
  }

  private join(ws: Socket, session: ClientSession, roomId: string): void {
    session.rooms.add(roomId);
    ws.subscribe(roomTopic(roomId));
    let members = this.rooms.get(roomId);
    if (members === undefined) {
      this.rooms.set(roomId, (members = new Map()));
      this.membership?.roomOpened(roomId);
    }
    members.set(session.clientId, (members.get(session.clientId) ?? 0) + 1);
  }

  /** Forgets a socket's membership of a room; uWS drops the subscription itself (or the caller did). */
  private leave(session: ClientSession, roomId: string): void {
    session.rooms.delete(roomId);
    const members = this.rooms.get(roomId);
    if (members === undefined) return;
    const held = members.get(session.clientId) ?? 1;
    if (held > 1) members.set(session.clientId, held - 1);
    else if (members.size > 1) members.delete(session.clientId);
    else {
      this.rooms.delete(roomId);
      this.membership?.roomClosed(roomId);
    }
  }

  private close(ws: Socket, code: number, message: ArrayBuffer): void {
    const session = ws.getUserData();
    // Nothing else keeps the socket, so no later path can touch it once it leaves these maps (uWS rule 1).
    session.closed = true;
    const waiting = this.opened?.indexOf(ws) ?? -1;
    if (waiting !== -1) {
      // uWS closed it inside the cork that opened it (upgradeCorked; the same upstream fault, seen under node --cpu-prof),
      // before open() ran: it never joined anything, and to the backend that accepted it, it connected and left.
      this.opened!.splice(waiting, 1);
      this.stats.opened++;
      this.stats.closedInUpgrade++;
      this.handler.onOpen(session);
    } else {
      this.openCount--;
      const sockets = this.clients.get(session.clientId);
      if (sockets !== undefined && sockets.delete(ws) && sockets.size === 0) {
        this.clients.delete(session.clientId);
        this.membership?.clientClosed(session.clientId);
      }
      for (const roomId of session.rooms) this.leave(session, roomId);
    }
    this.stats.closedBy[closeReason(code, message)]++;
    this.handler.onClose(session, code);
    if (this.openCount === 0) this.stopping?.();
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
    private readonly corked: (upgrade: () => void) => void,
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

  accept(identity: ClientIdentity): boolean {
    if (this.finished) return false;
    this.finished = true;
    const session: ClientSession = { ...identity, rooms: new Set(), closed: false };
    this.corked(() => this.res.cork(() => this.res.upgrade(session, this.key, this.protocol, this.extensions, this.context)));
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

/** Decodes frames without wrapping each in a Buffer (half the cost); uWS has checked that text frames are UTF-8. */
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

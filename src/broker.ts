import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { BrokerConfig } from './config';
import { BackendLink, type BackendLinkEvents } from './backends/backend-link';
import { BackendPool } from './backends/backend-pool';
import { BackendRouter, type Params } from './backends/backend-router';
import { BackendServer } from './backends/backend-server';
import type { Balancer } from './backends/balancer';
import { ClientAffinityBalancer } from './backends/client-affinity-balancer';
import { hash32 } from './backends/hash';
import { PendingRequests, type PendingEntry } from './admission/pending-requests';
import { RoundRobinBalancer } from './backends/round-robin-balancer';
import { tokenMatches } from './admission/token';
import { ConnectionLimiter } from './admission/connection-limiter';
import { Gateway } from './gateway/gateway';
import type { ClientSession, GatewayHandler, RejectStatus, UpgradeAttempt, UpgradeRequest } from './gateway/session';
import { Action } from './protocol/actions';
import { CloseCode } from './protocol/close-codes';
import { MetricsServer } from './metrics/metrics-server';
import { connectionRequestLine, disconnectedLine, errorLine, newConnectionLine, newMessageLine, serializeContext } from './protocol/serializers';

/** TCP keepalive on backend sockets: a backend whose host vanished is noticed within about a minute. */
const BACKEND_KEEPALIVE_MS = 10_000;
/** How long a backend has to send its `auth` line when --backend-token is set. */
export const BACKEND_AUTH_TIMEOUT_MS = 5000;
/** Until it authenticates, a backend may send lines this long (an auth line is short), and so many may wait at once. */
const AUTH_MAX_LINE = 4096;
const MAX_UNAUTHENTICATED = 64;

interface PendingConnection extends PendingEntry {
  readonly line: string;
  readonly request: UpgradeRequest;
  readonly attempt: UpgradeAttempt;
  readonly startedAt: number;
}

/** Counters of events the broker sends and refusals it makes; read by metrics and tests. */
export interface BrokerStats {
  eventsOut: { connection_request: number; new_connection: number; new_message: number; disconnected: number };
  /** Upgrades refused, by HTTP status. */
  refused: Record<RejectStatus, number>;
}

/** Hooks for what metrics record per connection (never per message). */
export interface BrokerObserver {
  authLatency(seconds: number, outcome: 'accepted' | 'rejected' | 'timeout' | 'no_backend'): void;
}

const NO_OBSERVER: BrokerObserver = { authLatency: () => undefined };

/**
 * The composition root: builds the gateway (WebSocket side) and the backend
 * side, which know nothing of each other, and joins them. Owns start and stop.
 */
export class Broker implements GatewayHandler {
  readonly gateway: Gateway;
  readonly pool: BackendPool;
  readonly router: BackendRouter;
  readonly stats: BrokerStats = {
    eventsOut: { connection_request: 0, new_connection: 0, new_message: 0, disconnected: 0 },
    refused: { 403: 0, 429: 0, 503: 0, 504: 0 },
  };
  private readonly backendServer: BackendServer;
  private readonly pending: PendingRequests<PendingConnection>;
  private readonly limiter: ConnectionLimiter;
  private readonly allowedOrigins: Set<string> | undefined;
  private readonly unauthenticated = new Set<BackendLink>();
  private readonly metrics: MetricsServer | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private draining = false;
  private stopping: Promise<void> | undefined;
  private listening = false;
  private ports = { ws: 0, tcp: 0, metrics: 0 };
  observer: BrokerObserver = NO_OBSERVER;

  /** What each backend link reports; the gateway's events are this class's own methods. */
  private readonly linkEvents: BackendLinkEvents = {
    onLine: (link, line) => {
      if (link.authenticated) this.router.route(link, line);
      else if (this.unauthenticated.has(link)) this.authenticate(link, line);
      // Otherwise it failed authentication and is closing: what else it sent is ignored.
    },
    onOversizedLine: (link, bytes) => {
      if (link.authenticated) this.router.reject(link, 'oversized_line', `line of ${bytes} bytes exceeds --max-line ${link.maxLine}; discarded`, undefined);
      else if (this.unauthenticated.has(link)) this.expel(link, `line of ${bytes} bytes before authenticating (at most ${link.maxLine})`);
    },
    onWritable: () => this.pool.drainQueue(),
    onOverflow: (link) => this.pool.overflowed(link),
    onClose: (link, error) => this.onBackendClose(link, error),
  };

  constructor(
    readonly config: BrokerConfig,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    const balancer: Balancer = config.balance === 'client' ? new ClientAffinityBalancer() : new RoundRobinBalancer();
    this.pool = new BackendPool(balancer, config.queueSize, log);
    // uWS takes the PEM files by path: they are read here only so that a bad path fails clearly.
    const tls =
      config.tlsCert !== undefined && config.tlsKey !== undefined
        ? { certFile: (readPem(config.tlsCert, '--tls-cert'), config.tlsCert), keyFile: (readPem(config.tlsKey, '--tls-key'), config.tlsKey) }
        : undefined;
    this.gateway = new Gateway(
      { tls, host: config.host, port: config.wsPort, maxPayload: config.maxPayload, idleTimeout: config.idleTimeout, maxBackpressure: config.maxBackpressure },
      this,
      log,
    );
    this.router = new BackendRouter(this.gateway, (link, id, params) => this.onResponse(link, id, params), log);
    const backendTls =
      config.backendTlsCert !== undefined && config.backendTlsKey !== undefined
        ? { cert: readPem(config.backendTlsCert, '--backend-tls-cert'), key: readPem(config.backendTlsKey, '--backend-tls-key') }
        : undefined;
    this.backendServer = new BackendServer({ host: config.tcpHost, port: config.tcpPort, keepAliveMs: BACKEND_KEEPALIVE_MS, tls: backendTls }, (socket) => this.onBackendSocket(socket));
    this.pending = new PendingRequests(now, (id, entry) => this.refuse(entry, 504, 'timeout', `connection request ${id} timed out after ${config.authTimeout} ms`));
    this.limiter = new ConnectionLimiter(config.maxConnections, config.maxConnectionsPerIp);
    this.allowedOrigins = config.allowedOrigins ? new Set(config.allowedOrigins) : undefined;
    if (config.metricsPort !== undefined) this.metrics = new MetricsServer(this, config.metricsHost, config.metricsPort, log);
  }

  get wsPort(): number {
    return this.ports.ws;
  }

  get tcpPort(): number {
    return this.ports.tcp;
  }

  /** 0 when metrics are off. */
  get metricsPort(): number {
    return this.ports.metrics;
  }

  /** Listening on both ports, not draining, and able to take events (a backend, or a queue to hold them). */
  get ready(): boolean {
    return this.listening && !this.draining && (this.pool.size > 0 || this.config.queueSize > 0);
  }

  /** Binds every port; rejects (with nothing left listening) if one cannot be bound. */
  async start(): Promise<void> {
    if (this.metrics) this.ports.metrics = await this.metrics.listen();
    try {
      this.ports.tcp = await this.backendServer.listen();
      this.ports.ws = await this.gateway.listen();
    } catch (err) {
      this.backendServer.stopListening();
      await this.metrics?.close();
      throw err;
    }
    this.listening = true;
    if (this.config.heartbeatInterval > 0) {
      this.heartbeatTimer = setInterval(() => this.pool.heartbeat(), this.config.heartbeatInterval);
      this.heartbeatTimer.unref();
    }
    this.log.info(
      { ws: `${this.config.host}:${this.ports.ws}`, tcp: `${this.config.tcpHost}:${this.ports.tcp}`, metrics: this.metrics ? `${this.config.metricsHost}:${this.ports.metrics}` : undefined, queueSize: this.config.queueSize, balance: this.config.balance, wss: this.config.tlsCert !== undefined, backendTls: this.config.backendTlsCert !== undefined, backendAuth: this.config.backendToken !== undefined },
      'strands broker listening',
    );
  }

  /**
   * Draining: new upgrades get 503 (and /readyz fails, so load balancers move
   * away) for `ms`, then the graceful stop closes the clients with 1001.
   */
  async drain(ms: number): Promise<void> {
    this.draining = true;
    if (ms > 0) {
      this.log.info({ ms }, 'draining: refusing new connections before closing the open ones');
      await new Promise((resolve) => setTimeout(resolve, ms).unref());
    }
    await this.stop();
  }

  /**
   * Graceful stop: no new connections on either port, waiting upgrades get 503,
   * clients are closed with 1001 (their `disconnected` events are sent), and
   * backend writes are flushed, all within --shutdown-timeout.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const deadline = this.now() + this.config.shutdownTimeout;
    this.draining = true;
    this.listening = false;
    clearInterval(this.heartbeatTimer);
    this.gateway.stopListening();
    this.backendServer.stopListening();
    this.pending.stop();
    for (const [, entry] of this.pending.takeAll()) this.finishAttempt(entry.request, entry.attempt, 503);
    for (const link of this.unauthenticated) link.destroy();
    this.gateway.closeAll(CloseCode.GoingAway, 'server going away, please reconnect');
    await Promise.all(this.pool.all.map((link) => link.end(Math.max(0, deadline - this.now()))));
    await this.metrics?.close();
    this.log.info({ queued: this.pool.queued }, 'strands broker stopped');
  }

  // --- WebSocket side -------------------------------------------------------

  onUpgrade(request: UpgradeRequest, attempt: UpgradeAttempt): void {
    if (this.draining) {
      this.count(attempt, 503);
      return;
    }
    if (this.allowedOrigins !== undefined && !this.allowedOrigins.has(request.headers.Origin?.[0] ?? '')) {
      this.log.debug({ origin: request.headers.Origin?.[0], remote: request.remoteAddr }, 'origin not allowed');
      this.count(attempt, 403);
      return;
    }
    const slot = this.limiter.acquire(request.remoteIp);
    if (slot !== 'ok') {
      this.log.debug({ limit: slot, remote: request.remoteAddr }, 'connection limit reached');
      this.count(attempt, slot === 'total' ? 503 : 429);
      return;
    }
    // The slot is held until the attempt is refused, or its client leaves, or (accepted) its socket closes.
    attempt.onAbort = () => this.limiter.release(request.remoteIp);
    const link = this.pool.pickForRequest();
    if (link === undefined) {
      this.refuse({ request, attempt, startedAt: this.now() }, 503, 'no_backend', 'no backend connected to validate the connection');
      return;
    }
    const id = randomUUID();
    const line = connectionRequestLine(id, { headers: request.headers, url: request.url, remote_addr: request.remoteAddr, query: request.query });
    const startedAt = this.now();
    this.pending.add(id, { link, line, request, attempt, startedAt, deadline: startedAt + this.config.authTimeout });
    this.stats.eventsOut.connection_request++;
    link.send(line);
  }

  onOpen(session: ClientSession): void {
    this.stats.eventsOut.new_connection++;
    this.pool.dispatch(newConnectionLine(session.contextJson), session.affinity);
  }

  onMessage(session: ClientSession, message: string): void {
    this.stats.eventsOut.new_message++;
    this.pool.dispatch(newMessageLine(message, session.contextJson), session.affinity);
  }

  onClose(session: ClientSession): void {
    this.limiter.release(session.remoteIp);
    this.stats.eventsOut.disconnected++;
    this.pool.dispatch(disconnectedLine(session.contextJson), session.affinity);
  }

  // --- Backend side ---------------------------------------------------------

  private onBackendSocket(socket: Socket): void {
    if (this.stopping !== undefined) {
      socket.destroy();
      return;
    }
    const authenticating = this.config.backendToken !== undefined;
    if (authenticating && this.unauthenticated.size >= MAX_UNAUTHENTICATED) {
      this.log.warn({ backend: `${socket.remoteAddress}:${socket.remotePort}`, waiting: MAX_UNAUTHENTICATED }, 'backend refused: too many connections waiting to authenticate');
      socket.destroy();
      return;
    }
    const link = new BackendLink(socket, this.config.backendHwm, authenticating ? AUTH_MAX_LINE : this.config.maxLine, this.linkEvents);
    if (!authenticating) {
      this.admit(link);
      return;
    }
    // Nothing is sent to this backend, and nothing it sends is acted on, until it authenticates.
    link.authenticated = false;
    this.unauthenticated.add(link);
    const timer = setTimeout(() => {
      if (this.unauthenticated.has(link)) this.expel(link, `no auth line within ${BACKEND_AUTH_TIMEOUT_MS} ms`);
    }, BACKEND_AUTH_TIMEOUT_MS);
    timer.unref();
    link.onceClosed(() => clearTimeout(timer));
  }

  private admit(link: BackendLink): void {
    link.authenticated = true;
    link.maxLine = this.config.maxLine;
    this.unauthenticated.delete(link);
    this.pool.add(link);
    this.log.info({ backend: link.remote, backends: this.pool.size }, 'backend connected');
  }

  /** The first line of a backend when --backend-token is set: must be `auth` with the right token. */
  private authenticate(link: BackendLink, line: string): void {
    let token: unknown;
    let action: unknown;
    try {
      const parsed = JSON.parse(line) as { action?: unknown; params?: { token?: unknown } };
      action = parsed.action;
      token = parsed.params?.token;
    } catch {
      // Not JSON: handled below as a missing auth line.
    }
    if (action !== Action.Auth) this.expel(link, 'the first line must be an auth action');
    else if (typeof token !== 'string' || !tokenMatches(this.config.backendToken as string, token)) this.expel(link, 'invalid token');
    else this.admit(link);
  }

  /** Tells an unauthenticated backend why, then disconnects it. */
  private expel(link: BackendLink, why: string): void {
    this.unauthenticated.delete(link);
    this.router.stats.errors.auth_failed++;
    this.log.warn({ backend: link.remote, why }, 'backend authentication failed');
    link.send(errorLine(`authentication failed: ${why}`));
    void link.end(1000);
  }

  private onBackendClose(link: BackendLink, error: Error | undefined): void {
    if (!link.authenticated) {
      this.unauthenticated.delete(link);
      return;
    }
    this.pool.remove(link);
    if (error) this.log.warn({ backend: link.remote, backends: this.pool.size, err: error.message }, 'backend dropped after a socket error');
    else this.log.info({ backend: link.remote, backends: this.pool.size }, 'backend disconnected');
    // Requests it held go to another live backend, keeping their deadline; those whose client left are dropped.
    for (const [id, entry] of this.pending.heldBy(link)) {
      if (entry.attempt.done) {
        this.pending.take(id);
        continue;
      }
      const next = this.pool.pickForRequest();
      if (next === undefined) {
        this.pending.take(id);
        this.refuse(entry, 503, 'no_backend', `backend holding connection request ${id} disconnected and no other backend is connected`);
        continue;
      }
      entry.link = next;
      next.send(entry.line);
    }
  }

  private onResponse(link: BackendLink, requestId: string, params: Params): void {
    const entry = this.pending.take(requestId);
    if (entry === undefined) {
      this.router.reject(link, 'unknown_request', 'response for an unknown or expired request_id', requestId);
      return;
    }
    const { request, attempt } = entry;
    if (params.accepted !== true) {
      this.refuse(entry, 403, 'rejected', 'connection rejected by the backend');
      return;
    }
    this.observer.authLatency((this.now() - entry.startedAt) / 1000, 'accepted');
    const clientId = typeof params.client_id === 'string' && params.client_id !== '' ? params.client_id : randomUUID();
    const roomId = typeof params.room_id === 'string' && params.room_id !== '' ? params.room_id : request.url;
    const metadata = isPlainObject(params.metadata) ? params.metadata : {};
    const session: ClientSession = {
      clientId,
      roomId,
      remoteIp: request.remoteIp,
      contextJson: serializeContext({ client_id: clientId, room_id: roomId, metadata }),
      affinity: hash32(clientId),
    };
    // Accepted, the slot is the socket's until it closes; a client that left gave it back already.
    attempt.accept(session);
  }

  /**
   * Answers the upgrade with an HTTP error and tells a live backend why. The
   * report is never queued: during an outage refusals would push the clients'
   * own events out of the queue.
   */
  private refuse(entry: { request: UpgradeRequest; attempt: UpgradeAttempt; startedAt: number; link?: BackendLink }, status: RejectStatus, kind: 'rejected' | 'timeout' | 'no_backend', reason: string): void {
    const { request, attempt } = entry;
    // A client that already left needs no answer, and its backend no report.
    if (!this.finishAttempt(request, attempt, status)) return;
    this.observer.authLatency((this.now() - entry.startedAt) / 1000, kind);
    this.router.stats.errors[kind]++;
    this.log.debug({ status, url: request.url, remote: request.remoteAddr }, reason);
    // The backend that held the request hears of it (it timed out, or it said no), else any live one.
    const told = entry.link !== undefined && !entry.link.closed ? entry.link : this.pool.pickForRequest();
    told?.send(errorLine(`${status}: ${reason}`, { url: request.url, remote_addr: request.remoteAddr }));
  }

  /** Refuses an upgrade that holds a connection slot and gives the slot back; false if the client had already left (and given it back). */
  private finishAttempt(request: UpgradeRequest, attempt: UpgradeAttempt, status: RejectStatus): boolean {
    if (attempt.done) return false;
    this.limiter.release(request.remoteIp);
    this.count(attempt, status);
    return true;
  }

  /** Refuses an upgrade and counts it. */
  private count(attempt: UpgradeAttempt, status: RejectStatus): void {
    this.stats.refused[status]++;
    attempt.reject(status);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A PEM file's contents, or an error naming the flag (uWS alone would fail obscurely). */
function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

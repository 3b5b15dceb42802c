import { randomUUID } from 'node:crypto';
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
import { PendingRequests, type PendingEntry } from './backends/pending-requests';
import { RoundRobinBalancer } from './backends/round-robin-balancer';
import { Gateway } from './gateway/gateway';
import type { ClientSession, GatewayHandler, RejectStatus, UpgradeAttempt, UpgradeRequest } from './gateway/session';
import { CloseCode } from './protocol/close-codes';
import { connectionRequestLine, disconnectedLine, errorLine, newConnectionLine, newMessageLine, serializeContext } from './protocol/serializers';

/** TCP keepalive on backend sockets: a backend whose host vanished is noticed within about a minute. */
const BACKEND_KEEPALIVE_MS = 10_000;

interface PendingConnection extends PendingEntry {
  readonly line: string;
  readonly request: UpgradeRequest;
  readonly attempt: UpgradeAttempt;
}

/**
 * The composition root: builds the gateway (WebSocket side) and the backend
 * side, which know nothing of each other, and joins them. Owns start and stop.
 */
export class Broker implements GatewayHandler {
  readonly gateway: Gateway;
  readonly pool: BackendPool;
  readonly router: BackendRouter;
  private readonly backendServer: BackendServer;
  private readonly pending: PendingRequests<PendingConnection>;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private ports = { ws: 0, tcp: 0 };

  /** What each backend link reports; the gateway's events are this class's own methods. */
  private readonly linkEvents: BackendLinkEvents = {
    onLine: (link, line) => this.router.route(link, line),
    onOversizedLine: (link, bytes) => this.router.reject(link, `line of ${bytes} bytes exceeds --max-line ${this.config.maxLine}; discarded`, undefined),
    onWritable: () => this.pool.drainQueue(),
    onClose: (link, error) => this.onBackendClose(link, error),
  };

  constructor(
    readonly config: BrokerConfig,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    const balancer: Balancer = config.balance === 'client' ? new ClientAffinityBalancer() : new RoundRobinBalancer();
    this.pool = new BackendPool(balancer, config.queueSize, log);
    this.gateway = new Gateway(
      { host: config.host, port: config.wsPort, maxPayload: config.maxPayload, idleTimeout: config.idleTimeout, maxBackpressure: config.maxBackpressure },
      this,
      log,
    );
    this.router = new BackendRouter(this.gateway, (link, id, params) => this.onResponse(link, id, params), log);
    this.backendServer = new BackendServer({ host: config.tcpHost, port: config.tcpPort, keepAliveMs: BACKEND_KEEPALIVE_MS }, (socket) => this.onBackendSocket(socket));
    this.pending = new PendingRequests(now, (id, entry) => this.refuse(entry, 504, `connection request ${id} timed out after ${config.authTimeout} ms`));
  }

  get wsPort(): number {
    return this.ports.ws;
  }

  get tcpPort(): number {
    return this.ports.tcp;
  }

  /** Binds both ports; rejects (with nothing left listening) if either cannot be bound. */
  async start(): Promise<void> {
    this.ports.tcp = await this.backendServer.listen();
    try {
      this.ports.ws = await this.gateway.listen();
    } catch (err) {
      this.backendServer.stopListening();
      throw err;
    }
    if (this.config.heartbeatInterval > 0) {
      this.heartbeatTimer = setInterval(() => this.pool.heartbeat(), this.config.heartbeatInterval);
      this.heartbeatTimer.unref();
    }
    this.log.info({ ws: `${this.config.host}:${this.ports.ws}`, tcp: `${this.config.tcpHost}:${this.ports.tcp}`, queueSize: this.config.queueSize, balance: this.config.balance }, 'strands broker listening');
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
    clearInterval(this.heartbeatTimer);
    this.gateway.stopListening();
    this.backendServer.stopListening();
    this.pending.stop();
    for (const [, entry] of this.pending.takeAll()) entry.attempt.reject(503);
    this.gateway.closeAll(CloseCode.GoingAway, 'server shutting down, reconnect');
    await Promise.all(this.pool.all.map((link) => link.end(Math.max(0, deadline - this.now()))));
    this.log.info({ queued: this.pool.queued }, 'strands broker stopped');
  }

  // --- WebSocket side -------------------------------------------------------

  onUpgrade(request: UpgradeRequest, attempt: UpgradeAttempt): void {
    if (this.stopping !== undefined) {
      attempt.reject(503);
      return;
    }
    const link = this.pool.pickForRequest();
    if (link === undefined) {
      this.refuse({ request, attempt }, 503, 'no backend connected to validate the connection');
      return;
    }
    const id = randomUUID();
    const line = connectionRequestLine(id, { headers: request.headers, url: request.url, remote_addr: request.remoteAddr, query: request.query });
    this.pending.add(id, { link, line, request, attempt, deadline: this.now() + this.config.authTimeout });
    link.send(line);
  }

  onOpen(session: ClientSession): void {
    this.pool.dispatch(newConnectionLine(session.contextJson), session.affinity);
  }

  onMessage(session: ClientSession, message: string): void {
    this.pool.dispatch(newMessageLine(message, session.contextJson), session.affinity);
  }

  onClose(session: ClientSession): void {
    this.pool.dispatch(disconnectedLine(session.contextJson), session.affinity);
  }

  // --- Backend side ---------------------------------------------------------

  private onBackendSocket(socket: Socket): void {
    if (this.stopping !== undefined) {
      socket.destroy();
      return;
    }
    const link = new BackendLink(socket, this.config.backendHwm, this.config.maxLine, this.linkEvents);
    this.log.info({ backend: link.remote, backends: this.pool.size + 1 }, 'backend connected');
    this.pool.add(link);
  }

  private onBackendClose(link: BackendLink, error: Error | undefined): void {
    this.pool.remove(link);
    if (error) this.log.warn({ backend: link.remote, backends: this.pool.size, err: error.message }, 'backend dropped after a socket error');
    else this.log.info({ backend: link.remote, backends: this.pool.size }, 'backend disconnected');
    // Requests it held go to another live backend, keeping their deadline.
    for (const [id, entry] of this.pending.heldBy(link)) {
      const next = this.pool.pickForRequest();
      if (next === undefined) {
        this.pending.take(id);
        this.refuse(entry, 503, `backend holding connection request ${id} disconnected and no other backend is connected`);
        continue;
      }
      entry.link = next;
      next.send(entry.line);
    }
  }

  private onResponse(link: BackendLink, requestId: string, params: Params): void {
    const entry = this.pending.take(requestId);
    if (entry === undefined) {
      this.router.reject(link, 'response for an unknown or expired request_id', requestId);
      return;
    }
    const { request, attempt } = entry;
    if (attempt.done) return;
    if (params.accepted !== true) {
      this.refuse(entry, 403, 'connection rejected by the backend');
      return;
    }
    const clientId = typeof params.client_id === 'string' && params.client_id !== '' ? params.client_id : randomUUID();
    const roomId = typeof params.room_id === 'string' && params.room_id !== '' ? params.room_id : request.url;
    const metadata = isPlainObject(params.metadata) ? params.metadata : {};
    const session: ClientSession = {
      clientId,
      roomId,
      contextJson: serializeContext({ client_id: clientId, room_id: roomId, metadata }),
      affinity: hash32(clientId),
      closed: false,
    };
    attempt.accept(session);
  }

  /** Answers the upgrade with an HTTP error and tells a backend (or the queue) why. */
  private refuse({ request, attempt }: { request: UpgradeRequest; attempt: UpgradeAttempt }, status: RejectStatus, reason: string): void {
    // A client that already left needs no answer, and its backend no report.
    if (attempt.done) return;
    attempt.reject(status);
    this.log.debug({ status, url: request.url, remote: request.remoteAddr }, reason);
    this.pool.dispatch(errorLine(`${status}: ${reason}`, { url: request.url, remote_addr: request.remoteAddr }), 0);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

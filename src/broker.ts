import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { BrokerConfig } from './config';
import { BackendAdmission } from './admission/backend-admission';
import { FdGuard, procDescriptors, type DescriptorSource } from './admission/fd-guard';
import { UpgradeAuthorizer } from './admission/upgrade-authorizer';
import type { BackendLink } from './backends/backend-link';
import { BackendPool } from './backends/backend-pool';
import { BackendRouter } from './backends/backend-router';
import { BackendServer } from './backends/backend-server';
import { ClientAffinityBalancer } from './backends/client-affinity-balancer';
import { RoundRobinBalancer } from './backends/round-robin-balancer';
import type { ClientHub } from './client-hub';
import { Cluster } from './cluster/cluster';
import type { Transport } from './cluster/transport';
import { Gateway } from './gateway/gateway';
import type { GatewayHandler } from './gateway/session';
import { Lifecycle, type Component } from './lifecycle';
import { MetricsServer } from './metrics/metrics-server';
import { ERROR_KINDS, type ErrorKind } from './protocol/errors';
import { disconnectedLine, newBinaryMessageLine, newConnectionLine, newMessageLine } from './protocol/serializers';
import { liveView, type StatsView } from './stats';

/** TCP keepalive on backend sockets: a backend whose host vanished is noticed within about a minute. */
const BACKEND_KEEPALIVE_MS = 10_000;

/** Events handed to backends (or the queue), by action. */
interface EventsOut {
  new_connection: number;
  new_message: number;
  disconnected: number;
}

/** What tests may swap: the clock of connection-request deadlines, where descriptors are counted, the cluster's bus. */
export interface BrokerDeps {
  now?: () => number;
  descriptors?: DescriptorSource;
  /** Makes the bus of a cluster node (NATS unless given); never called without --cluster. */
  bus?: (nodeId: string) => Transport & { start(): Promise<void> };
}

/**
 * The composition root: builds the WebSocket side (gateway) and the backend
 * side (server, admission, pool, router), which know nothing of each other,
 * and joins them; starts the parts in order and stops them in reverse.
 */
export class Broker {
  readonly stats: StatsView;
  private readonly gateway: Gateway;
  private readonly pool: BackendPool;
  private readonly router: BackendRouter;
  private readonly authorizer: UpgradeAuthorizer;
  private readonly admission: BackendAdmission;
  private readonly backendServer: BackendServer;
  private readonly metrics: MetricsServer | undefined;
  /** Set with --cluster. */
  private readonly cluster: Cluster | undefined;
  private readonly lifecycle: Lifecycle;
  private readonly eventsOut: EventsOut = { new_connection: 0, new_message: 0, disconnected: 0 };
  private phase: 'new' | 'running' | 'draining' | 'stopped' = 'new';
  private stopping: Promise<void> | undefined;

  constructor(
    readonly config: BrokerConfig,
    private readonly log: Logger,
    deps: BrokerDeps = {},
  ) {
    const now = deps.now ?? Date.now;
    const balancer = config.balance === 'client' ? new ClientAffinityBalancer() : new RoundRobinBalancer();
    const pool = (this.pool = new BackendPool(balancer, config, log));
    const authorizer = (this.authorizer = new UpgradeAuthorizer(config, pool, log, now));
    const events = this.eventsOut;
    const clientEvents: GatewayHandler = {
      onUpgrade: (request, attempt) => authorizer.onUpgrade(request, attempt),
      onOpen: (session) => {
        events.new_connection++;
        pool.dispatch(newConnectionLine(session.contextJson), session.affinity);
      },
      onMessage: (session, message, binary) => {
        events.new_message++;
        pool.dispatch(binary ? newBinaryMessageLine(message, session.contextJson) : newMessageLine(message, session.contextJson), session.affinity);
      },
      onClose: (session) => {
        authorizer.released(session.remoteIp);
        events.disconnected++;
        pool.dispatch(disconnectedLine(session.contextJson), session.affinity);
      },
    };
    // uWS takes the PEM files by path: they are read here only so that a bad path fails clearly.
    const tls = config.tlsCert !== undefined && config.tlsKey !== undefined ? { certFile: checkedPath(config.tlsCert, '--tls-cert'), keyFile: checkedPath(config.tlsKey, '--tls-key') } : undefined;
    const gateway = (this.gateway = new Gateway({ ...config, tls, port: config.wsPort }, clientEvents, log));
    // Decided once: one node sends to its own clients only; a cluster node to every node, and its backends serve the others.
    let hub: ClientHub = gateway;
    if (config.cluster !== undefined) {
      const cluster = (this.cluster = new Cluster(config, gateway, pool, authorizer, log, deps.bus));
      hub = gateway.membership = cluster.hub;
      pool.peers = authorizer.peers = cluster.peers;
    }
    const router = (this.router = new BackendRouter(hub, (link, id, params) => authorizer.onResponse(link, id, params), config, log));
    this.admission = new BackendAdmission(
      { token: config.backendToken, authTimeout: config.backendAuthTimeout, maxBackends: config.maxBackends, maxLine: config.maxLine, backendHwm: config.backendHwm },
      {
        onAdmitted: (link) => {
          pool.add(link);
          this.cluster?.backendsChanged();
          log.info({ backend: link.remote, backends: pool.size }, 'backend connected');
        },
        onLine: (link, line) => router.route(link, line),
        onOversizedLine: (link, bytes) => router.reject(link, 'oversized_line', `line of ${bytes} bytes exceeds --max-line ${link.maxLine}; discarded`, undefined),
        onWritable: () => pool.drainQueue(),
        onOverflow: (link) => pool.overflowed(link),
        onClose: (link, error) => this.backendGone(link, error),
      },
      log,
    );
    const backendTls =
      config.backendTlsCert !== undefined && config.backendTlsKey !== undefined ? { cert: readPem(config.backendTlsCert, '--backend-tls-cert'), key: readPem(config.backendTlsKey, '--backend-tls-key') } : undefined;
    this.backendServer = new BackendServer(
      { host: config.tcpHost, port: config.tcpPort, keepAliveMs: BACKEND_KEEPALIVE_MS, tls: backendTls, handshakeTimeoutMs: config.backendAuthTimeout },
      (socket) => this.admission.onSocket(socket),
      log,
    );
    const fdGuard = new FdGuard(gateway, { reserve: config.fdReserve, wanted: config.maxConnections }, log, deps.descriptors ?? procDescriptors);
    this.stats = this.statsView(fdGuard);
    const status = config.statusPage ? { rooms: config.statusPageRooms, queueLimits: { events: config.queueSize, bytes: config.queueBytes } } : undefined;
    if (config.metricsPort !== undefined) this.metrics = new MetricsServer(this.stats, config.metricsHost, config.metricsPort, log, status);
    // Each part relies on those before it: clients are closed (their events reach the pool, or other nodes) before the bus
    // closes and backends are flushed.
    const parts: Component[] = [...(this.metrics ? [this.metrics] : []), pool, ...(this.cluster ? [this.cluster] : []), this.backendServer, this.admission, gateway, authorizer, fdGuard];
    this.lifecycle = new Lifecycle(parts);
  }

  get wsPort(): number {
    return this.gateway.port;
  }

  get tcpPort(): number {
    return this.backendServer.port;
  }

  /** 0 when metrics are off. */
  get metricsPort(): number {
    return this.metrics?.listeningPort ?? 0;
  }

  /** Binds every port; rejects (with nothing left listening) if one cannot be bound. */
  async start(): Promise<void> {
    await this.lifecycle.start(() => Date.now());
    this.phase = 'running';
    const c = this.config;
    this.log.info(
      { ws: `${c.host}:${this.wsPort}`, tcp: `${c.tcpHost}:${this.tcpPort}`, metrics: this.metrics ? `${c.metricsHost}:${this.metricsPort}` : undefined, queueSize: c.queueSize, balance: c.balance, wss: c.tlsCert !== undefined, backendTls: c.backendTlsCert !== undefined, backendAuth: c.backendToken !== undefined, node: this.cluster?.nodeId },
      'strands broker listening',
    );
  }

  /**
   * Draining: new upgrades get 503 (and /readyz fails, so load balancers move
   * away) for `ms`, then the graceful stop closes the clients with 1001.
   */
  async drain(ms: number): Promise<void> {
    if (this.phase === 'running') this.phase = 'draining';
    this.authorizer.refuseNew();
    if (ms > 0) {
      this.log.info({ ms }, 'draining: refusing new connections before closing the open ones');
      await new Promise((resolve) => setTimeout(resolve, ms).unref());
    }
    await this.stop();
  }

  /**
   * Graceful stop: no new connections on either port, waiting upgrades get 503,
   * clients are closed with 1001 (their `disconnected` events are sent), and
   * backend writes are flushed, all within --shutdown-timeout. The last log
   * line says what could not be delivered.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.phase = 'stopped';
    this.authorizer.refuseNew();
    await this.lifecycle.stop(Date.now() + this.config.shutdownTimeout);
    const cut = this.pool.undelivered;
    const undeliveredEvents = cut.reduce((n, c) => n + c.cut.events, 0);
    if (cut.length > 0) this.log.warn({ backends: cut.map((c) => ({ backend: c.backend, events: c.cut.events, bytes: c.cut.bytes })) }, 'shutdown deadline: events to backends cut before they were delivered');
    this.log.info({ queued: this.pool.queued, undeliveredEvents, undeliveredBytes: cut.reduce((n, c) => n + c.cut.bytes, 0) }, 'strands broker stopped');
  }

  private backendGone(link: BackendLink, error: Error | undefined): void {
    this.pool.remove(link);
    this.cluster?.backendsChanged();
    if (error) this.log.warn({ backend: link.remote, backends: this.pool.size, err: error.message }, 'backend dropped after a socket error');
    else this.log.info({ backend: link.remote, backends: this.pool.size }, 'backend disconnected');
    this.authorizer.onBackendGone(link);
  }

  /** The parts' counters, read-only, read when asked. */
  private statsView(fdGuard: FdGuard): StatsView {
    const { gateway, pool, router, authorizer, admission, backendServer, eventsOut, config } = this;
    const sources = [router.stats.errors, authorizer.stats.errors, admission.stats.errors];
    // Built once: readers (metrics, the status page, tests polling) read these often.
    const connections = liveView<StatsView['connections']>({
      open: () => gateway.openSockets,
      opened: () => gateway.stats.opened,
      closedBy: () => gateway.stats.closedBy,
      disconnectedByBackend: () => gateway.stats.disconnectedByBackend,
      closedInUpgrade: () => gateway.stats.closedInUpgrade,
      refused: () => authorizer.stats.refused,
      waiting: () => authorizer.waiting,
      slots: () => authorizer.slots,
      abandoned: () => authorizer.stats.abandoned,
      lateResponses: () => authorizer.stats.lateResponses,
    });
    const backends = liveView<StatsView['backends']>({
      connected: () => pool.size,
      authenticating: () => admission.authenticating,
      dropped: () => pool.stats.backendsDroppedForBackpressure,
      evicted: () => admission.stats.evicted,
      refusedOverLimit: () => admission.stats.refusedOverLimit,
      acceptErrors: () => backendServer.acceptErrors,
      links: () => pool.all,
    });
    const queue = liveView<StatsView['queue']>({ depth: () => pool.queued, bytes: () => pool.queuedBytes, dropped: () => pool.queueDropped });
    return liveView<StatsView>({
      connections: () => connections,
      rooms: () => gateway.roomCount,
      largestRooms: () => (n: number) => gateway.largestRooms(n),
      messagesIn: () => ({ new_message: eventsOut.new_message, ...router.stats.actions }),
      messagesOut: () => ({ connection_request: authorizer.stats.connectionRequests, ...eventsOut, heartbeat: pool.stats.heartbeats }),
      forwardedUpgrades: () => authorizer.stats.forwarded,
      backends: () => backends,
      queue: () => queue,
      errors: () => Object.fromEntries(ERROR_KINDS.map((kind) => [kind, sources.reduce((n, counts) => n + counts[kind], 0)])) as Record<ErrorKind, number>,
      repairedText: () => router.stats.repairedText,
      authLatency: () => authorizer.stats.authLatency,
      descriptors: () => fdGuard.stats,
      cluster: () => this.cluster?.stats,
      ready: () => this.phase === 'running' && (pool.size > 0 || config.queueSize > 0) && (this.cluster?.stats.connected ?? true),
    });
  }

}

/** A PEM file's contents, or an error naming the flag (uWS alone would fail obscurely). */
function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function checkedPath(path: string, flag: string): string {
  readPem(path, flag);
  return path;
}

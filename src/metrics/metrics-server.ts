import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { AUTH_LATENCY_BOUNDS, AUTH_OUTCOMES } from '../admission/auth-latency';
import type { Component } from '../lifecycle';
import { ERROR_KINDS } from '../protocol/errors';
import type { StatsView } from '../stats';
import { StatusPage, type StatusPageOptions } from './status-page';

/**
 * Prometheus metrics on a private registry. The hot path only bumps plain
 * numbers in the parts' stats; they are read here at scrape time, so a scrape
 * costs the broker nothing between scrapes.
 */
export function buildRegistry(stats: StatsView): Registry {
  const registry = new Registry();

  /** A counter whose value is read from plain numbers at scrape time. */
  const counter = (name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, value: number) => void) => void): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        read((labels, value) => this.inc(labels, value));
      },
    });
  };
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  /** One series per key of a record read at scrape time. */
  const each = (read: () => Readonly<Record<string, number>>, label: string) => (set: (labels: Record<string, string>, value: number) => void) => {
    for (const [key, value] of Object.entries(read())) set({ [label]: key }, value);
  };

  const { connections, backends, queue } = stats;
  gauge('strands_connections_open', 'WebSocket connections open now', () => connections.open);
  counter('strands_connections_opened_total', 'WebSocket connections opened', [], (set) => set({}, connections.opened));
  counter('strands_connections_closed_total', 'WebSocket connections closed, by reason', ['reason'], each(() => connections.closedBy, 'reason'));
  counter('strands_connections_refused_total', 'WebSocket upgrades refused, by HTTP status', ['status'], each(() => connections.refused, 'status'));
  counter('strands_connections_disconnected_by_backend_total', 'WebSocket connections closed on a backend\'s disconnect', [], (set) => set({}, connections.disconnectedByBackend));
  counter('strands_connections_closed_in_upgrade_total', 'WebSocket connections closed by uWebSockets.js as their upgrade completed', [], (set) => set({}, connections.closedInUpgrade));
  gauge('strands_upgrades_waiting', 'Upgrades waiting for a backend\'s answer', () => connections.waiting);
  counter('strands_upgrades_abandoned_total', 'Clients that left while their upgrade waited for a backend', [], (set) => set({}, connections.abandoned));
  counter('strands_late_responses_total', 'Backend answers to connection requests that had already ended (ignored)', [], (set) => set({}, connections.lateResponses));
  counter('strands_messages_in_total', 'Messages into the broker: client frames (new_message) and backend actions', ['action'], each(() => stats.messagesIn, 'action'));
  counter('strands_messages_out_total', 'Events sent to backends, by action', ['action'], each(() => stats.messagesOut, 'action'));
  counter('strands_text_repaired_total', 'Backend text messages holding a lone surrogate, sent with U+FFFD instead', [], (set) => set({}, stats.repairedText));
  gauge('strands_rooms', 'Rooms with at least one open connection', () => stats.rooms);
  gauge('strands_backends_connected', 'Backends connected and authenticated', () => backends.connected);
  gauge('strands_backends_authenticating', 'Backend connections waiting to authenticate', () => backends.authenticating);
  counter('strands_backends_dropped_total', 'Backends dropped for staying above --backend-hwm', [], (set) => set({}, backends.dropped));
  counter('strands_backends_evicted_total', 'Connections closed while waiting to authenticate, to make room for newer ones', [], (set) => set({}, backends.evicted));
  counter('strands_backends_refused_total', 'Backends refused for --max-backends', [], (set) => set({}, backends.refusedOverLimit));
  counter('strands_backend_accept_errors_total', 'Errors accepting backend connections (EMFILE at the descriptor limit)', [], (set) => set({}, backends.acceptErrors));
  gauge('strands_queue_depth', 'Events queued while no backend can take them', () => queue.depth);
  gauge('strands_queue_bytes', 'Bytes of the events queued', () => queue.bytes);
  counter('strands_queue_dropped_total', 'Events dropped: queue full, or disabled with no backend', [], (set) => set({}, queue.dropped));
  counter('strands_backpressure_dropped_total', 'Client connections dropped without a close frame (over --max-backpressure, or vanished)', [], (set) => set({}, connections.closedBy.abnormal));
  counter('strands_errors_total', 'Errors by kind; each is reported to a backend in an error event when one is connected', ['kind'], (set) => {
    for (const kind of ERROR_KINDS) set({ kind }, stats.errors[kind]);
  });
  gauge('strands_descriptors_open', 'File descriptors open, at the guard\'s last look', () => stats.descriptors.open);
  gauge('strands_descriptors_limit', 'The process\'s descriptor limit', () => stats.descriptors.limit);
  gauge('strands_websocket_accepting', '1 while the WebSocket port accepts connections, 0 while paused for lack of descriptors', () => (stats.descriptors.accepting ? 1 : 0));
  counter('strands_websocket_accept_pauses_total', 'Times the WebSocket port stopped accepting because descriptors ran low', [], (set) => set({}, stats.descriptors.pauses));

  counter('strands_upgrades_forwarded_total', 'Upgrades handed to another node\'s backends (cluster)', [], (set) => set({}, stats.forwardedUpgrades));
  const cluster = stats.cluster;
  if (cluster !== undefined) {
    gauge('strands_cluster_bus_connected', '1 while the cluster bus (NATS) is connected, 0 while it is down', () => (cluster.connected ? 1 : 0));
    counter('strands_cluster_bus_messages_total', 'Bus frames: published by this node, received from others, dropped (bus down or owing too much), unreadable', ['direction'], each(() => ({ published: cluster.bus.published, received: cluster.bus.received, dropped: cluster.bus.dropped, unreadable: cluster.bus.unreadable }), 'direction'));
    counter('strands_cluster_bus_too_big_total', 'Messages refused for being over the bus\'s max_payload', [], (set) => set({}, cluster.bus.tooBig));
    gauge('strands_cluster_subscriptions', 'Room and client subjects this node holds', () => cluster.subscriptions);
    counter('strands_cluster_events_total', 'Client events handed to other nodes\' backends (forwarded), taken from them (served), or dropped for being over the bus\'s max_payload (too_big)', ['direction'], each(() => ({ forwarded: cluster.peers.eventsForwarded, served: cluster.peers.eventsServed, too_big: cluster.peers.eventsTooBig }), 'direction'));
    counter('strands_cluster_upgrades_served_total', 'Upgrades of other nodes decided by this node\'s backends', [], (set) => set({}, cluster.peers.requestsServed));
    counter('strands_cluster_nodes_lost_total', 'Nodes that left the cluster or went silent', [], (set) => set({}, cluster.nodesLost));
    new Gauge({
      name: 'strands_cluster_node_backends',
      help: 'Live backends of each node the directory knows, this one included (node: its id)',
      labelNames: ['node', 'version'],
      registers: [registry],
      collect() {
        this.reset();
        for (const n of cluster.nodes) this.set({ node: n.id, version: n.version }, n.backends);
      },
    });
  }

  registry.registerMetric(authLatencyHistogram(stats));
  return registry;
}

/** strands_auth_latency_seconds, rendered from the buckets the authorizer keeps as plain numbers. */
function authLatencyHistogram(stats: StatsView): Parameters<Registry['registerMetric']>[0] {
  const name = 'strands_auth_latency_seconds';
  const help = 'Time from a connection_request to its outcome, by outcome';
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    collect: () => undefined,
    reset: () => undefined,
    get: async () => {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
      for (const outcome of AUTH_OUTCOMES) {
        const { counts, sum, count } = stats.authLatency.byOutcome[outcome];
        let cumulative = 0;
        AUTH_LATENCY_BOUNDS.forEach((bound, i) => {
          cumulative += counts[i] as number;
          values.push({ metricName: `${name}_bucket`, labels: { le: bound, outcome }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', outcome }, value: count });
        values.push({ metricName: `${name}_sum`, labels: { outcome }, value: sum });
        values.push({ metricName: `${name}_count`, labels: { outcome }, value: count });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  return metric as unknown as Parameters<Registry['registerMetric']>[0];
}

/** /metrics (Prometheus), /healthz and /readyz on their own port; with `status`, the status page too. */
export class MetricsServer implements Component {
  private readonly server: Server;
  private readonly statusPage: StatusPage | undefined;
  private boundPort = 0;

  constructor(
    stats: StatsView,
    private readonly host: string,
    private readonly port: number,
    log: Logger,
    status?: StatusPageOptions,
  ) {
    const registry = buildRegistry(stats);
    const statusPage = (this.statusPage = status ? new StatusPage(stats, status) : undefined);
    const paths = statusPage ? '/metrics, /healthz, /readyz or /status' : '/metrics, /healthz or /readyz';
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] as string;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const ready = stats.ready;
        res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
      } else if (path === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
          (err: Error) => {
            log.error({ err: err.message }, 'metrics collection failed');
            res.writeHead(500).end();
          },
        );
      } else if (!statusPage?.serve(path, res)) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`try ${paths}\n`);
      }
    });
    // Kept for the server's whole life: an error on accept (EMFILE) must not become an uncaught exception.
    this.server.on('error', (err: NodeJS.ErrnoException) => {
      if (this.server.listening) log.warn({ err: err.code ?? err.message }, 'metrics port: could not accept a connection');
    });
  }

  get listeningPort(): number {
    return this.boundPort;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(new Error(`cannot listen for metrics on ${this.host}:${this.port}: ${err.code ?? err.message}`));
      this.server.once('error', onError);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        this.boundPort = typeof address === 'object' && address !== null ? address.port : this.port;
        this.statusPage?.start();
        resolve();
      });
    });
  }

  stop(): Promise<void> {
    this.statusPage?.stop();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      // Scrapers keep connections alive; they must not hold the shutdown up.
      this.server.closeAllConnections();
    });
  }
}

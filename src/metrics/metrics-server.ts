import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Broker } from '../broker';
import { ERROR_KINDS } from '../backends/backend-router';

/**
 * Prometheus metrics on a private registry, plus /healthz and /readyz. The hot
 * path only bumps plain numbers in the components' `stats`; they are read here
 * at scrape time, so a scrape costs the broker nothing between scrapes.
 */
export function buildRegistry(broker: Broker): Registry {
  const registry = new Registry();
  const { gateway, pool, router, stats } = broker;

  /** A counter whose value is read from the broker's plain numbers at scrape time. */
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

  gauge('strands_connections_open', 'WebSocket connections open now', () => gateway.openSockets);
  counter('strands_connections_opened_total', 'WebSocket connections opened', [], (set) => set({}, gateway.stats.opened));
  counter('strands_connections_closed_total', 'WebSocket connections closed, by reason', ['reason'], (set) => {
    for (const [reason, value] of Object.entries(gateway.stats.closedBy)) set({ reason }, value);
  });
  counter('strands_connections_refused_total', 'WebSocket upgrades refused, by HTTP status', ['status'], (set) => {
    for (const [status, value] of Object.entries(stats.refused)) set({ status }, value);
  });
  counter('strands_messages_in_total', 'Messages into the broker: client frames (new_message) and backend actions', ['action'], (set) => {
    set({ action: 'new_message' }, stats.eventsOut.new_message);
    for (const [action, value] of Object.entries(router.stats.actions)) set({ action }, value);
  });
  counter('strands_messages_out_total', 'Events sent to backends, by action', ['action'], (set) => {
    for (const [action, value] of Object.entries(stats.eventsOut)) set({ action }, value);
    set({ action: 'heartbeat' }, pool.stats.heartbeats);
  });
  gauge('strands_rooms', 'Rooms with at least one open connection', () => gateway.roomCount);
  gauge('strands_backends_connected', 'Backends connected and authenticated', () => pool.size);
  counter('strands_backends_dropped_total', 'Backends dropped for staying above --backend-hwm', [], (set) => set({}, pool.stats.backendsDroppedForBackpressure));
  gauge('strands_queue_depth', 'Events queued while no backend can take them', () => pool.queued);
  counter('strands_queue_dropped_total', 'Events dropped: queue full, or disabled with no backend', [], (set) => set({}, pool.queueDropped));
  counter('strands_backpressure_dropped_total', 'Client connections dropped without a close frame (over --max-backpressure, or vanished)', [], (set) => set({}, gateway.stats.closedBy.abnormal));
  counter('strands_errors_total', 'Errors by kind; each is reported to a backend in an error event when one is connected', ['kind'], (set) => {
    for (const kind of ERROR_KINDS) set({ kind }, router.stats.errors[kind]);
  });

  const authLatency = new Histogram({
    name: 'strands_auth_latency_seconds',
    help: 'Time from a connection_request to its outcome, by outcome',
    labelNames: ['outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  broker.observer = { authLatency: (seconds, outcome) => authLatency.observe({ outcome }, seconds) };
  return registry;
}

export class MetricsServer {
  private readonly server: Server;

  constructor(
    broker: Broker,
    private readonly host: string,
    private readonly port: number,
    log: Logger,
  ) {
    const registry = buildRegistry(broker);
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const ready = broker.ready;
        res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
      } else if (path === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
          (err: Error) => {
            log.error({ err: err.message }, 'metrics collection failed');
            res.writeHead(500).end();
          },
        );
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('try /metrics, /healthz or /readyz\n');
      }
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen for metrics on ${this.host}:${this.port}: ${err.code ?? err.message}`)));
      this.server.listen(this.port, this.host, () => {
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : this.port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      // Scrapers keep connections alive; they must not hold the shutdown up.
      this.server.closeAllConnections();
    });
  }
}

import type { ServerResponse } from 'node:http';
import type { RoomSize } from '../gateway/gateway';
import type { RejectStatus } from '../gateway/session';
import { CSS, HTML, JS, JSON_TYPE, contentPolicy, sendFile, type PageFile } from '../page-files';
import type { ErrorKind } from '../protocol/errors';
import type { StatsView } from '../stats';
import { packageVersion } from '../version';
import { STATUS_CSS, STATUS_HTML, STATUS_JS } from './status-page-files';

/** How often the message rates are sampled, and the page refreshes. */
export const SAMPLE_INTERVAL_MS = 1000;
/** Samples kept: the charts' last five minutes. */
export const RATE_SAMPLES = 300;
/** Rooms listed by size when --status-page-rooms allows names. */
export const LARGEST_ROOMS = 10;

/** One broker of a cluster, as the cluster's directory knows it. */
export interface ClusterNode {
  readonly id: string;
  readonly version: string;
  /** Backends connected to that node. */
  readonly backends: number;
  /** Milliseconds since the directory last heard from it. */
  readonly lastSeenMs: number;
}

export interface ClusterView {
  readonly nodes: readonly ClusterNode[];
}

export interface StatusPageOptions {
  /** Name the largest rooms (--status-page-rooms); otherwise rooms are only counted. */
  rooms: boolean;
  /** --queue-size and --queue-bytes, to show how full the queue is. */
  queueLimits: { events: number; bytes: number };
}

/** `ready`: takes events; `backed_up`: above --backend-hwm, passed over and not read from; `closed`: on its way out. */
export type BackendState = 'ready' | 'backed_up' | 'closed';

/** What /stats.json answers, and the status page shows: every figure the page has is here, under the same name. */
export interface StatusSnapshot {
  /** When this was read (ms since the epoch). */
  time: number;
  node: { version: string; uptimeMs: number; ready: boolean };
  connections: {
    open: number;
    opened: number;
    /** Upgrades waiting for a backend's answer. */
    waiting: number;
    refused: number;
    refusedByStatus: Record<RejectStatus, number>;
    closedByReason: Record<string, number>;
  };
  /** `largest` only with --status-page-rooms: without it, no room id leaves the broker here. */
  rooms: { count: number; largest?: RoomSize[] };
  backends: {
    connected: number;
    authenticating: number;
    dropped: number;
    links: { remote: string; state: BackendState; owedBytes: number; heldEvents: number }[];
  };
  queue: { depth: number; bytes: number; dropped: number; maxEvents: number; maxBytes: number };
  /** Totals since the start, as strands_messages_in_total and strands_messages_out_total summed over their actions. */
  messages: { in: number; out: number };
  /** Messages per second, one sample per `intervalMs`, oldest first, at most `capacity` of them; the last was taken at `until`. */
  rates: { intervalMs: number; capacity: number; until: number; in: number[]; out: number[] };
  errors: Record<ErrorKind, number>;
  /** null on a single node. */
  cluster: ClusterView | null;
}

const FILES: Readonly<Record<string, PageFile>> = {
  '/status': { type: HTML, body: STATUS_HTML },
  '/status.css': { type: CSS, body: STATUS_CSS },
  '/status.js': { type: JS, body: STATUS_JS },
};

const POLICY = contentPolicy();

function sum(record: Readonly<Record<string, number>>): number {
  let total = 0;
  for (const value of Object.values(record)) total += value;
  return total;
}

/** A rate to one decimal: the charts need no more, and the JSON stays short. */
function perSecond(count: number, ms: number): number {
  return Math.round((count * 10_000) / ms) / 10;
}

/**
 * Messages per second in and out, from the totals read once a second: each
 * sample divides by the time that really passed since the one before (a busy
 * event loop runs the timer late). The first reading only sets the baseline.
 */
export class RateHistory {
  readonly in: number[] = [];
  readonly out: number[] = [];
  private last: { at: number; in: number; out: number } | undefined;

  constructor(private readonly capacity: number) {}

  /** When the last reading was taken; 0 before the first. */
  get until(): number {
    return this.last?.at ?? 0;
  }

  record(at: number, totalIn: number, totalOut: number): void {
    const { last } = this;
    if (last !== undefined) {
      const ms = Math.max(1, at - last.at);
      this.in.push(perSecond(totalIn - last.in, ms));
      this.out.push(perSecond(totalOut - last.out, ms));
      if (this.in.length > this.capacity) {
        this.in.shift();
        this.out.shift();
      }
    }
    this.last = { at, in: totalIn, out: totalOut };
  }
}

/**
 * The live status page of the metrics port (/status, its files, /stats.json).
 * Its only work between requests is a timer that samples two totals a second
 * for the rate charts; the largest rooms (one pass over the rooms) are found
 * at most once a second, however often the page is asked for.
 */
export class StatusPage {
  private readonly version = packageVersion();
  private startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly rates = new RateHistory(RATE_SAMPLES);
  private largest: { at: number; rooms: RoomSize[] } | undefined;

  constructor(
    private readonly stats: StatsView,
    private readonly options: StatusPageOptions,
  ) {}

  start(): void {
    this.startedAt = Date.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Answers `path` if it is one of the page's; false if it is not. */
  serve(path: string, res: ServerResponse): boolean {
    const file = FILES[path];
    if (file !== undefined) sendFile(res, file, file.type === HTML ? POLICY : undefined);
    else if (path === '/stats.json') sendFile(res, { type: JSON_TYPE, body: JSON.stringify(this.snapshot()) });
    else return false;
    return true;
  }

  private snapshot(): StatusSnapshot {
    const { stats, options } = this;
    const now = Date.now();
    const { connections, backends, queue } = stats;
    const rooms: StatusSnapshot['rooms'] = { count: stats.rooms };
    if (options.rooms) rooms.largest = this.largestRooms(now);
    return {
      time: now,
      node: { version: this.version, uptimeMs: now - this.startedAt, ready: stats.ready },
      connections: {
        open: connections.open,
        opened: connections.opened,
        waiting: connections.waiting,
        refused: sum(connections.refused),
        refusedByStatus: { ...connections.refused },
        closedByReason: { ...connections.closedBy },
      },
      rooms,
      backends: {
        connected: backends.connected,
        authenticating: backends.authenticating,
        dropped: backends.dropped,
        links: backends.links.map((link) => ({
          remote: link.remote,
          state: link.closed ? 'closed' : link.aboveHighWaterMark ? 'backed_up' : 'ready',
          owedBytes: link.unsentBytes,
          heldEvents: link.heldEvents,
        })),
      },
      queue: { depth: queue.depth, bytes: queue.bytes, dropped: queue.dropped, maxEvents: options.queueLimits.events, maxBytes: options.queueLimits.bytes },
      messages: { in: sum(stats.messagesIn), out: sum(stats.messagesOut) },
      rates: { intervalMs: SAMPLE_INTERVAL_MS, capacity: RATE_SAMPLES, until: this.rates.until, in: this.rates.in, out: this.rates.out },
      errors: { ...stats.errors },
      cluster: stats.cluster === undefined ? null : { nodes: stats.cluster.nodes.map((n) => ({ id: n.id, version: n.version, backends: n.backends, lastSeenMs: now - n.lastSeen })) },
    };
  }

  private sample(): void {
    this.rates.record(Date.now(), sum(this.stats.messagesIn), sum(this.stats.messagesOut));
  }

  private largestRooms(now: number): RoomSize[] {
    if (this.largest === undefined || now - this.largest.at >= SAMPLE_INTERVAL_MS) this.largest = { at: now, rooms: [...this.stats.largestRooms(LARGEST_ROOMS)] };
    return this.largest.rooms;
  }
}

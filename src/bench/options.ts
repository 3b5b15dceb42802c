import { MIN_PAYLOAD } from './payload';

export const SCENARIO_NAMES = ['pingpong', 'throughput', 'fanout', 'broadcast', 'connect'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** Options that only some scenarios use; every run uses duration, workers and concurrency. */
export type ScenarioOption = 'clients' | 'warmup' | 'payload' | 'rate' | 'roomSize' | 'connections' | 'drain';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * The most nodes a run spreads its clients over, or starts: each broker
 * started takes ~70 MiB and a share of the servers' one core.
 */
export const MAX_NODES = 16;

/** Everything one run needs; durations in seconds. */
export interface BenchOptions {
  scenario: ScenarioName;
  /**
   * The target's WebSocket URL, or one per node of a cluster: clients are
   * spread round-robin over the URLs of `clientNodes`. Each client adds `?client_id=`.
   */
  url: string | readonly string[];
  /**
   * Where the harness's own backend connects (unused against the baseline):
   * the target's backend port, or one per URL, of which the backendNode's is used.
   */
  tcp: HostPort | readonly HostPort[];
  /** With several URLs: the node (1-based, in URL order) the harness's backend is on; its clients are the local ones. */
  backendNode: number;
  /** The nodes (1-based) whose URLs take clients; undefined: every node. */
  clientNodes: readonly number[] | undefined;
  clients: number;
  duration: number;
  warmup: number;
  /** Bytes per message, header included. */
  payload: number;
  /** Total msgs/s: client sends (throughput) or publishes (fanout, broadcast). */
  rate: number;
  roomSize: number;
  /** Child processes that run the WebSocket clients. */
  workers: number;
  connections: number;
  /** Handshakes in flight at once, across all workers. */
  concurrency: number;
  /** Time after the window for messages still in flight, before the rest count as lost. */
  drain: number;
  /** The process whose CPU and RSS are measured, or one per URL. */
  targetPid: number | readonly number[] | undefined;
  /** Each node's metrics address, one per URL: its cluster bus counters are read from /metrics at the window's edges. */
  metrics: readonly HostPort[] | undefined;
  /** The cluster's nats-server: its CPU is reported apart from the brokers'. */
  natsPid: number | undefined;
  /** The target is baseline-server.ts, not a broker: no backend; publishes go through its control socket. */
  baseline: boolean;
  /** Called about once a second with a one-line status. */
  onProgress: ((line: string) => void) | undefined;
}

/** Rates for scenarios that have one, when --rate is not given. */
export const DEFAULT_RATE: Partial<Record<ScenarioName, number>> = { throughput: 10_000, fanout: 100, broadcast: 100 };

/** The defaults; `satisfies` keeps their own types (one URL, one address) for callers that read them. */
export const DEFAULTS = {
  // Under /ws/: the PyStrands Go broker serves only that; strands accepts any path.
  url: 'ws://127.0.0.1:8080/ws/bench',
  tcp: { host: '127.0.0.1', port: 8081 },
  backendNode: 1,
  clientNodes: undefined,
  clients: 100,
  duration: 10,
  warmup: 2,
  payload: 64,
  roomSize: 1000,
  workers: 1,
  connections: 10_000,
  concurrency: 200,
  drain: 2,
  targetPid: undefined,
  metrics: undefined,
  natsPid: undefined,
  baseline: false,
  onProgress: undefined,
} satisfies Omit<BenchOptions, 'scenario' | 'rate'>;

/** Fills in defaults and checks every value; throws RangeError naming the bad one. */
export function resolveOptions(given: Partial<BenchOptions> & { scenario: ScenarioName }): BenchOptions {
  const o: BenchOptions = { ...DEFAULTS, rate: DEFAULT_RATE[given.scenario] ?? 0, ...stripUndefined(given), scenario: given.scenario };
  if (!SCENARIO_NAMES.includes(o.scenario)) throw new RangeError(`unknown scenario "${o.scenario}"`);
  const wholes: Array<[keyof BenchOptions, number]> = [['clients', 1], ['roomSize', 1], ['workers', 1], ['connections', 1], ['concurrency', 1], ['payload', MIN_PAYLOAD]];
  for (const [key, min] of wholes) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`${key} must be a whole number >= ${min}, got ${String(v)}`);
  }
  const numbers: Array<[keyof BenchOptions, number]> = [['duration', 0.1], ['warmup', 0], ['drain', 0], ['rate', 0]];
  for (const [key, min] of numbers) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new RangeError(`${key} must be a number >= ${min}, got ${String(v)}`);
  }
  if (DEFAULT_RATE[o.scenario] !== undefined && o.rate <= 0) throw new RangeError(`${o.scenario} needs a rate > 0`);
  for (const pid of [...list(o.targetPid), ...list(o.natsPid)]) if (!Number.isInteger(pid) || pid < 1) throw new RangeError(`a pid must be a whole number >= 1, got ${String(pid)}`);
  targetNodes(o);
  return o;
}

/** One node of the target: where its clients connect and how it is measured. */
export interface TargetNode {
  url: string;
  pid: number | undefined;
  metrics: HostPort | undefined;
  /** Whether clients are spread over it. */
  takesClients: boolean;
}

/** The target's nodes in URL order (one for a single broker); throws RangeError when the per-node options do not fit together. */
export function targetNodes(o: BenchOptions): TargetNode[] {
  const urls = list(o.url);
  const n = urls.length;
  if (n < 1 || n > MAX_NODES) throw new RangeError(`give 1 to ${MAX_NODES} URLs, got ${n}`);
  for (const url of urls) {
    const protocol = new URL(url).protocol;
    if (protocol !== 'ws:' && protocol !== 'wss:') throw new RangeError(`url must be ws:// or wss://, got "${url}"`);
  }
  if (new Set(urls).size < n) throw new RangeError('each URL is one node: the same URL was given twice');
  const pids = list(o.targetPid);
  const tcps = list(o.tcp);
  // Pids and metrics addresses: none or one per URL; the backend's address: one, or one per URL.
  const counts: Array<[string, number, readonly number[]]> = [
    ['target pids', pids.length, [0, n]],
    ['metrics addresses', o.metrics?.length ?? 0, [0, n]],
    ['tcp addresses', tcps.length, [1, n]],
  ];
  for (const [what, count, allowed] of counts) {
    if (!allowed.includes(count)) throw new RangeError(`${what}: ${count} given for ${n} URLs; give ${allowed[0] === 1 ? 'one, or ' : ''}one per URL, in the same order`);
  }
  const clientNodes = checkNodeChoice(n, o.backendNode, o.clientNodes);
  return urls.map((url, i) => ({ url, pid: pids[i], metrics: o.metrics?.[i], takesClients: clientNodes.includes(i + 1) }));
}

/** Checks the backend node and the client nodes against a target of `n` nodes; returns the client nodes (every node when undefined). */
export function checkNodeChoice(n: number, backendNode: number, clientNodes: readonly number[] | undefined): readonly number[] {
  if (!Number.isInteger(backendNode) || backendNode < 1 || backendNode > n) throw new RangeError(`backendNode must be a node from 1 to ${n}, got ${String(backendNode)}`);
  const chosen = clientNodes ?? Array.from({ length: n }, (_, i) => i + 1);
  for (const node of chosen) if (!Number.isInteger(node) || node < 1 || node > n) throw new RangeError(`clientNodes must be nodes from 1 to ${n}, got ${String(node)}`);
  if (chosen.length === 0 || new Set(chosen).size < chosen.length) throw new RangeError('clientNodes must name at least one node, each once');
  return chosen;
}

/** Where the harness's backend connects: the one tcp address, or the backend node's. */
export function backendTcp(o: BenchOptions): HostPort {
  const tcps = list(o.tcp);
  return tcps.length === 1 ? tcps[0]! : tcps[o.backendNode - 1]!;
}

/** A value that may be given once or as a list, as a list. */
export function list<T>(value: T | readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as readonly T[]) : [value as T];
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** "host:port" (IPv6 hosts in brackets) as a HostPort. */
export function parseHostPort(text: string): HostPort {
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(text.slice(colon + 1));
  if (colon < 1 || !Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`expected host:port, got "${text}"`);
  return { host, port };
}

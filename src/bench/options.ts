import { MIN_PAYLOAD } from './payload';

export const SCENARIO_NAMES = ['pingpong', 'throughput', 'fanout', 'broadcast', 'connect'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** Options that only some scenarios use; every run uses duration, workers and concurrency. */
export type ScenarioOption = 'clients' | 'warmup' | 'payload' | 'rate' | 'roomSize' | 'connections' | 'drain';

export interface HostPort {
  host: string;
  port: number;
}

/** Everything one run needs; durations in seconds. */
export interface BenchOptions {
  scenario: ScenarioName;
  /** The target's WebSocket URL; each client adds `?client_id=`. */
  url: string;
  /** The target's backend port, where the harness's own backend connects (unused against the baseline). */
  tcp: HostPort;
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
  /** The process whose CPU and RSS are measured. */
  targetPid: number | undefined;
  /** The target is baseline-server.ts, not a broker: no backend; publishes go through its control socket. */
  baseline: boolean;
  /** Called about once a second with a one-line status. */
  onProgress: ((line: string) => void) | undefined;
}

/** Rates for scenarios that have one, when --rate is not given. */
export const DEFAULT_RATE: Partial<Record<ScenarioName, number>> = { throughput: 10_000, fanout: 100, broadcast: 100 };

export const DEFAULTS: Omit<BenchOptions, 'scenario' | 'rate'> = {
  // Under /ws/: the PyStrands Go broker serves only that; strands accepts any path.
  url: 'ws://127.0.0.1:8080/ws/bench',
  tcp: { host: '127.0.0.1', port: 8081 },
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
  baseline: false,
  onProgress: undefined,
};

/** Fills in defaults and checks every value; throws RangeError naming the bad one. */
export function resolveOptions(given: Partial<BenchOptions> & { scenario: ScenarioName }): BenchOptions {
  const o: BenchOptions = { ...DEFAULTS, rate: DEFAULT_RATE[given.scenario] ?? 0, ...stripUndefined(given), scenario: given.scenario };
  if (!SCENARIO_NAMES.includes(o.scenario)) throw new RangeError(`unknown scenario "${o.scenario}"`);
  const url = new URL(o.url);
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new RangeError(`url must be ws:// or wss://, got "${o.url}"`);
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
  if (o.targetPid !== undefined && (!Number.isInteger(o.targetPid) || o.targetPid < 1)) throw new RangeError(`targetPid must be a pid, got ${o.targetPid}`);
  return o;
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

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { parseHostPort } from './options';
import { BASELINE_READY_MSG } from './wire';

/** A server the harness started on free ports of 127.0.0.1. */
export interface ServerProcess {
  pid: number;
  wsPort: number;
  /** The broker's backend port; undefined for the baseline, which has none. */
  tcpPort: number | undefined;
  /** The broker's metrics port, when started with --metrics-port. */
  metricsPort: number | undefined;
  /** ws://127.0.0.1:<wsPort><path> */
  url(path?: string): string;
  /** SIGTERM, then SIGKILL if it has not exited after a few seconds. */
  stop(): Promise<void>;
}

/** Debian's nats-server, started by the harness on a free port of 127.0.0.1. */
export interface NatsProcess {
  pid: number;
  /** nats://127.0.0.1:<port> */
  url: string;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Pin the process to this CPU with taskset. */
  cpu?: number;
}

const BROKER_MAIN = path.join(__dirname, '..', 'main.js');
const BASELINE_MAIN = path.join(__dirname, 'baseline-server.js');
const BROKER_READY_MSG = 'strands broker listening';
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5000;
/** Output kept to explain a server that exits before it is ready. */
const TAIL_CHARS = 4000;

/** Starts this build's broker (dist/src/main.js) on free ports; `args` are extra broker flags. */
export async function startBrokerProcess(args: string[] = [], opts: SpawnOptions = {}): Promise<ServerProcess> {
  const { pid, ready, stop } = await spawnUntilReady('main.js', [process.execPath, BROKER_MAIN, '--host', '127.0.0.1', '--ws-port', '0', '--tcp-port', '0', ...args], 'stdout', jsonReadyLine(BROKER_READY_MSG), opts.cpu);
  return serverProcess(pid, ready, stop);
}

/** Starts the bare uWebSockets.js server (baseline-server.ts) on a free port. */
export async function startBaselineProcess(opts: SpawnOptions = {}): Promise<ServerProcess> {
  const { pid, ready, stop } = await spawnUntilReady('baseline-server.js', [process.execPath, BASELINE_MAIN, '--port', '0'], 'stdout', jsonReadyLine(BASELINE_READY_MSG), opts.cpu);
  return serverProcess(pid, ready, stop);
}

/** Starts Debian's nats-server on a free port of 127.0.0.1; resolves once it says it is ready. */
export async function startNatsProcess(opts: SpawnOptions = {}): Promise<NatsProcess> {
  let port: number | undefined;
  const ready = (line: string): number | undefined => {
    const listening = /Listening for client connections on \S+:(\d+)/.exec(line);
    if (listening) port = Number(listening[1]);
    return line.includes('Server is ready') ? port : undefined;
  };
  try {
    const started = await spawnUntilReady('nats-server', ['nats-server', '-a', '127.0.0.1', '-p', '-1'], 'stderr', ready, opts.cpu);
    return { pid: started.pid, url: `nats://127.0.0.1:${started.ready}`, stop: started.stop };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n(a cluster run needs nats-server: apt-get install nats-server)`);
  }
}

/**
 * Makes SIGINT and SIGTERM end this process through process.exit, whose
 * 'exit' handlers kill every server started here: by default a signal ends
 * the process without them, and its servers would live on. For commands, not
 * for a library's host.
 */
export function exitOnSignals(): void {
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
}

function serverProcess(pid: number, ready: ReadyPorts, stop: () => Promise<void>): ServerProcess {
  return { pid, wsPort: ready.ws, tcpPort: ready.tcp, metricsPort: ready.metrics, url: (p = '/') => `ws://127.0.0.1:${ready.ws}${p}`, stop };
}

/**
 * Runs `argv` (`name` in errors; under `taskset -c cpu` when given) and resolves once `ready`
 * returns a value for a line of its `stream`, with that value, its pid and a
 * stop(): SIGTERM, then SIGKILL after a few seconds.
 */
function spawnUntilReady<T>(name: string, argv: string[], stream: 'stdout' | 'stderr', ready: (line: string) => T | undefined, cpu: number | undefined): Promise<{ pid: number; ready: T; stop(): Promise<void> }> {
  const [command, ...args] = cpu === undefined ? argv : ['taskset', '-c', String(cpu), ...argv];
  // taskset execs the program in place, so the child's pid is the server's.
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keepTail = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-TAIL_CHARS);
  };
  const watched = child[stream];
  const other = stream === 'stdout' ? child.stderr : child.stdout;
  other.on('data', keepTail);
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  };

  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      child.kill('SIGKILL');
      process.removeListener('exit', killOnExit);
      reject(new Error(`${name} ${why}${tail ? `:\n${tail.trim()}` : ''}`));
    };
    const timer = setTimeout(() => fail(`was not listening after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    child.once('error', (err) => fail(`could not start (${err.message})`));
    const exitEarly = (code: number | null, signal: NodeJS.Signals | null): void => fail(`exited before listening (${signal ?? `code ${code}`})`);
    child.once('exit', exitEarly);
    let pending = '';
    const onData = (chunk: Buffer): void => {
      keepTail(chunk);
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const value = ready(line);
        if (value === undefined) continue;
        clearTimeout(timer);
        child.off('exit', exitEarly);
        // Keep reading (and dropping) its output: a full pipe would block the server.
        watched.off('data', onData);
        watched.resume();
        other.off('data', keepTail);
        other.resume();
        resolve({ pid: child.pid!, ready: value, stop });
        return;
      }
    };
    watched.on('data', onData);
  });
}

interface ReadyPorts {
  ws: number;
  tcp: number | undefined;
  metrics: number | undefined;
}

/** Reads the ports from the JSON line whose `msg` is `readyMsg` ("host:port" in `ws`, `tcp`, `metrics`). */
function jsonReadyLine(readyMsg: string): (line: string) => ReadyPorts | undefined {
  return (line) => {
    let entry: { msg?: unknown; ws?: unknown; tcp?: unknown; metrics?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return undefined;
    }
    if (entry.msg !== readyMsg || typeof entry.ws !== 'string') return undefined;
    const port = (v: unknown): number | undefined => (typeof v === 'string' ? parseHostPort(v).port : undefined);
    return { ws: parseHostPort(entry.ws).port, tcp: port(entry.tcp), metrics: port(entry.metrics) };
  };
}

/** A nats-server and brokers of this build joined to it, started by the harness. */
export interface ClusterProcesses {
  nats: NatsProcess;
  /** Nodes bench-1 to bench-N, in order. */
  brokers: ServerProcess[];
  /** Stops the brokers, then nats-server. */
  stop(): Promise<void>;
}

/**
 * Starts nats-server and `nodes` brokers with --cluster on it, each with its
 * own node id (bench-1, bench-2, ...) and its metrics on a free port; all
 * pinned to `opts.cpu` when given. `args` are extra flags for every broker.
 */
export async function startClusterProcesses(nodes: number, args: string[] = [], opts: SpawnOptions = {}): Promise<ClusterProcesses> {
  const nats = await startNatsProcess(opts);
  const started = await Promise.allSettled(
    Array.from({ length: nodes }, (_, i) => startBrokerProcess(['--cluster', nats.url, '--node-id', `bench-${i + 1}`, '--metrics-port', '0', ...args], opts)),
  );
  const brokers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(brokers.map((b) => b.stop()));
    await nats.stop();
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { nats, brokers, stop };
}

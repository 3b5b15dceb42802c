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
  /** ws://127.0.0.1:<wsPort><path> */
  url(path?: string): string;
  /** SIGTERM, then SIGKILL if it has not exited after a few seconds. */
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
export function startBrokerProcess(args: string[] = [], opts: SpawnOptions = {}): Promise<ServerProcess> {
  return spawnServer(BROKER_MAIN, ['--host', '127.0.0.1', '--ws-port', '0', '--tcp-port', '0', ...args], BROKER_READY_MSG, opts.cpu);
}

/** Starts the bare uWebSockets.js server (baseline-server.ts) on a free port. */
export function startBaselineProcess(opts: SpawnOptions = {}): Promise<ServerProcess> {
  return spawnServer(BASELINE_MAIN, ['--port', '0'], BASELINE_READY_MSG, opts.cpu);
}

/**
 * Runs `node script args` (under `taskset -c cpu` when given) and resolves once
 * it prints the JSON line whose `msg` is `readyMsg`, reading its ports from the
 * line's `ws` and `tcp` fields ("host:port").
 */
function spawnServer(script: string, args: string[], readyMsg: string, cpu: number | undefined): Promise<ServerProcess> {
  const node = [process.execPath, script, ...args];
  const [command, ...argv] = cpu === undefined ? node : ['taskset', '-c', String(cpu), ...node];
  // taskset execs node in place, so the child's pid is the server's.
  const child = spawn(command!, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keepTail = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-TAIL_CHARS);
  };
  child.stderr.on('data', keepTail);
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      child.kill('SIGKILL');
      process.removeListener('exit', killOnExit);
      reject(new Error(`${path.basename(script)} ${why}${tail ? `:\n${tail.trim()}` : ''}`));
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
        const ready = readyLine(line, readyMsg);
        if (!ready) continue;
        clearTimeout(timer);
        child.off('exit', exitEarly);
        // Keep reading (and dropping) its output: a full pipe would block the server.
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve({
          pid: child.pid!,
          wsPort: ready.ws,
          tcpPort: ready.tcp,
          url: (p = '/') => `ws://127.0.0.1:${ready.ws}${p}`,
          stop: async () => {
            process.removeListener('exit', killOnExit);
            if (child.exitCode !== null || child.signalCode !== null) return;
            const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
            child.kill('SIGTERM');
            await exited;
            clearTimeout(timer);
          },
        });
        return;
      }
    };
    child.stdout.on('data', onData);
  });
}

function readyLine(line: string, readyMsg: string): { ws: number; tcp: number | undefined } | undefined {
  let entry: { msg?: unknown; ws?: unknown; tcp?: unknown };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    return undefined;
  }
  if (entry.msg !== readyMsg || typeof entry.ws !== 'string') return undefined;
  return { ws: parseHostPort(entry.ws).port, tcp: typeof entry.tcp === 'string' ? parseHostPort(entry.tcp).port : undefined };
}

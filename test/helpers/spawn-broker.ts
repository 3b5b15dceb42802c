import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { AsyncQueue } from './async-queue';

/** The built CLI: dist/src/main.js, found from this file's place in dist/test/helpers/. */
export const MAIN_JS = resolve(__dirname, '..', '..', 'src', 'main.js');

export interface StrandsProcess {
  child: ChildProcess;
  /** Each stdout line, parsed when it is JSON (pino), else `{ raw }`. */
  stdout: AsyncQueue<Record<string, unknown>>;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The next stdout log line whose `msg` contains `text`. */
  log(text: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/**
 * Runs `node dist/src/main.js ...args` with the test's environment minus every
 * STRANDS_* and PYSTRAND_* variable, plus `env` (a value of undefined unsets).
 * Killed (if still running) when the test ends.
 */
export function spawnStrands(t: TestContext, args: string[], env: Record<string, string | undefined> = {}, launcher: string[] = []): StrandsProcess {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!/^(STRANDS_|PYSTRAND_)/.test(name)) childEnv[name] = value;
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[name];
    else childEnv[name] = value;
  }
  // A launcher (`prlimit --nofile=...`, `taskset -c 0`) runs node in the environment it sets up.
  const [command, ...prefix] = [...launcher, process.execPath];
  const child = spawn(command as string, [...prefix, MAIN_JS, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  // 'close', not 'exit': it comes after stdout and stderr are read to their end, so no log line is missed.
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stdout = new AsyncQueue<Record<string, unknown>>();
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (text: string) => {
    partial += text;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.trim() === '') continue;
      try {
        stdout.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        stdout.push({ raw: line });
      }
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => (stderr += text));
  return {
    child,
    stdout,
    stderr: () => stderr,
    exited,
    log: (text, timeoutMs = 10_000) =>
      Promise.race([
        stdout.next((l) => typeof l.msg === 'string' && l.msg.includes(text), timeoutMs, `a log line with "${text}"`),
        exited.then(({ code, signal }) => Promise.reject(new Error(`exited (code ${code}, signal ${signal}) before logging "${text}"; stderr: ${stderr}`))),
      ]),
  };
}

/** `host:port` -> port. */
export function portOf(address: unknown): number {
  const match = /:(\d+)$/.exec(String(address));
  if (!match) throw new Error(`not host:port: ${String(address)}`);
  return Number(match[1]);
}

/** Starts the broker on free ports; resolves once it logged "strands broker listening". */
export async function spawnBroker(t: TestContext, args: string[] = [], env: Record<string, string | undefined> = {}, launcher: string[] = []): Promise<StrandsProcess & { wsPort: number; tcpPort: number; listening: Record<string, unknown> }> {
  const proc = spawnStrands(t, ['--ws-port', '0', '--tcp-port', '0', '--host', '127.0.0.1', ...args], env, launcher);
  const listening = await proc.log('strands broker listening');
  return { ...proc, wsPort: portOf(listening.ws), tcpPort: portOf(listening.tcp), listening };
}

/**
 * The modules under src/<folder>/ a process has loaded after it started a
 * broker through the CLI, and after it then ran `strands <command...>` in the
 * same process: for commands that must load their code only when they run.
 */
export async function modulesLoadedBy(folder: string, command: string[]): Promise<{ withBroker: string[]; afterCommand: string[]; stdout: string }> {
  const script = `
    const { sep } = require('node:path');
    const { buildCli } = require(${JSON.stringify(MAIN_JS)});
    const loaded = () => Object.keys(require.cache).filter((f) => f.includes(sep + 'src' + sep + ${JSON.stringify(folder)} + sep));
    (async () => {
      await buildCli().parseAsync(['--host', '127.0.0.1', '--ws-port', '0', '--tcp-port', '0', '--log-level', 'silent'], { from: 'user' });
      const withBroker = loaded();
      // --help ends in a CommanderError (the CLI's exitOverride): what was loaded by then is what counts.
      await buildCli().parseAsync(${JSON.stringify(command)}, { from: 'user' }).catch(() => {});
      process.stderr.write(JSON.stringify({ withBroker, afterCommand: loaded() }));
      process.exit(0);
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`the script exited with ${code}: ${stderr}`);
  return { ...(JSON.parse(stderr) as { withBroker: string[]; afterCommand: string[] }), stdout };
}

import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { ErrorTally } from './error-tally';
import { sum } from './format';
import { mergeHistograms, type Histogram } from './histogram';
import type { ClientRole, Counters, FromWorker, OpenedReport, ResultReport, ToWorker } from './ipc';

const WORKER_MODULE = path.join(__dirname, 'worker.js');
const EXIT_WAIT_MS = 5000;

/** What the clients of one URL (one node) measured. */
export interface NodeSummary {
  /** Clients opened (open), or receipts measured (drain). */
  count: number;
  /** Handshake latency (open), or message latency (drain). */
  latency: Histogram;
}

export interface OpenSummary {
  ok: number;
  handshakes: Histogram;
  /** Per URL given to open(). */
  byUrl: NodeSummary[];
  firstStartUs: number;
  lastOpenUs: number;
  perSecond: number[];
  /** Each worker's CPU time while opening. */
  cpuUs: number[];
  /** What went wrong, when some failed. */
  errorSamples: string[];
}

export interface DrainSummary {
  measuredSent: number;
  measured: number;
  latency: Histogram;
  /** Per URL given to open(). */
  byUrl: NodeSummary[];
  perSecond: number[];
  lost: number;
  /** Every error since the workers started (opening included). */
  errors: ErrorTally;
  /** Each worker's CPU time during the measured window. */
  cpuUs: number[];
}

interface Share {
  first: number;
  count: number;
}

type Waiter = (msg: OpenedReport | ResultReport) => void;

/** The client workers of one run, each holding a contiguous share of the clients. */
export class WorkerPool {
  private readonly children: ChildProcess[];
  private readonly shares: Share[];
  private readonly ticks: Counters[];
  private readonly waiters: Array<Map<string, Waiter>>;
  /** Rejects when a worker dies before close(). */
  private readonly crashed: Promise<never>;
  private closing = false;

  constructor(workers: number, readonly clients: number) {
    this.shares = split(clients, Math.min(workers, clients));
    this.ticks = this.shares.map(() => ({ sent: 0, received: 0, errors: 0, open: 0 }));
    this.waiters = this.shares.map(() => new Map());
    let crash!: (err: Error) => void;
    this.crashed = new Promise<never>((_, reject) => (crash = reject));
    this.crashed.catch(() => {});
    // execArgv: [] keeps flags meant for this process (a test runner's, say) out of the workers.
    this.children = this.shares.map((_, i) => {
      const child = fork(WORKER_MODULE, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.on('message', (msg: FromWorker) => {
        if (msg.type === 'tick') this.ticks[i] = msg;
        else this.waiters[i]?.get(msg.type)?.(msg);
      });
      child.on('exit', (code, signal) => {
        if (!this.closing) crash(new Error(`client worker ${i} exited unexpectedly (${signal ?? `code ${code}`})`));
      });
      return child;
    });
  }

  get size(): number {
    return this.children.length;
  }

  /** Latest counters reported by the workers (about once a second), summed. */
  totals(): Counters {
    const sum: Counters = { sent: 0, received: 0, errors: 0, open: 0 };
    for (const t of this.ticks) {
      sum.sent += t.sent;
      sum.received += t.received;
      sum.errors += t.errors;
      sum.open += t.open;
    }
    return sum;
  }

  /** Opens the clients, client i on urls[i % urls.length]. */
  async open(urls: string[], runId: string, concurrency: number, baseUs: number): Promise<OpenSummary> {
    const perWorker = Math.max(1, Math.ceil(concurrency / this.size));
    const reports = await this.ask('opened', (share) => ({ type: 'open', urls, runId, first: share.first, count: share.count, concurrency: perWorker, baseUs }));
    const errors = new ErrorTally();
    for (const r of reports) errors.merge(0, r.errorSamples);
    const byUrl = perUrl(reports.map((r) => r.ok), reports.map((r) => r.handshakes));
    return {
      errorSamples: errors.samples,
      ok: sum(byUrl.map((n) => n.count)),
      handshakes: mergeHistograms(reports.flatMap((r) => r.handshakes)),
      byUrl,
      firstStartUs: Math.min(...reports.map((r) => r.firstStartUs)),
      lastOpenUs: Math.max(...reports.map((r) => r.lastOpenUs)),
      perSecond: addArrays(reports.map((r) => r.perSecond)),
      cpuUs: reports.map((r) => r.cpuUs),
    };
  }

  /** Starts the clients' part; an open-loop `rate` is shared among workers in proportion to their clients. */
  go(role: ClientRole, payload: number, rate: number, startUs: number, measureStartUs: number, measureEndUs: number): void {
    this.shares.forEach((share, i) => {
      this.children[i]?.send({ type: 'go', role, payload, rate: (rate * share.count) / this.clients, startUs, measureStartUs, measureEndUs } satisfies ToWorker);
    });
  }

  async drain(perClient: number | undefined, graceMs: number): Promise<DrainSummary> {
    const reports = await this.ask('result', () => (perClient === undefined ? { type: 'drain', graceMs } : { type: 'drain', perClient, graceMs }));
    const errors = new ErrorTally();
    for (const r of reports) errors.merge(r.errors, r.errorSamples);
    const byUrl = perUrl(reports.map((r) => r.measured), reports.map((r) => r.latency));
    return {
      measuredSent: sum(reports.map((r) => r.measuredSent)),
      measured: sum(byUrl.map((n) => n.count)),
      latency: mergeHistograms(reports.flatMap((r) => r.latency)),
      byUrl,
      perSecond: addArrays(reports.map((r) => r.perSecond)),
      lost: sum(reports.map((r) => r.lost)),
      errors,
      cpuUs: reports.map((r) => r.cpuUs),
    };
  }

  /** Closes every client and waits for the workers to exit (killing those that do not). */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WAIT_MS);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (child.connected) child.send({ type: 'close' } satisfies ToWorker);
            else child.kill('SIGKILL');
          }),
      ),
    );
  }

  /** Sends each worker its message and waits for every worker's report of `type`. */
  private ask<T extends 'opened' | 'result'>(type: T, message: (share: Share) => ToWorker): Promise<Array<Extract<FromWorker, { type: T }>>> {
    const replies = this.children.map(
      (child, i) =>
        new Promise<Extract<FromWorker, { type: T }>>((resolve) => {
          this.waiters[i]?.set(type, resolve as Waiter);
          child.send(message(this.shares[i]!));
        }),
    );
    return Promise.race([this.crashed, Promise.all(replies)]);
  }
}

/** `total` split into `parts` contiguous shares whose sizes differ by at most one. */
function split(total: number, parts: number): Share[] {
  const shares: Share[] = [];
  let first = 0;
  for (let i = 0; i < parts; i++) {
    const count = Math.floor(total / parts) + (i < total % parts ? 1 : 0);
    shares.push({ first, count });
    first += count;
  }
  return shares;
}

/** Each worker's per-URL counts and histograms, summed and merged per URL. */
function perUrl(counts: number[][], histograms: string[][]): NodeSummary[] {
  return (counts[0] ?? []).map((_, i) => ({ count: sum(counts.map((c) => c[i] ?? 0)), latency: mergeHistograms(histograms.map((h) => h[i]!)) }));
}

/** Element-wise sum of arrays of possibly different lengths. */
function addArrays(arrays: number[][]): number[] {
  const out: number[] = [];
  for (const a of arrays) a.forEach((v, i) => (out[i] = (out[i] ?? 0) + v));
  return out;
}

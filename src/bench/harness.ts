import { randomBytes } from 'node:crypto';
import { startBenchBackend } from './bench-backend';
import { nowUs } from './clock';
import { ErrorTally } from './error-tally';
import type { BenchOptions } from './options';
import { waitUntilAccepting } from './probe';
import { readProcSample, type ProcSample } from './proc-stats';
import { backendPublisher, baselinePublisher, type Publisher } from './publisher';
import type { ScenarioSpec } from './scenarios';
import { portOf, resolveTargetProcess } from './target-process';
import { WorkerPool, type OpenSummary } from './worker-pool';

/** The parts of one run that every scenario shares, set up and torn down around it. */
export interface Harness {
  /** The run's options, `targetPid` being the process actually measured. */
  readonly options: BenchOptions;
  /** Why the measured pid is not the one given, when it is not. */
  readonly targetNote: string | undefined;
  readonly spec: ScenarioSpec;
  readonly pool: WorkerPool;
  /** Errors the harness process saw itself (its backend link, its publisher). */
  readonly errors: ErrorTally;
  /** The target's CPU and RSS now; undefined without a target pid. */
  sample(): ProcSample | undefined;
  /** Opens every client of the run through the target; throws when none could connect. */
  openClients(): Promise<OpenSummary>;
  /** Publishes as the scenario says: through the harness's backend, or the baseline's publish socket. */
  publisher(): Promise<Publisher>;
  progress(line: string): void;
}

export async function withHarness<T>(options: BenchOptions, spec: ScenarioSpec, body: (h: Harness) => Promise<T>): Promise<T> {
  // Ids and the room are unique per run, so clients left over from another run never count.
  const runId = randomBytes(4).toString('hex');
  const room = `bench-${runId}`;
  const errors = new ErrorTally();
  const backend = options.baseline ? undefined : await startBenchBackend(options.tcp, room, spec.echo, errors);
  let pool: WorkerPool | undefined;
  let publisher: Publisher | undefined;
  try {
    await waitUntilAccepting(options.url, runId);
    // Once the target accepts clients, its listening socket tells it apart from npm or a shell above it.
    const target = options.targetPid === undefined ? undefined : resolveTargetProcess(options.targetPid, portOf(options.url));
    const measured: BenchOptions = { ...options, targetPid: target?.pid };
    const workers = new WorkerPool(options.workers, spec.clients(options));
    pool = workers;
    return await body({
      options: measured,
      targetNote: target?.note,
      spec,
      pool: workers,
      errors,
      sample: () => sampleTarget(measured.targetPid),
      openClients: async () => {
        const opened = await workers.open(options.url, runId, options.concurrency, nowUs());
        if (opened.ok === 0) throw new Error(`no client could connect to ${options.url}: ${opened.errorSamples.join('; ')}`);
        return opened;
      },
      publisher: async () => {
        publisher = backend
          ? backendPublisher(backend.sdk, spec.publish === 'room' ? room : undefined, options.payload)
          : await baselinePublisher(options.url, options.payload, errors);
        return publisher;
      },
      progress: (line) => options.onProgress?.(line),
    });
  } finally {
    publisher?.close();
    await pool?.close();
    await backend?.close();
  }
}

function sampleTarget(pid: number | undefined): ProcSample | undefined {
  try {
    return readProcSample(pid, nowUs());
  } catch (err) {
    throw new Error(`cannot read /proc/${pid} of the target (did it exit?): ${(err as Error).message}`);
  }
}

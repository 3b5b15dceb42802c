import { randomBytes } from 'node:crypto';
import { startBenchBackend } from './bench-backend';
import { busGrowth, readBusCounts, type BusCounts } from './bus-counters';
import { nowUs } from './clock';
import { ErrorTally } from './error-tally';
import { createHistogram } from './histogram';
import { backendTcp, targetNodes, type BenchOptions, type TargetNode } from './options';
import { waitUntilAccepting } from './probe';
import { readMachineCpuUs, readProcSample, usageBetween, type ProcSample, type TargetUsage } from './proc-stats';
import { backendPublisher, baselinePublisher, type Publisher } from './publisher';
import type { ScenarioSpec } from './scenarios';
import { portOf, resolveTargetProcess } from './target-process';
import { WorkerPool, type NodeSummary, type OpenSummary } from './worker-pool';

/** A node of the target as measured: `pid` is the process listening on its URL's port. */
export interface MeasuredNode extends TargetNode {
  /** Why `pid` is not the one given (npm's, a shell's), when it is not. */
  pidNote: string | undefined;
}

/** CPU and RSS of every node (in URL order) and of the cluster's nats-server, and the whole machine's CPU, at one moment. */
export interface TargetSample {
  nodes: Array<ProcSample | undefined>;
  nats: ProcSample | undefined;
  /** CPU time of every process on the machine so far, µs. */
  machineCpuUs: number;
}

/** What the target spent between two samples: each node, and nats-server; and the whole machine's CPU. */
export interface TargetUsages {
  nodes: Array<TargetUsage | undefined>;
  nats: TargetUsage | undefined;
  machineCpuUs: number;
}

/** The parts of one run that every scenario shares, set up and torn down around it. */
export interface Harness {
  /** The run's options, as given. */
  readonly options: BenchOptions;
  /** The target's nodes, each with the process actually measured; one for a single broker. */
  readonly nodes: readonly MeasuredNode[];
  readonly spec: ScenarioSpec;
  readonly pool: WorkerPool;
  /** Errors the harness process saw itself (its backend link, its publisher). */
  readonly errors: ErrorTally;
  /** CPU and RSS of the target's processes now. */
  sample(): TargetSample;
  /** Each node's cluster bus counters now; undefined for a node without a metrics address. */
  busCounts(): Promise<Array<BusCounts | undefined>>;
  /** Opens every client of the run through the target; throws when none could connect. */
  openClients(): Promise<OpenSummary>;
  /** The pool's per-URL figures as per-node ones: a node that takes no clients gets none. */
  perNode(byUrl: readonly NodeSummary[]): NodeSummary[];
  /** Publishes as the scenario says: through the harness's backend, or the baseline's publish socket. */
  publisher(): Promise<Publisher>;
  progress(line: string): void;
}

export async function withHarness<T>(options: BenchOptions, spec: ScenarioSpec, body: (h: Harness) => Promise<T>): Promise<T> {
  // Ids and the room are unique per run, so clients left over from another run never count.
  const runId = randomBytes(4).toString('hex');
  const room = `bench-${runId}`;
  const errors = new ErrorTally();
  const given = targetNodes(options);
  const clientUrls = given.filter((n) => n.takesClients).map((n) => n.url);
  const backend = options.baseline ? undefined : await startBenchBackend(backendTcp(options), room, spec.echo, errors);
  let pool: WorkerPool | undefined;
  let publisher: Publisher | undefined;
  try {
    // Every node whose URL takes clients must accept them: in a cluster, the others reach the backend over the bus.
    for (const url of clientUrls) await waitUntilAccepting(url, runId);
    // Once a node accepts clients, its listening socket tells it apart from npm or a shell above it.
    const nodes = given.map((node): MeasuredNode => {
      const found = node.pid === undefined ? undefined : resolveTargetProcess(node.pid, portOf(node.url));
      return { ...node, pid: found?.pid, pidNote: found?.note };
    });
    const busCounts = (): Promise<Array<BusCounts | undefined>> => Promise.all(nodes.map((n) => (n.metrics ? readBusCounts(n.metrics) : undefined)));
    // A wrong metrics address fails the run before any client connects.
    await busCounts();
    const workers = new WorkerPool(options.workers, spec.clients(options));
    pool = workers;
    return await body({
      options,
      nodes,
      spec,
      pool: workers,
      errors,
      sample: () => ({ nodes: nodes.map((n) => sampleProcess(n.pid, 'the target')), nats: sampleProcess(options.natsPid, 'nats-server'), machineCpuUs: readMachineCpuUs() }),
      busCounts,
      openClients: async () => {
        const opened = await workers.open(clientUrls, runId, options.concurrency, nowUs());
        if (opened.ok === 0) throw new Error(`no client could connect to ${clientUrls.join(', ')}: ${opened.errorSamples.join('; ')}`);
        return opened;
      },
      perNode: (byUrl) => {
        let next = 0;
        return nodes.map((n) => (n.takesClients ? byUrl[next++]! : { count: 0, latency: createHistogram() }));
      },
      publisher: async () => {
        publisher = backend
          ? backendPublisher(backend.sdk, spec.publish === 'room' ? room : undefined, options.payload)
          : await baselinePublisher(clientUrls[0]!, options.payload, errors);
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

/** What each process spent from `cpuFrom` to `cpuTo`, with its RSS growth from `rssFrom` to `rssTo`. */
export function usagesBetween(cpuFrom: TargetSample, cpuTo: TargetSample, rssFrom: TargetSample, rssTo: TargetSample): TargetUsages {
  return {
    nodes: cpuFrom.nodes.map((from, i) => usageBetween(from, cpuTo.nodes[i], rssFrom.nodes[i], rssTo.nodes[i])),
    nats: usageBetween(cpuFrom.nats, cpuTo.nats, rssFrom.nats, rssTo.nats),
    machineCpuUs: cpuTo.machineCpuUs - cpuFrom.machineCpuUs,
  };
}

/** Each node's bus counters' growth between two readings. */
export function busGrowths(from: Array<BusCounts | undefined>, to: Array<BusCounts | undefined>): Array<BusCounts | undefined> {
  return from.map((f, i) => busGrowth(f, to[i]));
}

function sampleProcess(pid: number | undefined, what: string): ProcSample | undefined {
  try {
    return readProcSample(pid, nowUs());
  } catch (err) {
    throw new Error(`cannot read /proc/${pid} of ${what} (did it exit?): ${(err as Error).message}`);
  }
}

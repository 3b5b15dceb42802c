import { DEFAULTS, list, MAX_NODES, type BenchOptions, type ScenarioName } from './options';
import { startBaselineProcess, startBrokerProcess, startClusterProcesses, type ServerProcess } from './processes';
import { withBaseline, type BenchResult } from './result';
import { runScenario } from './run';

/**
 * What a run measures: a broker (or cluster) already running (options.url,
 * options.tcp), brokers started for the run (more than one `nodes`: a cluster
 * over a nats-server started too), or the baseline.
 */
export type Target = { kind: 'running' } | { kind: 'spawn'; brokerArgs?: string[]; nodes?: number } | { kind: 'baseline' };

export type RunOptions = Partial<BenchOptions> & { scenario: ScenarioName };

/** Runs the scenario against `target`; servers started for it are pinned to `cpu` when given, measured, and stopped after. */
export async function runOn(target: Target, options: RunOptions, cpu?: number): Promise<BenchResult> {
  if (target.kind === 'running') return runScenario(options);
  const nodes = target.kind === 'spawn' ? (target.nodes ?? 1) : 1;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new RangeError(`nodes must be a whole number from 1 to ${MAX_NODES}, got ${nodes}`);
  if (nodes > 1) return runOnCluster(nodes, target.kind === 'spawn' ? target.brokerArgs : undefined, options, cpu);
  const server = target.kind === 'spawn' ? await startBrokerProcess(target.brokerArgs, { cpu }) : await startBaselineProcess({ cpu });
  try {
    return await runScenario(onServer(server, options, target.kind === 'baseline'));
  } finally {
    await server.stop();
  }
}

/** The scenario against `target`, then against the baseline; the result carries both and their ratios. */
export async function compareWithBaseline(target: Target, options: RunOptions, cpu?: number): Promise<BenchResult> {
  if (target.kind === 'spawn' && (target.nodes ?? 1) > 1) throw new RangeError('a cluster is not compared with the baseline: measure it and one broker (--nodes 1) in two runs');
  const run = await runOn(target, options, cpu);
  const baseline = await runOn({ kind: 'baseline' }, options, cpu);
  return withBaseline(run, baseline);
}

/** A cluster of `nodes` brokers over a nats-server, all pinned to `cpu`; every broker and nats-server is measured. */
async function runOnCluster(nodes: number, brokerArgs: string[] | undefined, options: RunOptions, cpu: number | undefined): Promise<BenchResult> {
  const cluster = await startClusterProcesses(nodes, brokerArgs, { cpu });
  const path = pathOf(options);
  const local = (port: number | undefined) => ({ host: '127.0.0.1', port: port ?? 0 });
  try {
    return await runScenario({
      ...options,
      url: cluster.brokers.map((b) => b.url(path)),
      tcp: cluster.brokers.map((b) => local(b.tcpPort)),
      targetPid: cluster.brokers.map((b) => b.pid),
      metrics: cluster.brokers.map((b) => local(b.metricsPort)),
      natsPid: cluster.nats.pid,
      baseline: false,
    });
  } finally {
    await cluster.stop();
  }
}

/** The options pointed at a server the harness started: same path, its ports, its pid. */
export function onServer(server: ServerProcess, options: RunOptions, baseline: boolean): RunOptions {
  return {
    ...options,
    url: server.url(pathOf(options)),
    tcp: { host: '127.0.0.1', port: server.tcpPort ?? 0 },
    targetPid: server.pid,
    baseline,
  };
}

/** The path of the (first) URL given, for the servers the harness starts. */
function pathOf(options: RunOptions): string {
  return new URL(list(options.url)[0] ?? DEFAULTS.url).pathname;
}

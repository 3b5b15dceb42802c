import { DEFAULTS, type BenchOptions, type ScenarioName } from './options';
import { startBaselineProcess, startBrokerProcess, type ServerProcess } from './processes';
import { withBaseline, type BenchResult } from './result';
import { runScenario } from './run';

/** What a run measures: a broker already running (options.url, options.tcp), one started for the run, or the baseline. */
export type Target = { kind: 'running' } | { kind: 'spawn'; brokerArgs?: string[] } | { kind: 'baseline' };

type RunOptions = Partial<BenchOptions> & { scenario: ScenarioName };

/** Runs the scenario against `target`; a server started for it is pinned to `cpu` when given, measured, and stopped after. */
export async function runOn(target: Target, options: RunOptions, cpu?: number): Promise<BenchResult> {
  if (target.kind === 'running') return runScenario(options);
  const server = target.kind === 'spawn' ? await startBrokerProcess(target.brokerArgs, { cpu }) : await startBaselineProcess({ cpu });
  try {
    return await runScenario(onServer(server, options, target.kind === 'baseline'));
  } finally {
    await server.stop();
  }
}

/** The scenario against `target`, then against the baseline; the result carries both and their ratios. */
export async function compareWithBaseline(target: Target, options: RunOptions, cpu?: number): Promise<BenchResult> {
  const run = await runOn(target, options, cpu);
  const baseline = await runOn({ kind: 'baseline' }, options, cpu);
  return withBaseline(run, baseline);
}

/** The options pointed at a server the harness started: same path, its ports, its pid. */
function onServer(server: ServerProcess, options: RunOptions, baseline: boolean): RunOptions {
  const path = new URL(options.url ?? DEFAULTS.url).pathname;
  return {
    ...options,
    url: server.url(path),
    tcp: { host: '127.0.0.1', port: server.tcpPort ?? 0 },
    targetPid: server.pid,
    baseline,
  };
}

/** The load harness as a library, for gate scripts and tests; the CLI (cli.ts) is a thin layer over it. */
export { runScenario } from './run';
export { runOn, compareWithBaseline, onServer, type RunOptions, type Target } from './targets';
export { exitOnSignals, startBrokerProcess, startBaselineProcess, startClusterProcesses, startNatsProcess, type ClusterProcesses, type NatsProcess, type ServerProcess, type SpawnOptions } from './processes';
export { DEFAULTS, DEFAULT_RATE, SCENARIO_NAMES, resolveOptions, type BenchOptions, type ScenarioName, type HostPort } from './options';
export { withBaseline, type BenchResult } from './result';
export { formatText, overallVerdict } from './report-text';
export { renderHtml } from './report-html';
export { writeOutputs } from './outputs';

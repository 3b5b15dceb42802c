/**
 * Measures strands, the bare uWebSockets.js ceiling (src/bench/baseline-server.ts)
 * and any other broker on the same harness, writes each run's `--json` result
 * to bench/results/, and renders the results table of docs/benchmarks.md from
 * those files.
 *
 *   node dist/scripts/bench-table.js [--doc docs/benchmarks.md]
 *        [--other "name=command with {ws} {tcp} placeholders"]...
 *        [--scenarios pingpong,throughput,fanout,broadcast,connect] [--duration 10] [--warmup 2]
 *   node dist/scripts/bench-table.js --from-results [--doc docs/benchmarks.md]
 *   node dist/scripts/bench-table.js --micro [--from-results] [--doc docs/benchmarks.md]
 *
 * Each run: the server on CPU 0 (taskset), this process and the harness's
 * workers on CPU 1 (it re-starts itself under `taskset -c 1`); 64-byte
 * payloads. Scenarios: pingpong (100 clients), throughput (100 clients,
 * 10,000 msgs/s), fanout (a room of 1000, 100 publishes/s), broadcast (100
 * clients, 100 broadcasts/s), connect (10,000 connections, 200 at a time,
 * held 20 s): the `strands bench` defaults but for the room and connection
 * counts and the hold.
 *
 * --other starts the command with `{ws}` and `{tcp}` replaced by free ports
 * (through `sh -c 'exec ...'`, pinned to CPU 0), waits until both ports accept
 * connections, measures it like strands (CPU and RSS of the exec'd command,
 * or of its one descendant that listens on {ws}; start the broker itself all
 * the same, since SIGTERM goes to the exec'd command only), then stops it with SIGTERM. Its WebSocket URL is
 * ws://127.0.0.1:{ws}/ws/bench and its backend port 127.0.0.1:{tcp}.
 *
 * --from-results renders from bench/results/table.json and the files it lists,
 * without measuring. --doc FILE replaces the text between the
 * `<!-- bench-table:start -->` and `<!-- bench-table:end -->` markers of FILE.
 *
 * --micro measures the micro benchmarks instead (measureMicro(), pinned to
 * CPU 1), keeps them in bench/results/micro.json and renders them between the
 * `<!-- micro:start -->` and `<!-- micro:end -->` markers.
 */
import { parseArgs as parseArgv } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FRAMER_FLOOR_PAIRS, measureMicro, SERIALIZER_PAIR, type MicroRatios } from '../bench/micro/run-all';
import { onServer, runOn, runScenario, SCENARIO_NAMES, writeOutputs, type BenchOptions, type BenchResult, type ScenarioName, type ServerProcess } from '../src/bench';
import { pinHarness, runMain, THRESHOLDS } from './bench-gate';

const ROOT = path.join(__dirname, '..', '..');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const INDEX = 'table.json';
const START_MARKER = '<!-- bench-table:start -->';
const END_MARKER = '<!-- bench-table:end -->';
const MICRO_FILE = 'micro.json';
const MICRO_START = '<!-- micro:start -->';
const MICRO_END = '<!-- micro:end -->';

/** What each scenario runs with (besides duration, warmup and the 64-byte payload). */
const SCENARIO_CONFIG: Record<ScenarioName, Partial<BenchOptions>> = {
  pingpong: { clients: 100 },
  throughput: { clients: 100, rate: 10_000 },
  fanout: { roomSize: 1000, rate: 100 },
  broadcast: { clients: 100, rate: 100 },
  // Held 20 s: V8 returns the young generation the handshake storm grew only
  // after ~10 s of quiet (its memory reducer), and RSS per connection is read at the end.
  connect: { connections: 10_000, concurrency: 200, duration: 20 },
};

interface OtherBroker {
  name: string;
  command: string;
}

interface TableOptions {
  scenarios: ScenarioName[];
  duration: number;
  warmup: number;
  others: OtherBroker[];
  doc: string | undefined;
  fromResults: boolean;
  /** Measure the micro benchmarks (bench/results/micro.json) instead of the load scenarios. */
  micro: boolean;
}

/** One row's source: bench/results/<file>, measured on `target`. */
interface Entry {
  scenario: ScenarioName;
  /** 'baseline', 'strands', or an --other name. */
  target: string;
  file: string;
  /** How an --other broker was started. */
  command?: string;
}

/** A file of bench/results/ that lists the runs behind a doc's figures, and how they were made. */
export interface ResultsIndex<E> {
  command: string;
  generatedAt: string;
  pinning: string;
  entries: E[];
}

/** bench/results/table.json: what the table is made of and how it was produced. */
type Index = ResultsIndex<Entry>;

function parseArgs(argv: string[]): TableOptions {
  const { values } = parseArgv({
    args: argv,
    options: {
      other: { type: 'string', multiple: true, default: [] },
      scenarios: { type: 'string', default: SCENARIO_NAMES.join(',') },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      doc: { type: 'string' },
      'from-results': { type: 'boolean', default: false },
      micro: { type: 'boolean', default: false },
    },
  });
  const o: TableOptions = {
    scenarios: (values.scenarios as string).split(',').map(scenarioName),
    duration: Number(values.duration),
    warmup: Number(values.warmup),
    others: (values.other as string[]).map(parseOther),
    doc: values.doc,
    fromResults: values['from-results'] === true,
    micro: values.micro === true,
  };
  if (!(o.duration > 0) || !(o.warmup >= 0)) throw new Error('--duration must be > 0 and --warmup >= 0');
  return o;
}

function scenarioName(s: string): ScenarioName {
  if (!(SCENARIO_NAMES as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}`);
  return s as ScenarioName;
}

function parseOther(spec: string): OtherBroker {
  const eq = spec.indexOf('=');
  const name = spec.slice(0, eq).trim();
  const command = spec.slice(eq + 1).trim();
  if (eq < 1 || command === '') throw new Error(`--other wants "name=command", got "${spec}"`);
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`--other name "${name}": use letters, digits, . _ -`);
  if (name === 'strands' || name === 'baseline') throw new Error(`--other name "${name}" is taken`);
  if (!command.includes('{ws}') || !command.includes('{tcp}')) throw new Error(`--other command needs the {ws} and {tcp} placeholders: "${command}"`);
  return { name, command };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts an --other broker on free ports, pinned to `cpu`; resolves when both ports accept connections. */
async function startOther(other: OtherBroker, cpu: number | undefined): Promise<ServerProcess> {
  const ws = await freePort();
  let tcp = await freePort();
  while (tcp === ws) tcp = await freePort();
  const command = other.command.replaceAll('{ws}', String(ws)).replaceAll('{tcp}', String(tcp));
  const sh = ['/bin/sh', '-c', `exec ${command}`];
  const [file, ...args] = cpu === undefined ? sh : ['taskset', '-c', String(cpu), ...sh];
  const child = spawn(file!, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
  let tail = '';
  child.stderr.on('data', (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (): void => void child.kill('SIGKILL');
  process.once('exit', kill);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', kill);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if ((await accepts(ws)) && (await accepts(tcp))) return { pid: child.pid!, wsPort: ws, tcpPort: tcp, metricsPort: undefined, url: (p = '/') => `ws://127.0.0.1:${ws}${p}`, stop };
    await sleep(100);
  }
  await stop();
  throw new Error(`${other.name} (${command}) was not listening on ${ws} and ${tcp} within 20 s${tail ? `:\n${tail.trim()}` : ''}`);
}

function optionsFor(scenario: ScenarioName, o: TableOptions): Partial<BenchOptions> & { scenario: ScenarioName } {
  return { scenario, payload: 64, duration: o.duration, warmup: o.warmup, drain: 2, ...SCENARIO_CONFIG[scenario] };
}

async function measureOn(target: string, scenario: ScenarioName, o: TableOptions, cpu: number | undefined): Promise<BenchResult> {
  const options = optionsFor(scenario, o);
  if (target === 'baseline') return runOn({ kind: 'baseline' }, options, cpu);
  if (target === 'strands') return runOn({ kind: 'spawn' }, options, cpu);
  const other = o.others.find((x) => x.name === target)!;
  const server = await startOther(other, cpu);
  try {
    return await runScenario(onServer(server, options, false));
  } finally {
    await server.stop();
  }
}

/** The command line that produced this run (`script` is the one in dist/scripts/), for the doc. */
export function commandLine(script = 'bench-table.js'): string {
  const q = (s: string) => (/^[A-Za-z0-9_./:=,@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const args = process.argv.slice(2).map(q).join(' ');
  return `node dist/scripts/${script}${args ? ' ' + args : ''}`;
}

async function measureAll(o: TableOptions, cpu: number | undefined, pinning: string): Promise<Index> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const entries: Entry[] = [];
  const targets = ['baseline', 'strands', ...o.others.map((x) => x.name)];
  for (const scenario of o.scenarios) {
    for (const target of targets) {
      const t0 = performance.now();
      process.stderr.write(`${scenario} on ${target}...\n`);
      const result = await measureOn(target, scenario, o, cpu);
      const file = `${scenario}.${target}.json`;
      writeOutputs(result, { json: path.join(RESULTS_DIR, file) });
      const command = o.others.find((x) => x.name === target)?.command;
      entries.push({ scenario, target, file, ...(command ? { command } : {}) });
      const r = result.results;
      process.stderr.write(`  ${Math.round(r.rate)} ${r.unit}/s, p99 ${r.latencyUs.p99} µs, CPU ${r.cpuUsPerOp} µs/op, ${result.verdict} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    }
  }
  const index: Index = { command: commandLine(), generatedAt: new Date().toISOString(), pinning, entries };
  writeFileSync(path.join(RESULTS_DIR, INDEX), JSON.stringify(index, null, 2) + '\n');
  return index;
}

function readIndex(): Index {
  return JSON.parse(readFileSync(path.join(RESULTS_DIR, INDEX), 'utf8')) as Index;
}

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function ms(us: number | null): string {
  if (us === null) return '-';
  return us >= 100_000 ? `${grouped.format(us / 1000)} ms` : `${(us / 1000).toFixed(2)} ms`;
}

function kib(bytes: number | null): string {
  return bytes === null ? '-' : `${(bytes / 1024).toFixed(1)} KiB`;
}

function scenarioLabel(r: BenchResult): string {
  const c = r.config;
  switch (r.scenario) {
    case 'pingpong':
      return `pingpong, ${c.clients} clients`;
    case 'throughput':
      return `throughput, ${c.clients} clients, ${grouped.format(c.rate ?? 0)} msgs/s`;
    case 'fanout':
      return `fanout, room of ${grouped.format(c.roomSize ?? 0)}, ${c.rate} publishes/s`;
    case 'broadcast':
      return `broadcast, ${c.clients} clients, ${c.rate} broadcasts/s`;
    case 'connect':
      return `connect, ${grouped.format(c.connections ?? 0)} connections (${c.concurrency} at a time)`;
  }
}

const TARGET_LABEL: Record<string, string> = { baseline: 'bare uWS (ceiling)', strands: '**strands**' };

/** The markdown table: one row per scenario and target, strands and others against the ceiling's rate and CPU. */
function renderTable(index: Index): string {
  const load = (e: Entry) => JSON.parse(readFileSync(path.join(RESULTS_DIR, e.file), 'utf8')) as BenchResult;
  const rows: string[] = [
    '| scenario | target | rate | vs ceiling | p50 | p99 | target CPU per op | vs ceiling | target CPU | RSS per conn | harness CPU (main; worker) | verdict |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  const scenarios = SCENARIO_NAMES.filter((s) => index.entries.some((e) => e.scenario === s));
  let machine: BenchResult['machine'] | undefined;
  let window = '';
  let held = '';
  for (const scenario of scenarios) {
    const entries = index.entries.filter((e) => e.scenario === scenario);
    const results = entries.map((e) => ({ e, r: load(e) }));
    const ceiling = results.find((x) => x.e.target === 'baseline')?.r;
    for (const { e, r } of results) {
      machine ??= r.machine;
      if (r.scenario === 'connect') held ||= ` (connect: held ${r.config.duration} s)`;
      else window ||= `${r.config.duration} s window after ${r.config.warmup} s warmup, ${r.config.payload}-byte payloads`;
      const res = r.results;
      const vs = (a: number | null, b: number | null | undefined) => (e.target === 'baseline' || a === null || b === null || b === undefined || b <= 0 ? '' : `${(a / b).toFixed(2)}x`);
      const cells = [
          scenarioLabel(r),
          TARGET_LABEL[e.target] ?? e.target,
          `${grouped.format(res.rate)} ${res.unit}/s`,
          vs(res.rate, ceiling?.results.rate),
          ms(res.latencyUs.p50),
          ms(res.latencyUs.p99),
          res.cpuUsPerOp === null ? '-' : `${res.cpuUsPerOp.toFixed(1)} µs`,
          vs(res.cpuUsPerOp, ceiling?.results.cpuUsPerOp),
          res.targetCpuPercent === null ? '-' : `${res.targetCpuPercent.toFixed(0)}%`,
          r.scenario === 'connect' ? kib(res.rssBytesPerConn) : '',
          `${res.harnessCpuPercent.main.toFixed(0)}%; ${res.harnessCpuPercent.workers.map((w) => `${w.toFixed(0)}%`).join(', ')}`,
          r.verdict,
      ];
      rows.push(`| ${cells.join(' | ')} |`);
    }
  }
  const others = [...new Map(index.entries.filter((e) => e.command).map((e) => [e.target, e.command!])).entries()];
  return [
    `Generated by \`${index.command}\` at ${index.generatedAt.slice(0, 16).replace('T', ' ')} UTC` +
      (machine ? ` on ${machine.cores} × ${machine.cpuModel}, node ${machine.node}` : '') +
      `; ${index.pinning}; ${window}${held}. One run per row: single runs on a shared VM move by 10-30 %.`,
    '',
    ...(others.length > 0 ? [`Other brokers: ${others.map(([n, c]) => `${n} = \`${c}\``).join('; ')}.`, ''] : []),
    ...rows,
    '',
    'Rates count round trips (pingpong), echoed messages (throughput), deliveries to clients (fanout, broadcast) or connections opened (connect). ' +
      '"vs ceiling" divides by the bare uWebSockets.js server\'s figure in the same scenario. Target CPU is the server process\'s CPU time per op and its share of one core; harness CPU near 100 % means the load generator, not the server, set the rate. ' +
      `The JSON behind each row is in \`bench/results/\` (\`${INDEX}\` lists the files).`,
  ].join('\n');
}

/** Replaces the text between the markers in `file` with `body`. */
export function writeIntoDoc(file: string, body: string, startMarker = START_MARKER, endMarker = END_MARKER): void {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker);
  if (start === -1 || end === -1 || end < start) throw new Error(`${file} has no ${startMarker} ... ${endMarker} section`);
  writeFileSync(file, text.slice(0, start + startMarker.length) + '\n' + body + '\n' + text.slice(end));
}

/** bench/results/micro.json: the micro figures and how they were made. */
type MicroRecord = MicroRatios & { command?: string; generatedAt?: string; pinning?: string; cpuModel?: string };

/** The micro benchmarks' pairs as a markdown table, from bench/results/micro.json. */
function renderMicro(m: MicroRecord): string {
  const ns = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} ms` : n >= 1e3 ? `${(n / 1e3).toFixed(2)} µs` : `${n.toFixed(1)} ns`);
  const gate = new Map<string, string>([
    ...FRAMER_FLOOR_PAIRS.map((key): [string, string] => [key, `framerVsFloor: geomean of the ${FRAMER_FLOOR_PAIRS.length} (>= ${THRESHOLDS.framerVsFloor}x)`]),
    [SERIALIZER_PAIR, `serializersVsJson (>= ${THRESHOLDS.serializersVsJson}x)`],
  ]);
  const rows = ['| pair | ours | naive or floor | ours ÷ other ops/s | per-round ratios | gate |', '|---|---:|---:|---:|---|---|'];
  for (const [key, p] of Object.entries(m.details.pairs)) {
    rows.push(`| \`${key}\`: ${p.title} | ${ns(p.oursNsPerItem)}/${p.unit} | ${ns(p.naiveNsPerItem)}/${p.unit} | **${p.ratio.toFixed(2)}x** | ${p.roundRatios.map((r) => r.toFixed(2)).join(' ')} | ${gate.get(key) ?? ''} |`);
  }
  return [
    `Generated by \`${m.command ?? 'node dist/scripts/bench-table.js --micro'}\`${m.generatedAt ? ` at ${m.generatedAt.slice(0, 16).replace('T', ' ')} UTC` : ''}${m.cpuModel ? ` on ${m.cpuModel}` : ''}, node ${m.details.node}, ${m.details.clock} clock${m.pinning ? `, ${m.pinning.startsWith('pinned') ? 'pinned to CPU 1 with taskset' : m.pinning}` : ''}; median of ${m.details.rounds} interleaved rounds of ${m.details.minCpuMs} ms. Gated ratios in this run: framerVsFloor **${m.framerVsFloor.toFixed(2)}x**, serializersVsJson **${m.serializersVsJson.toFixed(2)}x** (the gate measures its own, with more rounds); not gated: framerVsNaive ${m.framerVsNaive.toFixed(2)}x, ringVsArray ${m.ringVsArray.toFixed(2)}x. The JSON is \`bench/results/${MICRO_FILE}\`.`,
    '',
    ...rows,
    '',
    '| cost | per call | per item |',
    '|---|---:|---:|',
    ...Object.values(m.details.singles).map((c) => `| ${c.name} | ${ns(c.nsPerCall)} | ${ns(c.nsPerItem)}/${c.unit} |`),
  ].join('\n');
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (o.micro) {
    let m: MicroRecord;
    if (o.fromResults) {
      m = JSON.parse(readFileSync(path.join(RESULTS_DIR, MICRO_FILE), 'utf8')) as typeof m;
    } else {
      const pin = pinHarness();
      if ('exitWith' in pin) return pin.exitWith;
      process.stderr.write(`micro: ${pin.pinning.note}\n`);
      m = { ...(await measureMicro()), command: commandLine(), generatedAt: new Date().toISOString(), pinning: pin.pinning.note, cpuModel: os.cpus()[0]?.model.trim() };
      mkdirSync(RESULTS_DIR, { recursive: true });
      writeFileSync(path.join(RESULTS_DIR, MICRO_FILE), JSON.stringify(m, null, 2) + '\n');
    }
    const body = renderMicro(m);
    console.log(body);
    if (o.doc) writeIntoDoc(path.resolve(o.doc), body, MICRO_START, MICRO_END);
    return 0;
  }
  let index: Index;
  if (o.fromResults) {
    index = readIndex();
  } else {
    const pin = pinHarness();
    if ('exitWith' in pin) return pin.exitWith;
    process.stderr.write(`bench table: ${pin.pinning.note}\n`);
    index = await measureAll(o, pin.pinning.serverCpu, pin.pinning.note);
  }
  const body = renderTable(index);
  console.log(body);
  if (o.doc) {
    writeIntoDoc(path.resolve(o.doc), body);
    process.stderr.write(`wrote the table into ${o.doc}\n`);
  }
  return 0;
}

if (require.main === module) runMain(main);

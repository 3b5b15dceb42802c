import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_RATE, DEFAULTS, SCENARIO_NAMES, parseHostPort, type BenchOptions, type ScenarioName } from './options';
import { writeOutputs } from './outputs';
import { StatusLine } from './progress';
import { formatText, overallVerdict } from './report-text';
import { compareWithBaseline, runOn, type Target } from './targets';

interface BenchFlags {
  url: string;
  tcp: string;
  clients: number;
  duration: number;
  payload: number;
  rate?: number;
  roomSize: number;
  workers: number;
  warmup: number;
  connections: number;
  concurrency: number;
  drain: number;
  targetPid?: number;
  json?: string;
  report?: string;
  baseline?: boolean;
  compare?: boolean;
  spawn?: boolean;
  serverCpu?: number;
}

const SCENARIO_HELP = `scenarios:
  pingpong    closed loop: each client sends, the backend echoes it back (message_to_connection), the client sends the next
  throughput  open loop at --rate msgs/s over all clients, echoed back; latency from each message's intended send time
  fanout      --room-size clients in one room; the backend publishes to it (message_to_room) at --rate
  broadcast   --clients clients; the backend broadcasts at --rate
  connect     opens --connections clients through backend validation, then holds them idle for --duration s

The harness runs its own backend (our SDK) on the target's --tcp port and its WebSocket clients in --workers
child processes. Pin roles to cores when measuring, e.g. broker on core 0 and harness on core 1:
  taskset -c 1 strands bench pingpong --spawn --server-cpu 0 --compare
A run that lost messages or saw errors says so in its verdict and exits with status 1.`;

function whole(min: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}`);
    return n;
  };
}

function positive(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
}

function hostPort(text: string): string {
  try {
    parseHostPort(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return text;
}

/**
 * `strands bench <scenario>`, the bundled load harness, as a command of its own:
 * main.ts loads this module, and the harness with it, only when `strands bench` runs.
 */
export function benchCommand(): Command {
  const d = DEFAULTS;
  return new Command('strands bench')
    .description('measure a broker (or the bare uWebSockets.js baseline) under load')
    .addArgument(new Argument('<scenario>', 'what to measure').choices(SCENARIO_NAMES))
    .option('--url <url>', 'target WebSocket URL', d.url)
    .option('--tcp <host:port>', "target's backend TCP address", hostPort, `${d.tcp.host}:${d.tcp.port}`)
    .option('--clients <n>', 'WebSocket clients (pingpong, throughput, broadcast)', whole(1), d.clients)
    .option('--duration <s>', 'measured window, seconds (connect: how long connections are held)', positive, d.duration)
    .option('--warmup <s>', 'traffic before the measured window, seconds', positive, d.warmup)
    .option('--payload <bytes>', 'bytes per message', whole(32), d.payload)
    .option('--rate <n>', `msgs/s: sent by all clients (throughput), published (fanout, broadcast); defaults ${JSON.stringify(DEFAULT_RATE)}`, positive)
    .option('--room-size <n>', 'clients in the fanout room', whole(1), d.roomSize)
    .option('--workers <n>', 'child processes running the WebSocket clients', whole(1), d.workers)
    .option('--connections <n>', 'connections to open (connect)', whole(1), d.connections)
    .option('--concurrency <n>', 'handshakes in flight at once', whole(1), d.concurrency)
    .option('--drain <s>', 'grace after the window for messages in flight, before they count as lost', positive, d.drain)
    .option('--target-pid <pid>', "measure CPU and RSS of the broker: this process, or the one of its descendants that listens on --url's port (when given npm's or a shell's pid)", whole(1))
    .option('--json <file>', 'write the result as JSON')
    .option('--report <file.html>', 'write a self-contained HTML report')
    .addOption(new Option('--baseline', 'target a bare uWebSockets.js server started by the harness instead of a broker').conflicts(['compare', 'spawn']))
    .option('--compare', 'run against the target, then against the baseline, and report both with their ratios')
    .option('--spawn', 'target a broker of this build started by the harness on free ports (its pid is measured)')
    .option('--server-cpu <n>', 'pin servers the harness starts (--spawn, --baseline, --compare) to this CPU with taskset', whole(0))
    .addHelpText('after', `\n${SCENARIO_HELP}`)
    .action(async (scenario: ScenarioName, flags: BenchFlags) => {
      const status = new StatusLine();
      const options: Partial<BenchOptions> & { scenario: ScenarioName } = {
        scenario,
        url: flags.url,
        tcp: parseHostPort(flags.tcp),
        clients: flags.clients,
        duration: flags.duration,
        warmup: flags.warmup,
        payload: flags.payload,
        rate: flags.rate,
        roomSize: flags.roomSize,
        workers: flags.workers,
        connections: flags.connections,
        concurrency: flags.concurrency,
        drain: flags.drain,
        targetPid: flags.targetPid,
        onProgress: status.update,
      };
      const target: Target = flags.baseline ? { kind: 'baseline' } : flags.spawn ? { kind: 'spawn' } : { kind: 'running' };
      let result;
      try {
        result = flags.compare ? await compareWithBaseline(target, options, flags.serverCpu) : await runOn(target, options, flags.serverCpu);
      } finally {
        status.end();
      }
      process.stdout.write(formatText(result));
      writeOutputs(result, { json: flags.json, report: flags.report });
      if (overallVerdict(result) !== 'OK') process.exitCode = 1;
    });
}

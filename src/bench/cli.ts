import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { checkNodeChoice, DEFAULT_RATE, DEFAULTS, MAX_NODES, resolveOptions, SCENARIO_NAMES, parseHostPort, type BenchOptions, type ScenarioName } from './options';
import { writeOutputs } from './outputs';
import { exitOnSignals } from './processes';
import { StatusLine } from './progress';
import { formatText, overallVerdict } from './report-text';
import { compareWithBaseline, runOn, type Target } from './targets';

interface BenchFlags {
  /** A string while only the default is there; every --url given, once one is. */
  url: string | string[];
  tcp: string | string[];
  backendNode: number;
  clientNodes?: number[];
  metrics?: string[];
  natsPid?: number;
  nodes: number;
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
  targetPid?: number[];
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
A cluster: --spawn --nodes 2 starts nats-server and two brokers joined to it (all pinned to --server-cpu), spreads
the clients over both and reports each broker's CPU per delivery, their sum, nats-server's CPU, the latency that
crossing nodes adds and the bus's frames/s. A cluster already running: give --url once per node (and --target-pid,
--metrics once per node, in the same order; --tcp once or once per node).
A run that lost messages or saw errors says so in its verdict and exits with status 1.`;

function whole(min: number, max = Infinity): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || n < min || n > max) throw new InvalidArgumentError(max === Infinity ? `expected a whole number >= ${min}` : `expected a whole number from ${min} to ${max}`);
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
 * An option that may be given more than once: the values in order. The first
 * one given replaces the default, which commander hands over as `previous`.
 */
function repeatable<T>(parse: (text: string) => T): (text: string, previous: T[] | T | undefined) => T[] {
  return (text, previous) => [...(Array.isArray(previous) ? previous : []), parse(text)];
}

/** "1,3": whole numbers >= 1, comma-separated. */
function nodeList(text: string): number[] {
  return text.split(',').map(whole(1));
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
    .option('--url <url>', 'target WebSocket URL; once per node of a cluster (clients are spread round-robin over them)', repeatable(String), d.url)
    .option('--tcp <host:port>', "target's backend TCP address, where the harness's backend connects; once, or once per --url", repeatable(hostPort), `${d.tcp.host}:${d.tcp.port}`)
    .option('--backend-node <n>', "with several nodes: the one (1-based, in --url order) the harness's backend is on", whole(1), d.backendNode)
    .option('--client-nodes <list>', 'with several nodes: those (comma-separated, 1-based) whose clients are spread over (default: all)', nodeList)
    .option('--nodes <n>', `with --spawn: start this many brokers (up to ${MAX_NODES}) as a cluster over a nats-server the harness starts too`, whole(1, MAX_NODES), 1)
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
    .option('--target-pid <pid>', "measure CPU and RSS of the broker: this process, or the one of its descendants that listens on --url's port (when given npm's or a shell's pid); once per --url", repeatable(whole(1)))
    .option('--metrics <host:port>', "a cluster node's metrics address (its --metrics-port), once per --url: the bus's frames/s", repeatable(hostPort))
    .option('--nats-pid <pid>', "a cluster's nats-server: its CPU is reported apart from the brokers'", whole(1))
    .option('--json <file>', 'write the result as JSON')
    .option('--report <file.html>', 'write a self-contained HTML report')
    .addOption(new Option('--baseline', 'target a bare uWebSockets.js server started by the harness instead of a broker').conflicts(['compare', 'spawn']))
    .option('--compare', 'run against the target, then against the baseline, and report both with their ratios')
    .option('--spawn', 'target a broker of this build started by the harness on free ports (its pid is measured)')
    .option('--server-cpu <n>', 'pin servers the harness starts (--spawn, --baseline, --compare) to this CPU with taskset', whole(0))
    .addHelpText('after', `\n${SCENARIO_HELP}`)
    .action(async (scenario: ScenarioName, flags: BenchFlags, command: Command) => {
      const status = new StatusLine();
      const tcp = typeof flags.tcp === 'string' ? [flags.tcp] : flags.tcp;
      const options: Partial<BenchOptions> & { scenario: ScenarioName } = {
        scenario,
        url: flags.url,
        tcp: tcp.length === 1 ? parseHostPort(tcp[0]!) : tcp.map(parseHostPort),
        backendNode: flags.backendNode,
        clientNodes: flags.clientNodes,
        metrics: flags.metrics?.map(parseHostPort),
        natsPid: flags.natsPid,
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
        targetPid: flags.targetPid?.length === 1 ? flags.targetPid[0] : flags.targetPid,
        onProgress: status.update,
      };
      if (flags.nodes > 1 && !flags.spawn) command.error('error: --nodes starts a cluster: it needs --spawn');
      if (flags.nodes > 1 && flags.compare) command.error('error: a cluster is not compared with the baseline: measure it and one broker (--nodes 1) in two runs');
      try {
        // The servers the harness starts replace the URLs, addresses and pids; what is left is checked before anything starts.
        if (flags.spawn || flags.baseline) checkNodeChoice(flags.nodes, options.backendNode!, options.clientNodes);
        else resolveOptions(options);
      } catch (err) {
        command.error(`error: ${(err as Error).message}`);
      }
      exitOnSignals();
      const target: Target = flags.baseline ? { kind: 'baseline' } : flags.spawn ? { kind: 'spawn', nodes: flags.nodes } : { kind: 'running' };
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

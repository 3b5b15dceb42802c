/**
 * A deliberate regression for the bench gate's own test: loaded into every
 * node process of a gate run with `NODE_OPTIONS=--require <this file>` and
 * `GATE_SLOWDOWN=0.3`, it makes the code behind each gated figure that much
 * slower with a busy-wait, without a line of test code in the broker. It acts
 * by the script the process runs:
 *
 * - the broker (dist/src/main.js): BackendRouter.prototype.route, called for
 *   every backend line (one per pingpong round trip, one per fanout publish),
 *   spins off a debt of GATE_SLOWDOWN times the CPU time the process spent
 *   otherwise, counted every 10 ms: the broker's CPU per op grows by that
 *   fraction whatever the load.
 * - the gate (dist/scripts/bench-gate.js): LineFramer.prototype.push and the
 *   newMessageLine serializer spin after each call, GATE_SLOWDOWN times the
 *   cost per byte or per event of the gate's own cases (the `ours` side of
 *   its framer-floor and new_message pairs), timed at their first call.
 * - any other process (the bare uWS server, the harness and its workers): nothing.
 *
 * Each process that acts says so on stderr (and in GATE_SLOWDOWN_LOG). The
 * modules it slows are loaded lazily, so the others load nothing.
 */
import { appendFileSync } from 'node:fs';
import * as path from 'node:path';

/** The environment variable that turns this on: the fraction to add, e.g. 0.3. */
export const SLOWDOWN_ENV = 'GATE_SLOWDOWN';
/** Where each process that acts also appends what it did (the harness drops the servers' stderr). */
export const SLOWDOWN_LOG_ENV = 'GATE_SLOWDOWN_LOG';

const fraction = Number(process.env[SLOWDOWN_ENV]);
const script = process.argv[1] === undefined ? '' : path.resolve(process.argv[1]);
const dist = path.resolve(__dirname, '..', '..');

/** A line on stderr, and in the GATE_SLOWDOWN_LOG file if set. */
function say(line: string): void {
  process.stderr.write(`gate-slowdown: ${line}\n`);
  const log = process.env[SLOWDOWN_LOG_ENV];
  if (log) appendFileSync(log, `${line}\n`);
}

/** Written by the spin loops so that V8 cannot drop them. */
let spinSink = 0;

/** Busy-waits `n` steps of a loop V8 cannot remove (a step is about a ns). */
function spinSteps(n: number): void {
  let acc = spinSink;
  for (let i = 0; i < n; i++) acc = (Math.imul(acc, 1664525) + 1013904223) | 0;
  spinSink = acc;
}

/** This process's CPU time in ms: what the gate measures, and what a spin must add (time spent preempted does not count). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Busy-waits `ms` of this process's CPU time, read at every turn (for the broker's debts: tens of microseconds and up); returns what it spun. */
function spinCpuMs(ms: number): number {
  const start = cpuMs();
  let now = start;
  while (now - start < ms) now = cpuMs();
  return now - start;
}

/** In the broker: route() pays a CPU debt of `fraction` times the process's other CPU time. */
function slowBroker(): void {
  const { BackendRouter } = require(path.join(dist, 'src', 'backends', 'backend-router')) as typeof import('../../src/backends/backend-router');
  const route = BackendRouter.prototype.route;
  let owedMs = 0;
  let spunMs = 0;
  let spunTotal = 0;
  let naturalTotal = 0;
  let last = cpuMs();
  setInterval(() => {
    const now = cpuMs();
    const natural = Math.max(0, now - last - spunMs);
    last = now;
    spunMs = 0;
    naturalTotal += natural;
    owedMs += fraction * natural;
  }, 10).unref();
  BackendRouter.prototype.route = function (this: InstanceType<typeof BackendRouter>, ...args: Parameters<typeof route>): void {
    route.apply(this, args);
    if (owedMs > 0) {
      const spun = spinCpuMs(owedMs);
      owedMs -= spun;
      spunMs += spun;
      spunTotal += spun;
    }
  };
  say(`broker pid ${process.pid}: BackendRouter.route spins ${fraction} x the process's other CPU time`);
  process.on('exit', () => say(`broker pid ${process.pid} spun ${spunTotal.toFixed(0)} ms over ${naturalTotal.toFixed(0)} ms of its own CPU (+${((100 * spunTotal) / naturalTotal).toFixed(1)} %)`));
}

/** ns of CPU per call of `fn` over a stretch of ~`ms` of CPU time. */
function nsPerCall(fn: () => void, ms: number): number {
  const t0 = cpuMs();
  let calls = 0;
  while (cpuMs() - t0 < ms) {
    fn();
    calls++;
  }
  return ((cpuMs() - t0) * 1e6) / calls;
}

/** The `ours` side of the named pairs of a micro suite. */
function oursOf(suite: import('../../bench/micro/common').MicroSuite, keys: readonly string[]): Array<() => void> {
  return keys.map((key) => {
    const pair = suite.pairs.find((p) => p.key === key);
    if (pair === undefined) throw new Error(`gate-slowdown: no pair ${key}`);
    return pair.ours.fn;
  });
}

function geomeanOf(values: number[]): number {
  return Math.exp(values.reduce((a, v) => a + Math.log(v), 0) / values.length);
}

/** ns of CPU per call of `fn` once V8 has optimized it: the fastest of 5 stretches of ~30 ms (the least disturbed) after ~300 ms. */
function warmNsPerCall(fn: () => void): number {
  nsPerCall(fn, 300);
  return Math.min(...Array.from({ length: 5 }, () => nsPerCall(fn, 30)));
}

/** The gate's own cases for some code, and how many units (bytes, calls) of it one call of each case runs. */
interface Cases {
  fns: Array<() => void>;
  units: number[];
}

/** A spin whose length (in steps per unit: per byte, per call) is set at the first call of what it slows. */
class CalibratedSpin {
  /** Undefined until calibrated; 0 while calibrating. */
  private level: number | undefined;

  constructor(
    readonly name: string,
    /** Built when calibration starts. */
    private readonly cases: () => Cases,
  ) {}

  /**
   * Sets the level to `fraction` of the cases' ns per unit (the geometric
   * mean over the cases, as the gate reads them), in spin steps. Timed warm
   * and on the CPU clock, as the gate times them; the gate's own figures for
   * the slowed code show what it added (docs/benchmarks.md).
   */
  private calibrate(): void {
    this.level = 0;
    const { fns, units } = this.cases();
    const nsPerUnit = geomeanOf(fns.map((fn, i) => warmNsPerCall(fn) / units[i]!));
    const steps = 1e5;
    const nsPerStep = warmNsPerCall(() => spinSteps(steps)) / steps;
    this.level = (fraction * nsPerUnit) / nsPerStep;
    say(`gate pid ${process.pid}: ${this.name} spins ${(this.level * nsPerStep).toFixed(3)} ns per unit, ${fraction} x the ${nsPerUnit.toFixed(3)} ns per unit of the gate's cases`);
  }

  /** The steps to spin for `units` (bytes, calls) of work, calibrating first if this is the first call. */
  steps(units: number): number {
    if (this.level === undefined) this.calibrate();
    return units * this.level!;
  }
}

/**
 * In the gate: LineFramer.push spins a number of steps per byte pushed (a
 * push's cost is mostly decoding), and newMessageLine a number per call, each
 * calibrated at its first call (in the process that measures: the gate
 * re-starts itself pinned) on the gate's own cases, the `ours` side of its
 * framer-floor and new_message pairs.
 */
function slowMicro(): void {
  const { LineFramer } = require(path.join(dist, 'src', 'protocol', 'line-framer')) as typeof import('../../src/protocol/line-framer');
  const serializers = require(path.join(dist, 'src', 'protocol', 'serializers')) as typeof import('../../src/protocol/serializers');
  const bench = (file: string): unknown => require(path.join(dist, 'bench', 'micro', file));
  const runAll = (): typeof import('../../bench/micro/run-all') => bench('run-all') as typeof import('../../bench/micro/run-all');

  const framerSpin = new CalibratedSpin('LineFramer.push', () => {
    const framer = bench('framer.bench') as typeof import('../../bench/micro/framer.bench');
    const streams = framer.workloads();
    return { fns: oursOf(framer.framerSuite(), runAll().FRAMER_FLOOR_PAIRS), units: framer.FLOOR_WORKLOADS.map((key) => streams.find((w) => w.key === key)!.stream.bytes) };
  });
  const push = LineFramer.prototype.push;
  LineFramer.prototype.push = function (this: InstanceType<typeof LineFramer>, chunk: Buffer): void {
    const steps = framerSpin.steps(chunk.length);
    push.call(this, chunk);
    spinSteps(steps);
  };

  // A case serializes (and joins) a batch of 16 events.
  const serializerSpin = new CalibratedSpin('newMessageLine', () => ({
    fns: oursOf((bench('serializers.bench') as typeof import('../../bench/micro/serializers.bench')).serializersSuite(), [runAll().SERIALIZER_PAIR]),
    units: [16],
  }));
  const newMessageLine = serializers.newMessageLine;
  serializers.newMessageLine = (message, contextJson) => {
    const steps = serializerSpin.steps(1);
    const line = newMessageLine(message, contextJson);
    spinSteps(steps);
    return line;
  };
  say(`gate pid ${process.pid}: LineFramer.push and newMessageLine will spin ${fraction} x the gate's cases, calibrated at their first call`);
}

if (fraction > 0) {
  if (script === path.join(dist, 'src', 'main.js')) slowBroker();
  else if (script === path.join(dist, 'scripts', 'bench-gate.js')) slowMicro();
}

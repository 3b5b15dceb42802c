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
 * - the gate (dist/scripts/bench-gate.js): LineFramer.prototype.push spins
 *   GATE_SLOWDOWN times the time each call took; the newMessageLine
 *   serializer spins GATE_SLOWDOWN times the cost per event of the gate's
 *   new_message case, timed here once with the original. Spin steps are
 *   converted from time with their cost measured at start-up.
 * - any other process (the bare uWS server, the harness and its workers): nothing.
 *
 * Each process that acts says so on stderr.
 */
import * as path from 'node:path';

/** The environment variable that turns this on: the fraction to add, e.g. 0.3. */
export const SLOWDOWN_ENV = 'GATE_SLOWDOWN';

const fraction = Number(process.env[SLOWDOWN_ENV]);
const script = process.argv[1] === undefined ? '' : path.resolve(process.argv[1]);
const dist = path.resolve(__dirname, '..', '..');

/** Written by the spin loops so that V8 cannot drop them. */
let spinSink = 0;

/** Busy-waits `n` steps of a loop V8 cannot remove (a step is a few tenths of a ns). */
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

/** Busy-waits `ms` of this process's CPU time (for the broker's debts: microseconds and up); returns what it spun. */
function spinCpuMs(ms: number): number {
  const start = cpuMs();
  let now = start;
  while (now - start < ms) now = cpuMs();
  return now - start;
}

/** In the broker: route() pays a CPU debt of `fraction` times the process's other CPU time. */
function slowBroker(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
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
  process.stderr.write(`gate-slowdown: broker pid ${process.pid}: BackendRouter.route spins ${fraction} x the process's other CPU time\n`);
  process.on('exit', () => process.stderr.write(`gate-slowdown: broker pid ${process.pid} spun ${spunTotal.toFixed(0)} ms over ${naturalTotal.toFixed(0)} ms of its own CPU\n`));
}

/** ns of CPU per call of `fn`: the median of 5 stretches of ~20 ms, after a warm-up. */
function nsPerCall(fn: () => void): number {
  const cpuNs = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) * 1000;
  };
  const stretch = (ns: number): number => {
    const t0 = cpuNs();
    let calls = 0;
    while (cpuNs() - t0 < ns) {
      fn();
      calls++;
    }
    return (cpuNs() - t0) / calls;
  };
  stretch(20e6);
  const s = Array.from({ length: 5 }, () => stretch(20e6)).sort((a, b) => a - b);
  return s[2]!;
}

/** ns of CPU per step of spinSteps, over ~50 ms. */
function nsPerStep(): number {
  spinSteps(1e6);
  let steps = 0;
  const t0 = cpuMs();
  while (cpuMs() - t0 < 50) {
    spinSteps(1e5);
    steps += 1e5;
  }
  return ((cpuMs() - t0) * 1e6) / steps;
}

/** The `ours` side of the named pairs of a micro suite. */
function oursOf(suite: import('../../bench/micro/common').MicroSuite, keys: readonly string[]): Array<() => void> {
  return keys.map((key) => {
    const pair = suite.pairs.find((p) => p.key === key);
    if (pair === undefined) throw new Error(`gate-slowdown: no pair ${key}`);
    return pair.ours.fn;
  });
}

/**
 * In the gate: LineFramer.push spins a number of steps per byte pushed, and
 * newMessageLine a number per call, each sized to `fraction` of the gate's
 * own cases (the `ours` side of its framer-floor and new_message pairs),
 * timed here once with the originals. Per byte, because a push's cost is
 * mostly decoding; the two framer cases differ a little in ns per byte, so
 * the spin is sized to their geometric mean, which is what the gate reads.
 */
function slowMicro(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { LineFramer } = require(path.join(dist, 'src', 'protocol', 'line-framer')) as typeof import('../../src/protocol/line-framer');
  const serializers = require(path.join(dist, 'src', 'protocol', 'serializers')) as typeof import('../../src/protocol/serializers');
  const { framerSuite, workloads, FLOOR_WORKLOADS } = require(path.join(dist, 'bench', 'micro', 'framer.bench')) as typeof import('../../bench/micro/framer.bench');
  const { serializersSuite } = require(path.join(dist, 'bench', 'micro', 'serializers.bench')) as typeof import('../../bench/micro/serializers.bench');
  const { FRAMER_FLOOR_PAIRS, SERIALIZER_PAIR } = require(path.join(dist, 'bench', 'micro', 'run-all')) as typeof import('../../bench/micro/run-all');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const stepNs = nsPerStep();

  const framerCases = oursOf(framerSuite(), FRAMER_FLOOR_PAIRS);
  const streams = workloads();
  const nsPerByte = FLOOR_WORKLOADS.map((key, i) => nsPerCall(framerCases[i]!) / streams.find((w) => w.key === key)!.stream.bytes);
  const stepsPerByte = (fraction * geomeanOf(nsPerByte)) / stepNs;
  const push = LineFramer.prototype.push;
  LineFramer.prototype.push = function (this: InstanceType<typeof LineFramer>, chunk: Buffer): void {
    push.call(this, chunk);
    spinSteps(chunk.length * stepsPerByte);
  };

  const [newMessageCase] = oursOf(serializersSuite(), [SERIALIZER_PAIR]);
  const nsPerEvent = nsPerCall(newMessageCase!) / 16; // a case serializes and joins a batch of 16 events
  const stepsPerCall = (fraction * nsPerEvent) / stepNs;
  const newMessageLine = serializers.newMessageLine;
  serializers.newMessageLine = (message, contextJson) => {
    const line = newMessageLine(message, contextJson);
    spinSteps(stepsPerCall);
    return line;
  };
  process.stderr.write(
    `gate-slowdown: gate pid ${process.pid} (${stepNs.toFixed(2)} ns per spin step): LineFramer.push spins ${(stepsPerByte * stepNs).toFixed(3)} ns per byte (${fraction} x ${nsPerByte.map((n) => n.toFixed(3)).join(' and ')} ns per byte of the gate's framer cases); newMessageLine spins ${(stepsPerCall * stepNs).toFixed(0)} ns per call (${fraction} x ${nsPerEvent.toFixed(0)} ns per event of the new_message case)\n`,
  );
}

function geomeanOf(values: number[]): number {
  return Math.exp(values.reduce((a, v) => a + Math.log(v), 0) / values.length);
}

if (fraction > 0) {
  if (script === path.join(dist, 'src', 'main.js')) slowBroker();
  else if (script === path.join(dist, 'scripts', 'bench-gate.js')) slowMicro();
}

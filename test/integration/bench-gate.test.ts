/**
 * The bench gate (scripts/bench-gate.ts) fails when the code behind its
 * figures is 30 % slower. test/helpers/gate-slowdown.ts, a preload (nothing
 * in the broker changes), slows the framer and the serializer in the gate's
 * own process and adds 30 % to every broker's CPU time; the gate, run with
 * fewer rounds and short end-to-end pairs through its own flags, must fail,
 * and each micro check with it, while the same micro benchmarks without the
 * slowdown pass and move by about 30 % with it.
 *
 * The end-to-end checks run here on the slowed brokers, through the same
 * comparison code, but one or two short pairs next to the other test files
 * cannot call a 30 % change in a figure whose pairs spread by +-25 %: that
 * each of them fails a 30 % slowdown at full length is measured in
 * docs/benchmarks.md ("The CI gate").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { THRESHOLDS, type GateReport } from '../../scripts/bench-gate';
import { SLOWDOWN_ENV, SLOWDOWN_LOG_ENV } from '../helpers/gate-slowdown';

const GATE = path.join(__dirname, '..', '..', 'scripts', 'bench-gate.js');
const PRELOAD = path.join(__dirname, '..', 'helpers', 'gate-slowdown.js');
const MICRO = ['--micro-rounds', '5'];
const E2E = ['--runs', '2', '--max-runs', '2', '--duration', '2', '--warmup', '0.5'];
const MICRO_CHECKS = ['framerVsFloor', 'serializersVsJson'];
const E2E_CHECKS = ['pingpongCpu', 'fanoutCpu'];

interface GateRun {
  code: number | null;
  output: string;
  report: GateReport;
}

async function runGate(dir: string, name: string, flags: string[], env: NodeJS.ProcessEnv): Promise<GateRun> {
  const json = path.join(dir, `${name}.json`);
  const child = spawn(process.execPath, [GATE, ...flags, '--json', json], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output, report: JSON.parse(readFileSync(json, 'utf8')) as GateReport };
}

function check(run: GateRun, id: string): GateReport['checks'][number] {
  const found = run.report.checks.find((c) => c.id === id);
  assert.ok(found, `no check ${id} in the report:\n${run.output}`);
  return found;
}

test('the bench gate fails when the code behind each gated figure is 30 % slower', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strands-gate-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'slowdown.log');
  // Inherited NODE_OPTIONS (a test runner's) would reach the servers and workers too.
  const clean = await runGate(dir, 'clean', [...MICRO, '--skip-e2e'], { NODE_OPTIONS: '', [SLOWDOWN_ENV]: '' });
  const slowed = await runGate(dir, 'slowed', [...MICRO, ...E2E], { NODE_OPTIONS: `--require ${PRELOAD}`, [SLOWDOWN_ENV]: '0.3', [SLOWDOWN_LOG_ENV]: log });

  assert.equal(clean.code, 0, `the micro benchmarks failed without a slowdown:\n${clean.output}`);
  assert.equal(slowed.code, 1, `the gate passed a 30 % slowdown:\n${slowed.output}`);
  assert.deepEqual([...MICRO_CHECKS, ...E2E_CHECKS].sort(), Object.keys(THRESHOLDS).sort(), 'every gated figure is covered here');

  const acted = readFileSync(log, 'utf8');
  assert.match(acted, /gate pid \d+: LineFramer\.push spins/, 'the framer was slowed in the gate');
  assert.match(acted, /gate pid \d+: newMessageLine spins/, 'the serializer was slowed in the gate');
  const brokers = [...acted.matchAll(/broker pid \d+ spun \d+ ms over \d+ ms of its own CPU \(\+([\d.]+) %\)/g)].map((m) => Number(m[1]));
  assert.equal(brokers.length, E2E_CHECKS.length, `one broker per end-to-end scenario was slowed:\n${acted}`);
  for (const added of brokers) assert.ok(added > 27 && added < 33, `a broker's CPU grew by ${added} %, not 30 %:\n${acted}`);

  for (const id of MICRO_CHECKS) {
    const before = check(clean, id);
    const after = check(slowed, id);
    assert.equal(before.pass, true, `${id} failed without a slowdown:\n${clean.output}`);
    assert.equal(after.pass, false, `${id} passed a 30 % slowdown:\n${slowed.output}`);
    // About 30 %, not an order of magnitude.
    const moved = before.value! / after.value!;
    assert.ok(moved > 1.1 && moved < 2, `${id} moved by ${moved.toFixed(2)}x:\n${clean.output}\n${slowed.output}`);
  }
  for (const id of E2E_CHECKS) assert.ok(Number.isFinite(check(slowed, id).value), `${id} was measured on the slowed brokers:\n${slowed.output}`);
  // The slowdown slows; it loses and breaks nothing.
  assert.equal(check(slowed, 'noLoss').pass, true, slowed.output);
});

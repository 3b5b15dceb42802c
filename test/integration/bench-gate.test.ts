/**
 * The bench gate (scripts/bench-gate.ts) catches a regression: with the code
 * behind each gated figure made 30 % slower by test/helpers/gate-slowdown.ts
 * (a preload; nothing in the broker changes), every gated check fails. Fewer
 * and shorter pairs and rounds, through the gate's own flags, keep it to a
 * minute or two; the comparisons, the thresholds and the rule that adds pairs
 * to a close call are the gate's. The same micro benchmarks without the
 * slowdown pass, and move by about 30 % with it. (The end-to-end figures
 * without it are in docs/benchmarks.md: a short clean run next to the other
 * test files proves nothing a full one does not.)
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
const E2E = ['--runs', '3', '--max-runs', '8', '--duration', '3', '--warmup', '0.5'];
const GATED = Object.keys(THRESHOLDS) as Array<keyof typeof THRESHOLDS>;

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
  const acted = readFileSync(log, 'utf8');
  assert.match(acted, /gate pid \d+: LineFramer\.push spins/, 'the framer was slowed in the gate');
  assert.match(acted, /gate pid \d+: newMessageLine spins/, 'the serializer was slowed in the gate');
  assert.match(acted, /broker pid \d+ spun/, 'the brokers were slowed');
  for (const id of GATED) assert.equal(check(slowed, id).pass, false, `${id} passed a 30 % slowdown:\n${slowed.output}`);
  for (const id of ['framerVsFloor', 'serializersVsJson']) {
    const before = check(clean, id);
    assert.equal(before.pass, true, `${id} failed without a slowdown:\n${clean.output}`);
    // The slowdown moved the figure by about 30 %, not by an order of magnitude.
    const moved = before.value! / check(slowed, id).value!;
    assert.ok(moved > 1.1 && moved < 1.7, `${id} moved by ${moved.toFixed(2)}x:\n${clean.output}\n${slowed.output}`);
  }
  // The slowdown slows; it loses and breaks nothing.
  assert.equal(check(slowed, 'noLoss').pass, true, slowed.output);
});

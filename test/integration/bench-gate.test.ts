/**
 * The bench gate (scripts/bench-gate.ts) catches a regression: with the code
 * behind each gated figure made 30 % slower by test/helpers/gate-slowdown.ts
 * (a preload; nothing in the broker changes), every gated check fails, while
 * the same short gate without it passes. Short runs (fewer, shorter pairs and
 * rounds, through the gate's own flags) keep this near a minute; the
 * comparisons and thresholds are the gate's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { THRESHOLDS, type GateReport } from '../../scripts/bench-gate';
import { SLOWDOWN_ENV } from '../helpers/gate-slowdown';

const GATE = path.join(__dirname, '..', '..', 'scripts', 'bench-gate.js');
const PRELOAD = path.join(__dirname, '..', 'helpers', 'gate-slowdown.js');
const SHORT = ['--runs', '3', '--duration', '1.5', '--warmup', '0.5', '--micro-rounds', '5'];
const GATED = Object.keys(THRESHOLDS) as Array<keyof typeof THRESHOLDS>;

interface GateRun {
  code: number | null;
  output: string;
  report: GateReport;
}

async function runGate(dir: string, name: string, env: NodeJS.ProcessEnv): Promise<GateRun> {
  const json = path.join(dir, `${name}.json`);
  const child = spawn(process.execPath, [GATE, ...SHORT, '--json', json], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  // Inherited NODE_OPTIONS (a test runner's) would reach the servers and workers too.
  const clean = await runGate(dir, 'clean', { NODE_OPTIONS: '', [SLOWDOWN_ENV]: '' });
  const slowed = await runGate(dir, 'slowed', { NODE_OPTIONS: `--require ${PRELOAD}`, [SLOWDOWN_ENV]: '0.3' });

  assert.equal(clean.code, 0, `the gate failed without a slowdown:\n${clean.output}`);
  assert.equal(slowed.code, 1, `the gate passed a 30 % slowdown:\n${slowed.output}`);
  assert.match(slowed.output, /gate-slowdown: gate pid \d+/, 'the preload acted in the gate');
  for (const id of GATED) {
    const before = check(clean, id);
    const after = check(slowed, id);
    assert.equal(before.pass, true, `${id} failed without a slowdown:\n${clean.output}`);
    assert.equal(after.pass, false, `${id} passed a 30 % slowdown:\n${slowed.output}`);
    // The slowdown moved the figure by about 30 %, not by an order of magnitude.
    const moved = Math.max(before.value!, after.value!) / Math.min(before.value!, after.value!);
    assert.ok(moved > 1.1 && moved < 1.7, `${id} moved by ${moved.toFixed(2)}x (${before.value} -> ${after.value})`);
  }
  // The slowdown slows; it loses and breaks nothing.
  assert.equal(check(slowed, 'noLoss').pass, true, slowed.output);
});

/**
 * `strands bench` against a cluster: brokers and nats-server it starts itself
 * (--spawn --nodes N), or a cluster already running (--url once per node).
 * Each node's clients, CPU and bus frames are reported apart, nats-server's
 * CPU besides, and what crossing nodes adds to the latency.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runScenario, type BenchResult } from '../../src/bench';
import { descendantsOf } from '../../src/bench/target-process';
import { clusterNode } from '../helpers/cluster-nodes';
import { startNats } from '../helpers/nats';
import { MAIN_JS, runNode, spawnStrands } from '../helpers/spawn-broker';

/** Short runs: enough to go through every part, not to measure anything. */
const SHORT = ['--duration', '1', '--warmup', '0.3', '--drain', '5'];
const ROOM = 6;
const RATE = 20;

/** Runs `node dist/src/main.js bench ...args` to its end. */
function bench(args: string[]): ReturnType<typeof runNode> {
  return runNode([MAIN_JS, 'bench', ...args]);
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'strands-bench-cluster-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function clean(result: BenchResult): void {
  assert.equal(result.verdict, 'OK', `${result.verdict}: ${result.results.errorSamples.join('; ')}`);
  assert.ok(result.results.messages > 0, 'messages were published');
}

test('--spawn --nodes 2: nats-server and two brokers, the room split over them, every figure per node', async (t) => {
  const json = path.join(tempDir(t), 'cluster.json');
  const run = await bench(['fanout', '--spawn', '--nodes', '2', '--room-size', String(ROOM), '--rate', String(RATE), ...SHORT, '--json', json]);
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
  clean(result);
  const cluster = result.cluster!;
  assert.equal(cluster.backendNode, 1);
  assert.equal(cluster.nodes.length, 2);
  const [one, two] = cluster.nodes as [NonNullable<BenchResult['cluster']>['nodes'][0], NonNullable<BenchResult['cluster']>['nodes'][0]];
  // Round-robin: half the room on each node, and each of them got every publish of the window.
  for (const node of [one, two]) {
    assert.equal(node.connections, ROOM / 2);
    assert.equal(node.ops, result.results.messages * (ROOM / 2), `node ${node.node}: every member had every message`);
    assert.ok(node.cpuUsPerOp !== null && node.cpuUsPerOp > 0, `node ${node.node}'s CPU per delivery`);
    assert.ok(node.latencyUs !== null && node.latencyUs.p50 > 0);
  }
  assert.equal(result.results.deliveries, one.ops + two.ops);
  // The sum over the brokers: its CPU per delivery lies between the two nodes' own.
  const cpu = result.results.cpuUsPerOp!;
  assert.ok(cpu >= Math.min(one.cpuUsPerOp!, two.cpuUsPerOp!) - 0.001 && cpu <= Math.max(one.cpuUsPerOp!, two.cpuUsPerOp!) + 0.001, `${cpu} between the nodes' own`);
  assert.equal(one.overBackendNodeUs, null, 'the backend node is the reference');
  assert.deepEqual(two.overBackendNodeUs, { p50: two.latencyUs!.p50 - one.latencyUs!.p50, p99: two.latencyUs!.p99 - one.latencyUs!.p99 });
  // The backend publishes on node 1; node 2 takes every frame from the bus.
  assert.ok(one.bus!.published > 0 && one.bus!.received === 0, `node 1's bus: ${JSON.stringify(one.bus)}`);
  assert.ok(two.bus!.received > 0 && two.bus!.published === 0, `node 2's bus: ${JSON.stringify(two.bus)}`);
  assert.ok(cluster.bus!.publishedPerSecond > 0 && cluster.bus!.dropped === 0);
  assert.ok(cluster.nats!.pid !== null && ![one.pid, two.pid].includes(cluster.nats!.pid), 'nats-server is measured apart');
  assert.ok(cluster.nats!.cpuPercent !== null);
  assert.match(run.stdout, /^brokers summed: CPU \(µs per delivery\) +[\d.]+$/m);
  assert.match(run.stdout, /^node +1 \(backend\) +2$/m);
  assert.match(run.stdout, new RegExp(`^nats-server \\(pid ${cluster.nats!.pid}\\): `, 'm'));
  // Everything it started is gone with it.
  for (const pid of [one.pid, two.pid, cluster.nats!.pid]) assert.equal(existsSync(`/proc/${pid}`), false, `process ${pid} was stopped`);
});

test('--client-nodes 2: every member on node 2, the backend on node 1, so every message crosses the bus', async (t) => {
  const json = path.join(tempDir(t), 'remote.json');
  const run = await bench(['fanout', '--spawn', '--nodes', '2', '--client-nodes', '2', '--room-size', String(ROOM), '--rate', String(RATE), ...SHORT, '--json', json]);
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
  clean(result);
  const [one, two] = result.cluster!.nodes;
  assert.deepEqual([one!.connections, one!.ops, one!.latencyUs, one!.cpuUsPerOp], [0, 0, null, null], 'node 1 holds no client');
  assert.ok(one!.cpuPercent !== null, "node 1's CPU is still measured");
  assert.equal(two!.connections, ROOM);
  assert.equal(two!.ops, result.results.deliveries);
  assert.equal(two!.overBackendNodeUs, null, 'no client on the backend node to compare with');
  assert.equal(result.results.cpuUsPerOp !== null, true, 'both brokers summed over the deliveries');
});

test('a cluster already running: --url, --target-pid and --metrics once per node, the backend on node 2', async (t) => {
  const nats = await startNats(t);
  const a = await clusterNode(t, nats.url, 'a');
  const b = await clusterNode(t, nats.url, 'b');
  const json = path.join(tempDir(t), 'running.json');
  const args = ['fanout', '--room-size', String(ROOM), '--rate', String(RATE), ...SHORT, '--json', json, '--backend-node', '2', '--nats-pid', String(nats.child.pid)];
  for (const node of [a, b]) args.push('--url', `ws://127.0.0.1:${node.wsPort}/ws/bench`, '--tcp', `127.0.0.1:${node.tcpPort}`, '--target-pid', String(node.child.pid), '--metrics', `127.0.0.1:${node.metricsPort}`);
  const run = await bench(args);
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
  clean(result);
  assert.equal(result.target.tcp, `127.0.0.1:${b.tcpPort}`, "the backend connected to node 2's port");
  assert.equal(result.target.pid, b.child.pid);
  const [one, two] = result.cluster!.nodes;
  assert.deepEqual([one!.pid, two!.pid], [a.child.pid, b.child.pid]);
  assert.ok(one!.overBackendNodeUs !== null && two!.overBackendNodeUs === null, 'node 1 is measured against node 2, where the backend is');
  assert.ok(two!.bus!.published > 0 && one!.bus!.received > 0);
  assert.equal(result.cluster!.nats!.pid, nats.child.pid);

  await t.test('pingpong across nodes: events reach the backend over the bus, and the echoes come back', async () => {
    const pingpong = await runScenario({
      scenario: 'pingpong',
      clients: 4,
      duration: 1,
      warmup: 0.3,
      drain: 5,
      url: [a, b].map((n) => `ws://127.0.0.1:${n.wsPort}/ws/bench`),
      tcp: { host: '127.0.0.1', port: a.tcpPort },
      targetPid: [a.child.pid!, b.child.pid!],
    });
    clean(pingpong);
    assert.equal(pingpong.results.deliveries, pingpong.results.messages);
    assert.deepEqual(pingpong.cluster!.nodes.map((n) => n.connections), [2, 2]);
    assert.ok(pingpong.cluster!.nodes.every((n) => n.ops > 0 && n.bus === null), 'no metrics address given: no bus figures');
    assert.equal(pingpong.cluster!.bus, null);
    assert.equal(pingpong.cluster!.nats, null);
  });
});

test('cluster options that do not fit together: one line on stderr, status 2, nothing started', async () => {
  const two = ['--url', 'ws://127.0.0.1:1/a', '--url', 'ws://127.0.0.1:2/a'];
  const cases: Array<[string[], RegExp]> = [
    [['--nodes', '2'], /^strands: --nodes starts a cluster: it needs --spawn\n$/],
    [['--spawn', '--nodes', '2', '--compare'], /^strands: a cluster is not compared with the baseline/],
    [['--spawn', '--nodes', '17'], /^strands: option '--nodes <n>' argument '17' is invalid\. expected a whole number from 1 to 16\n$/],
    [['--spawn', '--nodes', '2', '--backend-node', '3'], /^strands: backendNode must be a node from 1 to 2, got 3\n$/],
    [['--spawn', '--nodes', '2', '--client-nodes', '2,2'], /^strands: clientNodes must name at least one node, each once\n$/],
    [['--spawn', '--client-nodes', '2'], /^strands: clientNodes must be nodes from 1 to 1, got 2\n$/],
    [['--client-nodes', '1,x'], /^strands: option '--client-nodes <list>' argument '1,x' is invalid\. expected a whole number >= 1\n$/],
    [['--url', 'ws://127.0.0.1:1/a', '--url', 'ws://127.0.0.1:1/a'], /^strands: each URL is one node: the same URL was given twice\n$/],
    [[...two, '--target-pid', '1'], /^strands: target pids: 1 given for 2 URLs; give one per URL, in the same order\n$/],
    [[...two, '--tcp', '127.0.0.1:1', '--tcp', '127.0.0.1:2', '--tcp', '127.0.0.1:3'], /^strands: tcp addresses: 3 given for 2 URLs; give one, or one per URL, in the same order\n$/],
    [[...two, '--metrics', '127.0.0.1:9'], /^strands: metrics addresses: 1 given for 2 URLs; give one per URL, in the same order\n$/],
    [['--url', 'http://127.0.0.1:1/a'], /^strands: url must be ws:\/\/ or wss:\/\/, got "http:\/\/127\.0\.0\.1:1\/a"\n$/],
    [Array.from({ length: 17 }, (_, i) => ['--url', `ws://127.0.0.1:${i + 1}/`]).flat(), /^strands: give 1 to 16 URLs, got 17\n$/],
  ];
  for (const [args, message] of cases) {
    const run = await bench(['fanout', ...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(' '));
    assert.equal(run.stdout, '', 'no run started');
  }
});

test('a wrong metrics address stops the run before any client connects, naming it', async (t) => {
  const nats = await startNats(t);
  const a = await clusterNode(t, nats.url, 'a');
  // The WebSocket port is no metrics port: it answers /metrics with HTTP 426, not counters.
  const wrong = `127.0.0.1:${a.wsPort}`;
  const run = await bench(['fanout', '--room-size', '2', ...SHORT, '--url', `ws://127.0.0.1:${a.wsPort}/ws/bench`, '--tcp', `127.0.0.1:${a.tcpPort}`, '--metrics', wrong]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, new RegExp(`^strands: cannot read the bus counters from http://${wrong}/metrics: HTTP \\d+\\n$`, 'm'));
});

/** Resolves once `pid` has exited (gone from /proc, or a zombie waiting to be reaped); rejects after 5 s. */
async function exited(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    let state: string;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
    } catch {
      return;
    }
    if (state === 'Z') return;
    if (Date.now() > deadline) throw new Error(`process ${pid} is still running (${state})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('SIGTERM in the middle of a cluster run: nats-server and the brokers it started are stopped too', async (t) => {
  const run = spawnStrands(t, ['bench', 'fanout', '--spawn', '--nodes', '2', '--room-size', '4', '--rate', '10', '--duration', '60']);
  await new Promise<void>((resolve) => {
    let seen = '';
    run.child.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      // The first status line comes once the clients are connected: every server is up.
      if (/fanout (warmup|measure)/.test(seen)) resolve();
    });
  });
  const servers = descendantsOf(run.child.pid!).filter((pid) => /nats-server|main\.js/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8')));
  assert.equal(servers.length, 3, 'nats-server and two brokers');
  run.child.kill('SIGTERM');
  assert.deepEqual(await run.exited, { code: 143, signal: null });
  await Promise.all(servers.map(exited));
});

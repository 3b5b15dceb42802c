import type { TestContext } from 'node:test';
import { RawBackend, type RawBackendOptions } from './raw-backend';
import { portOf, spawnBroker } from './spawn-broker';

export type Node = Awaited<ReturnType<typeof spawnBroker>> & { id: string; metricsPort: number };

/** A broker process that is node `id` of the cluster on `natsUrls`, with metrics on; heartbeats every 200 ms. */
export async function clusterNode(t: TestContext, natsUrls: string, id: string, args: string[] = []): Promise<Node> {
  const node = await spawnBroker(t, ['--cluster', natsUrls, '--node-id', id, '--cluster-heartbeat', '200', '--metrics-port', '0', '--log-level', 'info', ...args]);
  return { ...node, id, metricsPort: portOf(node.listening.metrics) };
}

/** Resolves once `node`'s directory has heard of `other` with this many backends. */
export function hears(node: Node, other: string, backends: number, timeoutMs = 10_000): Promise<unknown> {
  return node.stdout.next((l) => (l.msg === 'cluster: node joined' || l.msg === 'cluster: node backends') && l.node === other && l.backends === backends, timeoutMs, `node ${node.id} to hear of ${other} with ${backends} backends`);
}

/** One sample of a Prometheus series from a node's /metrics (0 when absent). */
export async function metric(node: Pick<Node, 'metricsPort'>, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(labels === '' ? `${name} ` : `${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The status of a node's /readyz. */
export async function readyz(node: Node): Promise<number> {
  return (await fetch(`http://127.0.0.1:${node.metricsPort}/readyz`)).status;
}

/** Node a with a raw backend, then node b once it has heard of that backend: where most cluster tests start. */
export async function nodeWithBackendThenPeer(t: TestContext, natsUrls: string, accept: RawBackendOptions['accept'] = true): Promise<{ a: Node; b: Node; backend: RawBackend }> {
  const a = await clusterNode(t, natsUrls, 'a');
  const backend = await RawBackend.connect(a.tcpPort, { accept });
  t.after(() => backend.kill());
  const b = await clusterNode(t, natsUrls, 'b');
  await hears(b, 'a', 1);
  return { a, b, backend };
}

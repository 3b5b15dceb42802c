/**
 * docs/grafana-dashboard.json must stay true to the broker: every metric its
 * queries name is one the registry exposes, and it imports with a Prometheus
 * datasource variable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildRegistry } from '../../src/metrics/metrics-server';
import { startBroker } from '../helpers/broker';
import { MemoryBus } from '../helpers/memory-bus';

interface Dashboard {
  schemaVersion: number;
  templating: { list: { name: string; type: string; query: unknown }[] };
  panels: { id: number; type: string; title: string; datasource: { uid: string }; targets: { expr: string; datasource: { uid: string } }[] }[];
}

const dashboard = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'docs', 'grafana-dashboard.json'), 'utf8')) as Dashboard;

/** The panels that show data; rows only group them. */
const panels = dashboard.panels.filter((p) => p.type !== 'row');

/** Every PromQL text in the dashboard: panel queries and variable queries. */
const queries = [...panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.filter((v) => v.type === 'query').map((v) => String(v.query))];

/** Names of the series of a broker that is a cluster node (which has every series), histograms with their _bucket, _sum and _count. */
async function exposedNames(): Promise<Set<string>> {
  const broker = await startBroker({ cluster: ['nats://in-memory'] }, { bus: (nodeId) => new MemoryBus().transport(nodeId) });
  try {
    const metrics = await buildRegistry(broker.broker.stats).getMetricsAsJSON();
    return new Set(metrics.flatMap((m) => (String(m.type) === 'histogram' ? ['_bucket', '_sum', '_count'].map((suffix) => m.name + suffix) : [m.name])));
  } finally {
    await broker.stop();
  }
}

test('every metric a dashboard query uses is one the broker exposes', async () => {
  const exposed = await exposedNames();
  const used = new Set(queries.flatMap((q) => q.match(/\bstrands_\w+/g) ?? []));
  assert.ok(used.size >= 10, `only ${used.size} metrics used`);
  for (const name of used) assert.ok(exposed.has(name), `${name} is not exposed; the broker has ${[...exposed].join(', ')}`);
  for (const query of queries) assert.match(query, /\bstrands_\w+/, `a query names no strands metric: ${query}`);
});

test('the dashboard imports: a Prometheus datasource variable that every panel uses, unique panel ids, a query in each panel', () => {
  assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  const source = dashboard.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
  assert.deepEqual([source?.type, source?.query], ['datasource', 'prometheus']);
  assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids repeat');
  for (const panel of panels) {
    assert.ok(panel.targets.length > 0, `${panel.title} has no query`);
    for (const uid of [panel.datasource.uid, ...panel.targets.map((t) => t.datasource.uid)]) assert.equal(uid, '${DS_PROMETHEUS}', panel.title);
  }
});

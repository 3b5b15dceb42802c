/**
 * deploy/docker-compose.yml and deploy/kubernetes.yaml must stay true to the
 * broker: their ports, probes and timeouts are checked against the settings a
 * container of the image resolves (the Dockerfile's ENV, then src/config.ts's
 * defaults), never against numbers written here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DEPLOY, durationMs, envName, image, LOOPBACK, published, readCompose, ROOT, settingsWith, SHUTDOWN_GUARD_MS, type ComposeService } from '../helpers/deploy-files';

// --- Docker Compose -------------------------------------------------------------

const compose = readCompose('docker-compose.yml');
const brokerName = Object.keys(compose.services).find((name) => compose.services[name]?.command === undefined) as string;
const broker = compose.services[brokerName] as ComposeService;
const composeSettings = settingsWith(broker.environment);
const backends = Object.entries(compose.services).filter(([name]) => name !== brokerName);

test('compose: the WebSocket port is published, the metrics port on loopback only, the backend port nowhere', () => {
  const ports = (broker.ports ?? []).map(published);
  assert.ok(ports.some((p) => p.containerPort === composeSettings.wsPort && p.hostPort === composeSettings.wsPort), `the WebSocket port ${composeSettings.wsPort} is published`);
  assert.ok(!ports.some((p) => p.containerPort === composeSettings.tcpPort), `the backend port ${composeSettings.tcpPort} is not published`);
  const metrics = ports.filter((p) => p.containerPort === composeSettings.metricsPort);
  assert.equal(metrics.length, 1, `the metrics port ${composeSettings.metricsPort} is published once`);
  assert.ok(LOOPBACK.includes(metrics[0]?.hostIp ?? ''), `the metrics port is published on ${metrics[0]?.hostIp ?? 'every interface'}, not loopback`);
  for (const p of ports) assert.ok([composeSettings.wsPort, composeSettings.metricsPort].includes(p.containerPort), `container port ${p.containerPort} is not one the broker serves`);
});

test('compose: every service runs the repository\'s Dockerfile; the example backend reaches the broker over the project network', () => {
  for (const [name, service] of Object.entries(compose.services)) {
    assert.equal(resolve(DEPLOY, service.build?.context ?? '(none)'), ROOT, `${name} is built from the repository root`);
    assert.equal(service.image, broker.image, `${name} runs the broker's image`);
  }
  assert.ok(backends.length > 0, 'an example backend service');
  assert.ok(!LOOPBACK.includes(composeSettings.tcpHost), `the backend port binds ${composeSettings.tcpHost}, unreachable from other containers`);
  for (const [name, backend] of backends) {
    const args = backend.command ?? [];
    const flag = (f: string): string | undefined => args[args.indexOf(f) + 1];
    assert.equal(args[0], 'echo-backend', `${name} runs a backend`);
    assert.equal(flag('--tcp-host'), brokerName, `${name} dials the broker by its service name`);
    assert.equal(Number(flag('--tcp-port')), composeSettings.tcpPort, `${name} dials the backend port`);
    assert.deepEqual(backend.depends_on?.[brokerName], { condition: 'service_healthy' }, `${name} starts once the broker is healthy`);
    assert.equal(backend.healthcheck?.disable, true, `${name} turns off the image's HEALTHCHECK, which asks a broker`);
  }
});

test('compose: the broker keeps the image\'s HEALTHCHECK on the metrics port, and Compose waits out its stop', () => {
  assert.ok(image.healthcheck !== undefined, 'the image has a HEALTHCHECK');
  assert.ok(image.healthcheck.join(' ').includes(`process.env.${envName('metricsPort')}`), 'the HEALTHCHECK asks the metrics port the image configures');
  assert.equal(broker.healthcheck?.disable, undefined, 'not disabled');
  assert.equal(broker.healthcheck?.test, undefined, 'not replaced: the image\'s is the one the replay runs');
  // Compose's default stop_grace_period is 10 s.
  const graceMs = durationMs(broker.stop_grace_period ?? '10s');
  const stopMs = composeSettings.drainTimeout + composeSettings.shutdownTimeout + SHUTDOWN_GUARD_MS;
  assert.ok(graceMs > stopMs, `stop_grace_period ${graceMs} ms is not above drain + shutdown + guard = ${stopMs} ms`);
});

// --- Kubernetes -------------------------------------------------------------------

interface Probe {
  httpGet: { path: string; port: string | number };
  periodSeconds?: number;
  failureThreshold?: number;
}
interface Container {
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports: { name: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: Record<string, unknown>;
}
interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}
interface Deployment {
  replicas: number;
  strategy?: { type: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } };
  template: {
    metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
    spec: { terminationGracePeriodSeconds?: number; securityContext?: { runAsNonRoot?: boolean }; containers: Container[] };
  };
}
interface Service {
  type?: string;
  publishNotReadyAddresses?: boolean;
  selector: Record<string, string>;
  ports: { name: string; port: number; targetPort: string | number }[];
}
interface NetworkPolicy {
  podSelector: { matchLabels: Record<string, string> };
  ingress: { from?: { podSelector?: unknown; ipBlock?: unknown; namespaceSelector?: unknown }[]; ports?: { port: string | number }[] }[];
}

const manifests = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes.yaml'), 'utf8')).map((doc) => {
  assert.deepEqual(doc.errors, []);
  return doc.toJS() as Manifest;
});
const ofKind = <T>(kind: string): (Manifest & { spec: T })[] => manifests.filter((m) => m.kind === kind) as (Manifest & { spec: T })[];
const [deployment] = ofKind<Deployment>('Deployment');
const pod = deployment?.spec.template as Deployment['template'];
const container = pod.spec.containers[0] as Container;
/** A value for each variable taken from a Secret: the broker only needs one to be there. */
const podEnv = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? `from-secret-${e.valueFrom?.secretKeyRef?.name}`]));
const podSettings = settingsWith(podEnv);

/** The container port a probe or Service names, by name or number. */
function containerPort(port: string | number): number | undefined {
  return typeof port === 'number' ? port : container.ports.find((p) => p.name === port)?.containerPort;
}

test('kubernetes: two brokers in one cluster over NATS, each with its own node id, replaced one at a time', () => {
  assert.equal(ofKind('Deployment').length, 1);
  assert.ok((deployment?.spec.replicas ?? 1) >= 2, 'more than one broker');
  assert.ok(podSettings.cluster !== undefined, `${envName('cluster')} joins the brokers`);
  for (const url of podSettings.cluster) assert.ok(!LOOPBACK.includes(new URL(url).hostname), `${url}: NATS is a Service, not the pod's loopback`);
  assert.equal(podSettings.nodeId, undefined, 'no fixed node id: every replica would share it');
  assert.equal(deployment?.spec.strategy?.type, 'RollingUpdate', 'a rollout keeps brokers serving');
  assert.equal(deployment?.spec.strategy?.rollingUpdate?.maxUnavailable, 0, 'never fewer brokers than the replicas');
});

test('kubernetes: the container ports are the broker\'s as the image\'s and the pod\'s env configure them, on reachable addresses', () => {
  assert.deepEqual(
    Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort])),
    { ws: podSettings.wsPort, backend: podSettings.tcpPort, metrics: podSettings.metricsPort },
  );
  for (const host of [podSettings.host, podSettings.tcpHost, podSettings.metricsHost]) assert.ok(!LOOPBACK.includes(host), `${host}: the kubelet and Services dial the pod's IP`);
  assert.equal(pod.metadata.annotations?.['prometheus.io/port'], String(podSettings.metricsPort));
});

test('kubernetes: readiness asks /readyz and liveness /healthz, both on the metrics port', () => {
  assert.equal(container.readinessProbe?.httpGet.path, '/readyz');
  assert.equal(container.livenessProbe?.httpGet.path, '/healthz');
  for (const probe of [container.readinessProbe, container.livenessProbe]) assert.equal(containerPort(probe?.httpGet.port ?? ''), podSettings.metricsPort);
});

test('kubernetes: the drain outlasts the readiness probe\'s failure window, and the grace period the broker\'s whole stop', () => {
  // Kubernetes' defaults: periodSeconds 10, failureThreshold 3.
  const readiness = container.readinessProbe as Probe;
  const notReadyAfterMs = (readiness.periodSeconds ?? 10) * (readiness.failureThreshold ?? 3) * 1000;
  assert.ok(podSettings.drainTimeout >= notReadyAfterMs, `--drain-timeout ${podSettings.drainTimeout} ms is shorter than the ${notReadyAfterMs} ms before the pod leaves the endpoints`);
  const graceMs = (pod.spec.terminationGracePeriodSeconds ?? 30) * 1000;
  const stopMs = podSettings.drainTimeout + podSettings.shutdownTimeout + SHUTDOWN_GUARD_MS;
  assert.ok(graceMs > stopMs, `terminationGracePeriodSeconds (${graceMs} ms) is not above drain + shutdown + guard = ${stopMs} ms`);
});

test('kubernetes: a Service for WebSocket clients, and an internal one for backends that lists brokers not yet ready', () => {
  const services = ofKind<Service>('Service');
  const selects = (s: Service): boolean => Object.entries(s.selector).every(([k, v]) => pod.metadata.labels[k] === v);
  const serving = (port: number | undefined): (Manifest & { spec: Service })[] => services.filter((s) => selects(s.spec) && s.spec.ports.some((p) => containerPort(p.targetPort) === port));
  const [ws, ...moreWs] = serving(podSettings.wsPort);
  const [backend, ...moreBackend] = serving(podSettings.tcpPort);
  assert.ok(ws && moreWs.length === 0, 'one Service for the WebSocket port');
  assert.ok(backend && moreBackend.length === 0, 'one Service for the backend port');
  assert.notEqual(ws.metadata.name, backend.metadata.name, 'separate Services');
  assert.equal(ws.spec.ports.length, 1, 'the WebSocket Service exposes nothing else');
  assert.equal(backend.spec.ports.length, 1, 'the backend Service exposes nothing else');
  assert.equal(backend.spec.type ?? 'ClusterIP', 'ClusterIP', 'backends reach it from inside the cluster only');
  assert.equal(backend.spec.publishNotReadyAddresses, true, 'with --queue-size 0 a broker is ready only once a backend connected');
  assert.equal(serving(podSettings.metricsPort).length, 0, 'no Service exposes the metrics port: probes and Prometheus dial the pod');
});

test('kubernetes: the backend port needs the token, and its NetworkPolicy admits backend pods only while probes still get through', () => {
  assert.ok(container.env?.some((e) => e.name === envName('backendToken') && e.valueFrom?.secretKeyRef !== undefined), `${envName('backendToken')} comes from a Secret`);
  assert.ok(podSettings.backendToken !== undefined);
  const [policy] = ofKind<NetworkPolicy>('NetworkPolicy');
  assert.ok(policy, 'a NetworkPolicy');
  assert.deepEqual(policy.spec.podSelector.matchLabels, pod.metadata.labels);
  const allowing = (port: number | undefined): NetworkPolicy['ingress'] => policy.spec.ingress.filter((rule) => rule.ports?.some((p) => containerPort(p.port) === port));
  const backendRules = allowing(podSettings.tcpPort);
  assert.ok(backendRules.length > 0);
  for (const rule of backendRules) assert.ok(rule.from !== undefined && rule.from.length > 0 && rule.from.every((peer) => peer.podSelector !== undefined && peer.ipBlock === undefined), 'the backend port admits selected pods only');
  for (const port of [podSettings.wsPort, podSettings.metricsPort]) assert.ok(allowing(port).some((rule) => rule.from === undefined), `port ${port} is open to every peer (clients, the kubelet's probes, Prometheus)`);
});

test('kubernetes: the pod runs the image\'s numeric non-root user, read-only and without privileges', () => {
  assert.match(image.user ?? '', /^[1-9]\d*(:\d+)?$/, 'a numeric USER, which runAsNonRoot can check');
  assert.equal(pod.spec.securityContext?.runAsNonRoot, true);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
});

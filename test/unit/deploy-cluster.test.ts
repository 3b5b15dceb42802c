/**
 * deploy/docker-compose.cluster.yml, with deploy/nginx-cluster.conf and
 * deploy/nats-cluster.conf, must make a working cluster (docs/cluster.md):
 * one NATS server that can carry what the brokers send, two brokers on it
 * with their own node ids, a backend on one of them, nginx spreading
 * WebSocket upgrades over both. Ports and timeouts are checked against the
 * settings each container resolves, never against numbers written here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MAX_CONTEXT_BYTES } from '../../src/admission/upgrade-authorizer';
import { DEPLOY, durationMs, LOOPBACK, published, readCompose, settingsWith, SHUTDOWN_GUARD_MS, type ComposeService } from '../helpers/deploy-files';

/** Room for an event line's other fields and a bus frame's header (its origin node id is at most 64 bytes). */
const LINE_AND_FRAME_ROOM = 1024;
/** NATS's client port when its configuration names none. */
const NATS_DEFAULT_PORT = 4222;

const compose = readCompose('docker-compose.cluster.yml');
const services = Object.entries(compose.services);
const named = (pick: (service: ComposeService) => boolean): [string, ComposeService][] => services.filter(([, service]) => pick(service));
const natsServices = named((s) => s.image?.startsWith('nats:') === true);
const nginxServices = named((s) => s.image?.startsWith('nginx:') === true);
/** The image built from the repository, run without a subcommand. */
const brokers = named((s) => s.build !== undefined && s.command === undefined);
const backends = named((s) => s.command?.[0] === 'echo-backend');
const brokerSettings = new Map(brokers.map(([name, service]) => [name, settingsWith(service.environment)]));

/** The file of deploy/ a service mounts at `containerPath`. */
function mounted(service: ComposeService, containerPath: string): string {
  const volume = (service.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === containerPath);
  assert.ok(volume, `nothing is mounted at ${containerPath}`);
  return resolve(DEPLOY, volume[0] as string);
}

// --- NATS's configuration: `key: value` lines, sizes with NATS's units -----------

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, KB: 1024, M: 1024 ** 2, MB: 1024 ** 2, G: 1024 ** 3, GB: 1024 ** 3 };

function natsSize(text: string): number {
  const match = /^(\d+)\s*([KMG]B?)?$/i.exec(text);
  assert.ok(match, `not a NATS size: ${text}`);
  return Number(match[1]) * (SIZE_UNITS[(match[2] ?? '').toUpperCase()] as number);
}

function readNatsConf(file: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^\s*([a-z_]+)\s*[:=]\s*(.+?)\s*$/.exec(line.replace(/#.*/, ''));
    if (match) entries[match[1] as string] = match[2] as string;
  }
  return entries;
}

// --- nginx's configuration: directives, arguments and blocks ---------------------

interface Directive {
  name: string;
  args: string[];
  block: Directive[] | undefined;
}

function parseNginx(text: string): Directive[] {
  const tokens = text.replace(/#.*$/gm, '').match(/'[^']*'|"[^"]*"|[{};]|[^\s{};]+/g) ?? [];
  const word = (token: string): string => token.replace(/^(['"])(.*)\1$/, '$2');
  let at = 0;
  const block = (): Directive[] => {
    const directives: Directive[] = [];
    while (at < tokens.length && tokens[at] !== '}') {
      const name = word(tokens[at++] as string);
      const args: string[] = [];
      while (at < tokens.length && !['{', ';', '}'].includes(tokens[at] as string)) args.push(word(tokens[at++] as string));
      const opened = tokens[at++];
      if (opened === '{') {
        directives.push({ name, args, block: block() });
        assert.equal(tokens[at++], '}', `the block of ${name} is not closed`);
      } else {
        assert.equal(opened, ';', `${name} does not end with ;`);
        directives.push({ name, args, block: undefined });
      }
    }
    return directives;
  };
  const top = block();
  assert.equal(at, tokens.length, 'an unmatched }');
  return top;
}

/** Every directive of that name, at any depth. */
function all(directives: Directive[], name: string): Directive[] {
  return directives.flatMap((d) => [...(d.name === name ? [d] : []), ...all(d.block ?? [], name)]);
}

function only(directives: Directive[], name: string): Directive {
  const found = all(directives, name);
  assert.equal(found.length, 1, `one ${name}`);
  return found[0] as Directive;
}

/** The NATS service, its name and its configuration (from the file its --config names). */
function natsServer(): { name: string; service: ComposeService; conf: Record<string, string> } {
  assert.equal(natsServices.length, 1, 'one NATS server');
  const [name, service] = natsServices[0] as [string, ComposeService];
  const command = service.command ?? [];
  const confPath = command[command.findIndex((arg) => arg === '--config' || arg === '-c') + 1];
  assert.ok(confPath !== undefined, `${name} runs with --config`);
  return { name, service, conf: readNatsConf(mounted(service, confPath)) };
}

/** The nginx service, its name and its configuration (the whole nginx.conf). */
function nginxServer(): { name: string; service: ComposeService; conf: Directive[] } {
  assert.equal(nginxServices.length, 1, 'one nginx');
  const [name, service] = nginxServices[0] as [string, ComposeService];
  return { name, service, conf: parseNginx(readFileSync(mounted(service, '/etc/nginx/nginx.conf'), 'utf8')) };
}

// --- the tests ------------------------------------------------------------------

test('cluster compose: one NATS server whose max_payload carries the largest client event a broker forwards to another node', () => {
  const { name: natsName, service: nats, conf } = natsServer();
  assert.ok(conf.max_payload !== undefined, `${natsName} sets max_payload (NATS's default is 1 MB)`);
  for (const [name, settings] of brokerSettings) {
    // A client's text message escaped in the event line (up to six characters per byte), with its context.
    const largestEvent = Math.max(6 * settings.maxPayload + MAX_CONTEXT_BYTES, settings.maxMessage) + LINE_AND_FRAME_ROOM;
    assert.ok(natsSize(conf.max_payload) >= largestEvent, `max_payload ${conf.max_payload} is below the ${largestEvent} bytes ${name} may send`);
  }
  assert.ok(nats.healthcheck?.test !== undefined, `${natsName} has a health check the brokers can wait for`);
});

test('cluster compose: two brokers on that NATS server, each with its own node id, started once it is healthy', () => {
  const { name: natsName, conf } = natsServer();
  const natsPort = Number(conf.port ?? NATS_DEFAULT_PORT);
  assert.equal(brokers.length, 2, 'two brokers');
  for (const [name, settings] of brokerSettings) {
    assert.deepEqual(settings.cluster?.map((url) => new URL(url).host), [`${natsName}:${natsPort}`], `${name} joins the cluster on ${natsName}`);
    assert.ok(settings.nodeId !== undefined, `${name} has a node id of its own`);
    assert.deepEqual(compose.services[name]?.depends_on?.[natsName], { condition: 'service_healthy' }, `${name} waits for NATS: without it a broker exits at start`);
  }
  const ids = [...brokerSettings.values()].map((s) => s.nodeId);
  assert.equal(new Set(ids).size, ids.length, `distinct node ids: ${ids.join(', ')}`);
});

test('cluster compose: clients come in through nginx only; backend ports are published nowhere, metrics on loopback', () => {
  const { service: nginx, conf: nginxConf } = nginxServer();
  const listen = Number(only(nginxConf, 'listen').args[0]);
  assert.ok((nginx.ports ?? []).map(published).some((p) => p.containerPort === listen), `nginx's port ${listen} is published`);
  const metricsHostPorts: number[] = [];
  for (const [name, service] of brokers) {
    const settings = brokerSettings.get(name) as ReturnType<typeof settingsWith>;
    for (const p of (service.ports ?? []).map(published)) {
      assert.equal(p.containerPort, settings.metricsPort, `${name} publishes only its metrics port, not ${p.containerPort}`);
      assert.ok(LOOPBACK.includes(p.hostIp ?? ''), `${name}'s metrics port is published on ${p.hostIp ?? 'every interface'}, not loopback`);
      metricsHostPorts.push(p.hostPort);
    }
  }
  assert.equal(new Set(metricsHostPorts).size, brokers.length, 'each broker\'s metrics on a host port of its own');
});

test('cluster nginx: the upstream lists every broker\'s WebSocket port, and upgrades pass with their Upgrade and Connection headers', () => {
  const { name: nginxName, conf: nginxConf } = nginxServer();
  const location = only(nginxConf, 'location');
  const target = /^http:\/\/([^/]+)$/.exec(only(location.block ?? [], 'proxy_pass').args[0] as string)?.[1];
  const upstream = all(nginxConf, 'upstream').find((u) => u.args[0] === target);
  assert.ok(upstream, `proxy_pass names the upstream ${String(target)}`);
  const servers = all(upstream.block ?? [], 'server').map((s) => s.args[0]);
  assert.deepEqual(new Set(servers), new Set(brokers.map(([name]) => `${name}:${brokerSettings.get(name)?.wsPort}`)));
  assert.deepEqual(only(location.block ?? [], 'proxy_http_version').args, ['1.1']);
  const headers = Object.fromEntries(all(location.block ?? [], 'proxy_set_header').map((h) => [h.args[0], h.args[1]]));
  assert.equal(headers.Upgrade, '$http_upgrade');
  const map = all(nginxConf, 'map').find((m) => m.args[0] === '$http_upgrade' && m.args[1] === headers.Connection);
  assert.ok(map, `Connection is ${headers.Connection}, which a map of $http_upgrade sets`);
  assert.deepEqual(
    Object.fromEntries((map.block ?? []).map((entry) => [entry.name, entry.args[0]])),
    { default: 'upgrade', '': 'close' },
  );
  assert.deepEqual(compose.services[nginxName]?.depends_on, Object.fromEntries(brokers.map(([name]) => [name, { condition: 'service_healthy' }])));
});

test('cluster nginx: its timeouts on an upgraded connection outlast every broker\'s --idle-timeout', () => {
  const location = only(nginxServer().conf, 'location');
  for (const name of ['proxy_read_timeout', 'proxy_send_timeout']) {
    const ms = durationMs(only(location.block ?? [], name).args[0] as string);
    for (const [broker, settings] of brokerSettings) assert.ok(ms > settings.idleTimeout * 1000, `${name} ${ms} ms is not above ${broker}'s --idle-timeout ${settings.idleTimeout} s`);
  }
});

test('cluster compose: the example backend dials one broker by name once it is healthy, and Compose waits out each broker\'s stop', () => {
  assert.equal(backends.length, 1, 'one example backend');
  const [name, backend] = backends[0] as [string, ComposeService];
  const args = backend.command ?? [];
  const flag = (f: string): string | undefined => args[args.indexOf(f) + 1];
  const broker = flag('--tcp-host') as string;
  assert.ok(brokerSettings.has(broker), `${name} dials a broker service, not ${broker}`);
  assert.equal(Number(flag('--tcp-port')), brokerSettings.get(broker)?.tcpPort, `${name} dials ${broker}'s backend port`);
  assert.deepEqual(backend.depends_on?.[broker], { condition: 'service_healthy' });
  assert.equal(backend.healthcheck?.disable, true, `${name} turns off the image's HEALTHCHECK, which asks a broker`);
  for (const [brokerName, service] of brokers) {
    const settings = brokerSettings.get(brokerName) as ReturnType<typeof settingsWith>;
    const stopMs = settings.drainTimeout + settings.shutdownTimeout + SHUTDOWN_GUARD_MS;
    // Compose's default stop_grace_period is 10 s.
    assert.ok(durationMs(service.stop_grace_period ?? '10s') > stopMs, `${brokerName}'s stop_grace_period is not above drain + shutdown + guard = ${stopMs} ms`);
  }
});

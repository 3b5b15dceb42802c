import { withoutCredentials } from './cluster/urls';
/**
 * Every broker setting in one table: its flag, its environment variables, its
 * default and how its text is checked. Flags beat the environment, which beats
 * the defaults. Durations are milliseconds unless the name says otherwise.
 */

type BalancePolicy = 'round-robin' | 'client';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface BrokerConfig {
  host: string;
  wsPort: number;
  tcpHost: string;
  tcpPort: number;
  queueSize: number;
  balance: BalancePolicy;
  backendHwm: number;
  maxLine: number;
  authTimeout: number;
  heartbeatInterval: number;
  maxPayload: number;
  idleTimeout: number;
  maxBackpressure: number;
  shutdownTimeout: number;
  drainTimeout: number;
  logLevel: LogLevel;
  /** Shared secret backends must send in an `auth` line first; unset: no backend auth. */
  backendToken: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  backendTlsCert: string | undefined;
  backendTlsKey: string | undefined;
  /** Origins allowed to open a WebSocket; unset: any. */
  allowedOrigins: string[] | undefined;
  /** 0: no limit. */
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Unset: no metrics server. */
  metricsPort: number | undefined;
  metricsHost: string;
  /** Largest message a backend may send to clients (room, broadcast or direct). */
  maxMessage: number;
  /** Bytes the queue may hold, besides its entry count. */
  queueBytes: number;
  maxBackends: number;
  /** Upgrades waiting for a backend's answer at once. */
  maxPendingUpgrades: number;
  /** Time a backend has to send its `auth` line when --backend-token is set. */
  backendAuthTimeout: number;
  maxRoomsPerConnection: number;
  /** File descriptors kept for backends and the broker's own files when clients fill the process's limit. */
  fdReserve: number;
  /** NATS URLs; unset: one node, no bus. */
  cluster: string[] | undefined;
  clusterPrefix: string;
  /** Unset: a fresh id at start. */
  nodeId: string | undefined;
  clusterCreds: string | undefined;
  clusterTlsCa: string | undefined;
  clusterTlsCert: string | undefined;
  clusterTlsKey: string | undefined;
  clusterHeartbeat: number;
  /** Serve the live status page (/status, /stats.json) on the metrics port. */
  statusPage: boolean;
  /** Name the largest rooms there; off, rooms are only counted. */
  statusPageRooms: boolean;
}

/** A bad value for one setting; `message` is one line that names the flag. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Parser<T> = (text: string) => T;

interface Setting<K extends keyof BrokerConfig = keyof BrokerConfig> {
  key: K;
  flag: string;
  /** Environment variables, most specific first. */
  env: string[];
  default: BrokerConfig[K];
  /** Placeholder shown in --help; none for a switch, which takes no value on the command line. */
  arg?: string;
  /** How --help and the README show the default, when String(default) would not read well. */
  shown?: string;
  /** Secrets are never echoed back in errors. */
  secret?: boolean;
  description: string;
  parse: Parser<BrokerConfig[K]>;
}

const KiB = 1024;
const MiB = 1024 * KiB;

function integer(min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> {
  return (text) => {
    if (!/^\d+$/.test(text.trim())) throw new Error(`expected a whole number, got ${JSON.stringify(text)}`);
    const n = Number(text);
    if (n < min || n > max) throw new Error(`expected ${min}..${max}, got ${n}`);
    return n;
  };
}

function oneOf<T extends string>(...choices: T[]): Parser<T> {
  return (text) => {
    if (!(choices as string[]).includes(text)) throw new Error(`expected one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
    return text as T;
  };
}

const text: Parser<string> = (value) => {
  if (value.trim() === '') throw new Error('expected a non-empty value');
  return value.trim();
};

const port = integer(0, 65535);

/** A port given to a command beside the broker's own settings (`strands demo --port`), checked as theirs are. */
export function portFlag(flag: string, value: string): number {
  try {
    return port(value);
  } catch (err) {
    throw new ConfigError(`invalid value for ${flag}: ${(err as Error).message}`);
  }
}

const origins: Parser<string[]> = (value) => {
  const list = value.split(',').map((o) => o.trim()).filter((o) => o !== '');
  if (list.length === 0) throw new Error('expected a comma-separated list of origins');
  return list;
};

const natsUrls: Parser<string[]> = (value) => {
  const list = value.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (list.length === 0) throw new Error('expected a comma-separated list of nats:// or tls:// URLs');
  for (const url of list) if (!/^(nats|tls):\/\/[^\s]+$/.test(url)) throw new Error(`expected nats://host:port or tls://host:port, got ${JSON.stringify(withoutCredentials(url))}`);
  return list;
};

/** A token of NATS subjects: no wildcards, no whitespace, no empty parts. */
function subjectPart(maxLength: number): Parser<string> {
  return (value) => {
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(value) || value.length > maxLength) throw new Error(`expected letters, digits, _ and - (dots between parts), at most ${maxLength} characters, got ${JSON.stringify(value)}`);
    return value;
  };
}

/** A switch: set by its flag alone ('true' from the command line), or by its environment variable. */
function onOff(value: string): boolean {
  const word = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(word)) return true;
  if (['0', 'false', 'no', 'off'].includes(word)) return false;
  throw new Error(`expected 1, true, yes or on (or 0, false, no, off), got ${JSON.stringify(value)}`);
}

function idleSeconds(value: string): number {
  const n = integer(0, 960)(value);
  // uWS checks timeouts in 4-second ticks and refuses anything between 1 and 7.
  if (n !== 0 && n < 8) throw new Error(`expected 0 (off) or 8..960 seconds, got ${n}`);
  return n;
}

function setting<K extends keyof BrokerConfig>(s: Setting<K>): Setting<K> {
  return s;
}

function strandsEnv(flag: string): string {
  return 'STRANDS_' + flag.toUpperCase().replace(/-/g, '_');
}

export const SETTINGS: readonly Setting[] = [
  setting({ key: 'host', flag: 'host', env: [], default: '0.0.0.0', arg: 'addr', description: 'WebSocket bind address', parse: text }),
  setting({ key: 'wsPort', flag: 'ws-port', env: ['PYSTRAND_WS_PORT'], default: 8080, arg: 'port', description: 'WebSocket port (0 picks a free one)', parse: port }),
  setting({ key: 'tcpHost', flag: 'tcp-host', env: [], default: '127.0.0.1', arg: 'addr', description: 'backend TCP bind address', parse: text }),
  setting({ key: 'tcpPort', flag: 'tcp-port', env: ['PYSTRAND_TCP_PORT'], default: 8081, arg: 'port', description: 'backend TCP port (0 picks a free one)', parse: port }),
  setting({ key: 'queueSize', flag: 'queue-size', env: ['PYSTRAND_QUEUE_SIZE'], default: 1000, arg: 'n', description: 'events held while no backend can take them; oldest dropped when full; 0 disables', parse: integer(0, 10_000_000) }),
  setting({ key: 'balance', flag: 'balance', env: [], default: 'round-robin', arg: 'policy', description: 'round-robin, or client (one client\'s events stay on one backend)', parse: oneOf<BalancePolicy>('round-robin', 'client') }),
  setting({ key: 'backendHwm', flag: 'backend-hwm', env: [], default: 4 * MiB, arg: 'bytes', description: 'bytes owed to a backend above which it is passed over and not read from; past twice this it is dropped', parse: integer(1024) }),
  setting({ key: 'maxLine', flag: 'max-line', env: [], default: 6 * MiB + 64 * KiB, shown: '6 x --max-message + 64 KiB', arg: 'bytes', description: 'longest line accepted from a backend; longer ones are discarded as they stream in', parse: integer(64, 1024 * MiB) }),
  setting({ key: 'authTimeout', flag: 'auth-timeout', env: [], default: 5000, arg: 'ms', description: 'time a backend has to answer a connection_request (then HTTP 504)', parse: integer(1, 3_600_000) }),
  setting({ key: 'heartbeatInterval', flag: 'heartbeat-interval', env: [], default: 15000, arg: 'ms', description: 'heartbeat to each backend; 0 disables', parse: integer(0, 3_600_000) }),
  setting({ key: 'maxPayload', flag: 'max-payload', env: [], default: 1 * MiB, arg: 'bytes', description: 'largest WebSocket message accepted (larger: close 1009)', parse: integer(16, 1024 * MiB) }),
  setting({ key: 'idleTimeout', flag: 'idle-timeout', env: [], default: 120, arg: 'seconds', description: 'close a silent WebSocket after this long (pings keep live ones open); 0 disables', parse: idleSeconds }),
  setting({ key: 'maxBackpressure', flag: 'max-backpressure', env: [], default: 1 * MiB, arg: 'bytes', description: 'unsent bytes per WebSocket before it is dropped (the client sees 1006)', parse: integer(1024) }),
  setting({ key: 'shutdownTimeout', flag: 'shutdown-timeout', env: [], default: 5000, arg: 'ms', description: 'longest a graceful shutdown may take', parse: integer(0, 600_000) }),
  setting({ key: 'drainTimeout', flag: 'drain-timeout', env: [], default: 0, arg: 'ms', description: 'on SIGTERM, refuse new upgrades (503) for this long before closing clients with 1001', parse: integer(0, 3_600_000) }),
  setting({ key: 'logLevel', flag: 'log-level', env: [], default: 'info', arg: 'level', description: 'trace, debug, info, warn, error, fatal or silent', parse: oneOf<LogLevel>('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent') }),
  setting({ key: 'backendToken', flag: 'backend-token', env: [], default: undefined, shown: 'none', arg: 'token', description: 'backends must send {"action":"auth","params":{"token"}} first, within --backend-auth-timeout', parse: text, secret: true }),
  setting({ key: 'tlsCert', flag: 'tls-cert', env: [], default: undefined, shown: 'none', arg: 'file', description: 'PEM certificate: serve wss:// (with --tls-key)', parse: text }),
  setting({ key: 'tlsKey', flag: 'tls-key', env: [], default: undefined, shown: 'none', arg: 'file', description: 'PEM private key for --tls-cert', parse: text }),
  setting({ key: 'backendTlsCert', flag: 'backend-tls-cert', env: [], default: undefined, shown: 'none', arg: 'file', description: 'PEM certificate: put the backend port on TLS (with --backend-tls-key)', parse: text }),
  setting({ key: 'backendTlsKey', flag: 'backend-tls-key', env: [], default: undefined, shown: 'none', arg: 'file', description: 'PEM private key for --backend-tls-cert', parse: text }),
  setting({ key: 'allowedOrigins', flag: 'allowed-origins', env: [], default: undefined, shown: 'any', arg: 'list', description: 'comma-separated Origin values allowed to connect; others get 403', parse: origins }),
  setting({ key: 'maxConnections', flag: 'max-connections', env: [], default: 0, shown: '0 (no limit)', arg: 'n', description: 'open WebSockets (and upgrades in progress) allowed; beyond: 503', parse: integer(0) }),
  setting({ key: 'maxConnectionsPerIp', flag: 'max-connections-per-ip', env: [], default: 0, shown: '0 (no limit)', arg: 'n', description: 'open WebSockets allowed per client IP; beyond: 429', parse: integer(0) }),
  setting({ key: 'metricsPort', flag: 'metrics-port', env: [], default: undefined, shown: 'off', arg: 'port', description: 'serve /metrics (Prometheus), /healthz and /readyz on this port', parse: port }),
  setting({ key: 'metricsHost', flag: 'metrics-host', env: [], default: '127.0.0.1', arg: 'addr', description: 'bind address of the metrics port', parse: text }),
  setting({ key: 'maxMessage', flag: 'max-message', env: [], default: 1 * MiB, shown: '--max-payload', arg: 'bytes', description: 'largest message a backend may send to clients (room, broadcast or direct); larger ones are refused with an error event', parse: integer(16, 1024 * MiB) }),
  setting({ key: 'queueBytes', flag: 'queue-bytes', env: [], default: 64 * MiB, arg: 'bytes', description: 'bytes the queue may hold besides its entry count; oldest dropped past it', parse: integer(1024) }),
  setting({ key: 'maxBackends', flag: 'max-backends', env: [], default: 64, arg: 'n', description: 'backend connections admitted at once; more are refused', parse: integer(1, 100_000) }),
  setting({ key: 'maxPendingUpgrades', flag: 'max-pending-upgrades', env: [], default: 1024, arg: 'n', description: 'upgrades waiting for a backend\'s answer at once; beyond: 503', parse: integer(1, 10_000_000) }),
  setting({ key: 'backendAuthTimeout', flag: 'backend-auth-timeout', env: [], default: 5000, arg: 'ms', description: 'time a backend has to send its auth line when --backend-token is set', parse: integer(1, 600_000) }),
  setting({ key: 'maxRoomsPerConnection', flag: 'max-rooms-per-connection', env: [], default: 64, arg: 'n', description: 'rooms one WebSocket may be in (join_room past it is refused)', parse: integer(1, 100_000) }),
  setting({ key: 'cluster', flag: 'cluster', env: [], default: undefined, shown: 'off', arg: 'urls', description: 'join a cluster of brokers over NATS: comma-separated nats:// or tls:// URLs (credentials as NATS clients accept them)', parse: natsUrls }),
  setting({ key: 'clusterPrefix', flag: 'cluster-prefix', env: [], default: 'strands', arg: 'prefix', description: 'subject prefix, so that several clusters can share a NATS', parse: subjectPart(64) }),
  setting({ key: 'nodeId', flag: 'node-id', env: [], default: undefined, shown: 'a fresh id', arg: 'id', description: 'this broker\'s id in the cluster (logged at start)', parse: subjectPart(64) }),
  setting({ key: 'clusterCreds', flag: 'cluster-creds', env: [], default: undefined, shown: 'none', arg: 'file', description: 'NATS credentials file (JWT and NKey seed)', parse: text }),
  setting({ key: 'clusterTlsCa', flag: 'cluster-tls-ca', env: [], default: undefined, shown: 'none', arg: 'file', description: 'PEM CA that signs the NATS servers\' certificates', parse: text }),
  setting({ key: 'clusterTlsCert', flag: 'cluster-tls-cert', env: [], default: undefined, shown: 'none', arg: 'file', description: 'PEM client certificate for NATS (with --cluster-tls-key)', parse: text }),
  setting({ key: 'clusterTlsKey', flag: 'cluster-tls-key', env: [], default: undefined, shown: 'none', arg: 'file', description: 'PEM private key for --cluster-tls-cert', parse: text }),
  setting({ key: 'clusterHeartbeat', flag: 'cluster-heartbeat', env: [], default: 1000, arg: 'ms', description: 'how often each node announces itself; three missed and it counts as gone', parse: integer(100, 60_000) }),
  setting({ key: 'fdReserve', flag: 'fd-reserve', env: [], default: 128, arg: 'n', description: 'file descriptors kept free for backends: the WebSocket port stops accepting when fewer are left', parse: integer(16, 1_000_000) }),
  setting({ key: 'statusPage', flag: 'status-page', env: [], default: false, shown: 'off', description: 'serve a live status page at /status (and /stats.json) on the metrics port; needs --metrics-port', parse: onOff }),
  setting({ key: 'statusPageRooms', flag: 'status-page-rooms', env: [], default: false, shown: 'off', description: 'name the largest rooms on the status page (otherwise room ids never leave the broker there); needs --status-page', parse: onOff }),
].map((s) => ({ ...s, env: [strandsEnv(s.flag), ...s.env] })) as Setting[];

/** How the flag is typed: `--ws-port <port>`, or `--status-page` for a switch. */
export function flagUsage(s: Setting): string {
  return s.arg === undefined ? `--${s.flag}` : `--${s.flag} <${s.arg}>`;
}

/** The default as --help and the README show it. */
export function shownDefault(s: Setting): string {
  return s.shown ?? String(s.default);
}

/** Settings that only make sense together, or only with another; checked after every value parsed. */
function checkPairs(config: BrokerConfig): void {
  const pairs: [keyof BrokerConfig, keyof BrokerConfig, string, string][] = [
    ['tlsCert', 'tlsKey', 'tls-cert', 'tls-key'],
    ['backendTlsCert', 'backendTlsKey', 'backend-tls-cert', 'backend-tls-key'],
    ['clusterTlsCert', 'clusterTlsKey', 'cluster-tls-cert', 'cluster-tls-key'],
  ];
  for (const [a, b, flagA, flagB] of pairs) {
    if ((config[a] === undefined) !== (config[b] === undefined)) throw new ConfigError(`--${flagA} and --${flagB} must be given together`);
  }
  // The status page lives on the metrics port, and names rooms only when it is there: a switch that would do nothing is refused.
  if (config.statusPage && config.metricsPort === undefined) throw new ConfigError('--status-page needs --metrics-port (the page is served there)');
  if (config.statusPageRooms && !config.statusPage) throw new ConfigError('--status-page-rooms needs --status-page');
}

export function defaultConfig(): BrokerConfig {
  const config: Record<string, unknown> = {};
  for (const s of SETTINGS) config[s.key] = s.default;
  return derive(config as unknown as BrokerConfig, new Set(DERIVED.map(([key]) => key)));
}

/**
 * Defaults that follow another setting (their `default` in the table is only
 * what --help shows), each after those it follows: a message to clients is at
 * most --max-payload (a client's message echoed), and a line carrying one is
 * at most six times that (every character escaped as \uXXXX) plus room for
 * the other fields.
 */
const DERIVED: readonly [keyof BrokerConfig, (config: BrokerConfig) => number][] = [
  ['maxMessage', (c) => c.maxPayload],
  ['maxLine', (c) => 6 * c.maxMessage + 64 * KiB],
];

/** Fills the settings that follow another one and were not set themselves. */
function derive(config: BrokerConfig, unset: ReadonlySet<keyof BrokerConfig>): BrokerConfig {
  const values = config as unknown as Record<string, unknown>;
  for (const [key, follow] of DERIVED) if (unset.has(key)) values[key] = follow(config);
  return config;
}

/**
 * Resolves the configuration from flag values (text as typed, keyed by flag
 * name) and the environment. Throws ConfigError naming the first bad setting.
 */
export function resolveConfig(flags: Record<string, string | undefined>, env: NodeJS.ProcessEnv): BrokerConfig {
  const config: Record<string, unknown> = {};
  const unset = new Set<keyof BrokerConfig>();
  for (const s of SETTINGS) {
    const fromFlag = flags[s.flag];
    const envName = s.env.find((name) => env[name] !== undefined && env[name] !== '');
    const source = fromFlag !== undefined ? `--${s.flag}` : envName;
    const raw = fromFlag ?? (envName ? env[envName] : undefined);
    if (raw === undefined || source === undefined) {
      config[s.key] = s.default;
      unset.add(s.key);
      continue;
    }
    try {
      config[s.key] = s.parse(raw);
    } catch (err) {
      const where = source.startsWith('--') ? source : `${source} (--${s.flag})`;
      throw new ConfigError(`invalid value for ${where}: ${s.secret ? 'expected a non-empty value' : (err as Error).message}`);
    }
  }
  checkPairs(config as unknown as BrokerConfig);
  return derive(config as unknown as BrokerConfig, unset);
}

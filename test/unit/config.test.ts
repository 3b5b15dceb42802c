import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, SETTINGS, defaultConfig, resolveConfig, type BrokerConfig } from '../../src/config';

const MiB = 1024 * 1024;

/** The defaults users rely on, pinned (the table may hold more settings; those are checked generically). */
const DEFAULTS: Partial<BrokerConfig> = {
  host: '0.0.0.0',
  wsPort: 8080,
  tcpHost: '127.0.0.1',
  tcpPort: 8081,
  queueSize: 1000,
  balance: 'round-robin',
  backendHwm: 4 * MiB,
  maxLine: 6 * MiB + 64 * 1024,
  authTimeout: 5000,
  heartbeatInterval: 15000,
  maxPayload: 1 * MiB,
  idleTimeout: 120,
  maxBackpressure: 1 * MiB,
  shutdownTimeout: 5000,
  logLevel: 'info',
  statusPage: false,
  statusPageRooms: false,
};

interface Sample {
  flag: string;
  /** Two valid non-default values: the text and what it parses to. */
  a: [string, unknown];
  b: [string, unknown];
  bad: string;
  /** Flags that must accompany this one (settings that only work in pairs). */
  with?: Record<string, string>;
}

/** For every setting known here: its flag, two valid values and a bad one. */
const SAMPLES: Partial<Record<keyof BrokerConfig, Sample>> = {
  host: { flag: 'host', a: ['127.0.0.2', '127.0.0.2'], b: ['::', '::'], bad: '' },
  wsPort: { flag: 'ws-port', a: ['9000', 9000], b: ['0', 0], bad: 'http' },
  tcpHost: { flag: 'tcp-host', a: ['0.0.0.0', '0.0.0.0'], b: ['10.0.0.1', '10.0.0.1'], bad: '   ' },
  tcpPort: { flag: 'tcp-port', a: ['9001', 9001], b: ['65535', 65535], bad: '65536' },
  queueSize: { flag: 'queue-size', a: ['5', 5], b: ['0', 0], bad: '-1' },
  balance: { flag: 'balance', a: ['client', 'client'], b: ['round-robin', 'round-robin'], bad: 'random' },
  backendHwm: { flag: 'backend-hwm', a: ['2048', 2048], b: ['1048576', MiB], bad: '4MiB' },
  maxLine: { flag: 'max-line', a: ['1024', 1024], b: ['65536', 65536], bad: '1e6' },
  authTimeout: { flag: 'auth-timeout', a: ['100', 100], b: ['30000', 30000], bad: '0' },
  heartbeatInterval: { flag: 'heartbeat-interval', a: ['0', 0], b: ['1000', 1000], bad: '1.5' },
  maxPayload: { flag: 'max-payload', a: ['4096', 4096], b: ['65536', 65536], bad: 'lots' },
  idleTimeout: { flag: 'idle-timeout', a: ['8', 8], b: ['0', 0], bad: '7' },
  maxBackpressure: { flag: 'max-backpressure', a: ['4096', 4096], b: ['65536', 65536], bad: '-4096' },
  shutdownTimeout: { flag: 'shutdown-timeout', a: ['10', 10], b: ['0', 0], bad: 'soon' },
  drainTimeout: { flag: 'drain-timeout', a: ['250', 250], b: ['1000', 1000], bad: 'x' },
  logLevel: { flag: 'log-level', a: ['debug', 'debug'], b: ['silent', 'silent'], bad: 'verbose' },
  backendToken: { flag: 'backend-token', a: ['s3cret', 's3cret'], b: ['other', 'other'], bad: '  ' },
  tlsCert: { flag: 'tls-cert', a: ['/a/cert.pem', '/a/cert.pem'], b: ['/b/cert.pem', '/b/cert.pem'], bad: ' ', with: { 'tls-key': '/k.pem' } },
  tlsKey: { flag: 'tls-key', a: ['/a/key.pem', '/a/key.pem'], b: ['/b/key.pem', '/b/key.pem'], bad: ' ', with: { 'tls-cert': '/c.pem' } },
  backendTlsCert: { flag: 'backend-tls-cert', a: ['/a/c.pem', '/a/c.pem'], b: ['/b/c.pem', '/b/c.pem'], bad: ' ', with: { 'backend-tls-key': '/k.pem' } },
  backendTlsKey: { flag: 'backend-tls-key', a: ['/a/k.pem', '/a/k.pem'], b: ['/b/k.pem', '/b/k.pem'], bad: ' ', with: { 'backend-tls-cert': '/c.pem' } },
  allowedOrigins: { flag: 'allowed-origins', a: ['https://a.example', ['https://a.example']], b: [' https://a.example , https://b.example ', ['https://a.example', 'https://b.example']], bad: ' , ' },
  maxConnections: { flag: 'max-connections', a: ['100', 100], b: ['1', 1], bad: '-5' },
  maxConnectionsPerIp: { flag: 'max-connections-per-ip', a: ['10', 10], b: ['1', 1], bad: 'ten' },
  metricsPort: { flag: 'metrics-port', a: ['9100', 9100], b: ['0', 0], bad: '65536' },
  metricsHost: { flag: 'metrics-host', a: ['0.0.0.0', '0.0.0.0'], b: ['::1', '::1'], bad: '' },
  maxMessage: { flag: 'max-message', a: ['2048', 2048], b: ['8388608', 8 * MiB], bad: '8' },
  queueBytes: { flag: 'queue-bytes', a: ['1048576', MiB], b: ['4096', 4096], bad: '100' },
  maxBackends: { flag: 'max-backends', a: ['1', 1], b: ['200', 200], bad: '0' },
  maxPendingUpgrades: { flag: 'max-pending-upgrades', a: ['10', 10], b: ['50000', 50000], bad: '0' },
  backendAuthTimeout: { flag: 'backend-auth-timeout', a: ['200', 200], b: ['60000', 60000], bad: '0' },
  maxRoomsPerConnection: { flag: 'max-rooms-per-connection', a: ['1', 1], b: ['1000', 1000], bad: 'many' },
  fdReserve: { flag: 'fd-reserve', a: ['16', 16], b: ['4096', 4096], bad: '8' },
  statusPage: { flag: 'status-page', a: ['true', true], b: ['false', false], bad: 'maybe', with: { 'metrics-port': '9100' } },
  statusPageRooms: { flag: 'status-page-rooms', a: ['1', true], b: ['off', false], bad: '2', with: { 'metrics-port': '9100', 'status-page': 'true' } },
};

/** The settings of the table that have samples here, as [key, sample] pairs. */
const SAMPLED = SETTINGS.flatMap((s) => {
  const sample = SAMPLES[s.key];
  return sample ? [[s.key, sample] as const] : [];
});

function envName(flag: string): string {
  return 'STRANDS_' + flag.toUpperCase().replace(/-/g, '_');
}

function pick(config: BrokerConfig, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = config[k as keyof BrokerConfig];
  return out;
}

/** Runs `fn`, which must throw a ConfigError, and returns its message. */
function configError(fn: () => unknown): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.name, 'ConfigError');
  assert.ok(!caught.message.includes('\n') && !caught.message.includes('\r'), `message is one line: ${JSON.stringify(caught.message)}`);
  return caught.message;
}

describe('config: defaults', () => {
  const keys = Object.keys(DEFAULTS);

  test('defaultConfig() has the documented defaults', () => {
    assert.deepEqual(pick(defaultConfig(), keys), DEFAULTS);
  });

  test('resolveConfig with no flags and an empty environment gives defaultConfig()', () => {
    assert.deepEqual(resolveConfig({}, {}), defaultConfig());
    assert.deepEqual(pick(resolveConfig({}, {}), keys), DEFAULTS);
  });

  test('undefined flag values (as commander leaves them) count as absent', () => {
    const flags: Record<string, string | undefined> = {};
    for (const s of SETTINGS) flags[s.flag] = undefined;
    assert.deepEqual(resolveConfig(flags, {}), defaultConfig());
  });

  test('unrelated environment variables are ignored', () => {
    assert.deepEqual(resolveConfig({}, { PATH: '/bin', PORT: '1', STRANDS: 'x', STRANDS_UNKNOWN: 'y' }), defaultConfig());
  });

  test('the settings table has every documented setting, with unique flags and keys', () => {
    const tableKeys = SETTINGS.map((s) => s.key as string);
    for (const key of keys) assert.ok(tableKeys.includes(key), `missing setting ${key}`);
    assert.equal(new Set(tableKeys).size, SETTINGS.length);
    assert.equal(new Set(SETTINGS.map((s) => s.flag)).size, SETTINGS.length);
    for (const [key, sample] of SAMPLED) assert.equal(SETTINGS.find((s) => s.key === key)?.flag, sample.flag, `flag of ${key}`);
  });

  test('every setting has a STRANDS_<FLAG> environment variable, listed first', () => {
    for (const s of SETTINGS) assert.equal(s.env[0], envName(s.flag), `env of --${s.flag}`);
  });
});

describe('config: every setting from flag and environment', () => {
  for (const [key, sample] of SAMPLED) {
    const { flag, a, b, bad } = sample;
    const env = envName(flag);
    const partner = sample.with ?? {};

    test(`--${flag} sets ${key}`, () => {
      assert.deepEqual(resolveConfig({ ...partner, [flag]: a[0] }, {})[key], a[1]);
      assert.deepEqual(resolveConfig({ ...partner, [flag]: b[0] }, {})[key], b[1]);
    });

    test(`${env} sets ${key}`, () => {
      assert.deepEqual(resolveConfig(partner, { [env]: a[0] })[key], a[1]);
      assert.deepEqual(resolveConfig(partner, { [env]: b[0] })[key], b[1]);
    });

    test(`--${flag} beats ${env}, which beats the default`, () => {
      assert.deepEqual(resolveConfig({ ...partner, [flag]: a[0] }, { [env]: b[0] })[key], a[1]);
      assert.deepEqual(resolveConfig({ ...partner, [flag]: b[0] }, { [env]: a[0] })[key], b[1]);
      assert.notDeepEqual(defaultConfig()[key], a[1], 'sample a is not the default');
      assert.deepEqual(resolveConfig({}, {})[key], defaultConfig()[key]);
    });

    test(`a valid --${flag} wins even over a bad ${env}`, () => {
      assert.deepEqual(resolveConfig({ ...partner, [flag]: a[0] }, { [env]: bad })[key], a[1]);
    });

    test(`a bad --${flag} throws a one-line ConfigError naming the flag`, () => {
      const message = configError(() => resolveConfig({ ...partner, [flag]: bad }, {}));
      assert.match(message, new RegExp(`--${flag}(?![\\w-])`));
    });

    test(`a bad ${env} throws a one-line ConfigError naming the variable and the flag`, () => {
      const message = configError(() => resolveConfig(partner, { [env]: bad === '' ? ' ' : bad }));
      assert.ok(message.includes(env), message);
      assert.match(message, new RegExp(`--${flag}(?![\\w-])`));
    });
  }

  test('settings are independent: all flags at once', () => {
    const flags: Record<string, string> = {};
    const expected: Record<string, unknown> = { ...defaultConfig() };
    for (const [key, sample] of SAMPLED) {
      flags[sample.flag] = sample.a[0];
      expected[key] = sample.a[1];
    }
    assert.deepEqual(resolveConfig(flags, {}), expected);
  });

  test('settings are independent: all environment variables at once', () => {
    const env: Record<string, string> = {};
    const expected: Record<string, unknown> = { ...defaultConfig() };
    for (const [key, sample] of SAMPLED) {
      env[envName(sample.flag)] = sample.b[0];
      expected[key] = sample.b[1];
    }
    assert.deepEqual(resolveConfig({}, env), expected);
  });
});

describe('config: settings that follow another', () => {
  test('--max-message follows --max-payload unless it is set itself', () => {
    assert.equal(defaultConfig().maxMessage, defaultConfig().maxPayload);
    assert.equal(resolveConfig({ 'max-payload': '4096' }, {}).maxMessage, 4096);
    assert.equal(resolveConfig({}, { STRANDS_MAX_PAYLOAD: '8192' }).maxMessage, 8192);
    assert.equal(resolveConfig({ 'max-payload': '4096', 'max-message': '100000' }, {}).maxMessage, 100000);
  });

  test('--max-line follows --max-message (six times it, plus 64 KiB) unless it is set itself', () => {
    assert.equal(resolveConfig({ 'max-message': '1000' }, {}).maxLine, 6000 + 65536);
    assert.equal(resolveConfig({ 'max-payload': '1000' }, {}).maxLine, 6000 + 65536);
    assert.equal(resolveConfig({ 'max-payload': '1000', 'max-line': '2000' }, {}).maxLine, 2000);
  });
});

describe('config: PYSTRAND_ aliases', () => {
  const aliases = [
    ['PYSTRAND_WS_PORT', 'STRANDS_WS_PORT', 'ws-port', 'wsPort'],
    ['PYSTRAND_TCP_PORT', 'STRANDS_TCP_PORT', 'tcp-port', 'tcpPort'],
    ['PYSTRAND_QUEUE_SIZE', 'STRANDS_QUEUE_SIZE', 'queue-size', 'queueSize'],
  ] as const;

  for (const [alias, strands, flag, key] of aliases) {
    test(`${alias} sets ${key}`, () => {
      assert.equal(resolveConfig({}, { [alias]: '4242' })[key], 4242);
    });

    test(`${strands} wins over ${alias}; --${flag} wins over both`, () => {
      assert.equal(resolveConfig({}, { [alias]: '4242', [strands]: '4343' })[key], 4343);
      assert.equal(resolveConfig({ [flag]: '4444' }, { [alias]: '4242', [strands]: '4343' })[key], 4444);
    });

    test(`a bad ${alias} names it and --${flag}`, () => {
      const message = configError(() => resolveConfig({}, { [alias]: 'nope' }));
      assert.ok(message.includes(alias), message);
      assert.ok(message.includes(`--${flag}`), message);
    });

    test(`a bad ${alias} is not consulted when ${strands} is set`, () => {
      assert.equal(resolveConfig({}, { [alias]: 'nope', [strands]: '4343' })[key], 4343);
    });

    test(`an empty ${strands} counts as unset, so ${alias} applies`, () => {
      assert.equal(resolveConfig({}, { [strands]: '', [alias]: '4242' })[key], 4242);
    });
  }

  test('only these three settings have a PYSTRAND_ alias', () => {
    const withAlias = SETTINGS.filter((s) => s.env.some((e) => e.startsWith('PYSTRAND_'))).map((s) => s.flag);
    assert.deepEqual(withAlias.sort(), ['queue-size', 'tcp-port', 'ws-port']);
  });
});

describe('config: validation', () => {
  test('ports accept 0..65535 and nothing else', () => {
    for (const flag of ['ws-port', 'tcp-port']) {
      const key = flag === 'ws-port' ? 'wsPort' : 'tcpPort';
      for (const ok of [0, 1, 80, 8080, 65535]) assert.equal(resolveConfig({ [flag]: String(ok) }, {})[key], ok);
      for (const bad of ['65536', '70000', '-1', '1.5', 'abc', '', ' ', '0x50', '80a', '99999999999999999999']) {
        const message = configError(() => resolveConfig({ [flag]: bad }, {}));
        assert.ok(message.includes(`--${flag}`), message);
      }
    }
  });

  test('idle-timeout: 0 (off) and 8..960 accepted, 1..7 rejected', () => {
    for (const ok of [0, 8, 9, 120, 960]) assert.equal(resolveConfig({ 'idle-timeout': String(ok) }, {}).idleTimeout, ok);
    for (let bad = 1; bad <= 7; bad++) {
      const message = configError(() => resolveConfig({ 'idle-timeout': String(bad) }, {}));
      assert.ok(message.includes('--idle-timeout'), message);
    }
    configError(() => resolveConfig({ 'idle-timeout': '961' }, {}));
    configError(() => resolveConfig({}, { STRANDS_IDLE_TIMEOUT: '4' }));
  });

  test('balance and log-level accept only their choices', () => {
    assert.equal(resolveConfig({ balance: 'client' }, {}).balance, 'client');
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']) {
      assert.equal(resolveConfig({ 'log-level': level }, {}).logLevel, level);
    }
    assert.ok(configError(() => resolveConfig({ balance: 'random' }, {})).includes('--balance'));
    assert.ok(configError(() => resolveConfig({ balance: 'CLIENT' }, {})).includes('--balance'));
    assert.ok(configError(() => resolveConfig({ 'log-level': 'verbose' }, {})).includes('--log-level'));
  });

  test('numbers surrounded by whitespace are accepted', () => {
    assert.equal(resolveConfig({ 'ws-port': ' 9000 ' }, {}).wsPort, 9000);
    assert.equal(resolveConfig({}, { STRANDS_QUEUE_SIZE: '12\n' }).queueSize, 12);
  });

  test('an empty flag value is an error, not the default', () => {
    assert.ok(configError(() => resolveConfig({ 'ws-port': '' }, {})).includes('--ws-port'));
    assert.ok(configError(() => resolveConfig({ host: '' }, {})).includes('--host'));
  });

  test('host values are trimmed', () => {
    assert.equal(resolveConfig({ host: ' 127.0.0.1 ' }, {}).host, '127.0.0.1');
  });

  test('the error message stays on one line even when the bad value has a newline in it', () => {
    const message = configError(() => resolveConfig({ 'ws-port': '80\nabc' }, {}));
    assert.ok(message.includes('--ws-port'), message);
    configError(() => resolveConfig({}, { STRANDS_BALANCE: 'client\nx' }));
    configError(() => resolveConfig({ 'log-level': 'info\r\n' }, {}));
  });

  test('the first bad setting is the one reported', () => {
    const message = configError(() => resolveConfig({ 'ws-port': 'x', 'log-level': 'y' }, {}));
    assert.ok(message.includes('--ws-port'), message);
    assert.ok(!message.includes('--log-level'), message);
  });
});

describe('config: settings that go in pairs', () => {
  test('--tls-cert without --tls-key (and the reverse) is a one-line ConfigError naming both', () => {
    for (const flags of [{ 'tls-cert': '/c.pem' }, { 'tls-key': '/k.pem' }]) {
      const message = configError(() => resolveConfig(flags, {}));
      assert.ok(message.includes('--tls-cert') && message.includes('--tls-key'), message);
    }
    for (const flags of [{ 'backend-tls-cert': '/c.pem' }, { 'backend-tls-key': '/k.pem' }]) {
      const message = configError(() => resolveConfig(flags, {}));
      assert.ok(message.includes('--backend-tls-cert') && message.includes('--backend-tls-key'), message);
    }
  });

  test('--status-page needs --metrics-port, and --status-page-rooms needs --status-page, from flags or the environment', () => {
    assert.match(configError(() => resolveConfig({ 'status-page': 'true' }, {})), /--status-page needs --metrics-port/);
    assert.match(configError(() => resolveConfig({}, { STRANDS_STATUS_PAGE: 'yes' })), /--status-page needs --metrics-port/);
    assert.match(configError(() => resolveConfig({ 'metrics-port': '0', 'status-page-rooms': 'true' }, {})), /--status-page-rooms needs --status-page/);
    assert.match(configError(() => resolveConfig({ 'metrics-port': '0', 'status-page': 'false' }, { STRANDS_STATUS_PAGE_ROOMS: 'on' })), /--status-page-rooms needs --status-page/);
    const both = resolveConfig({ 'metrics-port': '0' }, { STRANDS_STATUS_PAGE: 'ON', STRANDS_STATUS_PAGE_ROOMS: ' Yes ' });
    assert.deepEqual([both.statusPage, both.statusPageRooms], [true, true]);
  });

  test('a secret is never echoed back in an error', () => {
    // A whitespace-only token is the only bad one; make sure what was typed is not in the message.
    const message = configError(() => resolveConfig({ 'backend-token': ' \t ' }, {}));
    assert.ok(message.includes('--backend-token'), message);
    assert.ok(!message.includes('\t'), message);
  });
});

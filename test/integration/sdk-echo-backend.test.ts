/**
 * `strands echo-backend` as a user runs it (dist/src/main.js in a subprocess)
 * against a real broker with a backend token or TLS on its backend port.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { TestBroker } from '../helpers/broker';
import { brokerFor, clientFor, waitUntil } from '../helpers/fixtures';
import { spawnStrands, type StrandsProcess } from '../helpers/spawn-broker';
import { makeSelfSignedCert, type TlsFixture } from '../helpers/tls-fixture';

const TOKEN = 'echo-s3cret';
/** pino's number for the error level. */
const ERROR = 50;

/** Waits until the broker admitted the echo backend, then checks that it echoes. */
async function echoes(t: TestContext, broker: TestBroker, echo: StrandsProcess): Promise<void> {
  await echo.log('echo backend connected');
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the echo backend is admitted');
  const client = await clientFor(t, broker.url('/echo?client_id=e1'));
  client.ws.send('ping ✓');
  assert.equal(await client.nextMessage(), 'ping ✓');
}

describe('echo-backend against a broker with --backend-token', () => {
  test('--backend-token: admitted, and echoes', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN });
    await echoes(t, broker, spawnStrands(t, ['echo-backend', '--tcp-port', String(broker.tcpPort), '--backend-token', TOKEN]));
  });

  test('the token from STRANDS_BACKEND_TOKEN, as the broker reads it', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN });
    await echoes(t, broker, spawnStrands(t, ['echo-backend', '--tcp-port', String(broker.tcpPort)], { STRANDS_BACKEND_TOKEN: TOKEN }));
  });

  test('a wrong token: the refusal is logged as an error, and the retries back off without starting over', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN });
    const echo = spawnStrands(t, ['echo-backend', '--tcp-port', String(broker.tcpPort), '--backend-token', 'wrong']);
    const refused = await echo.log('refused by the broker');
    assert.equal(refused.level, ERROR);
    assert.match(String(refused.msg), /authentication failed: invalid token/);
    for (const attempt of [1, 2, 3]) {
      const retry = await echo.log(`(attempt ${attempt})`);
      assert.match(String(retry.msg), /^echo backend reconnecting in \d+ ms \(attempt \d\) after: authentication failed: invalid token$/);
    }
    assert.equal(broker.broker.stats.backends.connected, 0);
  });

  test('no token: the broker says so after its auth timeout, and the echo backend logs it', async (t) => {
    const broker = await brokerFor(t, { backendToken: TOKEN, backendAuthTimeout: 200 });
    const echo = spawnStrands(t, ['echo-backend', '--tcp-port', String(broker.tcpPort)]);
    const refused = await echo.log('refused by the broker');
    assert.match(String(refused.msg), /authentication failed: no auth line within 200 ms/);
  });
});

describe('echo-backend against a broker with TLS on its backend port', () => {
  let tls: TlsFixture;
  before(async () => {
    tls = await makeSelfSignedCert();
  });
  after(() => tls?.remove());

  test('--backend-tls-ca with the broker\'s certificate: verified, and echoes', async (t) => {
    const broker = await brokerFor(t, { backendTlsCert: tls.certFile, backendTlsKey: tls.keyFile });
    await echoes(t, broker, spawnStrands(t, ['echo-backend', '--tcp-port', String(broker.tcpPort), '--backend-tls-ca', tls.certFile]));
  });

  test('--backend-tls-insecure: connects without verifying', async (t) => {
    const broker = await brokerFor(t, { backendTlsCert: tls.certFile, backendTlsKey: tls.keyFile, backendToken: TOKEN });
    await echoes(t, broker, spawnStrands(t, ['echo-backend', '--tcp-port', String(broker.tcpPort), '--backend-tls-insecure'], { STRANDS_BACKEND_TOKEN: TOKEN }));
  });

  test('--backend-tls with the system CAs refuses the self-signed certificate, and the log says why', async (t) => {
    const broker = await brokerFor(t, { backendTlsCert: tls.certFile, backendTlsKey: tls.keyFile });
    const echo = spawnStrands(t, ['echo-backend', '--tcp-port', String(broker.tcpPort), '--backend-tls']);
    const retry = await echo.log('reconnecting');
    assert.match(String(retry.msg), /after: self[- ]signed certificate/);
    assert.equal(broker.broker.stats.backends.connected, 0);
  });
});

test('echo-backend usage errors exit at once with one line naming the flag', async (t) => {
  const cases: [string[], Record<string, string>, number, RegExp][] = [
    [['--backend-tls-ca', 'ca.pem', '--backend-tls-insecure'], {}, 2, /--backend-tls-insecure.*--backend-tls-ca/],
    [['--backend-tls-ca', '/nonexistent/ca.pem'], {}, 1, /cannot read --backend-tls-ca \/nonexistent\/ca\.pem: ENOENT/],
    [['--tcp-port', '0'], {}, 2, /--tcp-port: expected 1\.\.65535, got 0/],
    [['--tcp-port', 'x'], {}, 2, /--tcp-port/],
    [['--backend-token', ' '], {}, 2, /--backend-token: expected a non-empty value/],
    [[], { STRANDS_BACKEND_TOKEN: ' ' }, 2, /STRANDS_BACKEND_TOKEN \(--backend-token\): expected a non-empty value/],
  ];
  for (const [args, env, code, message] of cases) {
    const proc = spawnStrands(t, ['echo-backend', ...args], env);
    assert.equal((await proc.exited).code, code, `${args.join(' ')}: ${proc.stderr()}`);
    const lines = proc.stderr().trim().split('\n');
    assert.equal(lines.length, 1, proc.stderr());
    assert.match(lines[0] as string, message);
  }
});

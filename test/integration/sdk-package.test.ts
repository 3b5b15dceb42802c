/**
 * The package as a user gets it: `npm pack` of this checkout, the README's
 * setup commands run in a fresh project (npm from its cache, offline when the
 * cache has everything), the README's tsconfig.json and backend.ts written there
 * exactly as the README shows them (read out of README.md between its
 * `<!-- sdk-example:NAME -->` markers), compiled with this repository's
 * TypeScript, and run against a broker with a backend token, with WebSocket
 * clients checking what the example does.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brokerFor, clientFor, waitUntil } from '../helpers/fixtures';
import { upgradeStatus } from '../helpers/ws-client';

const run = promisify(execFile);
const REPO = join(__dirname, '..', '..', '..');
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
const TOKEN = 'package-test-token';
const SLOW = { timeout: 180_000 };

/** The README's example blocks by name: `<!-- sdk-example:NAME -->` then a fenced block. */
async function readmeExample(): Promise<Map<string, string>> {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const blocks = new Map<string, string>();
  for (const [, name, body] of readme.matchAll(/<!-- sdk-example:([\w.-]+) -->\n```\w*\n([\s\S]*?)\n```\n/g)) blocks.set(name as string, `${body}\n`);
  for (const name of ['setup', 'tsconfig.json', 'backend.ts']) assert.ok(blocks.has(name), `README.md has the sdk-example:${name} block`);
  return blocks;
}

/**
 * The environment for npm and the example: this process's, without what an
 * enclosing `npm test` set (npm_config_local_prefix would point npm at this
 * repository) or STRANDS_* settings, plus `extra`.
 */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!/^(npm_|STRANDS_)/i.test(name)) env[name] = value;
  return { ...env, ...extra };
}

/** Resolves when `child` has written `text` to `stream`; rejects if it exits first. */
function written(child: ChildProcess, stream: 'stdout' | 'stderr', text: string): Promise<void> {
  let seen = '';
  return new Promise((resolve, reject) => {
    child[stream]?.setEncoding('utf8');
    child[stream]?.on('data', (chunk: string) => {
      seen += chunk;
      if (seen.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the example exited (${code}) before writing ${JSON.stringify(text)} to ${stream}; it wrote ${JSON.stringify(seen)}`)));
  });
}

let root: string;
let project: string;
const timings: string[] = [];

async function timed<T>(what: string, step: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await step();
  timings.push(`${what}: ${Math.round(performance.now() - start)} ms`);
  return result;
}

/**
 * Packs, installs and compiles, once for the whole file. Called from each test
 * (not a before hook) so that a failing step is reported with its error.
 */
async function prepare(): Promise<void> {
  root = await mkdtemp(join(tmpdir(), 'strands-package-'));
  const blocks = await readmeExample();
  // Laid out as the README says: the clone's tarball in strands/, the project made beside it.
  await mkdir(join(root, 'strands'));
  // --ignore-scripts: pack what this test run compiled, without rebuilding dist/ under the other tests.
  await timed('npm pack', () => run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', join(root, 'strands')], { cwd: REPO, env: cleanEnv({}) }));
  const npmEnv = cleanEnv({ npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' });
  await timed('the README setup block', () => run('sh', ['-e', '-c', blocks.get('setup') as string], { cwd: root, env: npmEnv }));
  project = join(root, 'my-backend');
  await writeFile(join(project, 'tsconfig.json'), blocks.get('tsconfig.json') as string);
  await writeFile(join(project, 'backend.ts'), blocks.get('backend.ts') as string);
  await timed('tsc', () => run(process.execPath, [TSC, '-p', project], { cwd: project }));
}

let prepared: Promise<void> | undefined;
const ready = (): Promise<void> => (prepared ??= prepare());

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** `node backend.js` in the project, killed when the test ends. */
function startExample(t: { after(fn: () => unknown): void }, tcpPort: number, token: string): ChildProcess {
  const child = spawn(process.execPath, ['backend.js'], { cwd: project, env: cleanEnv({ STRANDS_TCP_PORT: String(tcpPort), STRANDS_BACKEND_TOKEN: token }), stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  });
  return child;
}

test("the README's example, installed from the packed tarball, admits the clients with the token and sends each message to the room", SLOW, async (t) => {
  await ready();
  t.diagnostic(`setup: ${timings.join('; ')}`);
  const broker = await brokerFor(t, { backendToken: TOKEN });
  const example = startExample(t, broker.tcpPort, TOKEN);
  await written(example, 'stdout', 'connected\n');
  await waitUntil(() => broker.broker.stats.backends.connected === 1, 'the example is admitted as a backend');

  assert.equal(await upgradeStatus(broker.url('/?token=wrong&name=eve')), 403);
  const alice = await clientFor(t, broker.url('/?token=secret&name=alice'));
  const bob = await clientFor(t, broker.url('/chat?token=secret&name=bob'));
  alice.ws.send('hi');
  assert.equal(await bob.nextMessage(), 'alice: hi', 'bob is in lobby too, whatever his url');
  assert.equal(await alice.nextMessage(), 'alice: hi');
  bob.ws.send('hé ✓');
  assert.equal(await alice.nextMessage(), 'bob: hé ✓');
  assert.equal(await bob.nextMessage(), 'bob: hé ✓');
});

test("the README's example with the wrong token says that the broker refused it", SLOW, async (t) => {
  await ready();
  const broker = await brokerFor(t, { backendToken: TOKEN });
  const example = startExample(t, broker.tcpPort, 'not-the-token');
  await written(example, 'stderr', 'the broker refused this backend: authentication failed: invalid token\n');
  assert.equal(broker.broker.stats.backends.connected, 0);
});

test('the installed strands command prints the package version', SLOW, async () => {
  await ready();
  const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const { stdout } = await run(join(project, 'node_modules', '.bin', 'strands'), ['--version'], { env: cleanEnv({}) });
  assert.equal(stdout, `${version}\n`);
});

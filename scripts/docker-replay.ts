/**
 * Replays the Dockerfile without a Docker engine, so that CI (which has none)
 * proves the image builds and starts:
 *
 *   node dist/scripts/docker-replay.js [--context DIR] [--dockerfile FILE] [--keep]
 *
 * Each stage gets a directory that stands for its filesystem. COPY takes exactly
 * the named paths from the build context (less .dockerignore) or from an earlier
 * stage, so a file the Dockerfile forgets to COPY is missing here as it would be
 * in Docker; RUN runs the same command in the stage's WORKDIR with the stage's
 * ENV. The last stage is then started as its ENTRYPOINT and CMD with its ENV, and
 * probed: /healthz, /readyz, a WebSocket upgrade (503: no backend), and its
 * HEALTHCHECK while up and after SIGTERM. Every instruction is read from the
 * Dockerfile, so a new COPY or RUN is replayed without touching this file; an
 * instruction or flag it cannot replay faithfully stops it, naming the line.
 *
 * What stays different from Docker: the base image is this machine's Node.js
 * (its major version must be the FROM tag's), npm and /bin/sh; files keep the
 * replay's owner (--chown is not applied), but run as root it starts the image
 * as its numeric USER, so files that user cannot read show; RUN may use the npm
 * cache (prefer-offline); the broker is started on free loopback ports, as
 * `docker run -e` would override them, because this machine is not a
 * container's private network.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { setPriority, tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import ignore from '@balena/dockerignore';
import { DockerfileParser, ModifiableInstruction, type Copy, type From, type Healthcheck, type Instruction, type PropertyInstruction, type Run } from 'dockerfile-ast';
import WebSocket from 'ws';
import { ConfigError, resolveConfig, SETTINGS, type BrokerConfig } from '../src/config';
import { parseHostPort } from '../src/bench/options';

/** What `docker inspect` would show of a stage: its config, not its files. */
export interface ImageConfig {
  /** Absolute, inside the image. */
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  /** As written: `8080` or `8080/tcp`. */
  exposed: string[];
  entrypoint: string[];
  cmd: string[];
  /** The HEALTHCHECK command as argv; undefined: none. */
  healthcheck: string[] | undefined;
}

type Step =
  | { kind: 'workdir'; line: number; text: string; path: string }
  | { kind: 'copy'; line: number; text: string; fromStage: number | undefined; sources: string[]; dest: string; workdir: string }
  | { kind: 'run'; line: number; text: string; argv: string[]; workdir: string; env: Record<string, string> };

export interface Stage {
  name: string | undefined;
  /** The earlier stage this one starts from; undefined: a Node.js base image. */
  baseStage: number | undefined;
  /** The Node.js major version of the base image; undefined when baseStage is set. */
  nodeMajor: number | undefined;
  steps: Step[];
  config: ImageConfig;
}

/** A Dockerfile line the replay cannot replay faithfully. */
class ReplayError extends Error {
  override readonly name = 'ReplayError';
}

// The official node images run `docker-entrypoint.sh`, which only execs its
// arguments, with CMD ["node"]; their ENV (PATH, versions) is this machine's.
const NODE_IMAGE_CONFIG: ImageConfig = { workdir: '/', env: {}, user: undefined, exposed: [], entrypoint: [], cmd: ['node'], healthcheck: undefined };

/** Flags each instruction may carry; any other flag stops the replay. */
const KNOWN_FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  // Ownership is not applied (the replay runs as whoever runs it); --link only changes layering.
  COPY: ['from', 'chown', 'link'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

/** Paths a RUN command may name outside its stage: it runs on this machine, not in a container. */
const HOST_PATHS_ALLOWED = new Set(['/dev/null']);
const WORD_START_PATH = /(?:^|[\s=;|&<>('"])(\/[^\s;|&<>'")]*)/g;
const PARENT_SEGMENT = /(?:^|[\s=;|&<>('"/])\.\.(?:$|[\s/;|&<>'")])/;

function fail(instruction: Instruction, why: string): never {
  throw new ReplayError(`Dockerfile line ${lineOf(instruction)} (${instruction.getKeyword()}): ${why}`);
}

function lineOf(instruction: Instruction): number {
  return instruction.getRange().start.line + 1;
}

/** The exec form's argv, or the shell form run by /bin/sh -c, as Docker does. */
function commandOf(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    try {
      const argv: unknown = JSON.parse(trimmed);
      if (Array.isArray(argv) && argv.length > 0 && argv.every((a) => typeof a === 'string')) return argv as string[];
    } catch {
      // Docker runs text that is not a JSON array of strings as a shell command too.
    }
  }
  return ['/bin/sh', '-c', trimmed];
}

function checkFlags(instruction: Instruction): void {
  const flags = instruction instanceof ModifiableInstruction ? instruction.getFlags() : [];
  const known = KNOWN_FLAGS[instruction.getKeyword()] ?? [];
  for (const flag of flags) if (!known.includes(flag.getName())) fail(instruction, `the replay does not know the flag --${flag.getName()}`);
}

/** RUN commands run on this machine: refuse any that names a path outside the stage's directory. */
function checkRunStaysInStage(instruction: Instruction, command: string): void {
  for (const match of command.matchAll(WORD_START_PATH)) {
    const path = match[1] as string;
    if (!HOST_PATHS_ALLOWED.has(path)) fail(instruction, `names the absolute path ${path}, which the replay would touch on this machine; use a path relative to WORKDIR`);
  }
  if (PARENT_SEGMENT.test(command)) fail(instruction, 'names a parent directory (..), which could leave the stage\'s directory on this machine');
}

/**
 * Reads a Dockerfile into stages. Throws ReplayError for what the replay cannot
 * do as Docker would: an unknown instruction or flag, a variable, a base image
 * that is not a Node.js image or an earlier stage.
 */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const keyword = instruction.getKeyword();
    const args = instruction.getArgumentsContent() ?? '';
    checkFlags(instruction);
    if (keyword !== 'RUN' && keyword !== 'HEALTHCHECK' && keyword !== 'CMD' && keyword !== 'ENTRYPOINT' && args.includes('$')) fail(instruction, 'variables are not replayed');
    if (keyword === 'FROM') {
      stages.push(newStage(instruction as From, stages));
      continue;
    }
    const stage = stages[stages.length - 1];
    if (stage === undefined) fail(instruction, 'comes before the first FROM');
    const { config } = stage;
    const line = lineOf(instruction);
    const where = `line ${line}: ${instruction.toString()}`;
    switch (keyword) {
      case 'WORKDIR':
        config.workdir = posix.resolve(config.workdir, args.trim());
        stage.steps.push({ kind: 'workdir', line, text: where, path: config.workdir });
        break;
      case 'ENV':
        for (const property of (instruction as PropertyInstruction).getProperties()) config.env[property.getName()] = property.getValue() ?? '';
        break;
      case 'COPY': {
        if ((instruction as Copy).getHeredocs().length > 0) fail(instruction, 'here-documents are not replayed');
        const json = (instruction as Copy).getJSONStrings();
        const words = json.length > 0 ? json.map((a) => a.getJSONValue()) : instruction.getArguments().map((a) => a.getValue());
        if (words.length < 2) fail(instruction, 'needs a source and a destination');
        const from = (instruction as Copy).getFromFlag()?.getValue() ?? undefined;
        let fromStage: number | undefined;
        if (from !== undefined) {
          fromStage = stages.findIndex((s, i) => s !== stage && (s.name === from || String(i) === from));
          if (fromStage === -1) fail(instruction, `--from=${from} is not an earlier stage (the replay cannot copy from an image)`);
        }
        stage.steps.push({ kind: 'copy', line, text: where, fromStage, sources: words.slice(0, -1), dest: words[words.length - 1] as string, workdir: config.workdir });
        break;
      }
      case 'RUN': {
        if ((instruction as Run).getHeredocs().length > 0) fail(instruction, 'here-documents are not replayed');
        checkRunStaysInStage(instruction, args);
        stage.steps.push({ kind: 'run', line, text: where, argv: commandOf(args), workdir: config.workdir, env: { ...config.env } });
        break;
      }
      case 'USER':
        config.user = args.trim();
        break;
      case 'EXPOSE':
        config.exposed.push(...instruction.getArguments().map((a) => a.getValue()));
        break;
      case 'ENTRYPOINT':
        config.entrypoint = commandOf(args);
        // As in Docker: a new ENTRYPOINT drops the CMD inherited from the base.
        config.cmd = [];
        break;
      case 'CMD':
        config.cmd = commandOf(args);
        break;
      case 'HEALTHCHECK': {
        const sub = (instruction as Healthcheck).getSubcommand()?.getValue().toUpperCase();
        if (sub === 'NONE') config.healthcheck = undefined;
        else if (sub === 'CMD') config.healthcheck = commandOf(args.trim().slice(3));
        else fail(instruction, 'expected HEALTHCHECK CMD ... or HEALTHCHECK NONE');
        break;
      }
      case 'LABEL':
        break;
      default:
        fail(instruction, `the replay does not know ${keyword}: teach scripts/docker-replay.ts what it does`);
    }
  }
  if (stages.length === 0) throw new ReplayError('the Dockerfile has no FROM');
  return stages;
}

function newStage(instruction: From, stages: Stage[]): Stage {
  const name = instruction.getBuildStage() ?? undefined;
  const image = instruction.getImage() ?? '';
  const baseStage = stages.findIndex((s) => s.name === image);
  if (baseStage !== -1) {
    const base = stages[baseStage] as Stage;
    return { name, baseStage, nodeMajor: undefined, steps: [], config: structuredClone(base.config) };
  }
  const major = /^(\d+)(?:[.-]|$)/.exec(instruction.getImageTag() ?? '');
  if (instruction.getImageName() !== 'node' || instruction.getRegistry() !== null || !major) {
    fail(instruction, `the replay stands in for node:<major> images only, not ${image}`);
  }
  return { name, baseStage: undefined, nodeMajor: Number(major[1]), steps: [], config: structuredClone(NODE_IMAGE_CONFIG) };
}

// --- Building ----------------------------------------------------------------

/** Files a COPY can take from: the context less .dockerignore, or an earlier stage. */
interface SourceTree {
  root: string;
  excluded(relPath: string): boolean;
  what: string;
}

function contextTree(context: string): SourceTree {
  const ignoreFile = join(context, '.dockerignore');
  // Docker matches .dockerignore case-sensitively on Linux; the library's default is not.
  const rules = ignore({ ignorecase: false }).add(existsSync(ignoreFile) ? readFileSync(ignoreFile, 'utf8').split(/\r?\n/) : []);
  return { root: context, excluded: (relPath) => relPath !== '' && rules.ignores(relPath), what: 'the build context (or excluded by .dockerignore)' };
}

function toPosix(path: string): string {
  return path.split(sep).join('/');
}

/**
 * The paths a COPY source names, relative to the tree's root. Wildcards follow
 * Docker's (Go's filepath.Match), which the .dockerignore matcher implements.
 */
function expandSource(tree: SourceTree, source: string): string[] {
  const relPath = posix.resolve('/', source).slice(1);
  if (!/[*?[]/.test(relPath)) return existsSync(join(tree.root, relPath)) && !tree.excluded(relPath) ? [relPath] : [];
  const pattern = ignore({ ignorecase: false }).add(relPath);
  const depth = relPath.split('/').length;
  const found: string[] = [];
  const walk = (dir: string, level: number): void => {
    for (const entry of readdirSync(join(tree.root, dir), { withFileTypes: true })) {
      const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (tree.excluded(path)) continue;
      if (pattern.ignores(path)) found.push(path);
      else if (entry.isDirectory() && level < depth) walk(path, level + 1);
    }
  };
  walk('', 1);
  return found.sort();
}

/** Docker's COPY: a directory's contents go into dest; a file goes to dest, or into it when dest is a directory. */
function copyStep(step: Extract<Step, { kind: 'copy' }>, stageRoot: string, tree: SourceTree): void {
  const dest = join(stageRoot, posix.resolve(step.workdir, step.dest));
  const sources = step.sources.flatMap((source) => {
    const found = expandSource(tree, source);
    if (found.length === 0) throw new ReplayError(`line ${step.line}: COPY ${source}: not found in ${tree.what}`);
    return found;
  });
  const destIsDir = step.dest.endsWith('/') || (existsSync(dest) && statSync(dest).isDirectory());
  if (sources.length > 1 && !step.dest.endsWith('/')) throw new ReplayError(`line ${step.line}: COPY of several sources needs a destination ending in /`);
  const keep = (path: string): boolean => !tree.excluded(toPosix(relative(tree.root, path)));
  for (const source of sources) {
    const from = join(tree.root, source);
    if (statSync(from).isDirectory()) {
      mkdirSync(dest, { recursive: true });
      cpSync(from, dest, { recursive: true, verbatimSymlinks: true, filter: keep });
    } else {
      const to = destIsDir ? join(dest, basename(from)) : dest;
      mkdirSync(dirname(to), { recursive: true });
      cpSync(from, to);
    }
  }
}

/** Variables of this machine that RUN needs to find node, npm and npm's cache; nothing else leaks in. */
function hostEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'npm_config_cache']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

interface StepTiming {
  text: string;
  ms: number;
}

export interface BuiltImage {
  /** The directory standing for the final stage's filesystem. */
  root: string;
  config: ImageConfig;
  timings: StepTiming[];
}

interface BuildOptions {
  context: string;
  /** An empty directory for the stages' filesystems. */
  into: string;
  /** Longest a RUN may take. */
  runTimeoutMs?: number;
  onStep?: (timing: StepTiming) => void;
}

/** Builds every stage in order; the last is the image. Rejects with a ReplayError naming the step that failed. */
export async function buildImage(stages: Stage[], opts: BuildOptions): Promise<BuiltImage> {
  const context = contextTree(resolve(opts.context));
  const roots: string[] = [];
  const timings: StepTiming[] = [];
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  for (const [index, stage] of stages.entries()) {
    const root = join(opts.into, `stage-${index}`);
    roots.push(root);
    if (stage.baseStage !== undefined) cpSync(roots[stage.baseStage] as string, root, { recursive: true, verbatimSymlinks: true });
    else if (stage.nodeMajor !== nodeMajor) throw new ReplayError(`stage ${index} is built on Node.js ${stage.nodeMajor}; this machine runs ${process.version}, so the replay would not be faithful`);
    mkdirSync(root, { recursive: true });
    for (const step of stage.steps) {
      const started = performance.now();
      if (step.kind === 'workdir') mkdirSync(join(root, step.path), { recursive: true });
      else if (step.kind === 'copy') {
        const tree = step.fromStage === undefined ? context : { root: roots[step.fromStage] as string, excluded: () => false, what: `stage ${step.fromStage}` };
        copyStep(step, root, tree);
      } else await runStep(step, root, opts.runTimeoutMs ?? 600_000);
      const timing = { text: step.text, ms: performance.now() - started };
      timings.push(timing);
      opts.onStep?.(timing);
    }
  }
  const last = stages[stages.length - 1] as Stage;
  return { root: roots[roots.length - 1] as string, config: last.config, timings };
}

/** The niceness of RUN commands: a build in the background gives the CPU to whatever runs beside it (other tests). */
const RUN_NICENESS = 10;

async function runStep(step: Extract<Step, { kind: 'run' }>, root: string, timeoutMs: number): Promise<void> {
  const cwd = join(root, step.workdir);
  mkdirSync(cwd, { recursive: true });
  // prefer-offline: npm takes what its cache has and asks the registry only for the rest.
  const env = { ...hostEnv(), npm_config_prefer_offline: 'true', ...step.env };
  // Its own process group, so that a timeout ends what it started too (sh's children hold the pipes open).
  const child = spawn(step.argv[0] as string, step.argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  if (child.pid !== undefined) {
    try {
      setPriority(child.pid, RUN_NICENESS);
    } catch {
      // It exited already: nothing left to slow down.
    }
  }
  let output = '';
  const keep = (text: string): void => {
    output = (output + text).slice(-16_384);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), timeoutMs);
  let how: string | undefined;
  try {
    const [code, signal] = await closed;
    if (signal !== null) how = signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : `signal ${signal}`;
    else if (code !== 0) how = `exit status ${code}`;
  } catch (err) {
    how = (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
  if (how !== undefined) throw new ReplayError(`${step.text} failed (${how}):\n${output.trim().split('\n').slice(-30).join('\n')}`);
}

// --- Starting the image ----------------------------------------------------

interface Probe {
  /** The uid:gid the broker ran as: the image's numeric USER when the replay runs as root, else the replay's own. */
  ranAs: string;
  ports: { ws: number; tcp: number; metrics: number | undefined };
  /** HTTP statuses; undefined when there is no metrics port to ask. */
  healthz: number | undefined;
  readyz: number | undefined;
  upgrade: { status: number; retryAfter: string | undefined };
  /** Exit statuses of the image's HEALTHCHECK; undefined when it has none. */
  healthcheckWhileUp: number | null | undefined;
  healthcheckAfterStop: number | null | undefined;
  stopped: { code: number | null; signal: NodeJS.Signals | null };
}

function envName(key: keyof BrokerConfig): string {
  return SETTINGS.find((s) => s.key === key)?.env[0] as string;
}

/** The image's settings as the broker reads them from its ENV. */
function imageSettings(image: BuiltImage): BrokerConfig {
  return resolveConfig({}, image.config.env);
}

function exitOf(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
}

async function status(port: number, path: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) })).status;
}

function upgrade(port: number): Promise<Probe['upgrade']> {
  return new Promise((resolveUpgrade, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/docker-replay`, { handshakeTimeout: 5000 });
    ws.once('unexpected-response', (_req, res) => {
      resolveUpgrade({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      ws.terminate();
    });
    ws.once('open', () => {
      resolveUpgrade({ status: 101, retryAfter: undefined });
      ws.terminate();
    });
    ws.on('error', reject);
  });
}

/** How to run a process of the image: in its WORKDIR and, when root can switch to it, as its numeric USER. */
function processOptions(image: BuiltImage): { cwd: string; uid?: number; gid?: number } {
  const cwd = join(image.root, image.config.workdir);
  const ids = /^(\d+)(?::(\d+))?$/.exec(image.config.user ?? '');
  if (process.getuid?.() !== 0 || !ids) return { cwd };
  const uid = Number(ids[1]);
  return { cwd, uid, gid: ids[2] === undefined ? uid : Number(ids[2]) };
}

/** Runs the image's HEALTHCHECK as Docker would inside the container; its exit status. */
function runHealthcheck(image: BuiltImage, env: Record<string, string>): number | null | undefined {
  const argv = image.config.healthcheck;
  if (argv === undefined) return undefined;
  return spawnSync(argv[0] as string, argv.slice(1), { ...processOptions(image), env, stdio: 'ignore', timeout: 10_000 }).status;
}

/**
 * Starts the image's ENTRYPOINT and CMD in its WORKDIR with its ENV, on free
 * loopback ports (the listening line says which), probes it, stops it with
 * SIGTERM.
 */
async function startImage(image: BuiltImage, settings: BrokerConfig, timeoutMs = 15_000): Promise<Probe> {
  const argv = [...image.config.entrypoint, ...image.config.cmd];
  if (argv.length === 0) throw new ReplayError('the image has neither ENTRYPOINT nor CMD');
  const overrides: Record<string, string> = { [envName('host')]: '127.0.0.1', [envName('wsPort')]: '0', [envName('tcpHost')]: '127.0.0.1', [envName('tcpPort')]: '0', [envName('logLevel')]: 'info' };
  // Only when the image turns metrics on: otherwise the probe must find none.
  if (settings.metricsPort !== undefined) Object.assign(overrides, { [envName('metricsHost')]: '127.0.0.1', [envName('metricsPort')]: '0' });
  const env = { ...hostEnv(), ...image.config.env };
  const options = processOptions(image);
  const child = spawn(argv[0] as string, argv.slice(1), { ...options, env: { ...env, ...overrides }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = exitOf(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4096)));
  try {
    const listening = await new Promise<Record<string, unknown>>((resolveLine, reject) => {
      const settle = (finish: () => void): void => {
        clearTimeout(timer);
        finish();
      };
      const timer = setTimeout(() => reject(new ReplayError(`the image did not log "strands broker listening" within ${timeoutMs} ms`)), timeoutMs);
      void exited.then(({ code }) => settle(() => reject(new ReplayError(`the image exited with ${code} before listening: ${stderr.trim()}`))));
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return; // not a log line
        }
        if (entry.msg === 'strands broker listening') settle(() => resolveLine(entry));
      });
    });
    const ports = { ws: parseHostPort(String(listening.ws)).port, tcp: parseHostPort(String(listening.tcp)).port, metrics: listening.metrics === undefined ? undefined : parseHostPort(String(listening.metrics)).port };
    const probeEnv = ports.metrics === undefined ? env : { ...env, [envName('metricsPort')]: String(ports.metrics) };
    const healthz = ports.metrics === undefined ? undefined : await status(ports.metrics, '/healthz');
    const readyz = ports.metrics === undefined ? undefined : await status(ports.metrics, '/readyz');
    const upgraded = await upgrade(ports.ws);
    const healthcheckWhileUp = runHealthcheck(image, probeEnv);
    child.kill('SIGTERM');
    // A broker that outlives its own shutdown guard is killed, and shows as stopped by SIGKILL.
    const guard = setTimeout(() => child.kill('SIGKILL'), settings.drainTimeout + settings.shutdownTimeout + 5000);
    const stopped = await exited;
    clearTimeout(guard);
    const ranAs = `${options.uid ?? process.getuid?.()}:${options.gid ?? process.getgid?.()}`;
    return { ranAs, ports, healthz, readyz, upgrade: upgraded, healthcheckWhileUp, healthcheckAfterStop: runHealthcheck(image, probeEnv), stopped };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

// --- Verdict -------------------------------------------------------------------

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Paths (node_modules/...) of packages package-lock.json marks as needed only for development. */
function devPackagePaths(lockfile: string): string[] {
  const lock = JSON.parse(readFileSync(lockfile, 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  return Object.entries(lock.packages).filter(([path, entry]) => path !== '' && entry.dev === true).map(([path]) => path);
}

/**
 * What is wrong with the image as a deployable broker, one line each; empty
 * when nothing is. `lockfile` is the context's package-lock.json.
 */
function imageProblems(image: BuiltImage, settings: BrokerConfig, probe: Probe, lockfile: string): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, problem: string): void => {
    if (!ok) problems.push(problem);
  };
  const { config } = image;
  expect(config.user !== undefined && !/^(root|0)(:|$)/.test(config.user), `the image runs as ${config.user ?? 'root (no USER)'}`);
  const exposed = new Set(config.exposed.map((p) => Number(p.replace(/\/tcp$/, ''))));
  for (const [what, port] of [['WebSocket', settings.wsPort], ['backend', settings.tcpPort], ['metrics', settings.metricsPort]] as const) {
    expect(port !== undefined && exposed.has(port), `the ${what} port ${port ?? '(off)'} is not in EXPOSE (${config.exposed.join(' ')})`);
  }
  for (const [what, host] of [['WebSocket', settings.host], ['backend', settings.tcpHost], ['metrics', settings.metricsHost]] as const) {
    expect(!LOOPBACK.has(host), `the ${what} port binds ${host}: nothing outside the container can reach it`);
  }
  const workdir = join(image.root, config.workdir);
  const devInImage = devPackagePaths(lockfile).filter((path) => existsSync(join(workdir, path)));
  expect(devInImage.length === 0, `dev dependencies in the image: ${devInImage.join(', ')}`);
  expect(probe.healthz === 200, `/healthz answered ${probe.healthz ?? '(no metrics port)'}, not 200`);
  // /readyz holds with no backend only while a queue can take events.
  const ready = settings.queueSize > 0 ? 200 : 503;
  expect(probe.readyz === ready, `/readyz answered ${probe.readyz ?? '(no metrics port)'}, not ${ready}`);
  expect(probe.upgrade.status === 503 && probe.upgrade.retryAfter !== undefined, `a WebSocket upgrade with no backend got ${probe.upgrade.status} (Retry-After: ${probe.upgrade.retryAfter ?? 'none'}), not 503 with Retry-After`);
  expect(probe.healthcheckWhileUp === 0, `HEALTHCHECK exited ${probe.healthcheckWhileUp ?? '(none in the image)'} while the broker was up`);
  expect(probe.healthcheckAfterStop !== undefined && probe.healthcheckAfterStop !== 0, `HEALTHCHECK exited ${probe.healthcheckAfterStop ?? '(none in the image)'} after the broker stopped`);
  expect(probe.stopped.code === 0, `SIGTERM: exit ${probe.stopped.code} (signal ${probe.stopped.signal}), not 0`);
  return problems;
}

interface ReplayResult {
  image: BuiltImage;
  probe: Probe;
  problems: string[];
  /** The whole replay, parsing to the stopped broker. */
  ms: number;
}

/** Parses, builds, starts and judges the Dockerfile of `context`; removes what it built unless `keep`. */
export async function replay(opts: { context: string; dockerfile?: string; keep?: boolean; onStep?: (timing: StepTiming) => void }): Promise<ReplayResult> {
  const started = performance.now();
  const context = resolve(opts.context);
  const stages = parseDockerfile(readFileSync(resolve(context, opts.dockerfile ?? 'Dockerfile'), 'utf8'));
  const into = mkdtempSync(join(tmpdir(), 'strands-docker-replay-'));
  // mkdtemp makes it private to its owner; the image's USER must be able to reach its files.
  chmodSync(into, 0o755);
  try {
    const image = await buildImage(stages, { context, into, ...(opts.onStep ? { onStep: opts.onStep } : {}) });
    let settings: BrokerConfig;
    try {
      settings = imageSettings(image);
    } catch (err) {
      if (err instanceof ConfigError) throw new ReplayError(`the image's ENV is not a valid configuration: ${err.message}`);
      throw err;
    }
    const probe = await startImage(image, settings);
    return { image, probe, problems: imageProblems(image, settings, probe, join(context, 'package-lock.json')), ms: performance.now() - started };
  } finally {
    if (!opts.keep) rmSync(into, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { context: { type: 'string' }, dockerfile: { type: 'string' }, keep: { type: 'boolean' } } });
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const result = await replay({
    context: values.context ?? join(__dirname, '..', '..'),
    ...(values.dockerfile ? { dockerfile: values.dockerfile } : {}),
    ...(values.keep ? { keep: true } : {}),
    onStep: (timing) => process.stdout.write(`${seconds(timing.ms).padStart(8)}  ${timing.text}\n`),
  });
  const { probe } = result;
  process.stdout.write(
    `started: ${[...result.image.config.entrypoint, ...result.image.config.cmd].join(' ')} as ${probe.ranAs}; /healthz ${probe.healthz}, /readyz ${probe.readyz}, upgrade ${probe.upgrade.status}, ` +
      `HEALTHCHECK ${probe.healthcheckWhileUp} up / ${probe.healthcheckAfterStop} stopped, SIGTERM exit ${probe.stopped.code}\n`,
  );
  if (values.keep) process.stdout.write(`kept: ${result.image.root}\n`);
  for (const problem of result.problems) process.stdout.write(`PROBLEM: ${problem}\n`);
  process.stdout.write(`${result.problems.length === 0 ? 'ok' : 'FAILED'}: replayed in ${seconds(result.ms)}\n`);
  process.exitCode = result.problems.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`docker-replay: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}

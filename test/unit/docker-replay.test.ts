/**
 * The Dockerfile replay (scripts/docker-replay.ts) on small made-up build
 * contexts: it fails where Docker would (a file not COPYed, a file excluded by
 * .dockerignore), copies as Docker does, and refuses, naming the line, what it
 * cannot replay. The project's own Dockerfile is replayed in
 * test/integration/docker-replay.test.ts.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildImage, parseDockerfile, type BuiltImage } from '../../scripts/docker-replay';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const FROM = `FROM node:${NODE_MAJOR}-bookworm-slim`;

/** A build context holding `files`, and an empty directory to build into; both removed when the test ends. */
function workspace(t: TestContext, files: Record<string, string>): { context: string; into: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strands-replay-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const context = join(dir, 'context');
  const into = join(dir, 'stages');
  mkdirSync(into);
  for (const [path, text] of Object.entries({ '.keep': '', ...files })) {
    mkdirSync(dirname(join(context, path)), { recursive: true });
    writeFileSync(join(context, path), text);
  }
  return { context, into };
}

function build(t: TestContext, dockerfile: string, files: Record<string, string>): Promise<BuiltImage> {
  return buildImage(parseDockerfile(dockerfile), workspace(t, files));
}

/** The files under `dir`, relative and sorted. */
function filesIn(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as { isFile(): boolean; parentPath: string; name: string }[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

test('a file the Dockerfile does not COPY is missing when a RUN needs it, as in Docker', async (t) => {
  const dockerfile = [FROM, 'WORKDIR /w', 'COPY a.txt ./', 'RUN cat a.txt b.txt > both.txt'].join('\n');
  await assert.rejects(build(t, dockerfile, { 'a.txt': 'A', 'b.txt': 'B' }), { name: 'ReplayError', message: /line 4: RUN cat a\.txt b\.txt > both\.txt failed \(exit status 1\):\n.*b\.txt/ });
});

test('a RUN that does not finish in time is killed, and one that cannot start is named', async (t) => {
  const slow = parseDockerfile([FROM, 'RUN sleep 30'].join('\n'));
  await assert.rejects(buildImage(slow, { ...workspace(t, {}), runTimeoutMs: 200 }), { name: 'ReplayError', message: /line 2: RUN sleep 30 failed \(killed after 200 ms\)/ });
  await assert.rejects(build(t, [FROM, 'RUN ["strands-no-such-command"]'].join('\n'), {}), { name: 'ReplayError', message: /failed \(spawn strands-no-such-command ENOENT\)/ });
});

test('RUN runs in the stage\'s WORKDIR with its ENV and none of this process\'s environment', async (t) => {
  process.env.STRANDS_REPLAY_TEST_LEAK = 'leaked';
  t.after(() => delete process.env.STRANDS_REPLAY_TEST_LEAK);
  const dockerfile = [FROM, 'WORKDIR /w', 'WORKDIR sub', 'COPY a.txt b.txt ./', 'ENV GREETING="hello there"', 'RUN cat a.txt b.txt > both.txt && echo "$GREETING|$STRANDS_REPLAY_TEST_LEAK" > env.txt'].join('\n');
  const image = await build(t, dockerfile, { 'a.txt': 'A', 'b.txt': 'B' });
  assert.equal(image.config.workdir, '/w/sub');
  assert.equal(readFileSync(join(image.root, 'w', 'sub', 'both.txt'), 'utf8'), 'AB');
  assert.equal(readFileSync(join(image.root, 'w', 'sub', 'env.txt'), 'utf8'), 'hello there|\n');
});

test('.dockerignore: an excluded file cannot be COPYed, and a COPYed directory leaves excluded files out', async (t) => {
  const files = { '.dockerignore': '# secrets\n**/*.pem\nkeep/cache\n', 'keep/a.txt': 'a', 'keep/tls/key.pem': 'k', 'keep/cache/x': 'x', 'top.pem': 'k', 'Upper.PEM': 'u' };
  const image = await build(t, [FROM, 'WORKDIR /w', 'COPY keep ./keep', 'COPY Upper.PEM ./'].join('\n'), files);
  assert.deepEqual(filesIn(join(image.root, 'w')), ['Upper.PEM', 'keep/a.txt'], 'matching is case-sensitive, as Docker\'s on Linux');
  await assert.rejects(build(t, [FROM, 'COPY top.pem ./'].join('\n'), files), { name: 'ReplayError', message: /line 2: COPY top\.pem: not found in the build context/ });
});

test('COPY as Docker does: a directory\'s contents into dest, files into a dest ending in /, wildcards as filepath.Match', async (t) => {
  const files = { 'package.json': '{}', 'package-lock.json': '{}', 'sub/package.json': '{}', 'src/x.ts': 'x', 'src/deep/y.ts': 'y', 'one.txt': '1' };
  const image = await build(t, [FROM, 'WORKDIR /app', 'COPY package*.json ./', 'COPY src ./code', 'COPY ["one.txt", "renamed.txt"]', 'COPY one.txt /abs/'].join('\n'), files);
  assert.deepEqual(filesIn(join(image.root, 'app')), ['code/deep/y.ts', 'code/x.ts', 'package-lock.json', 'package.json', 'renamed.txt']);
  assert.deepEqual(filesIn(join(image.root, 'abs')), ['one.txt']);
  await assert.rejects(build(t, [FROM, 'COPY one.txt src dest'].join('\n'), files), { message: /several sources needs a destination ending in \// });
  await assert.rejects(build(t, [FROM, 'COPY *.md ./'].join('\n'), files), { message: /COPY \*\.md: not found/ });
});

test('the last stage holds only what it COPYs from earlier ones, and its own config', async (t) => {
  const dockerfile = [
    `${FROM} AS build`,
    'WORKDIR /w',
    'ENV BUILD_ONLY=1',
    'RUN mkdir -p out && echo built > out/file && echo scratch > scratch',
    'FROM build AS test',
    'RUN cat out/file > seen',
    FROM,
    'ENV A=1 \\',
    '    B="two words"',
    'WORKDIR /app',
    'COPY --from=build /w/out ./out',
    'COPY --from=test /w/seen ./',
    'USER 1000:1000',
    'EXPOSE 8080 9090/tcp',
    'ENTRYPOINT ["node", "main.js"]',
    'HEALTHCHECK --interval=5s CMD node -e "process.exit(0)"',
  ].join('\n');
  const image = await build(t, dockerfile, {});
  assert.deepEqual(filesIn(image.root), ['app/out/file', 'app/seen']);
  assert.equal(readFileSync(join(image.root, 'app', 'seen'), 'utf8'), 'built\n', 'a stage FROM another starts with its files');
  assert.deepEqual(image.config, {
    workdir: '/app',
    env: { A: '1', B: 'two words' },
    user: '1000:1000',
    exposed: ['8080', '9090/tcp'],
    entrypoint: ['node', 'main.js'],
    cmd: [], // a new ENTRYPOINT drops the base image's CMD
    healthcheck: ['/bin/sh', '-c', 'node -e "process.exit(0)"'],
  });
});

test('what the replay cannot do as Docker would stops it, naming the line', () => {
  const refused: [string, RegExp][] = [
    ['ADD https://example.com/x.tgz ./', /line 2 \(ADD\): the replay does not know ADD/],
    ['ARG VERSION=1', /line 2 \(ARG\)/],
    ['SHELL ["/bin/bash", "-c"]', /line 2 \(SHELL\)/],
    ['RUN --mount=type=cache,target=.npm npm ci', /line 2 \(RUN\): the replay does not know the flag --mount/],
    ['COPY --chmod=644 a ./', /--chmod/],
    ['ENV A=$B', /variables are not replayed/],
    ['COPY --from=nowhere /a ./', /--from=nowhere is not an earlier stage/],
    ['RUN rm -rf /etc/strands', /absolute path \/etc\/strands/],
    ['RUN cd .. && ls', /parent directory/],
    ['HEALTHCHECK --interval=1s', /HEALTHCHECK CMD/],
    ['RUN <<EOF\necho hi > out.txt\nEOF', /line 2 \(RUN\): here-documents are not replayed/],
    ['COPY <<EOF out.txt\nhi\nEOF', /line 2 \(COPY\): here-documents are not replayed/],
  ];
  for (const [line, message] of refused) assert.throws(() => parseDockerfile(`${FROM}\n${line}`), { name: 'ReplayError', message }, line);
  assert.throws(() => parseDockerfile('FROM python:3.12-slim'), /node:<major> images only, not python:3\.12-slim/);
  assert.throws(() => parseDockerfile('FROM node:lts'), /node:<major> images only/);
  assert.throws(() => parseDockerfile('WORKDIR /app'), /before the first FROM/);
  assert.throws(() => parseDockerfile('# nothing'), /no FROM/);
  assert.equal(parseDockerfile(`${FROM}\nRUN ls >/dev/null 2>&1`)[0]?.steps.length, 1, '/dev/null is allowed');
});

test('a base image on another Node.js major is refused: the replay would run this machine\'s', async (t) => {
  const stages = parseDockerfile(`FROM node:${NODE_MAJOR + 1}-bookworm-slim`);
  await assert.rejects(buildImage(stages, workspace(t, {})), { name: 'ReplayError', message: new RegExp(`Node\\.js ${NODE_MAJOR + 1}; this machine runs ${process.version}`) });
});

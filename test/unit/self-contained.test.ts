/**
 * The repository must explain itself: no tracked file may send its reader to
 * documents a user of this repository does not have (the team's upstream
 * protocol and design notes, the shared folder outside the repository that
 * holds them) or to an issue tracker's numbers. The wire protocol's own
 * document is docs/protocol.md. Its name is lower-case, which is why the
 * upstream file names are matched in their exact upper case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');

const FORBIDDEN: readonly { what: string; pattern: RegExp }[] = [
  { what: 'the upstream protocol notes', pattern: /\bPROTOCOL\.md\b/ },
  { what: 'the upstream design notes', pattern: /\bDESIGN\.md\b/ },
  { what: 'the shared folder outside the repository', pattern: /(\.\.|\/work)\/shared\b/i },
  { what: 'an issue number', pattern: /\bissues?\s*#?\s*\d/i },
];

/** What `text` points at outside the repository, if anything. */
function outsideReference(text: string): string | undefined {
  return FORBIDDEN.find(({ pattern }) => pattern.test(text))?.what;
}

function trackedFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0');
  // A tracked file deleted in the working tree (before `git rm`) has nothing left to read.
  return listed.filter((file) => file !== '' && basename(file) !== 'package-lock.json' && existsSync(join(ROOT, file)));
}

test('no tracked file points at notes outside the repository or at issue numbers', () => {
  const files = trackedFiles();
  assert.ok(files.includes('README.md') && files.includes('docs/protocol.md'), `git ls-files in ${ROOT} did not list the repository's files`);
  const offenders: string[] = [];
  for (const file of files) {
    readFileSync(join(ROOT, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const what = outsideReference(line);
        if (what !== undefined) offenders.push(`${file}:${i + 1}: ${what}: ${line.trim()}`);
      });
  }
  assert.equal(offenders.length, 0, `say it in the repository's own words, or point at docs/protocol.md:\n${offenders.join('\n')}`);
});

test('the patterns catch each kind of outside reference, and not the repository\'s own docs', () => {
  // Assembled from parts, so that this file does not itself contain what it forbids.
  const caught = [
    ['see PROTOCOL', '.md part 2'],
    ['(DESIGN', '.md, "Benchmarks")'],
    ['../', 'shared/notes.md'],
    ['/work/', 'shared'],
    ['Issue', ' 4, production hardening'],
    ['the targets of issue', ' #3'],
    ['(ISSUE', '#12)'],
  ].map((parts) => parts.join(''));
  for (const text of caught) assert.notEqual(outsideReference(text), undefined, text);
  const allowed = ['see docs/protocol.md', '[auth](protocol.md#auth)', 'tissue 3', 'an issue with the queue', 'shared/ is not a folder here'];
  for (const text of allowed) assert.equal(outsideReference(text), undefined, text);
});

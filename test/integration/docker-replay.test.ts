/**
 * The project's Dockerfile, replayed without a Docker engine (CI has none):
 * built from exactly the files it COPYs, its RUNs run, the final stage
 * assembled from its COPY --from files, then started with the image's ENV and
 * probed. Its `npm ci` takes the npm cache first, so it runs offline once the
 * project's own install has filled the cache. Its RUNs are niced and, on a loaded
 * machine, slow: the timeout is generous.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { replay } from '../../scripts/docker-replay';

const REPO_ROOT = join(__dirname, '..', '..', '..');

test('the Dockerfile builds from what it COPYs, and the image starts, answers probes and stops on SIGTERM', { timeout: 600_000 }, async () => {
  const result = await replay({ context: REPO_ROOT });
  assert.deepEqual(result.problems, []);
  const { probe } = result;
  assert.equal(probe.healthz, 200);
  assert.equal(probe.upgrade.status, 503, 'no backend: the upgrade is refused with 503');
  assert.equal(probe.healthcheckWhileUp, 0);
  assert.deepEqual(probe.stopped, { code: 0, signal: null });
  // As root (CI), the replay starts the broker as the image's USER, as Docker does: unreadable files would show.
  if (process.getuid?.() === 0) assert.equal(probe.ranAs, result.image.config.user);
});

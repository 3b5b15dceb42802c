import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { BackendLink } from '../../src/backends/backend-link';
import { BackendRouter } from '../../src/backends/backend-router';
import type { ClientHub } from '../../src/client-hub';

/** A link that records what it is sent. */
function recordingLink(): BackendLink & { sent: Record<string, any>[] } {
  const sent: Record<string, any>[] = [];
  return { remote: 'test:1', aboveHighWaterMark: false, sent, send: (line: string) => sent.push(JSON.parse(line)) } as unknown as BackendLink & { sent: Record<string, any>[] };
}

/** A hub whose every method throws, standing for a defect anywhere below the router. */
const brokenHub = new Proxy({} as ClientHub, {
  get: () => () => {
    throw new TypeError('a defect deep in the broker');
  },
});

function router(hub: ClientHub, logged: Record<string, unknown>[] = []): BackendRouter {
  const log = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  return new BackendRouter(hub, () => undefined, { maxMessage: 1024 }, log);
}

describe('BackendRouter: a defect while handling a line', () => {
  test('becomes an error event, a counter and a log line; the next line is handled', () => {
    const logged: Record<string, unknown>[] = [];
    const r = router(brokenHub, logged);
    const link = recordingLink();
    r.route(link, '{"request_id":"r1","action":"broadcast","params":{"message":"hi"}}');
    assert.equal(link.sent.length, 1);
    assert.equal(link.sent[0]?.action, 'error');
    assert.equal(link.sent[0]?.params.error, 'internal error while handling this line; it was skipped (request_id r1)');
    assert.equal(r.stats.errors.internal, 1);
    assert.equal(logged.length, 1);
    assert.match(String(logged[0]?.err), /a defect deep in the broker/);
    r.route(link, '{"request_id":"r2","action":"nope","params":{}}');
    assert.equal(link.sent[1]?.params.error, 'unknown action "nope" (request_id r2)');
  });

  test('with ack: the answer says ok: false instead of an error event', () => {
    const r = router(brokenHub);
    const link = recordingLink();
    r.route(link, '{"request_id":"r1","action":"broadcast","params":{"message":"hi"},"ack":true}');
    assert.deepEqual(link.sent, [{ request_id: 'r1', action: 'response', params: { ok: false, delivered: 0, error: 'internal error while handling this line; it was skipped' } }]);
  });

  test('a flood of defects is logged once a second, each counted and answered', () => {
    const logged: Record<string, unknown>[] = [];
    const r = router(brokenHub, logged);
    const link = recordingLink();
    for (let i = 0; i < 1000; i++) r.route(link, `{"request_id":"r${i}","action":"broadcast","params":{"message":"x"}}`);
    assert.equal(r.stats.errors.internal, 1000);
    assert.equal(link.sent.length, 1000);
    assert.equal(logged.length, 1);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { FdGuard, type DescriptorSource, type Door } from '../../src/admission/fd-guard';

function setup(open: { n: number }, limits = { soft: 1000, hard: 1000 }) {
  const door = { accepting: true, pauses: 0, resumes: 0 } as Door & { accepting: boolean; pauses: number; resumes: number };
  door.pauseAccepting = () => ((door.accepting = false), door.pauses++);
  door.resumeAccepting = async () => ((door.accepting = true), door.resumes++, true);
  const source: DescriptorSource = {
    count: () => {
      if (open.n < 0) throw Object.assign(new Error('EMFILE'), { code: 'EMFILE' });
      return open.n;
    },
    limits: () => limits,
  };
  const logged: Record<string, unknown>[] = [];
  const guard = new FdGuard(door, { reserve: 100, wanted: 0 }, pino({ level: 'info' }, { write: (l: string) => logged.push(JSON.parse(l)) }), source);
  return { door, guard, logged };
}

describe('FdGuard', () => {
  test('pauses below the reserve, resumes at twice it, and says so each time', async (t) => {
    const open = { n: 500 };
    const { door, guard, logged } = setup(open);
    t.after(() => guard.stop());
    await guard.start();
    await guard.check();
    assert.equal(door.pauses, 0);
    open.n = 901;
    await guard.check();
    assert.equal(door.accepting, false);
    open.n = 850;
    await guard.check();
    assert.equal(door.resumes, 0, 'not yet: 150 free is below twice the reserve');
    open.n = 800;
    await guard.check();
    assert.equal(door.accepting, true);
    assert.deepEqual(logged.map((l) => l.msg).filter((m) => String(m).startsWith('descriptors')), [
      'descriptors running out: the WebSocket port stops accepting until some are free (open connections and backends are served)',
      'descriptors free again: the WebSocket port accepts connections',
    ]);
    assert.equal(guard.stats.pauses, 1);
  });

  test('EMFILE while counting means the limit is reached', async (t) => {
    const open = { n: -1 };
    const { door, guard } = setup(open);
    t.after(() => guard.stop());
    await guard.start();
    await guard.check();
    assert.equal(door.accepting, false);
    assert.equal(guard.stats.open, 1000);
  });

  test('warns at start when the hard limit cannot hold the wanted connections plus the reserve', async () => {
    const logged: Record<string, unknown>[] = [];
    const door: Door = { accepting: true, pauseAccepting: () => undefined, resumeAccepting: async () => true };
    const guard = new FdGuard(door, { reserve: 100, wanted: 5000 }, pino({ level: 'warn' }, { write: (l: string) => logged.push(JSON.parse(l)) }), { count: () => 10, limits: () => ({ soft: 1024, hard: 4096 }) });
    await guard.start();
    await guard.stop();
    assert.equal(logged[0]?.hardLimit, 4096);
  });
});

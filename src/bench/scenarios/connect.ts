import { sleep } from '../clock';
import { formatNumber } from '../format';
import { busGrowths, usagesBetween, type Harness } from '../harness';
import { everySecond, rateOf } from '../progress';
import type { Measurement } from '../result';

/**
 * connect: opens --connections clients through the target's validation with
 * bounded concurrency (rate and handshake latency; the target's CPU per
 * connection), then holds them idle for --duration seconds and reports how
 * much the target's RSS grew per connection. A connection lost while idle is an error.
 */
export async function measureConnect(h: Harness): Promise<Measurement> {
  const { options: o, pool } = h;
  const openRate = rateOf(() => pool.totals().open);
  let holding = 0;
  const stopProgress = everySecond(h.progress, (elapsedS) => {
    const t = pool.totals();
    const phase = holding > 0 ? `hold ${Math.floor((Date.now() - holding) / 1000)}/${o.duration}s` : `opening ${openRate(elapsedS)} conn/s`;
    return `connect ${phase} | open ${formatNumber(t.open)}/${formatNumber(pool.clients)} | errors ${formatNumber(t.errors + h.errors.count)}`;
  });
  try {
    const before = h.sample();
    const mainCpu = process.cpuUsage();
    const busBefore = await h.busCounts();
    const opened = await h.openClients();
    const afterOpen = h.sample();
    const main = process.cpuUsage(mainCpu);
    const bus = busGrowths(busBefore, await h.busCounts());
    holding = Date.now();
    await sleep(o.duration * 1000);
    const afterHold = h.sample();
    const drained = await pool.drain(0, 0);
    drained.errors.merge(h.errors.count, h.errors.samples);
    const windowUs = opened.lastOpenUs - opened.firstStartUs;
    const usages = usagesBetween(before, afterOpen, before, afterHold);
    return {
      messages: 0,
      deliveries: 0,
      connections: opened.ok,
      ops: opened.ok,
      windowUs,
      latency: opened.handshakes,
      lost: 0,
      errors: drained.errors,
      perSecond: opened.perSecond,
      nodes: h.perNode(opened.byUrl).map((n, i) => ({ connections: n.count, ops: n.count, latency: n.latency, usage: usages.nodes[i], bus: bus[i] })),
      nats: usages.nats,
      machineCpuUs: usages.machineCpuUs,
      harnessCpuUs: { main: main.user + main.system, workers: opened.cpuUs },
    };
  } finally {
    stopProgress();
  }
}

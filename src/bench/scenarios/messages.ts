import { nowUs, sleepUntil } from '../clock';
import { formatNumber } from '../format';
import { busGrowths, usagesBetween, type Harness } from '../harness';
import { OpenLoop } from '../open-loop';
import { everySecond, rateOf } from '../progress';
import type { Measurement } from '../result';

/** Lets the `go` message reach every worker before the first intended send time. */
const START_DELAY_US = 100_000;

/**
 * pingpong, throughput, fanout, broadcast: clients connect, traffic runs for
 * warmup + duration, and only messages whose intended send time falls in the
 * measured window count towards latency and rate. Every message sent, warmup
 * included, must arrive by the end of the drain grace or counts as lost.
 */
export async function measureMessages(h: Harness): Promise<Measurement> {
  const { options: o, spec, pool } = h;
  const before = h.sample();
  const opened = await h.openClients();
  const publisher = spec.publish ? await h.publisher() : undefined;

  const startUs = Math.round(nowUs() + START_DELAY_US);
  const measureStartUs = startUs + Math.round(o.warmup * 1e6);
  const measureEndUs = measureStartUs + Math.round(o.duration * 1e6);
  pool.go(spec.role, o.payload, o.rate, startUs, measureStartUs, measureEndUs);
  let publishedInWindow = 0;
  const loop =
    publisher &&
    new OpenLoop(o.rate, startUs, measureEndUs, (intendedUs) => {
      publisher.publish(intendedUs);
      if (intendedUs >= measureStartUs) publishedInWindow++;
    });

  const sentRate = rateOf(() => loop?.count ?? pool.totals().sent);
  const receivedRate = rateOf(() => pool.totals().received);
  const stopProgress = everySecond(h.progress, (elapsedS) => {
    const now = nowUs();
    const phase = now < measureStartUs ? `warmup ${secs(now - startUs)}/${o.warmup}s` : now < measureEndUs ? `measure ${secs(now - measureStartUs)}/${o.duration}s` : 'drain';
    const t = pool.totals();
    return `${o.scenario} ${phase} | recv ${receivedRate(elapsedS)}/s | ${publisher ? 'published' : 'sent'} ${sentRate(elapsedS)}/s | clients ${formatNumber(t.open)} | errors ${formatNumber(t.errors + h.errors.count)}`;
  });
  try {
    await sleepUntil(measureStartUs);
    const windowStart = h.sample();
    const mainCpu = process.cpuUsage();
    // After the CPU sample at each edge: a node's CPU for rendering /metrics (about a millisecond) counts once, at the start.
    const busStart = await h.busCounts();
    await sleepUntil(measureEndUs);
    const windowEnd = h.sample();
    const main = process.cpuUsage(mainCpu);
    const busEnd = await h.busCounts();
    await loop?.done;
    // Receivers expect every published message; senders expect the echo of each message sent.
    const drained = await pool.drain(loop?.count, o.drain * 1000);
    drained.errors.merge(h.errors.count, h.errors.samples);
    const usages = usagesBetween(windowStart, windowEnd, before, windowEnd);
    const bus = busGrowths(busStart, busEnd);
    const received = h.perNode(drained.byUrl);
    const connected = h.perNode(opened.byUrl);
    return {
      messages: loop ? publishedInWindow : drained.measuredSent,
      deliveries: drained.measured,
      connections: opened.ok,
      ops: drained.measured,
      windowUs: measureEndUs - measureStartUs,
      latency: drained.latency,
      lost: drained.lost,
      errors: drained.errors,
      perSecond: drained.perSecond,
      nodes: received.map((r, i) => ({ connections: connected[i]!.count, ops: r.count, latency: r.latency, usage: usages.nodes[i], bus: bus[i] })),
      nats: usages.nats,
      machineCpuUs: usages.machineCpuUs,
      harnessCpuUs: { main: main.user + main.system, workers: drained.cpuUs },
    };
  } finally {
    stopProgress();
    loop?.stop();
  }
}

function secs(us: number): number {
  return Math.floor(us / 1e6);
}

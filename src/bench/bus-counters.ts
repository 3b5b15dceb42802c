import type { HostPort } from './options';

/** A cluster node's bus frames so far, from strands_cluster_bus_messages_total. */
export interface BusCounts {
  /** Frames this node handed to NATS. */
  published: number;
  /** Frames from other nodes that this node acted on. */
  received: number;
  /** Frames not published (bus down, or too much unconfirmed): lost for the other nodes. */
  dropped: number;
}

const METRIC = 'strands_cluster_bus_messages_total';
/** A node that takes longer than this to render /metrics is not one to measure. */
const TIMEOUT_MS = 2000;

/** Reads a node's bus counters from its /metrics; undefined when it has none (a broker not in a cluster). */
export async function readBusCounts(at: HostPort): Promise<BusCounts | undefined> {
  const url = `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}/metrics`;
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
  } catch (err) {
    throw new Error(`cannot read the bus counters from ${url}: ${(err as Error).message}`);
  }
  const value = (direction: keyof BusCounts): number | undefined => {
    const line = new RegExp(`^${METRIC}\\{direction="${direction}"\\} (\\d+)$`, 'm').exec(text);
    return line ? Number(line[1]) : undefined;
  };
  const [published, received, dropped] = [value('published'), value('received'), value('dropped')];
  if (published === undefined || received === undefined || dropped === undefined) return undefined;
  return { published, received, dropped };
}

/** What the counters grew by between two readings. */
export function busGrowth(from: BusCounts | undefined, to: BusCounts | undefined): BusCounts | undefined {
  if (!from || !to) return undefined;
  return { published: to.published - from.published, received: to.received - from.received, dropped: to.dropped - from.dropped };
}

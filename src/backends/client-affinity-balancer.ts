import { hash32 } from './hash';
import type { BackendLink } from './backend-link';
import type { Balancer } from './balancer';

/** Points per backend on the ring: enough for an even spread over a handful of backends. */
const VIRTUAL_NODES = 128;

/**
 * Consistent hashing over the live backends: a client's events all go to one
 * backend while both live, and when a backend joins or leaves only the clients
 * on the ring segments it owned move. A backed-up owner still gets its clients'
 * events: another backend would reorder them, and the shared queue would hold
 * every other client's events up behind them. Its link's hard limit (twice the
 * high-water mark) bounds what it holds; past it the link is dropped and its
 * clients move.
 */
export class ClientAffinityBalancer implements Balancer {
  private points = new Uint32Array(0);
  private owners: BackendLink[] = [];

  update(links: readonly BackendLink[]): void {
    const ring: { point: number; link: BackendLink }[] = [];
    for (const link of links) {
      for (let v = 0; v < VIRTUAL_NODES; v++) ring.push({ point: hash32(`${link.id}#${v}`), link });
    }
    ring.sort((a, b) => a.point - b.point);
    this.points = Uint32Array.from(ring, (r) => r.point);
    this.owners = ring.map((r) => r.link);
  }

  pick(affinity: number): BackendLink | undefined {
    const points = this.points;
    if (points.length === 0) return undefined;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((points[mid] as number) < affinity) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === points.length ? 0 : lo];
  }
}

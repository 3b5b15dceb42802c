import type { BackendLink } from './backend-link';
import type { Balancer } from './balancer';

/** Each event to the next backend in turn, passing over those that are backed up. */
export class RoundRobinBalancer implements Balancer {
  private links: readonly BackendLink[] = [];
  private cursor = 0;

  update(links: readonly BackendLink[]): void {
    this.links = links;
    this.cursor = 0;
  }

  pick(): BackendLink | undefined {
    const links = this.links;
    const n = links.length;
    for (let tried = 0; tried < n; tried++) {
      const link = links[this.cursor] as BackendLink;
      this.cursor = this.cursor + 1 === n ? 0 : this.cursor + 1;
      if (!link.aboveHighWaterMark) return link;
    }
    return undefined;
  }
}

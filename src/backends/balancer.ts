import type { BackendLink } from './backend-link';

/**
 * Chooses the backend for an event. Links given to `update` are live; `pick`
 * skips those above their write high-water mark and returns undefined when
 * none can take the event (the caller then queues it).
 */
export interface Balancer {
  update(links: readonly BackendLink[]): void;
  /** `affinity` is a hash of the client the event is about (0 when none). */
  pick(affinity: number): BackendLink | undefined;
}

import type { BackendLink } from './backend-link';

/**
 * Chooses the backend for an event among the live links given to `update`,
 * or returns undefined when none should take it now (the caller queues it).
 */
export interface Balancer {
  update(links: readonly BackendLink[]): void;
  /** `affinity` is a hash of the client the event is about (0 when none). */
  pick(affinity: number): BackendLink | undefined;
}

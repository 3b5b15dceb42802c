import type { BackendLink } from '../../src/backends/backend-link';

/** The part of a BackendLink that balancers look at, settable by a test. */
interface FakeLink {
  id: number;
  aboveHighWaterMark: boolean;
}

/** A stand-in for a BackendLink: only `id` and `aboveHighWaterMark` are real. */
export function fakeLink(id: number, aboveHighWaterMark = false): BackendLink & FakeLink {
  return { id, aboveHighWaterMark } as unknown as BackendLink & FakeLink;
}

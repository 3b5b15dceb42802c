/**
 * Why a backend got an `error` event (or, for an acked line, `ok: false`);
 * the `kind` label of strands_errors_total.
 */
export const ERROR_KINDS = [
  /** Not JSON. */
  'invalid_json',
  /** JSON, but not an object. */
  'not_an_object',
  'unknown_action',
  /** A param missing, of the wrong type, out of range, or nested too deep. */
  'invalid_params',
  /** A message to clients over --max-message. */
  'message_too_big',
  /** A line over --max-line. */
  'oversized_line',
  /** A `response` for a request that is not waiting (and was never seen). */
  'unknown_request',
  /** A join_room past --max-rooms-per-connection. */
  'room_limit',
  'auth_failed',
  /** Upgrades refused, reported to a backend: it said no, it did not answer in time, no backend was there, or all were backed up. */
  'rejected',
  'timeout',
  'no_backend',
  'backends_busy',
  /** A defect in the broker met while handling a line: the line is skipped and the broker goes on. */
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

export function newErrorCounts(): Record<ErrorKind, number> {
  return Object.fromEntries(ERROR_KINDS.map((kind) => [kind, 0])) as Record<ErrorKind, number>;
}

/** A backend line that cannot be acted on: skipped, and its backend told why. */
export class LineRejected extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * WebSocket close codes the broker sends. 1000-1015 are RFC 6455's; 4000-4999
 * are for applications, and the README documents each one used here.
 */
export const CloseCode = {
  /** Shutdown or drain: the broker is going away, reconnect elsewhere. */
  GoingAway: 1001,
  /** A frame larger than --max-payload (sent by uWS itself). */
  MessageTooBig: 1009,
  /** The client did not read fast enough: over --max-backpressure. */
  Backpressure: 4008,
} as const;

/**
 * WebSocket close codes the broker sends. 1000-1015 are RFC 6455's; 4000-4999
 * are for applications, and the README documents each one used here.
 */
export const CloseCode = {
  /** Shutdown or drain: the broker is going away, reconnect elsewhere. */
  GoingAway: 1001,
  /** A frame larger than --max-payload. */
  MessageTooBig: 1009,
  /**
   * What a client sees when it stopped reading and went over --max-backpressure:
   * uWS drops the TCP connection (a close frame would wait behind the unread
   * bytes). Clients that vanish without a close frame are reported the same way.
   */
  Abnormal: 1006,
} as const;

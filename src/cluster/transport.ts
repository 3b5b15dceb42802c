/**
 * What the cluster needs from a message bus: subjects, queue groups and
 * request/reply. NATS provides it across machines (nats-transport.ts); an
 * in-process transport (worker threads on one machine) could carry the same
 * subjects without touching anything else.
 */

export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Where an answer goes, for requests. */
  readonly reply: string | undefined;
}

export interface BusSubscription {
  unsubscribe(): void;
}

/** Why a request got no answer. */
export class BusRequestError extends Error {
  constructor(
    readonly reason: 'no_responders' | 'timeout' | 'down',
    message: string,
  ) {
    super(message);
  }
}

export interface Transport {
  /** The largest message the bus takes, in bytes; 0 while not known (not connected). */
  readonly maxPayload: number;
  readonly connected: boolean;
  /**
   * Publishes, or returns false and holds nothing when the bus is down or
   * already owes too much: a down bus must never make the broker buffer
   * without bound.
   */
  publish(subject: string, data: Uint8Array, reply?: string): boolean;
  /** With `queue`, each message goes to one member of the group. */
  subscribe(subject: string, onMessage: (message: BusMessage) => void, queue?: string): BusSubscription;
  /** One answer (from one member of a queue group); rejects with BusRequestError. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** A fresh subject to receive answers on. */
  inbox(): string;
  /** Called with true when the bus comes (back) up, false when it goes down. */
  onStatus(listener: (up: boolean) => void): void;
  close(): Promise<void>;
}

/** Whether the bus refuses a message of `bytes` for its size; not while its limit is unknown (a publish then fails as on a down bus). */
export function overBusLimit(transport: Transport, bytes: number): boolean {
  const max = transport.maxPayload;
  return max > 0 && bytes > max;
}

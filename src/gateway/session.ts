/**
 * Who a client is, decided once when its upgrade is accepted. Everything an
 * event about its socket needs is computed then.
 */
export interface ClientIdentity {
  readonly clientId: string;
  /** The room it connected with: `context.room_id` of every event, even after it leaves that room. */
  readonly roomId: string;
  /** The peer's ip, to release its per-ip connection slot at close. */
  readonly remoteIp: string;
  /** `{"client_id","room_id","metadata"}` serialized once, reused in every event line. */
  readonly contextJson: string;
  /** Hash of clientId, for balancing policies that keep a client on one backend. */
  readonly affinity: number;
}

/** Per-socket state, handed to uWS as the socket's user data. */
export interface ClientSession extends ClientIdentity {
  /** The rooms this socket is in now. */
  readonly rooms: Set<string>;
  /** Set in uWS's close handler: no deferred path may touch the socket after it. */
  closed: boolean;
}

/** The upgrade request, copied out of uWS's stack-allocated request. */
export interface UpgradeRequest {
  headers: Record<string, string[]>;
  url: string;
  query: string;
  remoteIp: string;
  /** `ip:port`, or the ip alone where uWS does not report the port. */
  remoteAddr: string;
}

/** A pending upgrade: finished exactly once, by accepting or rejecting it, or ended by its client leaving. */
export interface UpgradeAttempt {
  /** True once the client went away, or the attempt was finished. */
  readonly done: boolean;
  /** Called, once, if the client goes away before the attempt is finished. */
  onAbort: (() => void) | undefined;
  /** Completes the upgrade; false if the client had gone away. */
  accept(identity: ClientIdentity): boolean;
  reject(status: RejectStatus): void;
  /** Set on another node's upgrade decided here (in a cluster): a refusal is counted once, on the node its client is on. */
  readonly forPeer?: true;
}

export type RejectStatus = 403 | 429 | 502 | 503 | 504;

/** The broker's side of the gateway. */
export interface GatewayHandler {
  onUpgrade(request: UpgradeRequest, attempt: UpgradeAttempt): void;
  onOpen(session: ClientSession): void;
  onMessage(session: ClientSession, message: string, binary: boolean): void;
  onClose(session: ClientSession, code: number): void;
}

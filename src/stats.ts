import type { AuthLatency } from './admission/auth-latency';
import type { FdGuardStats } from './admission/fd-guard';
import type { ClusterStats } from './cluster/cluster';
import type { RoutedAction } from './backends/backend-router';
import type { ErrorKind } from './protocol/errors';
import type { ClosedBy, RoomSize } from './gateway/gateway';
import type { RejectStatus } from './gateway/session';

/** One backend as the stats show it. */
export interface BackendView {
  readonly remote: string;
  readonly closed: boolean;
  /** Events held for it, not yet handed to its socket. */
  readonly heldEvents: number;
  /** Bytes the broker owes it. */
  readonly unsentBytes: number;
  readonly aboveHighWaterMark: boolean;
}

/**
 * What the broker's parts count, read-only, for metrics, the status page and
 * tests. Every figure is a plain number the parts keep anyway, read when
 * asked; nothing here costs the hot path.
 */
export interface StatsView {
  readonly connections: {
    readonly open: number;
    readonly opened: number;
    readonly closedBy: Readonly<ClosedBy>;
    readonly disconnectedByBackend: number;
    readonly closedInUpgrade: number;
    /** Upgrades refused, by HTTP status. */
    readonly refused: Readonly<Record<RejectStatus, number>>;
    /** Upgrades waiting for a backend's answer now. */
    readonly waiting: number;
    /** Connection slots held: open sockets plus upgrades in progress (what --max-connections bounds). */
    readonly slots: number;
    /** Clients that left while their upgrade waited. */
    readonly abandoned: number;
    /** Answers to connection requests that had already ended. */
    readonly lateResponses: number;
  };
  readonly rooms: number;
  /** The `n` rooms with the most members, largest first: one pass over the rooms, so for the status page only. */
  largestRooms(n: number): readonly RoomSize[];
  /** Client frames (new_message) and backend actions acted on, by action. */
  readonly messagesIn: Readonly<Record<'new_message' | RoutedAction, number>>;
  /** Events handed to backends or the queue, by action. */
  readonly messagesOut: Readonly<Record<'connection_request' | 'new_connection' | 'new_message' | 'disconnected' | 'heartbeat', number>>;
  readonly backends: {
    readonly connected: number;
    readonly authenticating: number;
    /** Dropped for staying above --backend-hwm, or going past twice it. */
    readonly dropped: number;
    /** Connections closed while waiting to authenticate, to make room for newer ones. */
    readonly evicted: number;
    readonly refusedOverLimit: number;
    readonly acceptErrors: number;
    readonly links: readonly BackendView[];
  };
  readonly queue: { readonly depth: number; readonly bytes: number; readonly dropped: number };
  /** Error events sent to backends (or acks with ok: false), by kind, from every part. */
  readonly errors: Readonly<Record<ErrorKind, number>>;
  /** Text messages from backends that held a lone surrogate, sent with U+FFFD instead. */
  readonly repairedText: number;
  readonly authLatency: AuthLatency;
  readonly descriptors: Readonly<FdGuardStats>;
  /** Upgrades handed to another node's backends. */
  readonly forwardedUpgrades: number;
  /** Set in a cluster. */
  readonly cluster: ClusterStats | undefined;
  /** Listening, not draining, able to take events (a backend, or a queue to hold them), and in a cluster, on the bus. */
  readonly ready: boolean;
}

/**
 * An object whose every property is read through its getter when asked:
 * the view stays current without anyone copying numbers into it.
 */
export function liveView<T extends object>(getters: { [K in keyof T]: () => T[K] }): T {
  const view = {};
  for (const [name, get] of Object.entries(getters)) Object.defineProperty(view, name, { get: get as () => unknown, enumerable: true });
  return view as T;
}

import type { Logger } from 'pino';
import type { ClientHub } from '../client-hub';
import { Action, type BackendLine } from '../protocol/actions';
import { errorLine } from '../protocol/serializers';
import type { BackendLink } from './backend-link';

export type Params = Record<string, unknown>;

/** Receives each `response` line (the answer to a connection_request). */
export type ResponseHandler = (link: BackendLink, requestId: string, params: Params) => void;

/** Why a backend got an `error` event; a label of strands_errors_total. */
export type ErrorKind =
  | 'invalid_json'
  | 'not_an_object'
  | 'unknown_action'
  | 'invalid_params'
  | 'oversized_line'
  | 'unknown_request'
  | 'auth_failed'
  | 'rejected'
  | 'timeout'
  | 'no_backend';

export const ERROR_KINDS: readonly ErrorKind[] = ['invalid_json', 'not_an_object', 'unknown_action', 'invalid_params', 'oversized_line', 'unknown_request', 'auth_failed', 'rejected', 'timeout', 'no_backend'];

/** Counters read by metrics and tests; plain numbers bumped on the hot path. */
export interface RouterStats {
  /** Backend lines acted on, by action. */
  actions: { broadcast: number; message_to_room: number; message_to_connection: number; response: number };
  /** Error events sent, by kind. */
  errors: Record<ErrorKind, number>;
}

export function newErrorCounts(): Record<ErrorKind, number> {
  return Object.fromEntries(ERROR_KINDS.map((kind) => [kind, 0])) as Record<ErrorKind, number>;
}

/**
 * Turns a backend's line into its effect: a publish to clients, or the answer
 * to a pending connection request. A line that cannot be acted on is skipped
 * and its backend gets an `error` event saying why; the link stays up.
 */
export class BackendRouter {
  readonly stats: RouterStats = {
    actions: { broadcast: 0, message_to_room: 0, message_to_connection: 0, response: 0 },
    errors: newErrorCounts(),
  };

  constructor(
    private readonly hub: ClientHub,
    private readonly onResponse: ResponseHandler,
    private readonly log: Logger,
  ) {}

  route(link: BackendLink, line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.reject(link, 'invalid_json', 'invalid JSON', undefined);
      return;
    }
    if (!isObject(parsed)) {
      this.reject(link, 'not_an_object', 'a line must be a JSON object', undefined);
      return;
    }
    const { request_id, action, params = {} } = parsed as BackendLine;
    const requestId = typeof request_id === 'string' ? request_id : undefined;
    if (!isObject(params)) {
      this.reject(link, 'invalid_params', `${String(action)}: params must be an object`, requestId);
      return;
    }
    switch (action) {
      case Action.MessageToConnection: {
        const clientId = this.stringParam(link, action, params, requestId, 'conn_id');
        const message = clientId === undefined ? undefined : this.stringParam(link, action, params, requestId, 'message');
        if (message === undefined) return;
        this.stats.actions.message_to_connection++;
        this.hub.sendToClient(clientId as string, message);
        return;
      }
      case Action.MessageToRoom: {
        const roomId = this.stringParam(link, action, params, requestId, 'room_id');
        const message = roomId === undefined ? undefined : this.stringParam(link, action, params, requestId, 'message');
        if (message === undefined) return;
        this.stats.actions.message_to_room++;
        this.hub.publishToRoom(roomId as string, message);
        return;
      }
      case Action.Broadcast: {
        const message = this.stringParam(link, action, params, requestId, 'message');
        if (message === undefined) return;
        this.stats.actions.broadcast++;
        this.hub.broadcast(message);
        return;
      }
      case Action.Response:
        if (requestId === undefined) {
          this.reject(link, 'invalid_params', 'response: request_id must be a string', undefined);
          return;
        }
        this.stats.actions.response++;
        this.onResponse(link, requestId, params);
        return;
      case Action.Auth:
        // Already authenticated (or no token configured): a backend that always sends auth is welcome.
        return;
      default:
        this.reject(link, 'unknown_action', `unknown action ${JSON.stringify(action) ?? 'undefined'}`, requestId);
    }
  }

  /**
   * Tells the backend its line was skipped, and why; a backend already above
   * its high-water mark is not told (only counted), so that a flood of bad
   * lines cannot make the broker write many times what it read.
   */
  reject(link: BackendLink, kind: ErrorKind, problem: string, requestId: string | undefined): void {
    this.stats.errors[kind]++;
    const error = requestId === undefined ? problem : `${problem} (request_id ${requestId})`;
    this.log.debug({ backend: link.remote, error }, 'skipped a backend line');
    if (!link.aboveHighWaterMark) link.send(errorLine(error));
  }

  /** The named param if it is a string; otherwise rejects the line. */
  private stringParam(link: BackendLink, action: string, params: Params, requestId: string | undefined, name: string): string | undefined {
    const value = params[name];
    if (typeof value === 'string') return value;
    this.reject(link, 'invalid_params', `${action}: params.${name} must be a string`, requestId);
    return undefined;
  }
}

function isObject(value: unknown): value is Params {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

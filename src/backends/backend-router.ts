import type { Logger } from 'pino';
import type { ClientHub, Exclusions, Payload } from '../client-hub';
import { Action } from '../protocol/actions';
import { LineRejected, newErrorCounts, type ErrorKind } from '../protocol/errors';
import { describe, isObject, type JsonObject } from '../protocol/json';
import { LogThrottle } from '../log-throttle';
import { ackLine, errorLine, responseLine } from '../protocol/serializers';
import type { BackendLink } from './backend-link';

export type Params = JsonObject;

/** Receives each `response` line (the answer to a connection_request). */
export type ResponseHandler = (link: BackendLink, requestId: string, params: Params) => void;

/** Ids the broker keeps or routes on (client ids, room ids) are at most this many characters. */
export const MAX_ID_LENGTH = 1024;
/** Client ids one `exclude` may name. */
export const MAX_EXCLUDE = 1000;
/** Client ids in one page of a `room_info` answer. */
export const ROOM_PAGE_SIZE = 1000;
/** RFC 6455: a close frame's reason is at most 123 bytes. */
const MAX_CLOSE_REASON_BYTES = 123;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/** Counters read by metrics and tests; plain numbers bumped on the hot path. */
export interface RouterStats {
  /** Backend lines acted on, by action. */
  actions: Record<RoutedAction, number>;
  /** Error events sent (or acks with ok: false), by kind. */
  errors: Record<ErrorKind, number>;
  /** Text messages from backends holding a lone surrogate, sent with U+FFFD in its place. */
  repairedText: number;
}

const ROUTED_ACTIONS = [
  Action.Broadcast,
  Action.MessageToRoom,
  Action.MessageToConnection,
  Action.Response,
  Action.JoinRoom,
  Action.LeaveRoom,
  Action.Disconnect,
  Action.RoomInfo,
] as const;
export type RoutedAction = (typeof ROUTED_ACTIONS)[number];

/** What one line asks, read once before acting on it. */
interface Line {
  action: RoutedAction;
  requestId: string | undefined;
  params: Params;
  ack: boolean;
}

export interface RouterLimits {
  /** Largest message to clients, in bytes (--max-message). */
  maxMessage: number;
}

/**
 * Turns a backend's line into its effect: a publish to clients, a change of
 * rooms, an answer to a pending connection request or to a question. Every
 * field is type-checked before use. A line that cannot be acted on is skipped
 * and its backend told why (an `error` event, or `ok: false` when it asked for
 * an ack); a defect met while handling one line is reported the same way and
 * logged, and never ends the process. The link stays up either way.
 */
export class BackendRouter {
  readonly stats: RouterStats = {
    actions: Object.fromEntries(ROUTED_ACTIONS.map((a) => [a, 0])) as Record<RoutedAction, number>,
    errors: newErrorCounts(),
    repairedText: 0,
  };
  /** A defect met again and again (a flood of one bad line) is logged once a second. */
  private readonly defectLog = new LogThrottle(1000);

  constructor(
    private readonly hub: ClientHub,
    private readonly onResponse: ResponseHandler,
    private readonly limits: RouterLimits,
    private readonly log: Logger,
  ) {}

  route(link: BackendLink, text: string): void {
    let line: Line | undefined;
    try {
      line = parseLine(text);
      if (line !== undefined) this.act(link, line);
    } catch (err) {
      if (err instanceof LineRejected) this.reject(link, err.kind, err.message, line?.requestId ?? requestIdOf(text), line?.ack === true);
      else this.defect(link, err, line);
    }
  }

  /**
   * Tells the backend its line was skipped, and why: in the ack it asked for,
   * else in an `error` event. A backend above its high-water mark is not told
   * (only counted), so that a flood of bad lines cannot make the broker write
   * many times what it read.
   */
  reject(link: BackendLink, kind: ErrorKind, problem: string, requestId: string | undefined, ack = false): void {
    this.stats.errors[kind]++;
    const error = requestId === undefined || ack ? problem : `${problem} (request_id ${requestId})`;
    this.log.debug({ backend: link.remote, error }, 'skipped a backend line');
    if (link.aboveHighWaterMark) return;
    link.send(ack && requestId !== undefined ? ackLine(requestId, false, 0, error) : errorLine(error));
  }

  private defect(link: BackendLink, err: unknown, line: Line | undefined): void {
    const skipped = this.defectLog.pass();
    if (skipped !== undefined) {
      this.log.error({ backend: link.remote, action: line?.action, err: err instanceof Error ? err.stack : String(err), alsoSince: skipped }, 'internal error while handling a backend line; the line was skipped');
    }
    this.reject(link, 'internal', 'internal error while handling this line; it was skipped', line?.requestId, line?.ack === true);
  }

  private act(link: BackendLink, line: Line): void {
    const { params } = line;
    let reached = 0;
    switch (line.action) {
      case Action.MessageToConnection: {
        const clientId = id(line, 'conn_id');
        const [message, binary] = this.message(line);
        if (line.ack) reached = this.hub.reach({ client: clientId }, undefined);
        this.hub.sendToClient(clientId, message, binary);
        break;
      }
      case Action.MessageToRoom: {
        const roomId = id(line, 'room_id');
        const exclude = exclusions(line);
        const [message, binary] = this.message(line);
        if (line.ack) reached = this.hub.reach({ room: roomId }, exclude);
        this.hub.publishToRoom(roomId, message, binary, exclude);
        break;
      }
      case Action.Broadcast: {
        const exclude = exclusions(line);
        const [message, binary] = this.message(line);
        if (line.ack) reached = this.hub.reach('everyone', exclude);
        this.hub.broadcast(message, binary, exclude);
        break;
      }
      case Action.Response:
        if (line.requestId === undefined) throw new LineRejected('invalid_params', 'response: request_id must be a string');
        this.stats.actions.response++;
        this.onResponse(link, line.requestId, params);
        return;
      case Action.JoinRoom: {
        const { joined, refused } = this.hub.joinRoom(id(line, 'conn_id'), id(line, 'room_id'));
        if (refused > 0) {
          this.stats.actions.join_room++;
          throw new LineRejected('room_limit', `join_room: ${refused} socket(s) of this client are in too many rooms already (--max-rooms-per-connection); ${joined} joined`);
        }
        reached = joined;
        break;
      }
      case Action.LeaveRoom:
        reached = this.hub.leaveRoom(id(line, 'conn_id'), id(line, 'room_id'));
        break;
      case Action.Disconnect:
        reached = this.hub.disconnect(id(line, 'conn_id'), closeCode(params.code), closeReason(params.reason));
        break;
      case Action.RoomInfo:
        this.roomInfo(link, line);
        return;
    }
    this.stats.actions[line.action]++;
    if (line.ack && line.requestId !== undefined) link.send(ackLine(line.requestId, true, reached));
  }

  /** The message of a send: text made well-formed, or the bytes of base64 when `binary` is true; refused over --max-message. */
  private message(line: Line): [Payload, boolean] {
    const { params } = line;
    const message = params.message;
    if (typeof message !== 'string') throw new LineRejected('invalid_params', `${line.action}: params.message must be a string`);
    const binary = params.binary;
    if (binary !== undefined && typeof binary !== 'boolean') throw new LineRejected('invalid_params', `${line.action}: params.binary must be true or false`);
    const max = this.limits.maxMessage;
    if (binary === true) {
      if (!BASE64.test(message)) throw new LineRejected('invalid_params', `${line.action}: params.message must be base64 when params.binary is true`);
      const bytes = Buffer.from(message, 'base64');
      if (bytes.length > max) throw tooBig(line.action, bytes.length, max);
      return [bytes, true];
    }
    // Three bytes of UTF-8 at most per UTF-16 unit: only long messages need counting.
    if (message.length * 3 > max) {
      const bytes = Buffer.byteLength(message);
      if (bytes > max) throw tooBig(line.action, bytes, max);
    }
    if (message.isWellFormed()) return [message, false];
    // A lone surrogate (an emoji cut in half) would make the frame invalid UTF-8 and every client would fail the connection.
    this.stats.repairedText++;
    return [message.toWellFormed(), false];
  }

  private roomInfo(link: BackendLink, line: Line): void {
    const requestId = line.requestId;
    if (requestId === undefined) throw new LineRejected('invalid_params', 'room_info: request_id must be a string (the answer carries it)');
    const roomId = id(line, 'room_id');
    const cursor = line.params.cursor ?? '';
    if (typeof cursor !== 'string' || cursor.length > MAX_ID_LENGTH) throw new LineRejected('invalid_params', `room_info: params.cursor must be a string of at most ${MAX_ID_LENGTH} characters`);
    this.stats.actions.room_info++;
    const page = this.hub.roomPage(roomId, cursor, ROOM_PAGE_SIZE);
    if (!(page instanceof Promise)) {
      link.send(responseLine(requestId, page));
      return;
    }
    page.then(
      (answer) => link.send(responseLine(requestId, answer)),
      (err: unknown) => this.defect(link, err, line),
    );
  }
}

const ROUTED = new Set<string>(ROUTED_ACTIONS);

/**
 * The envelope of a line, checked; throws LineRejected when it is not one.
 * Undefined for a line that asks nothing.
 */
function parseLine(text: string): Line | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new LineRejected('invalid_json', 'invalid JSON');
  }
  if (!isObject(parsed)) throw new LineRejected('not_an_object', 'a line must be a JSON object');
  const { request_id, action, params = {}, ack } = parsed;
  const requestId = typeof request_id === 'string' ? request_id : undefined;
  if (typeof action !== 'string' || !ROUTED.has(action)) {
    // Once admitted, a backend that always sends `auth`, or answers heartbeats, is welcome: the line does nothing.
    if (action === Action.Auth || action === Action.Heartbeat) return undefined;
    throw new LineRejected('unknown_action', `unknown action ${describe(action)}`);
  }
  if (!isObject(params)) throw new LineRejected('invalid_params', `${action}: params must be an object`);
  return { action: action as RoutedAction, requestId, params, ack: ack === true && requestId !== undefined };
}

/** The request_id of a line that could not be read as one, when it can still be found. */
function requestIdOf(text: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) && typeof parsed.request_id === 'string' ? parsed.request_id : undefined;
  } catch {
    return undefined;
  }
}

function id(line: Line, name: string): string {
  const value = line.params[name];
  if (typeof value !== 'string') throw new LineRejected('invalid_params', `${line.action}: params.${name} must be a string`);
  if (value.length > MAX_ID_LENGTH) throw new LineRejected('invalid_params', `${line.action}: params.${name} is longer than ${MAX_ID_LENGTH} characters`);
  return value;
}

function exclusions(line: Line): Exclusions {
  const value = line.params.exclude;
  if (value === undefined) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length > MAX_EXCLUDE || !list.every((v) => typeof v === 'string' && v.length <= MAX_ID_LENGTH)) {
    throw new LineRejected('invalid_params', `${line.action}: params.exclude must be a client id or a list of at most ${MAX_EXCLUDE} of them`);
  }
  return list.length === 0 ? undefined : (list as string[]);
}

function closeCode(value: unknown): number {
  if (value === undefined) return 1000;
  if (value === 1000 || (Number.isInteger(value) && (value as number) >= 4000 && (value as number) <= 4999)) return value as number;
  throw new LineRejected('invalid_params', `disconnect: params.code must be 1000 or 4000..4999, got ${describe(value)}`);
}

function closeReason(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new LineRejected('invalid_params', 'disconnect: params.reason must be a string');
  const reason = value.toWellFormed();
  if (Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES) throw new LineRejected('invalid_params', `disconnect: params.reason is longer than ${MAX_CLOSE_REASON_BYTES} bytes of UTF-8`);
  return reason;
}

function tooBig(action: string, bytes: number, max: number): LineRejected {
  return new LineRejected('message_too_big', `${action}: message of ${bytes} bytes exceeds --max-message ${max}; not sent`);
}

import fastJson from 'fast-json-stringify';
import type { RoomPage } from '../client-hub';
import { Action, type ClientContext, type ConnectionRequestParams } from './actions';

/**
 * Broker -> backend lines, each ending in `\n`. The hot events (new_message,
 * new_connection, disconnected) are templates around the socket's context JSON,
 * serialized once at open; the rest go through fast-json-stringify schemas.
 *
 * Every line is ASCII: characters past U+007F are written as \uXXXX escapes.
 * The PyStrands Python client decodes each socket read on its own, so a
 * multi-byte character cut by a read edge would kill its connection; and a
 * backend link can then count what it holds in bytes by string length.
 */

let eventSeq = 0;
/** A request_id unique within this run; backends never answer events, so a counter suffices. */
export function nextEventId(): string {
  return (++eventSeq).toString(36);
}

const NON_ASCII = /[\u0080-\uffff]/;
const NON_ASCII_ALL = /[\u0080-\uffff]/g;
const escapeChar = (c: string): string => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

/** `json` with every character past U+007F escaped; JSON text has them only inside strings, where escapes are valid. */
function asciiJson(json: string): string {
  return NON_ASCII.test(json) ? json.replace(NON_ASCII_ALL, escapeChar) : json;
}

export function serializeContext(context: ClientContext): string {
  return asciiJson(JSON.stringify(context));
}

const EVENT_HEAD = '{"request_id":"';
const NEW_MESSAGE_MID = '","action":"new_message","params":{"message":';
const CONTEXT_KEY = ',"context":';
const LINE_END = '}}\n';

export function newMessageLine(message: string, contextJson: string): string {
  return EVENT_HEAD + nextEventId() + NEW_MESSAGE_MID + asciiJson(JSON.stringify(message)) + CONTEXT_KEY + contextJson + LINE_END;
}

const NEW_BINARY_MESSAGE_MID = '","action":"new_message","params":{"binary":true,"message":"';
/** A client's binary frame: its bytes in base64 (which needs no escaping), with `binary: true`. */
export function newBinaryMessageLine(base64: string, contextJson: string): string {
  return EVENT_HEAD + nextEventId() + NEW_BINARY_MESSAGE_MID + base64 + '"' + CONTEXT_KEY + contextJson + LINE_END;
}

const NEW_CONNECTION_MID = '","action":"new_connection","params":{"context":';
export function newConnectionLine(contextJson: string): string {
  return EVENT_HEAD + nextEventId() + NEW_CONNECTION_MID + contextJson + LINE_END;
}

const DISCONNECTED_MID = '","action":"disconnected","params":{"context":';
export function disconnectedLine(contextJson: string): string {
  return EVENT_HEAD + nextEventId() + DISCONNECTED_MID + contextJson + LINE_END;
}

export const HEARTBEAT_LINE = `{"request_id":"heartbeat","action":"${Action.Heartbeat}","params":{}}\n`;

/** A line's `{"request_id", "action", "params"}` envelope around the schema of its params. */
function envelope(params: object): Parameters<typeof fastJson>[0] {
  return {
    type: 'object',
    properties: { request_id: { type: 'string' }, action: { type: 'string' }, params },
    required: ['request_id', 'action', 'params'],
  };
}

const stringifyConnectionRequest = fastJson(
  envelope({
    type: 'object',
    properties: {
      headers: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
      url: { type: 'string' },
      remote_addr: { type: 'string' },
      query: { type: 'string' },
    },
    required: ['headers', 'url', 'remote_addr', 'query'],
  }),
);

export function connectionRequestLine(requestId: string, params: ConnectionRequestParams): string {
  return asciiJson(stringifyConnectionRequest({ request_id: requestId, action: Action.ConnectionRequest, params })) + '\n';
}

const stringifyError = fastJson(
  envelope({
    type: 'object',
    properties: { error: { type: 'string' }, context: { type: 'object', additionalProperties: true } },
    required: ['error', 'context'],
  }),
);

/**
 * An `error` event. `context` is always an object, because the Python client
 * builds a Context from it. Its request_id is a fresh one like every event's;
 * the text names the offending line's request_id.
 */
export function errorLine(error: string, context: object = {}): string {
  return asciiJson(stringifyError({ request_id: nextEventId(), action: Action.Error, params: { error, context } })) + '\n';
}

/** The answer to a line that asked for an ack: `{"ok", "delivered", "error"?}` under the line's own request_id. */
export function ackLine(requestId: string, ok: boolean, delivered: number, error?: string): string {
  const params = error === undefined ? { ok, delivered } : { ok, delivered, error };
  return asciiJson(JSON.stringify({ request_id: requestId, action: Action.Response, params })) + '\n';
}

/** The answer to `room_info`, under the question's request_id. */
export function responseLine(requestId: string, page: RoomPage): string {
  return asciiJson(JSON.stringify({ request_id: requestId, action: Action.Response, params: page })) + '\n';
}

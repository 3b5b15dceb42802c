import { randomUUID } from 'node:crypto';
import type { Line, RawBackend } from './raw-backend';

/**
 * What the PyStrands Python client puts on the wire: `json.dumps(message) + "\n"`
 * with Python's defaults (separators `", "` and `": "`, ensure_ascii=True), and
 * the keys in the order its `_send_json` builds them: action, request_id, params.
 */

/** Python's `json.dumps(value)` with its default arguments (a JS number prints as an int would: 1, not 1.0). */
export function pyDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return pyString(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
    return String(value);
  }
  if (Array.isArray(value)) return '[' + value.map(pyDumps).join(', ') + ']';
  if (typeof value === 'object') {
    const parts = Object.entries(value as Record<string, unknown>).map(([k, v]) => pyString(k) + ': ' + pyDumps(v));
    return '{' + parts.join(', ') + '}';
  }
  throw new TypeError(`Object of type ${typeof value} is not JSON serializable`);
}

/** A string as Python escapes it with ensure_ascii: everything outside space..tilde as `\uXXXX` (lower-case hex). */
function pyString(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** One line as `PyStrandsClient._send_json` writes it; `request_id` defaults to a fresh UUID v4, as there. */
export function pyLine(action: string, params: Record<string, unknown>, requestId: string = randomUUID()): string {
  return pyDumps({ action, request_id: requestId, params }) + '\n';
}

/** Sends one Python-formatted line from a raw backend; returns its request_id. */
export function pySend(backend: RawBackend, action: string, params: Record<string, unknown>, requestId: string = randomUUID()): string {
  backend.sendRaw(pyLine(action, params, requestId));
  return requestId;
}

/**
 * Answers a connection_request as the Python client does: `{"accepted", **context}`
 * under the request's own request_id (pass `{accepted: false}` alone for what it
 * sends when its handler raised).
 */
export function pyRespond(backend: RawBackend, request: Line, params: Record<string, unknown>): void {
  pySend(backend, 'response', params, request.request_id);
}

/** The Python client's default answer: accepted, a fresh UUID v4 client_id, the url as room, empty metadata. */
export function pyAccept(backend: RawBackend, request: Line, overrides: Record<string, unknown> = {}): void {
  pyRespond(backend, request, { accepted: true, client_id: randomUUID(), room_id: request.params.url, metadata: {}, ...overrides });
}

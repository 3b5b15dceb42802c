/**
 * What crosses the bus, framed in bytes so that a message is never decoded
 * and encoded again on its way: a header, then the payload as it goes to
 * clients (UTF-8 text or binary) or to a backend (an event line).
 *
 *   byte 0   version (FRAME_VERSION); a frame of an unknown version is dropped and counted
 *   byte 1   kind
 *   byte 2   flags (bit 0: binary)
 *   byte 3   length of the origin node id, then its UTF-8 bytes
 *   u16      number of excluded client ids, then each: u16 length and UTF-8 bytes
 *   u32      affinity (events only)
 *   rest     payload
 *
 * A node ignores frames whose origin is itself (NATS's no-echo is the first guard).
 */
export const FRAME_VERSION = 1;

export const FrameKind = {
  /** A message to the clients of a room, everyone or a client id. */
  Deliver: 1,
  /** Join the room named by the payload (client subject). */
  Join: 2,
  /** Leave the room named by the payload (client subject). */
  Leave: 3,
  /** Close the client's sockets: payload is a u16 code and the UTF-8 reason. */
  Disconnect: 4,
  /** A client event for a backend: payload is the event line. */
  Event: 5,
} as const;

type FrameKindValue = (typeof FrameKind)[keyof typeof FrameKind];

export interface Frame {
  kind: FrameKindValue;
  binary: boolean;
  origin: string;
  exclude: readonly string[] | undefined;
  affinity: number;
  payload: Uint8Array;
}

export function encodeFrame(kind: FrameKindValue, origin: string, payload: Uint8Array, options: { binary?: boolean; exclude?: readonly string[] | undefined; affinity?: number } = {}): Uint8Array {
  const originBytes = Buffer.from(origin, 'utf8');
  const excluded = (options.exclude ?? []).map((id) => Buffer.from(id, 'utf8'));
  let size = 4 + originBytes.length + 2 + 4 + payload.length;
  for (const id of excluded) size += 2 + id.length;
  const frame = Buffer.allocUnsafe(size);
  frame[0] = FRAME_VERSION;
  frame[1] = kind;
  frame[2] = options.binary === true ? 1 : 0;
  frame[3] = originBytes.length;
  let at = 4 + originBytes.copy(frame, 4);
  at = frame.writeUInt16BE(excluded.length, at);
  for (const id of excluded) {
    at = frame.writeUInt16BE(id.length, at);
    at += id.copy(frame, at);
  }
  at = frame.writeUInt32BE((options.affinity ?? 0) >>> 0, at);
  frame.set(payload, at);
  return frame;
}

/** The frame, or undefined when it is of another version or cut short. */
export function decodeFrame(data: Uint8Array): Frame | undefined {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length < 10 || bytes[0] !== FRAME_VERSION) return undefined;
  const originEnd = 4 + (bytes[3] as number);
  if (originEnd + 6 > bytes.length) return undefined;
  const origin = bytes.toString('utf8', 4, originEnd);
  let at = originEnd;
  const count = bytes.readUInt16BE(at);
  at += 2;
  const exclude: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 2 > bytes.length) return undefined;
    const length = bytes.readUInt16BE(at);
    if (at + 2 + length > bytes.length) return undefined;
    exclude.push(bytes.toString('utf8', at + 2, at + 2 + length));
    at += 2 + length;
  }
  if (at + 4 > bytes.length) return undefined;
  const affinity = bytes.readUInt32BE(at);
  return { kind: bytes[1] as FrameKindValue, binary: ((bytes[2] as number) & 1) === 1, origin, exclude: count === 0 ? undefined : exclude, affinity, payload: bytes.subarray(at + 4) };
}

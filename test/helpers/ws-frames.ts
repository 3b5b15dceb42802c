import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';

/** WebSocket opcodes (RFC 6455 section 5.2). */
export const Opcode = { Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

/**
 * One client-to-server frame, masked as RFC 6455 requires, built by hand so
 * that a test can send what `ws` refuses to: a text frame that is not UTF-8.
 */
export function clientFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const head = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) head[1] = 0x80 | length;
  else if (length < 65536) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = (payload[i] as number) ^ (mask[i & 3] as number);
  return Buffer.concat([head, mask, masked]);
}

interface ServerClose {
  /** The close frame's status code, or undefined when the TCP connection ended without a close frame. */
  code: number | undefined;
  reason: string;
}

/**
 * Reads server frames (unmasked) from a socket that has just been upgraded,
 * until a close frame arrives or the connection ends; data frames before it are
 * skipped. Resumes the socket (rawUpgrade leaves it paused).
 */
export function nextServerClose(socket: Socket, timeoutMs = 5000): Promise<ServerClose> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no close frame or TCP close within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (buffered.length < 2) return;
        const opcode = (buffered[0] as number) & 0x0f;
        let length = (buffered[1] as number) & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffered.length < 4) return;
          length = buffered.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffered.length < 10) return;
          length = Number(buffered.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffered.length < offset + length) return;
        const payload = buffered.subarray(offset, offset + length);
        buffered = buffered.subarray(offset + length);
        if (opcode === Opcode.Close) {
          finish(undefined, { code: payload.length >= 2 ? payload.readUInt16BE(0) : undefined, reason: payload.subarray(2).toString('utf8') });
          return;
        }
      }
    };
    const onClose = (): void => finish(undefined, { code: undefined, reason: '' });
    const finish = (err: Error | undefined, close?: ServerClose): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(close as ServerClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', () => undefined);
    socket.resume();
  });
}

import pino, { type Logger } from 'pino';
import type { LogLevel } from './config';

/** JSON lines on stdout; levels below `level` cost one no-op call. */
export function createLogger(level: LogLevel, name = 'strands'): Logger {
  return pino({ name, level });
}

export type { Logger };

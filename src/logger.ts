import pino, { type Logger } from 'pino';
import type { LogLevel } from './config';

/**
 * JSON lines on stdout; levels below `level` cost one no-op call. Writes are
 * synchronous, so nothing is left buffered at exit, and a stdout that went
 * away (a log shipper that died) turns logging off instead of stopping the
 * broker or hanging its shutdown (sonic-boom retries a buffered flush forever on EPIPE).
 */
export function createLogger(level: LogLevel, name = 'strands'): Logger {
  const destination = pino.destination({ dest: 1, sync: true });
  const logger = pino({ name, level }, destination);
  destination.on('error', () => {
    logger.level = 'silent';
  });
  return logger;
}

export type { Logger };

import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares a backend's token with the configured one in constant time. Both
 * are hashed first, so neither the comparison nor an early length check
 * reveals how much of the token was right, or its length.
 */
export function tokenMatches(expected: string, given: string): boolean {
  return timingSafeEqual(digest(expected), digest(given));
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

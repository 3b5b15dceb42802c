import { performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;

/**
 * Wall-clock microseconds since the epoch, with sub-microsecond resolution.
 * Timestamps travel inside payloads from one process to another; all of them
 * run on one machine, so this clock is shared and needs no synchronisation.
 */
export function nowUs(): number {
  return (origin + performance.now()) * 1000;
}

/** Resolves at the wall-clock instant `atUs` (at once if it has passed). */
export function sleepUntil(atUs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, (atUs - nowUs()) / 1000)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

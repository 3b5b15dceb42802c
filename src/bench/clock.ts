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

/**
 * Resolves once the wall-clock instant `atUs` has passed (at once if it has).
 * Node timers count from the event loop's cached time and may fire up to a
 * millisecond early by this clock, so an early wake-up sleeps again.
 */
export async function sleepUntil(atUs: number): Promise<void> {
  while (nowUs() < atUs) await sleep(Math.max(1, (atUs - nowUs()) / 1000));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

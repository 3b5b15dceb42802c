/**
 * Gives mitata a real `gc()` without needing `node --expose-gc`: mitata looks
 * for `globalThis.gc` when it loads and otherwise falls back to allocating a
 * 1 GiB array to provoke a collection between benchmarks. Must be imported
 * before mitata (common.ts does it first).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const g = globalThis as { gc?: () => void };
if (typeof g.gc !== 'function') {
  setFlagsFromString('--expose-gc');
  g.gc = runInNewContext('gc') as () => void;
}

/** A JSON object (not an array, not null). */
export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Nesting a value may have where the broker keeps or re-encodes it (a client's
 * `metadata`). JSON.parse takes any depth, but JSON.stringify and String()
 * recurse and overflow the stack at a few thousand levels.
 */
export const MAX_JSON_DEPTH = 32;

/** Whether `value` nests deeper than `maxDepth` arrays or objects; iterative, so any depth is safe to ask about. */
export function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [current, depth] = item;
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= maxDepth) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** A short, printable form of something a peer sent, for error texts and logs: never recurses. */
export function describe(value: unknown, maxChars = 64): string {
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value.length > maxChars ? value.slice(0, maxChars) : value);
    return value.length > maxChars ? `${quoted.slice(0, -1)}..."` : quoted;
  }
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

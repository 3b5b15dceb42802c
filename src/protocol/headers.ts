/**
 * Go's textproto.CanonicalMIMEHeaderKey: the first letter and every letter
 * after a `-` upper-case, the rest lower-case. Like Go, a name holding a byte
 * that is not a valid header token character is returned unchanged.
 */
export function canonicalHeaderName(name: string): string {
  let upper = true;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!isTokenChar(c)) return name;
    if (upper && c >= 97 && c <= 122) out += String.fromCharCode(c - 32);
    else if (!upper && c >= 65 && c <= 90) out += String.fromCharCode(c + 32);
    else out += name[i];
    upper = c === 45;
  }
  return out;
}

// RFC 7230 tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~"
const TOKEN_PUNCTUATION = "!#$%&'*+-.^_`|~";
function isTokenChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    (c < 128 && TOKEN_PUNCTUATION.includes(String.fromCharCode(c)))
  );
}

/**
 * Canonical names of the header names seen so far: browsers send the same
 * dozen on every upgrade. Bounded, since names come from clients.
 */
const canonicalCache = new Map<string, string>();
const CANONICAL_CACHE_LIMIT = 512;

function cachedCanonicalName(name: string): string {
  let canonical = canonicalCache.get(name);
  if (canonical === undefined) {
    canonical = canonicalHeaderName(name);
    if (canonicalCache.size < CANONICAL_CACHE_LIMIT) canonicalCache.set(name, canonical);
  }
  return canonical;
}

/** Adds one header line to a Go-style `http.Header` map, keeping every value in order. */
export function addHeader(headers: Record<string, string[]>, name: string, value: string): void {
  const key = cachedCanonicalName(name);
  const values = headers[key];
  if (values) values.push(value);
  else headers[key] = [value];
}

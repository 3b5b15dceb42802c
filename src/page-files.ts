import type { ServerResponse } from 'node:http';

/** A file of a page served from memory (the pages have no build step: their HTML, CSS and JS are strings in the code). */
export interface PageFile {
  readonly type: string;
  readonly body: string | Buffer;
}

export const HTML = 'text/html; charset=utf-8';
export const CSS = 'text/css; charset=utf-8';
export const JS = 'text/javascript; charset=utf-8';
export const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * What every page here starts with: UTF-8, the width of a phone's screen, no
 * favicon request, and its own stylesheet and module script. `meta` adds
 * lines to the head.
 */
/** The pages' colours, light and dark, and box sizing; `own` adds a page's own variables to each scheme. */
export function pageTheme(own: { light: string; dark: string }): string {
  return `:root {
  color-scheme: light dark;
  --fg: #1b1f24; --bg: #f6f7f9; --card: #fff; --muted: #5f6b7a; --line: #d9dde3;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; ${own.light}
}
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --card: #161b22; --muted: #8d96a0; --line: #30363d; --ok: #3fb950; --warn: #d29922; --bad: #f85149; ${own.dark} }
}
* { box-sizing: border-box; }
`;
}

export function pageStart(title: string, css: string, js: string, meta = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">${meta ? '\n' + meta : ''}
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${css}">
<script type="module" src="${js}"></script>
</head>
`;
}

/**
 * The policy of a page that loads only its own files: no inline script or
 * style, no frames, no forms, nothing from elsewhere; `connect` says where it
 * may fetch or open a WebSocket besides its own origin.
 */
export function contentPolicy(connect = ''): string {
  return `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'${connect ? ' ' + connect : ''}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

/**
 * Answers with one file: never cached (the pages show live state and change
 * with the package), never sniffed as another type, and with the page's
 * content policy when it is HTML.
 */
export function sendFile(res: ServerResponse, file: PageFile, policy?: string): void {
  const headers: Record<string, string> = { 'Content-Type': file.type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };
  if (policy !== undefined) headers['Content-Security-Policy'] = policy;
  res.writeHead(200, headers).end(file.body);
}

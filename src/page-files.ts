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

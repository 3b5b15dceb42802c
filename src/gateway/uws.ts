import uWS from 'uWebSockets.js';

/**
 * The npm package of uWebSockets.js used here silently falls back to a slow
 * JavaScript imitation when its native addon does not load for this Node.js.
 * The broker must never run on that: this is the one place that checks.
 */
export function loadNativeUws(): typeof uWS {
  if (!String(uWS.App).includes('[native code]')) {
    throw new Error(
      `uWebSockets.js could not load its native addon on Node.js ${process.version} ` +
        `(ABI ${process.versions.modules}, ${process.platform}-${process.arch}); refusing to run on its JavaScript fallback. ` +
        'Use Node.js 20 (the bundled build has binaries for Node 16/18/20 on glibc >= 2.27), ' +
        'or point the "uWebSockets.js" dependency at an upstream release built for your Node.js (see README).',
    );
  }
  return uWS;
}

export type { HttpResponse, HttpRequest, TemplatedApp, WebSocket, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';

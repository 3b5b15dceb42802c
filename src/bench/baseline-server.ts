import { parseArgs } from 'node:util';
import { defaultConfig } from '../config';
import { loadNativeUws } from '../gateway/uws';
import { BASELINE_PUBLISH_PATH, BASELINE_READY_MSG, BASELINE_TOPIC } from './wire';

/**
 * The stack's limit on this machine: a bare uWebSockets.js server with the
 * broker's socket settings and no backend. It echoes every message to its
 * sender (pingpong, throughput), subscribes every client to one topic, and
 * hands each message arriving on BASELINE_PUBLISH_PATH to app.publish
 * (fanout, broadcast), so the harness's clients measure it unchanged.
 *
 * Usage: node baseline-server.js [--host 127.0.0.1] [--port 0]
 * Prints one JSON line, shaped like the broker's: {"msg":"strands baseline listening","ws":"host:port","pid":n}
 */
function main(): void {
  const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } } });
  const host = values.host;
  const port = Number(values.port);
  const broker = defaultConfig();
  const uWS = loadNativeUws();
  const app = uWS.App();
  app
    .ws(BASELINE_PUBLISH_PATH, {
      maxPayloadLength: broker.maxPayload,
      idleTimeout: 0,
      compression: uWS.DISABLED,
      message: (_ws, message, isBinary) => {
        app.publish(BASELINE_TOPIC, message, isBinary);
      },
    })
    .ws('/*', {
      maxPayloadLength: broker.maxPayload,
      idleTimeout: broker.idleTimeout,
      sendPingsAutomatically: true,
      maxBackpressure: broker.maxBackpressure,
      closeOnBackpressureLimit: 1,
      compression: uWS.DISABLED,
      open: (ws) => {
        ws.subscribe(BASELINE_TOPIC);
      },
      message: (ws, message, isBinary) => {
        ws.send(message, isBinary);
      },
    })
    .listen(host, port, (listenSocket) => {
      if (!listenSocket) {
        process.stderr.write(`baseline: cannot listen on ${host}:${port}\n`);
        process.exit(1);
      }
      const bound = uWS.us_socket_local_port(listenSocket);
      process.stdout.write(JSON.stringify({ msg: BASELINE_READY_MSG, ws: `${host}:${bound}`, pid: process.pid }) + '\n');
    });
  const stop = (): void => process.exit(0);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) main();

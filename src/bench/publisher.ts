import WebSocket from 'ws';
import type { StrandsBackend } from '../sdk/backend';
import type { ErrorTally } from './error-tally';
import { PayloadWriter } from './payload';
import { BASELINE_PUBLISH_PATH } from './wire';

/** Publishes one bench message stamped with its intended send time. */
export interface Publisher {
  publish(intendedUs: number): void;
  close(): void;
}

/** Through the harness's backend: message_to_room to `room`, or broadcast when `room` is undefined. */
export function backendPublisher(sdk: StrandsBackend, room: string | undefined, payload: number): Publisher {
  const writer = new PayloadWriter(payload);
  let seq = 0;
  return {
    publish: room === undefined ? (t) => sdk.broadcast(writer.text(seq++, t)) : (t) => sdk.sendToRoom(room, writer.text(seq++, t)),
    close: () => {},
  };
}

const TEXT = { binary: false };

/** Through the baseline server's publish socket, which hands each message to uWS app.publish. */
export function baselinePublisher(targetUrl: string, payload: number, errors: ErrorTally): Promise<Publisher> {
  const url = new URL(targetUrl);
  url.pathname = BASELINE_PUBLISH_PATH;
  url.search = '';
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const writer = new PayloadWriter(payload);
  let seq = 0;
  return new Promise((resolve, reject) => {
    ws.once('error', (err) => reject(new Error(`cannot open the baseline's publish socket ${url.href}: ${err.message}`)));
    ws.once('open', () => {
      ws.removeAllListeners('error');
      ws.on('error', (err) => errors.add(`baseline publish socket: ${err.message}`));
      resolve({
        publish: (t) => ws.send(writer.write(seq++, t), TEXT),
        close: () => ws.terminate(),
      });
    });
  });
}

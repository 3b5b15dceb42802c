import { StrandsBackend } from '../sdk/backend';
import type { ErrorTally } from './error-tally';
import type { HostPort } from './options';
import { retryWhileStarting } from './probe';
import { CLIENT_ID_HEADER } from './wire';

/** The harness's own backend on the target's TCP port, built on the SDK. */
export interface BenchBackend {
  readonly sdk: StrandsBackend;
  close(): Promise<void>;
}

/**
 * Accepts every client under the id the harness chose, all in `room`; echoes
 * each message to its sender when `echo`. A link that drops mid-run is an error.
 * A port that refuses the connection is tried again for a few seconds: the target may still be starting.
 */
export async function startBenchBackend(tcp: HostPort, room: string, echo: boolean, errors: ErrorTally): Promise<BenchBackend> {
  const sdk = new StrandsBackend({ host: tcp.host, port: tcp.port, reconnect: false });
  sdk.onConnectionRequest((req) => ({ accepted: true, client_id: req.queryParam('client_id') ?? req.header(CLIENT_ID_HEADER), room_id: room }));
  if (echo) sdk.onMessage((message, ctx) => sdk.sendToConnection(ctx.client_id, message));
  let closing = false;
  sdk.on('disconnect', (err?: Error) => {
    if (!closing) errors.add(`the target closed the backend link${err ? `: ${err.message}` : ''}`);
  });
  const failure = await retryWhileStarting(
    () => sdk.connect().then(() => undefined, (err: NodeJS.ErrnoException) => err),
    (err) => err.code === 'ECONNREFUSED',
  );
  if (failure !== undefined) throw new Error(`cannot connect a backend to the target at ${tcp.host}:${tcp.port}: ${failure.message}`);
  return {
    sdk,
    close: () => {
      closing = true;
      return sdk.close();
    },
  };
}

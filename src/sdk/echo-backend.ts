import { StrandsBackend, type StrandsBackendOptions } from './backend';

export interface EchoBackendLogger {
  info(message: string): void;
  error(message: string): void;
}

/**
 * Accepts every client (client_id from its `client_id` query parameter, else
 * the broker's choice; room defaults to the url) and echoes each message back
 * to its sender, binary as binary.
 */
export function startEchoBackend(opts: StrandsBackendOptions & { logger?: EchoBackendLogger }): StrandsBackend {
  const { logger: log, ...options } = opts;
  const backend = new StrandsBackend(options);
  backend.onConnectionRequest((req) => {
    const clientId = req.queryParam('client_id');
    return clientId ? { accepted: true, client_id: clientId } : { accepted: true };
  });
  backend.onMessage((message, ctx) => backend.sendToConnection(ctx.client_id, message));
  backend.onBinaryMessage((data, ctx) => backend.sendToConnection(ctx.client_id, data));
  if (log) {
    const where = `${options.host ?? '127.0.0.1'}:${options.port}${options.tls ? ' (TLS)' : ''}`;
    backend.on('connect', () => log.info(`echo backend connected to ${where}`));
    backend.on('disconnect', (err) => log.info(`echo backend disconnected from ${where}${err ? `: ${err.message}` : ''}`));
    backend.on('reconnecting', (delay, attempt, err) => log.info(`echo backend reconnecting in ${delay} ms (attempt ${attempt})${err ? ` after: ${err.message}` : ''}`));
    backend.on('auth-failed', (reason) =>
      log.error(`echo backend refused by the broker at ${where}: ${reason} (this backend's token must be the broker's --backend-token)`),
    );
  }
  void backend.connect();
  return backend;
}

import { StrandsBackend } from './backend';

/**
 * Accepts every client (client_id from its `client_id` query parameter, else
 * the broker's choice; room defaults to the url) and echoes each message back
 * to its sender.
 */
export function startEchoBackend(opts: {
  host?: string;
  port: number;
  logger?: { info(...a: unknown[]): void };
}): StrandsBackend {
  const backend = new StrandsBackend({ host: opts.host, port: opts.port });
  backend.onConnectionRequest((req) => {
    const clientId = req.queryParam('client_id');
    return clientId ? { accepted: true, client_id: clientId } : { accepted: true };
  });
  backend.onMessage((message, ctx) => backend.sendToConnection(ctx.client_id, message));
  const log = opts.logger;
  if (log) {
    const where = `${opts.host ?? '127.0.0.1'}:${opts.port}`;
    backend.on('connect', () => log.info(`echo backend connected to ${where}`));
    backend.on('disconnect', (err?: Error) => log.info(`echo backend disconnected from ${where}`, err?.message ?? ''));
    backend.on('reconnecting', (delay: number) => log.info(`echo backend reconnecting in ${delay} ms`));
  }
  void backend.connect();
  return backend;
}

import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

export interface BackendServerOptions {
  host: string;
  port: number;
  /** TCP keepalive probe delay, so that a backend whose host vanished is noticed. */
  keepAliveMs: number;
  /** PEM certificate and key: backends connect with TLS. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
}

/** The TCP door backends connect to; each accepted socket is handed on as is. */
export class BackendServer {
  private readonly server: Server;

  constructor(
    private readonly options: BackendServerOptions,
    onSocket: (socket: Socket) => void,
  ) {
    const socketOptions = { noDelay: true, keepAlive: true, keepAliveInitialDelay: options.keepAliveMs };
    this.server = options.tls ? createTlsServer({ ...socketOptions, ...options.tls }, onSocket) : createServer(socketOptions, onSocket);
  }

  listen(): Promise<number> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new Error(`cannot listen for backends on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`));
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  /** Stops accepting; connected backends stay. */
  stopListening(): void {
    this.server.close();
  }
}

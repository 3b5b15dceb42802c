import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { Component } from '../lifecycle';
import { LogThrottle } from '../log-throttle';

export interface BackendServerOptions {
  host: string;
  port: number;
  /** TCP keepalive probe delay, so that a backend whose host vanished is noticed. */
  keepAliveMs: number;
  /** PEM certificate and key: backends connect with TLS. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** A TLS handshake must finish within this (a connection that never starts one holds a descriptor). */
  handshakeTimeoutMs: number;
}

/** The TCP door backends connect to; each accepted socket is handed on as is. */
export class BackendServer implements Component {
  /** Errors on accepting a connection (EMFILE at the descriptor limit, most likely). */
  acceptErrors = 0;
  private readonly server: Server;
  private boundPort = 0;
  private readonly errorLog = new LogThrottle(1000);

  constructor(
    private readonly options: BackendServerOptions,
    onSocket: (socket: Socket) => void,
    private readonly log: Logger,
  ) {
    const socketOptions = { noDelay: true, keepAlive: true, keepAliveInitialDelay: options.keepAliveMs };
    this.server = options.tls
      ? createTlsServer({ ...socketOptions, ...options.tls, handshakeTimeout: options.handshakeTimeoutMs }, onSocket)
      : createServer(socketOptions, onSocket);
    // Kept for the server's whole life: an error once listening (EMFILE on accept) must not become an uncaught exception.
    this.server.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.server.listening) return;
      this.acceptErrors++;
      const skipped = this.errorLog.pass();
      if (skipped !== undefined) this.log.warn({ err: err.code ?? err.message, alsoSince: skipped }, 'backend port: could not accept a connection');
    });
  }

  get port(): number {
    return this.boundPort;
  }

  start(): Promise<void> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new Error(`cannot listen for backends on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`));
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        this.boundPort = typeof address === 'object' && address !== null ? address.port : port;
        resolve();
      });
    });
  }

  /** Stops accepting; connected backends stay. */
  async stop(): Promise<void> {
    this.server.close();
  }
}

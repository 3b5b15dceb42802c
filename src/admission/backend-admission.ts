import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { BackendLink, type BackendLinkEvents } from '../backends/backend-link';
import type { Component } from '../lifecycle';
import { LogThrottle } from '../log-throttle';
import { Action } from '../protocol/actions';
import { newErrorCounts, type ErrorKind } from '../protocol/errors';
import { isObject } from '../protocol/json';
import { errorLine } from '../protocol/serializers';
import { tokenMatches } from './token';

/** Until it authenticates, a backend may send lines this long (an auth line is short). */
const AUTH_MAX_LINE = 4096;
/** Connections waiting to authenticate, in all and per peer address; past either, the oldest are closed. */
const MAX_WAITING = 64;
const MAX_WAITING_PER_IP = 16;

export interface AdmissionSettings {
  /** Unset: every connection is admitted at once. */
  token: string | undefined;
  /** Time to send the auth line, in ms. */
  authTimeout: number;
  maxBackends: number;
  maxLine: number;
  backendHwm: number;
}

/** What happens to admitted links; lines of links that are not admitted never get here. */
export interface AdmittedLinkEvents extends BackendLinkEvents {
  /** The link may now be given events. */
  onAdmitted(link: BackendLink): void;
}

export interface AdmissionStats {
  /** auth_failed: error events sent to connections that failed to authenticate. */
  errors: Record<ErrorKind, number>;
  /** Connections closed, still waiting to authenticate, to make room for newer ones. */
  evicted: number;
  /** Backends refused for --max-backends. */
  refusedOverLimit: number;
}

interface Waiting {
  readonly seq: number;
  readonly timer: NodeJS.Timeout;
}

/**
 * Decides which TCP connections are backends. Every link starts
 * `authenticating`; without --backend-token it is admitted at once, with one
 * only by a first line `{"action":"auth","params":{"token":...}}` within the
 * auth timeout. Until then nothing is sent to it and nothing it sends is acted
 * on. Silent or wrong connections cannot keep a real backend out: at most
 * MAX_WAITING wait (MAX_WAITING_PER_IP per address), and past that the oldest
 * are closed, but only after each has had a full turn of the event loop to
 * have its first line read, so a flood of connections accepted in one go
 * cannot push out a backend whose auth line is already on its way.
 */
export class BackendAdmission implements Component {
  readonly stats: AdmissionStats = { errors: newErrorCounts(), evicted: 0, refusedOverLimit: 0 };
  private readonly waiting = new Map<BackendLink, Waiting>();
  private readonly waitingPerIp = new Map<string, number>();
  private readonly linkEvents: BackendLinkEvents;
  private admittedCount = 0;
  private seq = 0;
  private trimScheduled = false;
  private stopped = false;
  private readonly failureLog = new LogThrottle(1000);

  constructor(
    private readonly settings: AdmissionSettings,
    private readonly admitted: AdmittedLinkEvents,
    private readonly log: Logger,
  ) {
    this.linkEvents = {
      onLine: (link, line) => {
        if (link.state === 'admitted') admitted.onLine(link, line);
        else if (link.state === 'authenticating') this.authenticate(link, line);
      },
      onOversizedLine: (link, bytes) => {
        if (link.state === 'admitted') admitted.onOversizedLine(link, bytes);
        else if (link.state === 'authenticating') this.expel(link, `line of ${bytes} bytes before authenticating (at most ${link.maxLine})`);
      },
      onWritable: (link) => link.state === 'admitted' && admitted.onWritable(link),
      onOverflow: (link) => link.state === 'admitted' && admitted.onOverflow(link),
      onClose: (link, error) => {
        if (link.state === 'admitted') {
          this.admittedCount--;
          admitted.onClose(link, error);
        } else {
          this.forget(link);
        }
      },
    };
  }

  /** Connections waiting to authenticate. */
  get authenticating(): number {
    return this.waiting.size;
  }

  async start(): Promise<void> {
    this.stopped = false;
  }

  /** Closes every connection still waiting to authenticate; new ones are closed as they come. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const link of [...this.waiting.keys()]) link.destroy();
  }

  /** A new TCP connection on the backend port. */
  onSocket(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    const { token, maxLine, backendHwm } = this.settings;
    const link = new BackendLink(socket, backendHwm, token === undefined ? maxLine : AUTH_MAX_LINE, this.linkEvents);
    if (token === undefined) {
      this.admit(link);
      return;
    }
    const timer = setTimeout(() => link.state === 'authenticating' && this.expel(link, `no auth line within ${this.settings.authTimeout} ms`), this.settings.authTimeout);
    timer.unref();
    this.waiting.set(link, { seq: ++this.seq, timer });
    this.waitingPerIp.set(link.remoteIp, (this.waitingPerIp.get(link.remoteIp) ?? 0) + 1);
    this.scheduleTrim();
  }

  /** The first line of a backend when --backend-token is set: must be `auth` with the right token. */
  private authenticate(link: BackendLink, line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      // Not JSON: handled below as a missing auth line.
    }
    const action = isObject(parsed) ? parsed.action : undefined;
    const token = isObject(parsed) && isObject(parsed.params) ? parsed.params.token : undefined;
    if (action !== Action.Auth) this.expel(link, 'the first line must be an auth action');
    else if (typeof token !== 'string' || !tokenMatches(this.settings.token as string, token)) this.expel(link, 'invalid token');
    else this.admit(link);
  }

  private admit(link: BackendLink): void {
    this.forget(link);
    if (this.admittedCount >= this.settings.maxBackends) {
      this.stats.refusedOverLimit++;
      link.state = 'expelled';
      this.log.warn({ backend: link.remote, backends: this.admittedCount }, 'backend refused: --max-backends reached');
      link.send(errorLine(`backend refused: ${this.admittedCount} backends are connected, the most --max-backends allows`));
      void link.end(Date.now() + 1000);
      return;
    }
    link.state = 'admitted';
    link.maxLine = this.settings.maxLine;
    this.admittedCount++;
    this.admitted.onAdmitted(link);
  }

  /** Tells an unauthenticated backend why, then disconnects it. */
  private expel(link: BackendLink, why: string): void {
    this.forget(link);
    link.state = 'expelled';
    this.stats.errors.auth_failed++;
    const skipped = this.failureLog.pass();
    if (skipped !== undefined) this.log.warn({ backend: link.remote, why, alsoSince: skipped }, 'backend authentication failed');
    link.send(errorLine(`authentication failed: ${why}`));
    void link.end(Date.now() + 1000);
  }

  private forget(link: BackendLink): void {
    const waiting = this.waiting.get(link);
    if (waiting === undefined) return;
    clearTimeout(waiting.timer);
    this.waiting.delete(link);
    const held = this.waitingPerIp.get(link.remoteIp) ?? 1;
    if (held === 1) this.waitingPerIp.delete(link.remoteIp);
    else this.waitingPerIp.set(link.remoteIp, held - 1);
  }

  /** Two turns from now: one for the poll phase that reads what the new connections already sent. */
  private scheduleTrim(): void {
    if (this.trimScheduled) return;
    this.trimScheduled = true;
    const cutoff = this.seq;
    setImmediate(() =>
      setImmediate(() => {
        this.trimScheduled = false;
        this.trim(cutoff);
        if (this.seq > cutoff && this.waiting.size > MAX_WAITING) this.scheduleTrim();
      }),
    );
  }

  /** Closes the oldest waiting connections (up to `cutoff`) past the per-address and overall caps. */
  private trim(cutoff: number): void {
    for (const [link, { seq }] of this.waiting) {
      if (seq > cutoff) break;
      if (this.waiting.size > MAX_WAITING || (this.waitingPerIp.get(link.remoteIp) ?? 0) > MAX_WAITING_PER_IP) this.evict(link);
    }
  }

  private evict(link: BackendLink): void {
    this.forget(link);
    link.state = 'expelled';
    this.stats.evicted++;
    this.log.debug({ backend: link.remote }, 'closed a connection waiting to authenticate to make room for newer ones');
    link.destroy();
  }
}

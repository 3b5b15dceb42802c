import { readFileSync, readdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Component } from '../lifecycle';

/** The door the guard closes and opens again: the WebSocket port. */
export interface Door {
  readonly accepting: boolean;
  pauseAccepting(): void;
  resumeAccepting(): Promise<boolean>;
}

/** Where the guard reads the process's descriptors; swapped in tests. */
export interface DescriptorSource {
  /** Open descriptors now. */
  count(): number;
  /** The soft and hard RLIMIT_NOFILE, or undefined where they cannot be read. */
  limits(): { soft: number; hard: number } | undefined;
}

export const procDescriptors: DescriptorSource = {
  count: () => readdirSync('/proc/self/fd').length,
  limits: () => {
    try {
      const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
      const [soft, hard] = (line?.match(/\d+|unlimited/g) ?? []).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
      return soft === undefined || hard === undefined ? undefined : { soft, hard };
    } catch {
      return undefined;
    }
  },
};

/** Counting costs about 0.45 µs per descriptor (2.4 ms at 5,500), so far from the limit the guard looks less often: never more than once a second. */
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 10_000;
/** Connections a flood could open per second, to judge how soon the headroom could be gone. */
const ASSUMED_ACCEPT_RATE = 20_000;

export interface FdGuardStats {
  /** Times the WebSocket port stopped accepting because descriptors ran low. */
  pauses: number;
  /** Descriptors open at the last look, and the limit. */
  open: number;
  limit: number;
  accepting: boolean;
}

/**
 * Keeps descriptors for backends when clients fill the process's limit.
 * uWebSockets.js accepts in its own C loop and, at the limit, retries accept
 * forever (one core at 100%), while connections that never upgrade are
 * invisible to JavaScript. So the guard counts the process's descriptors and
 * closes the WebSocket listen socket when fewer than `reserve` are left,
 * opening it again once twice that many are free: open sockets keep being
 * served, backends (and the metrics port) can still connect.
 */
export class FdGuard implements Component {
  readonly stats: FdGuardStats = { pauses: 0, open: 0, limit: Infinity, accepting: true };
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  /** `wanted`: the connections the operator allows (--max-connections), to warn when the limit cannot hold them. */
  constructor(
    private readonly door: Door,
    private readonly settings: { reserve: number; wanted: number },
    private readonly log: Logger,
    private readonly source: DescriptorSource = procDescriptors,
  ) {}

  private get reserve(): number {
    return this.settings.reserve;
  }

  /** Reads the limit and starts watching; warns when the hard limit cannot hold the wanted connections plus the reserve. */
  async start(): Promise<void> {
    const wanted = this.settings.wanted;
    const limits = this.source.limits();
    if (limits === undefined) {
      this.log.warn('cannot read the descriptor limit (no /proc): the WebSocket port is not guarded against running out of descriptors');
      return;
    }
    this.stats.limit = limits.soft;
    if (limits.hard < wanted + this.reserve) {
      this.log.warn({ hardLimit: limits.hard, maxConnections: wanted, fdReserve: this.reserve }, 'the descriptor limit is below --max-connections plus --fd-reserve: raise it (ulimit -n, LimitNOFILE, --ulimit nofile)');
    }
    if (limits.soft === Infinity) return;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Looks once; exposed so tests need not wait for the timer. */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const open = this.count();
      const free = this.stats.limit - open;
      this.stats.open = open;
      if (this.door.accepting && free < this.reserve) {
        this.door.pauseAccepting();
        this.stats.pauses++;
        this.log.warn({ open, limit: this.stats.limit, reserve: this.reserve }, 'descriptors running out: the WebSocket port stops accepting until some are free (open connections and backends are served)');
      } else if (!this.door.accepting && free >= 2 * this.reserve) {
        if (await this.door.resumeAccepting()) this.log.info({ open, limit: this.stats.limit }, 'descriptors free again: the WebSocket port accepts connections');
        else this.log.error({ open }, 'could not listen on the WebSocket port again; will retry');
      }
      this.stats.accepting = this.door.accepting;
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'descriptor guard: check failed; will retry');
    } finally {
      this.checking = false;
    }
  }

  /** Open descriptors; at the limit, reading /proc takes one more than there is, which says as much. */
  private count(): number {
    try {
      return this.source.count();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EMFILE' || (err as NodeJS.ErrnoException).code === 'ENFILE') return this.stats.limit;
      throw err;
    }
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => {
      void this.check().then(() => {
        if (this.timer === undefined) return;
        const headroomSeconds = (this.stats.limit - this.stats.open - this.reserve) / ASSUMED_ACCEPT_RATE;
        this.schedule(this.door.accepting ? Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, headroomSeconds * 1000)) : MIN_INTERVAL_MS);
      });
    }, delay);
    this.timer.unref();
  }
}

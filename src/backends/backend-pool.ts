import type { Logger } from 'pino';
import { HEARTBEAT_LINE } from '../protocol/serializers';
import { EventQueue } from '../queue/event-queue';
import type { BackendLink, OutgoingEvent, Undelivered } from './backend-link';
import type { Component } from '../lifecycle';
import type { Balancer } from './balancer';
import { RoundRobinBalancer } from './round-robin-balancer';

/** What target() returns for an event another node took. */
const HANDED_OVER = 'handed over';

/** Heartbeats in a row a backend may spend above its high-water mark before it is dropped. */
const MAX_HWM_STRIKES = 3;

/** Counters read by metrics and tests. */
export interface PoolStats {
  /** Backends dropped for staying above their high-water mark, or going over twice it. */
  backendsDroppedForBackpressure: number;
  heartbeats: number;
}

export interface PoolSettings {
  queueSize: number;
  queueBytes: number;
  /** ms between heartbeats (and high-water checks); 0: none. */
  heartbeatInterval: number;
}

/** The backends of the other nodes of a cluster, as the pool sees them. */
export interface PeerForwarder {
  /**
   * Takes an event that another node must handle (with --balance client, when
   * the client's owner is another node), or, when `stuck` (no backend here can
   * take it), one that another node can; false when the event stays here.
   */
  forward(line: string, affinity: number, stuck: boolean): boolean;
}

/** A backend that could not be given everything it was owed before the shutdown deadline. */
export interface CutLink {
  backend: string;
  cut: Undelivered;
}

/**
 * The live backends, the balancer that chooses among them and the queue that
 * holds events none of them can take. Events leave the queue oldest first and
 * before any newer event, so while anything is queued new events queue too.
 */
export class BackendPool implements Component {
  readonly stats: PoolStats = { backendsDroppedForBackpressure: 0, heartbeats: 0 };
  /** What stop() could not deliver, per backend. */
  undelivered: CutLink[] = [];
  private links: BackendLink[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Set once, in a cluster. */
  peers: PeerForwarder | undefined;
  private readonly queue: EventQueue;
  /** Connection requests go round-robin whatever the events' policy: no client id is known yet. */
  private readonly requestTurn = new RoundRobinBalancer();

  constructor(
    private readonly balancer: Balancer,
    private readonly settings: PoolSettings,
    private readonly log: Logger,
  ) {
    this.queue = new EventQueue(settings.queueSize, settings.queueBytes);
  }

  async start(): Promise<void> {
    if (this.settings.heartbeatInterval === 0) return;
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.settings.heartbeatInterval);
    this.heartbeatTimer.unref();
  }

  /** Flushes every link and half-closes it by `deadline`; what could not be delivered is kept in `undelivered`. */
  async stop(deadline: number): Promise<void> {
    clearInterval(this.heartbeatTimer);
    const links = [...this.links];
    const cuts = await Promise.all(links.map((link) => link.end(deadline)));
    this.undelivered = links.map((link, i) => ({ backend: link.remote, cut: cuts[i] as Undelivered })).filter((r) => r.cut.events > 0 || r.cut.bytes > 0);
  }

  get size(): number {
    return this.links.length;
  }

  get queued(): number {
    return this.queue.length;
  }

  get queuedBytes(): number {
    return this.queue.bytes;
  }

  /** Events dropped: queue full (by count or bytes), or queue disabled with no backend able to take them. */
  get queueDropped(): number {
    return this.queue.dropped;
  }

  get all(): readonly BackendLink[] {
    return this.links;
  }

  add(link: BackendLink): void {
    this.setLinks([...this.links, link]);
    this.drainQueue();
  }

  /**
   * Removes a closed link. What it never wrote goes ahead of everything queued,
   * in order, straight to the live backends where they can take it, and into
   * the queue only from the first event they cannot.
   */
  remove(link: BackendLink): void {
    if (!this.links.includes(link)) return;
    this.setLinks(this.links.filter((l) => l !== link));
    const unsent = link.takeUnsent();
    if (unsent.length === 0) return;
    for (let e = this.queue.shift(); e !== undefined; e = this.queue.shift()) unsent.push(e);
    for (const event of unsent) this.place(event.line, event.affinity, event.fromPeer === true);
  }

  private setLinks(links: BackendLink[]): void {
    this.links = links;
    this.balancer.update(links);
    this.requestTurn.update(links);
  }

  /** A link went over twice its high-water mark and is being dropped. */
  overflowed(link: BackendLink): void {
    this.stats.backendsDroppedForBackpressure++;
    this.log.warn({ backend: link.remote, unsentBytes: link.unsentBytes }, 'dropping backend: over twice its high-water mark');
  }

  /** Sends an event (anything but a connection_request) to a backend, here or (in a cluster) on another node, or queues it. */
  dispatch(line: string, affinity: number): void {
    this.place(line, affinity, false);
  }

  /**
   * An event another node handed over: to a backend here, or the queue here,
   * never on again (the queue keeps that too, or two nodes whose backends are
   * all backed up could pass it back and forth). Taken back from a backend
   * here that died before writing it, it is dispatched as this node's own.
   */
  dispatchLocal(line: string, affinity: number): void {
    this.place(line, affinity, true);
  }

  private place(line: string, affinity: number, fromPeer: boolean): void {
    const target = this.queue.length === 0 ? this.target(line, affinity, fromPeer) : undefined;
    if (target === undefined) this.enqueue(fromPeer ? { line, affinity, fromPeer } : { line, affinity });
    else if (target !== HANDED_OVER) target.send(line, affinity);
  }

  /**
   * Where an event goes now: handed over to its owner elsewhere (done here),
   * a backend here (for the caller to send to), any other node with a backend
   * (done here), or nowhere. Sending is left to the caller because a link's
   * send can write at once and, through onWritable, drain the queue again.
   */
  private target(line: string, affinity: number, fromPeer: boolean | undefined): BackendLink | typeof HANDED_OVER | undefined {
    const peers = fromPeer ? undefined : this.peers;
    if (peers?.forward(line, affinity, false)) return HANDED_OVER;
    return this.balancer.pick(affinity) ?? (peers?.forward(line, affinity, true) ? HANDED_OVER : undefined);
  }

  private enqueue(event: OutgoingEvent): void {
    if (this.queue.push(event) > 0) this.log.debug('queue full: dropped its oldest event');
    this.drainQueue();
  }

  /**
   * The backend for a connection_request, which is never queued: the next one
   * in turn below its high-water mark. None when every backend is backed up:
   * a request must never push a backend towards being dropped.
   */
  pickForRequest(): BackendLink | undefined {
    return this.requestTurn.pick();
  }

  /** Moves queued events to backends (here or elsewhere), oldest first, until none can take more. */
  drainQueue(): void {
    const queue = this.queue;
    for (let next = queue.peek(); next !== undefined; next = queue.peek()) {
      const target = this.target(next.line, next.affinity, next.fromPeer);
      if (target === undefined) return;
      queue.shift();
      if (target !== HANDED_OVER) target.send(next.line, next.affinity);
    }
  }

  /** Sends a heartbeat to every backend and drops those backed up for too long. */
  heartbeat(): void {
    for (const link of this.links) {
      if (link.aboveHighWaterMark) {
        if (++link.hwmStrikes >= MAX_HWM_STRIKES) {
          this.stats.backendsDroppedForBackpressure++;
          this.log.warn({ backend: link.remote, unsentBytes: link.unsentBytes }, 'dropping backend: above its high-water mark for %d heartbeats', MAX_HWM_STRIKES);
          link.destroy();
          continue;
        }
      } else {
        link.hwmStrikes = 0;
      }
      this.stats.heartbeats++;
      link.send(HEARTBEAT_LINE);
    }
  }
}

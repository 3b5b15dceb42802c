import type { Logger } from 'pino';
import type { Component } from '../lifecycle';
import { FRAME_VERSION } from './frames';
import type { Subjects } from './subjects';
import type { BusSubscription, Transport } from './transport';

/** One node as the directory knows it. */
export interface NodeEntry {
  readonly id: string;
  /** The broker release it runs. */
  readonly version: string;
  /** The bus frame version it speaks. */
  readonly protocol: number;
  /** Live backends connected to it. */
  readonly backends: number;
  /** When it was last heard of (this node's clock); this node is always current. */
  readonly lastSeen: number;
}

/** A node counts as gone after this many heartbeats without an announcement. */
const MISSED_HEARTBEATS = 3;

interface DirectoryEvents {
  /** Some node's backends or bus protocol, or the set of nodes, changed. */
  changed(): void;
  /** A node left (announced it, or went silent). */
  gone(nodeId: string, why: 'left' | 'silent'): void;
}

interface Announcement {
  v: number;
  id: string;
  version: string;
  backends: number;
  leaving?: boolean;
}

/**
 * Which nodes exist and which have backends. Every node announces itself
 * (id, release, frame version, live backends) each heartbeat, at once when its
 * backends come or go, and when it leaves; a node not heard of for
 * MISSED_HEARTBEATS heartbeats counts as gone. Cluster-wide decisions (where
 * events and connection requests go, how many nodes a room_info should hear
 * from) read it.
 */
export class Directory implements Component {
  private readonly peers = new Map<string, NodeEntry>();
  private subscription: BusSubscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly warnedVersions = new Set<number>();

  constructor(
    private readonly transport: Transport,
    private readonly subjects: Subjects,
    private readonly self: { id: string; version: string; backends: () => number },
    private readonly heartbeatMs: number,
    private readonly events: DirectoryEvents,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    this.subscription = this.transport.subscribe(this.subjects.directory, (message) => this.heard(message.data));
    this.announce();
    this.timer = setInterval(() => {
      this.announce();
      this.expire();
    }, this.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.announce(true);
    this.subscription?.unsubscribe();
  }

  /** Every node known, this one first. */
  get nodes(): NodeEntry[] {
    return [{ id: this.self.id, version: this.self.version, protocol: FRAME_VERSION, backends: this.self.backends(), lastSeen: this.now() }, ...this.peers.values()];
  }

  /** Ids of the other nodes that have a live backend now and speak this node's frame version. */
  get peersWithBackends(): string[] {
    const ids: string[] = [];
    for (const peer of this.peers.values()) if (peer.backends > 0 && peer.protocol === FRAME_VERSION) ids.push(peer.id);
    return ids;
  }

  /** Tells every node about this one now (at each heartbeat, and when its backends change). */
  announce(leaving = false): void {
    const message: Announcement = { v: FRAME_VERSION, id: this.self.id, version: this.self.version, backends: leaving ? 0 : this.self.backends() };
    if (leaving) message.leaving = true;
    this.transport.publish(this.subjects.directory, Buffer.from(JSON.stringify(message)));
  }

  /** Forgets every peer: while the bus is down, nothing is known of them. */
  forgetAll(): void {
    if (this.peers.size === 0) return;
    this.peers.clear();
    this.events.changed();
  }

  private heard(data: Uint8Array): void {
    let message: Announcement;
    try {
      message = JSON.parse(Buffer.from(data).toString()) as Announcement;
    } catch {
      return;
    }
    if (typeof message.id !== 'string' || message.id === this.self.id || typeof message.backends !== 'number') return;
    if (message.v !== FRAME_VERSION && !this.warnedVersions.has(message.v)) {
      this.warnedVersions.add(message.v);
      this.log.warn({ node: message.id, version: message.version, protocol: message.v, ours: FRAME_VERSION }, 'cluster: a node speaks another bus protocol version; its messages are dropped');
    }
    const before = this.peers.get(message.id);
    if (message.leaving === true) {
      if (before === undefined) return;
      this.peers.delete(message.id);
      this.log.info({ node: message.id }, 'cluster: node left');
      this.events.gone(message.id, 'left');
      this.events.changed();
      return;
    }
    this.peers.set(message.id, { id: message.id, version: String(message.version), protocol: message.v, backends: message.backends, lastSeen: this.now() });
    if (before === undefined) this.log.info({ node: message.id, version: message.version, backends: message.backends }, 'cluster: node joined');
    else if (before.backends !== message.backends) this.log.info({ node: message.id, backends: message.backends }, 'cluster: node backends');
    if (before === undefined || before.backends !== message.backends || before.protocol !== message.v) this.events.changed();
  }

  private expire(): void {
    const oldest = this.now() - MISSED_HEARTBEATS * this.heartbeatMs;
    for (const peer of [...this.peers.values()]) {
      if (peer.lastSeen >= oldest) continue;
      this.peers.delete(peer.id);
      this.log.warn({ node: peer.id, silentMs: this.now() - peer.lastSeen }, 'cluster: node gone silent, counted as gone');
      this.events.gone(peer.id, 'silent');
      this.events.changed();
    }
  }
}

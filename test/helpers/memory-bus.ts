import { BusRequestError, type BusMessage, type BusSubscription, type Transport } from '../../src/cluster/transport';

interface Sub {
  owner: MemoryTransport;
  pattern: string[];
  queue: string | undefined;
  onMessage: (message: BusMessage) => void;
}

/** Whether `subject` matches `pattern`, with NATS's `*` (one token) and `>` (the rest). */
function matches(pattern: string[], subject: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '>') return subject.length > i;
    if (i >= subject.length || (pattern[i] !== '*' && pattern[i] !== subject[i])) return false;
  }
  return pattern.length === subject.length;
}

/**
 * A bus in this process with NATS's semantics as the cluster uses them:
 * subjects with wildcards, queue groups (one member each), request/reply with
 * "no responders", no echo, messages delivered on a later turn in publish
 * order. One MemoryBus joins the transports of several in-process brokers.
 */
export class MemoryBus {
  readonly subs: Sub[] = [];
  private inboxSeq = 0;
  private turn = 0;
  /** Everything published, for tests that count bus traffic. */
  readonly published: { from: string; subject: string }[] = [];

  constructor(readonly maxPayload = 1024 * 1024) {}

  transport(nodeId: string): MemoryTransport {
    return new MemoryTransport(this, nodeId);
  }

  nextInbox(): string {
    return `_INBOX.m${++this.inboxSeq}`;
  }

  /** Hands a message to the matching subscriptions of other transports: all plain ones, one per queue group. */
  deliver(from: MemoryTransport, subject: string, data: Uint8Array, reply: string | undefined): number {
    this.published.push({ from: from.nodeId, subject });
    const tokens = subject.split('.');
    const targets: Sub[] = [];
    const groups = new Map<string, Sub[]>();
    for (const sub of this.subs) {
      if (sub.owner === from || !sub.owner.connected || !matches(sub.pattern, tokens)) continue;
      if (sub.queue === undefined) targets.push(sub);
      else groups.set(sub.queue, [...(groups.get(sub.queue) ?? []), sub]);
    }
    for (const members of groups.values()) targets.push(members[this.turn++ % members.length] as Sub);
    const copy = Uint8Array.from(data);
    for (const sub of targets) setImmediate(() => this.subs.includes(sub) && sub.onMessage({ subject, data: copy, reply }));
    return targets.length;
  }
}

class MemoryTransport implements Transport {
  connected = false;
  private readonly listeners: ((up: boolean) => void)[] = [];

  constructor(
    private readonly bus: MemoryBus,
    readonly nodeId: string,
  ) {}

  get maxPayload(): number {
    return this.bus.maxPayload;
  }

  async start(): Promise<void> {
    this.connected = true;
  }

  /** As a NATS outage would: down (publishes refused, nothing received), then up again. */
  setConnected(up: boolean): void {
    this.connected = up;
    for (const listener of this.listeners) listener(up);
  }

  onStatus(listener: (up: boolean) => void): void {
    this.listeners.push(listener);
  }

  publish(subject: string, data: Uint8Array, reply?: string): boolean {
    if (!this.connected || data.length > this.maxPayload) return false;
    this.bus.deliver(this, subject, data, reply);
    return true;
  }

  subscribe(subject: string, onMessage: (message: BusMessage) => void, queue?: string): BusSubscription {
    const sub: Sub = { owner: this, pattern: subject.split('.'), queue, onMessage };
    this.bus.subs.push(sub);
    return { unsubscribe: () => this.bus.subs.splice(this.bus.subs.indexOf(sub), 1) };
  }

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (!this.connected) return Promise.reject(new BusRequestError('down', 'down'));
    const inbox = this.bus.nextInbox();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.unsubscribe();
        reject(new BusRequestError('timeout', 'timeout'));
      }, timeoutMs);
      const sub = this.subscribe(inbox, (message) => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(message.data);
      });
      if (this.bus.deliver(this, subject, data, inbox) === 0) {
        clearTimeout(timer);
        sub.unsubscribe();
        reject(new BusRequestError('no_responders', 'no responders'));
      }
    });
  }

  inbox(): string {
    return this.bus.nextInbox();
  }

  async close(): Promise<void> {
    this.connected = false;
    for (const sub of [...this.bus.subs]) if (sub.owner === this) this.bus.subs.splice(this.bus.subs.indexOf(sub), 1);
  }
}

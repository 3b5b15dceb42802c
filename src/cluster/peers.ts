import type { Logger } from 'pino';
import type { PeerBackends, UpgradeAuthorizer, Verdict } from '../admission/upgrade-authorizer';
import type { BackendPool, PeerForwarder } from '../backends/backend-pool';
import { hash32, mix32 } from '../backends/hash';
import type { ClientIdentity, RejectStatus, UpgradeAttempt, UpgradeRequest } from '../gateway/session';
import { LogThrottle } from '../log-throttle';
import type { Directory } from './directory';
import { decodeFrame, encodeFrame, FrameKind } from './frames';
import type { Subjects } from './subjects';
import { BusRequestError, overBusLimit, type BusMessage, type BusSubscription, type Transport } from './transport';

/** The queue group of the nodes that have backends: NATS gives each event or request to one of them. */
const BACKEND_GROUP = 'backends';

export interface PeerStats {
  /** Client events handed to another node's backends. */
  eventsForwarded: number;
  /** Client events no backend here could take and too large for the bus (over its max_payload): dropped. */
  eventsTooBig: number;
  /** Client events from other nodes given to this node's backends. */
  eventsServed: number;
  /** Upgrades of other nodes decided by this node's backends. */
  requestsServed: number;
}

/**
 * Backends are one pool across the cluster. A node with no backend able to
 * take a client event hands it to one that has (a queue group), and with
 * --balance client every client's events go to one node, chosen by rendezvous
 * hashing of the client over the nodes that have backends. Upgrades are asked
 * of another node by request/reply; "no responders" means no backend
 * anywhere. A node listens for others' events and requests only while it has
 * a live backend.
 */
export class Peers implements PeerForwarder, PeerBackends {
  readonly stats: PeerStats = { eventsForwarded: 0, eventsTooBig: 0, eventsServed: 0, requestsServed: 0 };
  private readonly tooBigLog = new LogThrottle(1000);
  private serving: BusSubscription[] = [];
  /** The nodes with backends (this one included when it has some), each with its hash, for rendezvous hashing. */
  private owners: { id: string; hash: number }[] = [];
  /** Other nodes with backends, as of the last update(): read for every event a node without backends passes on. */
  private peersWithBackends = 0;

  constructor(
    private readonly transport: Transport,
    private readonly subjects: Subjects,
    private readonly nodeId: string,
    private readonly directory: Directory,
    private readonly pool: BackendPool,
    private readonly authorizer: UpgradeAuthorizer,
    private readonly clientAffinity: boolean,
    private readonly log: Logger,
  ) {}

  get available(): boolean {
    return this.transport.connected && this.peersWithBackends > 0;
  }

  /** The directory or this node's backends changed: who owns which client, and whether this node serves others. */
  update(): void {
    const ids = this.directory.peersWithBackends;
    this.peersWithBackends = ids.length;
    if (this.pool.size > 0) ids.push(this.nodeId);
    this.owners = ids.map((id) => ({ id, hash: hash32(id) }));
    if (this.pool.size > 0 && this.serving.length === 0) this.serve();
    else if (this.pool.size === 0 && this.serving.length > 0) this.stopServing();
  }

  /** For the pool: takes an event that another node must handle (the client's owner elsewhere), or that none here can (`stuck`). */
  forward(line: string, affinity: number, stuck: boolean): boolean {
    let subject: string;
    if (this.clientAffinity) {
      const owner = this.ownerOf(affinity);
      if (owner === undefined || owner === this.nodeId) return false;
      subject = this.subjects.eventsFor(owner);
    } else {
      if (!stuck || !this.available) return false;
      subject = this.subjects.events;
    }
    const frame = encodeFrame(FrameKind.Event, this.nodeId, Buffer.from(line, 'latin1'), { affinity });
    if (overBusLimit(this.transport, frame.length)) return stuck && this.tooBig(line);
    if (!this.transport.publish(subject, frame)) return false;
    this.stats.eventsForwarded++;
    return true;
  }

  /**
   * An event that only another node could take, and the bus cannot carry:
   * dropped, counted and logged, rather than left at the head of the queue
   * where it would hold up every event after it.
   */
  private tooBig(line: string): true {
    this.stats.eventsTooBig++;
    const skipped = this.tooBigLog.pass();
    if (skipped !== undefined) this.log.warn({ bytes: line.length, maxPayload: this.transport.maxPayload, alsoSince: skipped }, 'cluster: an event for another node\'s backend is over the bus\'s max_payload and was dropped: raise max_payload in the NATS server\'s configuration');
    return true;
  }

  /** For the authorizer: another node's backends decide. */
  async decide(request: UpgradeRequest, timeoutMs: number): Promise<Verdict> {
    try {
      return parseVerdict(await this.transport.request(this.subjects.connectionRequests, Buffer.from(JSON.stringify(request)), timeoutMs));
    } catch (err) {
      const reason = err instanceof BusRequestError ? err.reason : 'down';
      return { reject: reason === 'timeout' ? 504 : 503 };
    }
  }

  stop(): void {
    this.stopServing();
  }

  /** Rendezvous hashing: the node whose hash mixed with the client's scores highest. */
  private ownerOf(affinity: number): string | undefined {
    let best: string | undefined;
    let bestScore = -1;
    for (const { id, hash } of this.owners) {
      const score = mix32(affinity ^ hash);
      if (score > bestScore) {
        bestScore = score;
        best = id;
      }
    }
    return best;
  }

  private serve(): void {
    const onEvent = (message: BusMessage): void => {
      const frame = decodeFrame(message.data);
      if (frame === undefined || frame.kind !== FrameKind.Event) return;
      this.stats.eventsServed++;
      // Never handed on again: with no backend left here it waits in this node's queue.
      this.pool.dispatchLocal(Buffer.from(frame.payload).toString('latin1'), frame.affinity);
    };
    this.serving = [
      this.transport.subscribe(this.subjects.events, onEvent, BACKEND_GROUP),
      this.transport.subscribe(this.subjects.eventsFor(this.nodeId), onEvent),
      this.transport.subscribe(this.subjects.connectionRequests, (message) => this.serveRequest(message), BACKEND_GROUP),
    ];
    this.log.info('cluster: this node has backends and serves the other nodes\' events and connection requests');
  }

  private stopServing(): void {
    for (const subscription of this.serving) subscription.unsubscribe();
    this.serving = [];
  }

  private serveRequest(message: BusMessage): void {
    const reply = message.reply;
    if (reply === undefined) return;
    let request: UpgradeRequest;
    try {
      request = JSON.parse(Buffer.from(message.data).toString()) as UpgradeRequest;
    } catch {
      return;
    }
    this.stats.requestsServed++;
    this.authorizer.decideForPeer(request, new PeerAttempt((verdict) => this.transport.publish(reply, Buffer.from(JSON.stringify(verdict)))));
  }
}

/** Another node's upgrade, as this node's authorizer sees it: its verdict goes back on the bus. */
class PeerAttempt implements UpgradeAttempt {
  readonly forPeer = true;
  private finished = false;
  onAbort: (() => void) | undefined;

  constructor(private readonly answer: (verdict: Verdict) => void) {}

  get done(): boolean {
    return this.finished;
  }

  accept(identity: ClientIdentity): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.answer({ accept: { clientId: identity.clientId, roomId: identity.roomId, contextJson: identity.contextJson } });
    return true;
  }

  reject(status: RejectStatus): void {
    if (this.finished) return;
    this.finished = true;
    this.answer({ reject: status });
  }
}

const STATUSES: readonly RejectStatus[] = [403, 429, 502, 503, 504];

function parseVerdict(data: Uint8Array): Verdict {
  const parsed = JSON.parse(Buffer.from(data).toString()) as Partial<{ accept: Record<string, unknown>; reject: unknown }>;
  const accept = parsed.accept;
  if (accept !== undefined && typeof accept.clientId === 'string' && typeof accept.roomId === 'string' && typeof accept.contextJson === 'string') {
    return { accept: { clientId: accept.clientId, roomId: accept.roomId, contextJson: accept.contextJson } };
  }
  return { reject: STATUSES.includes(parsed.reject as RejectStatus) ? (parsed.reject as RejectStatus) : 502 };
}

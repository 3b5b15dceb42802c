import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { BackendLink } from '../backends/backend-link';
import { MAX_ID_LENGTH, type Params } from '../backends/backend-router';
import { hash32 } from '../backends/hash';
import type { Component } from '../lifecycle';
import { LineRejected, newErrorCounts, type ErrorKind } from '../protocol/errors';
import { MAX_JSON_DEPTH, describe, isObject, nestsDeeperThan } from '../protocol/json';
import { connectionRequestLine, errorLine, serializeContext } from '../protocol/serializers';
import type { ClientIdentity, RejectStatus, UpgradeAttempt, UpgradeRequest } from '../gateway/session';
import { AuthLatency, type AuthOutcome } from './auth-latency';
import { ConnectionLimiter } from './connection-limiter';
import { PendingRequests, type PendingEntry } from './pending-requests';
import { RecentIds } from './recent-ids';

/** A client's context JSON (its metadata, mostly) is kept per socket and sent with every event: at most this many bytes. */
export const MAX_CONTEXT_BYTES = 64 * 1024;
/** Requests that ended without an answer, remembered so that a late answer is counted, not reported as unknown. */
const RECENTLY_ENDED = 4096;

/** How another node's backends decided an upgrade (in a cluster). */
export type Verdict = { accept: { clientId: string; roomId: string; contextJson: string } } | { reject: RejectStatus };

/** The backends of the other nodes of a cluster, for upgrades no backend of this node can decide. */
export interface PeerBackends {
  /** Whether some other node has a live backend now. */
  readonly available: boolean;
  /** Asks a node with a backend to decide; resolves with its verdict (503 when none answers, 504 past the timeout). */
  decide(request: UpgradeRequest, timeoutMs: number): Promise<Verdict>;
}

/** The backends a connection_request can go to. */
export interface RequestTargets {
  /** The next backend in turn that is not backed up, if any. */
  pickForRequest(): BackendLink | undefined;
  /** Backends connected, backed up or not. */
  readonly size: number;
}

export interface AuthorizerSettings {
  authTimeout: number;
  maxPendingUpgrades: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  allowedOrigins: readonly string[] | undefined;
}

/** Why an upgrade was refused, as reported to a backend: an error kind and an auth outcome both. */
type Refusal = ErrorKind & AuthOutcome & ('rejected' | 'timeout' | 'no_backend' | 'backends_busy');

interface Waiting extends PendingEntry<BackendLink | undefined> {
  readonly line: string;
  readonly request: UpgradeRequest;
  readonly attempt: UpgradeAttempt;
  readonly startedAt: number;
}

/** Counters read by metrics and tests. */
export interface AuthorizerStats {
  /** Upgrades refused, by HTTP status. */
  refused: Record<RejectStatus, number>;
  connectionRequests: number;
  /** Upgrades handed to another node's backends (in a cluster). */
  forwarded: number;
  /** Answers to requests that had ended (client gone, timed out, refused at shutdown): ignored. */
  lateResponses: number;
  /** Clients that left while their upgrade waited for a backend. */
  abandoned: number;
  /** Refusals reported to backends in error events, by kind. */
  errors: Record<ErrorKind, number>;
  readonly authLatency: AuthLatency;
}

/**
 * Decides every upgrade: refused at once (draining, origin, limits, no
 * backend), or asked of one backend with a connection_request and then
 * accepted, refused, timed out, re-sent when its backend dies, or dropped
 * when its client leaves. Each upgrade holds a connection slot and, while it
 * waits, one of --max-pending-upgrades places; both are given back the moment
 * it ends, however it ends.
 */
export class UpgradeAuthorizer implements Component {
  readonly stats: AuthorizerStats = {
    refused: { 403: 0, 429: 0, 502: 0, 503: 0, 504: 0 },
    connectionRequests: 0,
    forwarded: 0,
    lateResponses: 0,
    abandoned: 0,
    errors: newErrorCounts(),
    authLatency: new AuthLatency(),
  };
  private readonly pending: PendingRequests<BackendLink | undefined, Waiting>;
  private readonly limiter: ConnectionLimiter;
  private readonly origins: ReadonlySet<string> | undefined;
  private readonly ended = new RecentIds(RECENTLY_ENDED);
  private refusingAll = false;
  /** Upgrades waiting for another node's verdict. */
  private withPeers = 0;
  /** Set once, in a cluster: where upgrades go that no backend of this node can take. */
  peers: PeerBackends | undefined;

  constructor(
    private readonly settings: AuthorizerSettings,
    private readonly targets: RequestTargets,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.pending = new PendingRequests(now, (id, entry) => this.refuse(id, entry, 504, 'timeout', `connection request ${id} timed out after ${settings.authTimeout} ms`));
    this.limiter = new ConnectionLimiter(settings.maxConnections, settings.maxConnectionsPerIp);
    this.origins = settings.allowedOrigins ? new Set(settings.allowedOrigins) : undefined;
  }

  /** Upgrades waiting for a backend's answer (here or on another node). */
  get waiting(): number {
    return this.pending.size + this.withPeers;
  }

  /** Connection slots held: open sockets plus upgrades in progress. */
  get slots(): number {
    return this.limiter.count;
  }

  async start(): Promise<void> {
    this.refusingAll = false;
  }

  /** From now on every new upgrade gets 503 (draining, or stopping). */
  refuseNew(): void {
    this.refusingAll = true;
  }

  /** Refuses every new upgrade and answers the waiting ones with 503. */
  async stop(): Promise<void> {
    this.refuseNew();
    this.pending.stop();
    for (const [id, entry] of this.pending.takeAll()) this.end(id, entry, 503);
  }

  onUpgrade(request: UpgradeRequest, attempt: UpgradeAttempt): void {
    if (this.refusingAll) return this.count(attempt, 503);
    if (this.origins !== undefined && !this.origins.has(request.headers.Origin?.[0] ?? '')) {
      this.log.debug({ origin: request.headers.Origin?.[0], remote: request.remoteAddr }, 'origin not allowed');
      return this.count(attempt, 403);
    }
    if (this.waiting >= this.settings.maxPendingUpgrades) {
      this.log.debug({ waiting: this.waiting, remote: request.remoteAddr }, 'too many upgrades waiting for a backend');
      return this.count(attempt, 503);
    }
    const slot = this.limiter.acquire(request.remoteIp);
    if (slot !== 'ok') {
      this.log.debug({ limit: slot, remote: request.remoteAddr }, 'connection limit reached');
      return this.count(attempt, slot === 'total' ? 503 : 429);
    }
    const held = new SlotHeld(attempt, () => this.limiter.release(request.remoteIp));
    const link = this.targets.pickForRequest();
    if (link !== undefined) this.ask(link, request, held);
    else if (this.peers?.available) this.askPeers(this.peers, request, held);
    else this.refuseUnasked(request, held);
  }

  /**
   * Another node's upgrade, decided by this node's backends (in a cluster):
   * that node checked the limits and holds the slot; this one never hands it on.
   */
  decideForPeer(request: UpgradeRequest, attempt: UpgradeAttempt): void {
    if (this.refusingAll) return this.count(attempt, 503);
    const link = this.targets.pickForRequest();
    if (link !== undefined) this.ask(link, request, attempt);
    else this.refuseUnasked(request, attempt);
  }

  /** Sends the connection_request to `link` and waits for its answer, its death, the deadline or the client leaving. */
  private ask(link: BackendLink, request: UpgradeRequest, attempt: UpgradeAttempt): void {
    const id = randomUUID();
    const startedAt = this.now();
    const line = connectionRequestLine(id, { headers: request.headers, url: request.url, remote_addr: request.remoteAddr, query: request.query });
    const entry: Waiting = { holder: link, line, request, attempt, startedAt, deadline: startedAt + this.settings.authTimeout };
    // The client may leave at any moment until the attempt ends: then its place and its entry go at once.
    attempt.onAbort = () => {
      if (this.pending.take(id) === undefined) return;
      this.stats.abandoned++;
      this.ended.add(id);
    };
    this.pending.add(id, entry);
    this.stats.connectionRequests++;
    link.send(line);
  }

  /** Hands the upgrade to the backends of another node and applies their verdict, if the client is still there. */
  private askPeers(peers: PeerBackends, request: UpgradeRequest, attempt: UpgradeAttempt): void {
    const startedAt = this.now();
    this.stats.forwarded++;
    this.withPeers++;
    let decided = false;
    attempt.onAbort = () => {
      if (!decided) this.stats.abandoned++;
    };
    void peers.decide(request, this.settings.authTimeout).then((verdict) => {
      decided = true;
      this.withPeers--;
      const entry = { startedAt };
      if (attempt.done) {
        this.stats.lateResponses++;
        return;
      }
      if ('accept' in verdict) {
        this.observe('accepted', entry);
        const { clientId, roomId, contextJson } = verdict.accept;
        attempt.accept({ clientId, roomId, contextJson, remoteIp: request.remoteIp, affinity: hash32(clientId) });
        return;
      }
      this.observe(OUTCOME_OF[verdict.reject], entry);
      this.count(attempt, verdict.reject);
    });
  }

  /** No backend here can take the request (and none elsewhere, or this is another node's request). */
  private refuseUnasked(request: UpgradeRequest, attempt: UpgradeAttempt): void {
    const startedAt = this.now();
    const entry: Waiting = { holder: undefined, line: '', request, attempt, startedAt, deadline: startedAt };
    const id = randomUUID();
    if (this.targets.size === 0) this.refuse(id, entry, 503, 'no_backend', 'no backend connected to validate the connection');
    else this.refuse(id, entry, 503, 'backends_busy', 'every backend is above --backend-hwm; connection refused rather than pushing one further');
  }

  /** A socket that was accepted has closed: its slot is free. */
  released(remoteIp: string): void {
    this.limiter.release(remoteIp);
  }

  /**
   * A backend's `response`. Throws LineRejected when it answers nothing that
   * waits, or answers with values that cannot be used (the upgrade then gets 502).
   */
  onResponse(link: BackendLink, requestId: string, params: Params): void {
    const entry = this.pending.take(requestId);
    if (entry === undefined) {
      if (this.ended.take(requestId)) {
        this.stats.lateResponses++;
        return;
      }
      throw new LineRejected('unknown_request', 'response for an unknown or expired request_id');
    }
    entry.holder = link;
    if (params.accepted !== true) {
      this.refuse(requestId, entry, 403, 'rejected', 'connection rejected by the backend');
      return;
    }
    let identity: ClientIdentity;
    try {
      identity = this.identity(entry.request, params);
    } catch (err) {
      this.end(requestId, entry, 502);
      this.observe('bad_response', entry);
      throw err;
    }
    this.observe('accepted', entry);
    // Accepted, the slot is the socket's until it closes.
    entry.attempt.accept(identity);
  }

  /** Requests a backend that went away held go to another live backend, keeping their deadline, else 503. */
  onBackendGone(link: BackendLink): void {
    for (const [id, entry] of this.pending.heldBy(link)) {
      const next = this.targets.pickForRequest();
      if (next === undefined) {
        this.pending.take(id);
        this.refuse(id, entry, 503, 'no_backend', `backend holding connection request ${id} disconnected and no other backend can take it`);
        continue;
      }
      entry.holder = next;
      next.send(entry.line);
    }
  }

  /** The client's identity from an accepting response, each field checked. */
  private identity(request: UpgradeRequest, params: Params): ClientIdentity {
    const clientId = optionalId(params.client_id, 'client_id') ?? randomUUID();
    const roomId = optionalId(params.room_id, 'room_id') ?? request.url;
    const metadata = params.metadata ?? {};
    if (!isObject(metadata)) throw new LineRejected('invalid_params', `response: params.metadata must be an object, got ${describe(metadata)}`);
    if (nestsDeeperThan(metadata, MAX_JSON_DEPTH)) throw new LineRejected('invalid_params', `response: params.metadata nests deeper than ${MAX_JSON_DEPTH} levels`);
    const contextJson = serializeContext({ client_id: clientId, room_id: roomId, metadata });
    if (contextJson.length > MAX_CONTEXT_BYTES) throw new LineRejected('invalid_params', `response: the client's context is ${contextJson.length} bytes, over ${MAX_CONTEXT_BYTES}`);
    return { clientId, roomId, remoteIp: request.remoteIp, contextJson, affinity: hash32(clientId) };
  }

  /**
   * Answers the upgrade with an HTTP error and tells a backend why: the one
   * that held the request, else any live one (never the queue: during an
   * outage refusals would push the clients' own events out of it).
   */
  private refuse(id: string, entry: Waiting, status: RejectStatus, why: Refusal, reason: string): void {
    // A client that already left needs no answer, and its backend no report.
    if (!this.end(id, entry, status)) return;
    this.observe(why, entry);
    this.stats.errors[why]++;
    this.log.debug({ status, url: entry.request.url, remote: entry.request.remoteAddr }, reason);
    const told = entry.holder !== undefined && !entry.holder.closed ? entry.holder : this.targets.pickForRequest();
    told?.send(errorLine(`${status}: ${reason}`, { url: entry.request.url, remote_addr: entry.request.remoteAddr }));
  }

  /** Refuses an upgrade (its slot, if it holds one, goes with it); false if its client had already left. */
  private end(id: string, entry: { attempt: UpgradeAttempt }, status: RejectStatus): boolean {
    if (entry.attempt.done) return false;
    this.ended.add(id);
    this.count(entry.attempt, status);
    return true;
  }

  private observe(outcome: AuthOutcome, entry: { startedAt: number }): void {
    this.stats.authLatency.observe(outcome, (this.now() - entry.startedAt) / 1000);
  }

  /** Refuses an upgrade and counts it (on the node the client is on). */
  private count(attempt: UpgradeAttempt, status: RejectStatus): void {
    if (attempt.forPeer !== true) this.stats.refused[status]++;
    attempt.reject(status);
  }
}

/** A client or room id from a response: absent (or null, or '') means the default. */
function optionalId(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new LineRejected('invalid_params', `response: params.${name} must be a string, got ${describe(value)}`);
  if (value.length > MAX_ID_LENGTH) throw new LineRejected('invalid_params', `response: params.${name} is longer than ${MAX_ID_LENGTH} characters`);
  return value;
}

/** The auth outcome an upgrade refused with this status stands for, when another node refused it. */
const OUTCOME_OF: Record<RejectStatus, AuthOutcome> = { 403: 'rejected', 429: 'rejected', 502: 'bad_response', 503: 'no_backend', 504: 'timeout' };

/**
 * An attempt holding a connection slot: the slot goes back when the attempt is
 * refused or its client leaves; accepted, it stays with the socket until it
 * closes.
 */
class SlotHeld implements UpgradeAttempt {
  onAbort: (() => void) | undefined;

  constructor(
    private readonly inner: UpgradeAttempt,
    private readonly release: () => void,
  ) {
    inner.onAbort = () => {
      release();
      this.onAbort?.();
    };
  }

  get done(): boolean {
    return this.inner.done;
  }

  accept(identity: ClientIdentity): boolean {
    return this.inner.accept(identity);
  }

  reject(status: RejectStatus): void {
    if (this.inner.done) return;
    this.release();
    this.inner.reject(status);
  }
}

import { StrandsBackend, type ClientContext, type ConnectionDecision, type ConnectionRequest } from '../sdk';

/** WebSocket paths name the room: /room/<name> (percent-decoded by the broker). */
export const ROOM_PREFIX = '/room/';
export const MAX_ROOM = 64;
export const MAX_NAME = 32;
export const MAX_TEXT = 2000;
/** Messages one client may send in a burst, and per second after it; beyond, they are dropped. */
export const BURST = 10;
const PER_SECOND = 5;

/** What the page receives, one JSON object per frame. */
export type ChatEvent =
  | { type: 'message'; from: string; text: string }
  | { type: 'members'; count: number }
  | { type: 'joined'; name: string }
  | { type: 'left'; name: string }
  | { type: 'notice'; text: string };

const CONTROL = /[\u0000-\u001f\u007f]/g;

/** Control characters become spaces, then trimmed and cut to `max` characters (code points, so no pair is split). The page does the same. */
export function clean(text: string, max: number): string {
  return Array.from(text.replace(CONTROL, ' ').trim()).slice(0, max).join('');
}

/** The room of a WebSocket request, or undefined when its path names none (or one the page would not send). */
export function roomOf(url: string): string | undefined {
  if (!url.startsWith(ROOM_PREFIX)) return undefined;
  const raw = url.slice(ROOM_PREFIX.length);
  return raw !== '' && clean(raw, MAX_ROOM) === raw ? raw : undefined;
}

/** A sender's name as chosen on the page (?name=), or "guest". */
export function nameOf(query: string | undefined): string {
  return clean(query ?? '', MAX_NAME) || 'guest';
}

/** At most `burst` at once and `perSecond` after that, per client (a token bucket each). */
export class RateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True if `id` may send now (and counts it). */
  take(id: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(id) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) * this.perSecond) / 1000);
    bucket.at = now;
    this.buckets.set(id, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens--;
    return true;
  }

  forget(id: string): void {
    this.buckets.delete(id);
  }
}

/**
 * Sends each room its member count after joins and leaves. A count is asked
 * for (room_info) at most once at a time per room: joins that arrive while
 * one is on its way are answered by one more, so a crowd arriving at once
 * costs a few queries, not one each.
 */
class MemberCounts {
  /** Rooms with a query on its way -> whether another is wanted after it. */
  private readonly asking = new Map<string, boolean>();

  constructor(private readonly backend: StrandsBackend) {}

  changed(room: string): void {
    if (this.asking.has(room)) {
      this.asking.set(room, true);
      return;
    }
    this.asking.set(room, false);
    void this.ask(room);
  }

  private async ask(room: string): Promise<void> {
    try {
      // One page is enough: its count is the whole room's, however many ids follow.
      const { count } = await this.backend.roomInfoPage(room);
      send(this.backend, room, { type: 'members', count });
    } catch {
      // The link dropped: the next join or leave in this room asks again.
    }
    const again = this.asking.get(room) === true;
    this.asking.delete(room);
    if (again) this.changed(room);
  }
}

function send(backend: StrandsBackend, room: string, event: ChatEvent, exclude?: string): void {
  backend.sendToRoom(room, JSON.stringify(event), exclude === undefined ? undefined : { exclude });
}

function nameIn(ctx: ClientContext): string {
  return typeof ctx.metadata.name === 'string' ? ctx.metadata.name : 'guest';
}

/**
 * The demo's backend, written with the SDK: a client joins the room its path
 * names under the name it brings; the broker gives it a fresh client id, so
 * two tabs are two members. Each message goes to everyone else in the room
 * (the sender is excluded: its page shows what it sent itself).
 */
export function chatBackend(port: number): StrandsBackend {
  const backend = new StrandsBackend({ port });
  const members = new MemberCounts(backend);
  const limit = new RateLimit(BURST, PER_SECOND);
  backend
    .onConnectionRequest((req: ConnectionRequest): ConnectionDecision => {
      const room = roomOf(req.url);
      return room === undefined ? { accepted: false } : { accepted: true, room_id: room, metadata: { name: nameOf(req.queryParam('name')) } };
    })
    .onNewConnection((ctx) => {
      send(backend, ctx.room_id, { type: 'joined', name: nameIn(ctx) }, ctx.client_id);
      members.changed(ctx.room_id);
    })
    .onDisconnect((ctx) => {
      limit.forget(ctx.client_id);
      send(backend, ctx.room_id, { type: 'left', name: nameIn(ctx) });
      members.changed(ctx.room_id);
    })
    .onMessage((message, ctx) => {
      const text = clean(message, MAX_TEXT);
      if (text === '') return;
      if (limit.take(ctx.client_id)) send(backend, ctx.room_id, { type: 'message', from: nameIn(ctx), text }, ctx.client_id);
      else backend.sendToConnection(ctx.client_id, JSON.stringify({ type: 'notice', text: `slow down: at most ${PER_SECOND} messages a second; that one was not sent` } satisfies ChatEvent));
    })
    // The page sends text only; anything binary is not a chat message.
    .onBinaryMessage(() => undefined);
  return backend;
}

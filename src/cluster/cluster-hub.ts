import { roomPageOf, type Audience, type ClientHub, type Exclusions, type Membership, type Payload, type RoomPage } from '../client-hub';
import { LineRejected } from '../protocol/errors';
import type { Directory } from './directory';
import { decodeFrame, encodeFrame, FrameKind, type Frame } from './frames';
import type { Subjects } from './subjects';
import { overBusLimit, type BusMessage, type BusSubscription, type Transport } from './transport';

/** A room or client subject is kept this long after its last local member left, against churn. */
const SUBSCRIPTION_LINGER_MS = 5000;
/** How long a room_info waits for the other nodes' answers. */
const ROOM_INFO_TIMEOUT_MS = 2000;
/** A room_info answer is cut into messages of at most this many bytes of ids (and half the bus's max_payload). */
const ANSWER_CHUNK_BYTES = 256 * 1024;

/** What the cluster needs of this node's WebSocket side beyond the hub: every member of a local room. */
export interface LocalClients extends ClientHub {
  roomMembers(roomId: string): Iterable<string>;
}

export interface BusStats {
  /** Frames handed to the bus, by kind of subject. */
  published: number;
  /** Frames received from other nodes and acted on. */
  received: number;
  /** Frames not published because the bus was down or owed too much: lost for other nodes. */
  dropped: number;
  /** Frames received that this node could not read (another protocol version, cut short). */
  unreadable: number;
  /** Messages refused for being over the bus's max_payload. */
  tooBig: number;
}

interface RoomInfoAnswer {
  node: string;
  ids: string[];
  final: boolean;
}

/**
 * The hub of a node in a cluster: every send goes to this node's clients at
 * once and then, encoded once, to the bus for the other nodes, which deliver it
 * to theirs. A node subscribes to a room's (or client id's) subject only while
 * it has a local member, and drops its own echoes. Actions on a client (join,
 * leave, disconnect) travel on the client's subject to every node holding one
 * of its sockets. room_info asks every node and merges the answers.
 */
export class ClusterHub implements ClientHub, Membership {
  readonly stats: BusStats = { published: 0, received: 0, dropped: 0, unreadable: 0, tooBig: 0 };
  private readonly held = new Map<string, { subscription: BusSubscription; linger: NodeJS.Timeout | undefined }>();
  private readonly fixed: BusSubscription[] = [];
  /** Answers to this node's room_info questions arrive on `<answers>.<question>`, one subscription for all. */
  private readonly answers: string;
  private readonly questions = new Map<string, (answer: RoomInfoAnswer) => void>();
  private questionSeq = 0;

  constructor(
    private readonly local: LocalClients,
    private readonly transport: Transport,
    private readonly subjects: Subjects,
    private readonly nodeId: string,
    private readonly directory: Directory,
  ) {
    this.answers = transport.inbox();
  }

  /** Subjects held for rooms and client ids now. */
  get subscriptions(): number {
    return this.held.size;
  }

  start(): void {
    this.fixed.push(
      this.transport.subscribe(this.subjects.broadcast, (m) => this.deliver(m, (f) => this.local.broadcast(f.payload, f.binary, f.exclude))),
      this.transport.subscribe(this.subjects.queries, (m) => this.answerRoomInfo(m)),
      this.transport.subscribe(`${this.answers}.*`, (m) => {
        const answer = parseAnswer(m.data);
        if (answer !== undefined) this.questions.get(m.subject.slice(this.answers.length + 1))?.(answer);
      }),
    );
  }

  stop(): void {
    for (const subscription of this.fixed.splice(0)) subscription.unsubscribe();
    for (const { subscription, linger } of this.held.values()) {
      clearTimeout(linger);
      subscription.unsubscribe();
    }
    this.held.clear();
  }

  // --- sends: here first, then the bus --------------------------------------

  sendToClient(clientId: string, message: Payload, binary: boolean): void {
    const bytes = utf8(message);
    const frame = this.frame(FrameKind.Deliver, bytes, binary, undefined);
    this.local.sendToClient(clientId, bytes, binary);
    this.publish(this.subjects.client(clientId), frame);
  }

  publishToRoom(roomId: string, message: Payload, binary: boolean, exclude: Exclusions): void {
    const bytes = utf8(message);
    const frame = this.frame(FrameKind.Deliver, bytes, binary, exclude);
    this.local.publishToRoom(roomId, bytes, binary, exclude);
    this.publish(this.subjects.room(roomId), frame);
  }

  broadcast(message: Payload, binary: boolean, exclude: Exclusions): void {
    const bytes = utf8(message);
    const frame = this.frame(FrameKind.Deliver, bytes, binary, exclude);
    this.local.broadcast(bytes, binary, exclude);
    this.publish(this.subjects.broadcast, frame);
  }

  /** This node's sockets only: what an ack promises (docs/protocol.md). */
  reach(audience: Audience, exclude: Exclusions): number {
    return this.local.reach(audience, exclude);
  }

  joinRoom(clientId: string, roomId: string): { joined: number; refused: number } {
    this.publish(this.subjects.client(clientId), encodeFrame(FrameKind.Join, this.nodeId, Buffer.from(roomId, 'utf8')));
    return this.local.joinRoom(clientId, roomId);
  }

  leaveRoom(clientId: string, roomId: string): number {
    this.publish(this.subjects.client(clientId), encodeFrame(FrameKind.Leave, this.nodeId, Buffer.from(roomId, 'utf8')));
    return this.local.leaveRoom(clientId, roomId);
  }

  disconnect(clientId: string, code: number, reason: string): number {
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2, 'utf8');
    this.publish(this.subjects.client(clientId), encodeFrame(FrameKind.Disconnect, this.nodeId, payload));
    return this.local.disconnect(clientId, code, reason);
  }

  /**
   * Every node's members of the room, merged: exact when nobody joins or
   * leaves meanwhile. Each node sends all its member ids (an exact count needs
   * them: a client may have sockets on several nodes); the answer waits for
   * every node the directory knows, or ROOM_INFO_TIMEOUT_MS, and says how many answered.
   */
  async roomPage(roomId: string, cursor: string, limit: number): Promise<RoomPage> {
    const ids = new Set(this.local.roomMembers(roomId));
    const expected = this.directory.nodes.length;
    let answered = 1;
    if (expected > 1 && this.transport.connected) {
      const question = String(++this.questionSeq);
      answered += await new Promise<number>((resolve) => {
        const finished = new Set<string>();
        const done = (): void => {
          clearTimeout(timer);
          this.questions.delete(question);
          resolve(finished.size);
        };
        this.questions.set(question, (answer) => {
          for (const id of answer.ids) ids.add(id);
          if (answer.final) finished.add(answer.node);
          if (finished.size >= expected - 1) done();
        });
        const timer = setTimeout(done, ROOM_INFO_TIMEOUT_MS);
        this.transport.publish(this.subjects.queries, Buffer.from(JSON.stringify({ room_id: roomId })), `${this.answers}.${question}`);
      });
    }
    return roomPageOf(roomId, ids, ids.size, cursor, limit, { nodes: answered, nodes_total: expected });
  }

  // --- which subjects this node holds ---------------------------------------

  roomOpened(roomId: string): void {
    this.hold(this.subjects.room(roomId), (frame) => this.local.publishToRoom(roomId, frame.payload, frame.binary, frame.exclude));
  }

  roomClosed(roomId: string): void {
    this.release(this.subjects.room(roomId));
  }

  clientOpened(clientId: string): void {
    this.hold(this.subjects.client(clientId), (frame) => this.onClientFrame(clientId, frame));
  }

  clientClosed(clientId: string): void {
    this.release(this.subjects.client(clientId));
  }

  private hold(subject: string, act: (frame: Frame) => void): void {
    const held = this.held.get(subject);
    if (held !== undefined) {
      clearTimeout(held.linger);
      held.linger = undefined;
      return;
    }
    this.held.set(subject, { subscription: this.transport.subscribe(subject, (m) => this.deliver(m, act)), linger: undefined });
  }

  private release(subject: string): void {
    const held = this.held.get(subject);
    if (held === undefined || held.linger !== undefined) return;
    held.linger = setTimeout(() => {
      this.held.delete(subject);
      held.subscription.unsubscribe();
    }, SUBSCRIPTION_LINGER_MS);
    held.linger.unref();
  }

  // --- what other nodes send ------------------------------------------------

  private deliver(message: BusMessage, act: (frame: Frame) => void): void {
    const frame = decodeFrame(message.data);
    if (frame === undefined) {
      this.stats.unreadable++;
      return;
    }
    if (frame.origin === this.nodeId) return;
    this.stats.received++;
    act(frame);
  }

  private onClientFrame(clientId: string, frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.Deliver:
        this.local.sendToClient(clientId, frame.payload, frame.binary);
        return;
      case FrameKind.Join:
        this.local.joinRoom(clientId, Buffer.from(frame.payload).toString('utf8'));
        return;
      case FrameKind.Leave:
        this.local.leaveRoom(clientId, Buffer.from(frame.payload).toString('utf8'));
        return;
      case FrameKind.Disconnect: {
        const payload = Buffer.from(frame.payload);
        if (payload.length >= 2) this.local.disconnect(clientId, payload.readUInt16BE(0), payload.toString('utf8', 2));
        return;
      }
    }
  }

  /** Another node asks for this node's members of a room: all of them, in chunks, the last marked final. */
  private answerRoomInfo(message: BusMessage): void {
    if (message.reply === undefined) return;
    let roomId: unknown;
    try {
      roomId = (JSON.parse(Buffer.from(message.data).toString()) as { room_id?: unknown }).room_id;
    } catch {
      return;
    }
    if (typeof roomId !== 'string') return;
    const ids = this.local.roomMembers(roomId);
    const limit = Math.min(ANSWER_CHUNK_BYTES, this.transport.maxPayload / 2);
    let chunk: string[] = [];
    let bytes = 0;
    for (const id of ids) {
      // JSON writes an id in at most six bytes per character (\uXXXX), plus quotes and a comma.
      const size = 6 * id.length + 3;
      if (bytes + size > limit && chunk.length > 0) {
        this.transport.publish(message.reply, answer(this.nodeId, chunk, false));
        chunk = [];
        bytes = 0;
      }
      chunk.push(id);
      bytes += size;
    }
    this.transport.publish(message.reply, answer(this.nodeId, chunk, true));
  }

  /** The frame of a send, refused (nothing delivered anywhere) when the bus cannot carry it. */
  private frame(kind: typeof FrameKind.Deliver, bytes: Uint8Array, binary: boolean, exclude: Exclusions): Uint8Array {
    const frame = encodeFrame(kind, this.nodeId, bytes, { binary, exclude });
    if (overBusLimit(this.transport, frame.length)) {
      this.stats.tooBig++;
      throw new LineRejected('message_too_big', `message of ${bytes.length} bytes is too large for the cluster bus (its max_payload is ${this.transport.maxPayload}); not sent: raise max_payload in the NATS server's configuration`);
    }
    return frame;
  }

  private publish(subject: string, frame: Uint8Array): void {
    if (this.transport.publish(subject, frame)) this.stats.published++;
    else this.stats.dropped++;
  }
}

function utf8(message: Payload): Uint8Array {
  return typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
}

function answer(node: string, ids: string[], final: boolean): Uint8Array {
  return Buffer.from(JSON.stringify({ node, ids, final } satisfies RoomInfoAnswer));
}

function parseAnswer(data: Uint8Array): RoomInfoAnswer | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(data).toString()) as Partial<RoomInfoAnswer>;
    if (typeof parsed.node !== 'string' || !Array.isArray(parsed.ids) || typeof parsed.final !== 'boolean') return undefined;
    return { node: parsed.node, ids: parsed.ids.filter((id): id is string => typeof id === 'string'), final: parsed.final };
  } catch {
    return undefined;
  }
}

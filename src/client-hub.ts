/**
 * What the backend side may ask of the WebSocket side. The gateway implements
 * it with uWS topics, so the backend side never touches a socket and each send
 * is one publish, whatever the number of recipients. In a cluster, a decorator
 * does the same on every node.
 */

/** A message for clients: text (a string, or its UTF-8 bytes) or, with `binary`, bytes sent as a binary frame. */
export type Payload = string | Uint8Array;

/** Who a send reaches: a room, every socket of a client id, or everyone. */
export type Audience = { room: string } | { client: string } | 'everyone';

/** Client ids that a room message or broadcast must not reach; undefined: none. */
export type Exclusions = readonly string[] | undefined;

export interface RoomPage {
  room_id: string;
  /** Distinct client ids in the room. */
  count: number;
  /** Sorted, distinct, after the cursor, at most one page. */
  client_ids: string[];
  /** Present when more ids follow: the cursor for the next page. */
  next?: string;
  /** In a cluster: nodes that answered, and nodes the directory knew. */
  nodes?: number;
  nodes_total?: number;
}

/** A room's page: the member ids after `cursor`, sorted, at most `limit`, with `next` when more follow; `extra` goes before `next`. */
export function roomPageOf(roomId: string, members: Iterable<string>, count: number, cursor: string, limit: number, extra: Pick<RoomPage, 'nodes' | 'nodes_total'> = {}): RoomPage {
  const after = [...members].filter((id) => id > cursor).sort();
  const page: RoomPage = { room_id: roomId, count, client_ids: after.slice(0, limit), ...extra };
  if (after.length > limit) page.next = page.client_ids[limit - 1] as string;
  return page;
}

export interface ClientHub {
  /** Every socket of this client_id (several may share one). */
  sendToClient(clientId: string, message: Payload, binary: boolean): void;
  publishToRoom(roomId: string, message: Payload, binary: boolean, exclude: Exclusions): void;
  broadcast(message: Payload, binary: boolean, exclude: Exclusions): void;
  /** Sockets on this node a send to `audience` would reach now (asked only to answer an ack). */
  reach(audience: Audience, exclude: Exclusions): number;
  /** Every socket of the client joins the room; returns the sockets that joined and those refused for being in too many rooms. */
  joinRoom(clientId: string, roomId: string): { joined: number; refused: number };
  /** Returns the sockets that left. */
  leaveRoom(clientId: string, roomId: string): number;
  /** Closes every socket of the client with `code` and `reason`; returns how many. */
  disconnect(clientId: string, code: number, reason: string): number;
  /** Members of a room, one page of sorted client ids after `cursor`. */
  roomPage(roomId: string, cursor: string, limit: number): RoomPage | Promise<RoomPage>;
}

/** Told by the gateway when a room or client id gets its first socket on this node, or loses its last. */
export interface Membership {
  roomOpened(roomId: string): void;
  roomClosed(roomId: string): void;
  clientOpened(clientId: string): void;
  clientClosed(clientId: string): void;
}

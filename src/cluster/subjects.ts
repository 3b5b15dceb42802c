/**
 * The subjects a cluster uses, under one prefix (--cluster-prefix) so that
 * several clusters can share a NATS. Room and client ids can hold anything
 * JSON allows, and `.`, `*`, `>` and whitespace are not allowed raw in a
 * subject: each id becomes one token, `_` and its UTF-8 bytes in base64url
 * (the `_` keeps the empty id a non-empty token).
 */
function idToken(id: string): string {
  return '_' + Buffer.from(id, 'utf8').toString('base64url');
}

export class Subjects {
  /** Every node's announcements (the directory). */
  readonly directory: string;
  /** Broadcasts to every client. */
  readonly broadcast: string;
  /** Client events for any node with a backend (a queue group). */
  readonly events: string;
  /** connection_request for any node with a backend (a queue group, request/reply). */
  readonly connectionRequests: string;
  /** Questions every node answers (room_info). */
  readonly queries: string;

  constructor(private readonly prefix: string) {
    this.directory = `${prefix}.dir`;
    this.broadcast = `${prefix}.bcast`;
    this.events = `${prefix}.events`;
    this.connectionRequests = `${prefix}.connect`;
    this.queries = `${prefix}.query`;
  }

  room(roomId: string): string {
    return `${this.prefix}.room.${idToken(roomId)}`;
  }

  client(clientId: string): string {
    return `${this.prefix}.client.${idToken(clientId)}`;
  }

  /** Client events for one node (the owner, with --balance client). */
  eventsFor(nodeId: string): string {
    return `${this.prefix}.events.${idToken(nodeId)}`;
  }
}

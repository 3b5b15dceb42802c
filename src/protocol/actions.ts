/** Action names on the backend link (PROTOCOL.md parts 1 and 3). */
export const Action = {
  ConnectionRequest: 'connection_request',
  NewConnection: 'new_connection',
  NewMessage: 'new_message',
  Disconnected: 'disconnected',
  Error: 'error',
  Heartbeat: 'heartbeat',
  Response: 'response',
  Broadcast: 'broadcast',
  MessageToRoom: 'message_to_room',
  MessageToConnection: 'message_to_connection',
  Auth: 'auth',
} as const;

export type ActionName = (typeof Action)[keyof typeof Action];

/** What a client belongs to, as every event after the upgrade carries it. */
export interface ClientContext {
  client_id: string;
  room_id: string;
  metadata: Record<string, unknown>;
}

/** One line from a backend: `{"request_id", "action", "params"}`. */
export interface BackendLine {
  request_id?: unknown;
  action?: unknown;
  params?: unknown;
}

/** The params of a `connection_request`. */
export interface ConnectionRequestParams {
  headers: Record<string, string[]>;
  url: string;
  remote_addr: string;
  query: string;
}

/** Action names on the backend link (docs/protocol.md): the compatible core, then strands' extensions. */
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
  JoinRoom: 'join_room',
  LeaveRoom: 'leave_room',
  Disconnect: 'disconnect',
  RoomInfo: 'room_info',
} as const;

/** What a client belongs to, as every event after the upgrade carries it. */
export interface ClientContext {
  client_id: string;
  room_id: string;
  metadata: Record<string, unknown>;
}

/** The params of a `connection_request`. */
export interface ConnectionRequestParams {
  headers: Record<string, string[]>;
  url: string;
  remote_addr: string;
  query: string;
}

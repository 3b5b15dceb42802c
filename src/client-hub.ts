/**
 * What the backend side may ask of the WebSocket side. The gateway implements
 * it with uWS topics, so the backend side never touches a socket and each call
 * is one publish, whatever the number of recipients.
 */
export interface ClientHub {
  /** Every socket of this client_id (several may share one). */
  sendToClient(clientId: string, message: string): void;
  publishToRoom(roomId: string, message: string): void;
  broadcast(message: string): void;
}

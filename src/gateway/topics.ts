/**
 * uWS topic names. Room and client ids are chosen by users, so each kind gets
 * its own prefix: no room id can name a client's topic or the broadcast topic.
 */
export const BROADCAST_TOPIC = 'b';

export function roomTopic(roomId: string): string {
  return 'r/' + roomId;
}

export function clientTopic(clientId: string): string {
  return 'c/' + clientId;
}

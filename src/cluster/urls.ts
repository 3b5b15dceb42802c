/** A NATS server URL fit for a message: `nats://user:secret@host` becomes `nats://***@host`. */
export function withoutCredentials(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

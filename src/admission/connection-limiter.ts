/**
 * Counts client connections, in total and per IP, from the moment an upgrade
 * is taken on until its socket closes (or the upgrade fails), so that upgrades
 * waiting for a backend count too. A limit of 0 means none.
 */
export class ConnectionLimiter {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
  ) {}

  /** Takes a slot for `ip`, or says which limit is reached. */
  acquire(ip: string): 'ok' | 'total' | 'per-ip' {
    if (this.maxTotal > 0 && this.total >= this.maxTotal) return 'total';
    const held = this.perIp.get(ip) ?? 0;
    if (this.maxPerIp > 0 && held >= this.maxPerIp) return 'per-ip';
    this.total++;
    this.perIp.set(ip, held + 1);
    return 'ok';
  }

  release(ip: string): void {
    const held = this.perIp.get(ip);
    if (held === undefined) return;
    this.total--;
    if (held === 1) this.perIp.delete(ip);
    else this.perIp.set(ip, held - 1);
  }

  get count(): number {
    return this.total;
  }
}

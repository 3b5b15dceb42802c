import type { ClientRole } from '../ipc';
import type { BenchOptions, ScenarioName, ScenarioOption } from '../options';

/** What one scenario asks of each part of the harness. */
export interface ScenarioSpec {
  /** What each client does during the run ('idle': connect and hold). */
  role: ClientRole;
  /** The backend echoes each client message back to its sender. */
  echo: boolean;
  /** The harness publishes at --rate: to the clients' room, or to everyone. */
  publish: 'room' | 'broadcast' | undefined;
  clients(o: BenchOptions): number;
  /** What the rate counts and what the target's CPU is divided by. */
  unit: string;
  /** The options this scenario reads besides duration, workers and concurrency: what its result's config lists. */
  options: readonly ScenarioOption[];
}

const MESSAGES: readonly ScenarioOption[] = ['warmup', 'payload', 'drain'];

export const SCENARIOS: Record<ScenarioName, ScenarioSpec> = {
  pingpong: { role: 'closed-loop', echo: true, publish: undefined, clients: (o) => o.clients, unit: 'round trips', options: ['clients', ...MESSAGES] },
  throughput: { role: 'open-loop', echo: true, publish: undefined, clients: (o) => o.clients, unit: 'messages', options: ['clients', 'rate', ...MESSAGES] },
  fanout: { role: 'receive', echo: false, publish: 'room', clients: (o) => o.roomSize, unit: 'deliveries', options: ['roomSize', 'rate', ...MESSAGES] },
  broadcast: { role: 'receive', echo: false, publish: 'broadcast', clients: (o) => o.clients, unit: 'deliveries', options: ['clients', 'rate', ...MESSAGES] },
  connect: { role: 'idle', echo: false, publish: undefined, clients: (o) => o.connections, unit: 'connections', options: ['connections'] },
};

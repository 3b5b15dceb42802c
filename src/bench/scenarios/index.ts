import type { ClientRole } from '../ipc';
import type { BenchOptions, ScenarioName } from '../options';

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
}

export const SCENARIOS: Record<ScenarioName, ScenarioSpec> = {
  pingpong: { role: 'closed-loop', echo: true, publish: undefined, clients: (o) => o.clients, unit: 'round trips' },
  throughput: { role: 'open-loop', echo: true, publish: undefined, clients: (o) => o.clients, unit: 'messages' },
  fanout: { role: 'receive', echo: false, publish: 'room', clients: (o) => o.roomSize, unit: 'deliveries' },
  broadcast: { role: 'receive', echo: false, publish: 'broadcast', clients: (o) => o.clients, unit: 'deliveries' },
  connect: { role: 'idle', echo: false, publish: undefined, clients: (o) => o.connections, unit: 'connections' },
};

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

interface NatsServer {
  /** nats://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The port other servers route to, when started with routes. */
  routePort: number | undefined;
  child: ChildProcess;
  /** Kills the server (SIGKILL), as a crash would. */
  kill(): Promise<void>;
}

interface NatsOptions {
  /** Start with a route listener, joining the servers at these route URLs. */
  cluster?: { routes: string[] };
  /** The client port to take (to restart a server where it was); default a free one. */
  port?: number;
  /** max_payload in bytes (the server's default is 1 MiB). */
  maxPayload?: number;
}

/**
 * A real nats-server (Debian's package, installed by .ci/run) on 127.0.0.1 and
 * a free port, killed when the test ends. Resolves once it listens.
 */
export async function startNats(t: TestContext, options: NatsOptions = {}): Promise<NatsServer> {
  const args = ['-a', '127.0.0.1', '-p', String(options.port ?? -1)];
  if (options.cluster) args.push('--cluster_name', 'strands-test', '--cluster', 'nats://127.0.0.1:-1', ...(options.cluster.routes.length > 0 ? ['--routes', options.cluster.routes.join(',')] : []));
  if (options.maxPayload !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'strands-nats-'));
    const file = join(dir, 'nats.conf');
    writeFileSync(file, `max_payload: ${options.maxPayload}\n`);
    args.push('-c', file);
  }
  const child = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = once(child, 'exit');
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`cannot start nats-server (install it: apt-get install nats-server): ${err.message}`)));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      log += text;
      const client = /Listening for client connections on [^:]+:(\d+)/.exec(log);
      const ready = /Server is ready/.test(log) && (!options.cluster || /Listening for route connections/.test(log));
      if (client && ready) resolve(Number(client[1]));
    });
    void exited.then(() => reject(new Error(`nats-server exited: ${log}`)));
  });
  const route = /Listening for route connections on [^:]+:(\d+)/.exec(log);
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    routePort: route ? Number(route[1]) : undefined,
    child,
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

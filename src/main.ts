#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import type * as tls from 'node:tls';
import { Command, CommanderError, Option } from 'commander';
import { Broker } from './broker';
import { ConfigError, SETTINGS, flagUsage, resolveConfig, shownDefault } from './config';
import { createLogger } from './logger';
import { startEchoBackend } from './sdk/echo-backend';
import type { DemoFlags } from './demo/demo';
import { packageVersion } from './version';

/** Exit status for a bad flag or environment value, as for a usage error. */
const EXIT_USAGE = 2;

function fail(message: string, status = 1): never {
  process.stderr.write(`strands: ${message}\n`);
  process.exit(status);
}

/** `read()`, or exit 2 with its one-line message naming the bad setting. */
function checked<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, EXIT_USAGE);
    throw err;
  }
}

async function runBroker(flags: Record<string, string | undefined>): Promise<void> {
  const config = checked(() => resolveConfig(flags, process.env));
  const log = createLogger(config.logLevel);
  let broker: Broker | undefined;
  let signals = 0;
  // Installed before the ports open: a supervisor may signal as soon as it sees them.
  const stop = (signal: NodeJS.Signals): void => {
    if (++signals > 1 || broker === undefined) fail(`${signal} ${broker ? 'again' : 'before the broker started'}: exiting at once`);
    log.info({ signal, drainMs: config.drainTimeout }, 'shutting down');
    // The broker keeps its own deadlines; this one only guards against a stop that hangs anyway.
    setTimeout(() => process.exit(0), config.drainTimeout + config.shutdownTimeout + 1000).unref();
    // No exit once stopped: uWS keeps the process alive only until every close frame (queued behind a
    // client's backlog) is sent, then the event loop empties and the process exits 0 by itself.
    void broker.drain(config.drainTimeout);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    broker = new Broker(config, log);
    await broker.start();
  } catch (err) {
    fail((err as Error).message);
  }
}

function brokerOptions(): Option[] {
  return SETTINGS.map((s) => {
    const env = s.env.join(', ');
    return new Option(flagUsage(s), `${s.description} (default: ${shownDefault(s)}; env: ${env})`);
  });
}

/** Errors as `strands: ...` on stderr, and a CommanderError thrown instead of an exit (see the catch below). */
function asStrandsCommand(command: Command): Command {
  return command.exitOverride().configureOutput({ writeErr: (text) => process.stderr.write(text.startsWith('error: ') ? `strands: ${text.slice(7)}` : text) });
}

export function buildCli(): Command {
  const program = asStrandsCommand(
    new Command('strands')
      .description('strands: a real-time message broker between WebSocket clients and TCP backends (PyStrands-compatible)')
      .version(packageVersion())
      .enablePositionalOptions(),
  );
  for (const option of brokerOptions()) program.addOption(option);
  program.action(async (options: Record<string, string | true | undefined>) => {
    const flags: Record<string, string | undefined> = {};
    // Commander gives a switch that was given as `true`; the settings table reads text.
    for (const s of SETTINGS) {
      const value = options[camel(s.flag)];
      flags[s.flag] = value === true ? 'true' : value;
    }
    await runBroker(flags);
  });

  const echo = program
    .command('echo-backend')
    .description('run a backend that accepts every client and echoes each message back to its sender');
  for (const s of SETTINGS) {
    const about = ECHO_SETTINGS[s.flag];
    if (about) echo.addOption(new Option(flagUsage(s), `${about} (default: ${shownDefault(s)}; env: ${s.env.join(', ')})`));
  }
  echo
    .option('--backend-tls', "connect over TLS (a broker run with --backend-tls-cert), verifying its certificate against the system's CAs")
    .option('--backend-tls-ca <file>', "PEM CA certificate to verify the broker's certificate with instead (implies --backend-tls)")
    .addOption(new Option('--backend-tls-insecure', "TLS without verifying the broker's certificate (implies --backend-tls; for tests only)").conflicts('backendTlsCa'))
    .action(async (options: Record<string, string | boolean | undefined>) => {
      const { tcpHost: host, tcpPort: port, backendToken: token } = echoSettings(options);
      if (port === 0) fail('invalid value for --tcp-port: expected 1..65535, got 0', EXIT_USAGE);
      const log = createLogger('info', 'strands-echo');
      const backend = startEchoBackend({ host, port, token, tls: echoTls(options), logger: log });
      const stop = (): void => void backend.close().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  program
    .command('demo')
    .description('try strands: a broker, a chat backend written with the SDK and a chat page using the browser client, in one process; prints the URL to open')
    .option('--port <port>', 'HTTP port of the chat page (0 picks a free one)', '8000')
    .option('--ws-port <port>', "the broker's WebSocket port (0 picks a free one)", '0')
    .option('--tcp-port <port>', "the broker's backend port, on 127.0.0.1 (0 picks a free one)", '0')
    .option('--host <addr>', 'bind address of the page and the WebSocket port; 0.0.0.0 to open it from a phone on your network', '127.0.0.1')
    .action(async (options: DemoFlags) => {
      // Loaded only here: the broker itself never loads the demo or its page.
      const { demoSettings, runDemo } = await import('./demo/demo');
      await runDemo(checked(() => demoSettings(options)));
    });
  // A stand-in that hands its arguments to the real command: the harness is loaded only when it runs, never with the broker.
  program
    .command('bench')
    .description('measure a broker (or the bare uWebSockets.js baseline) under load; `strands bench --help` lists scenarios and options')
    .argument('[scenario-and-options...]')
    .helpOption(false)
    .allowUnknownOption()
    .passThroughOptions()
    .action(async (args: string[]) => {
      const { benchCommand } = await import('./bench/cli');
      await asStrandsCommand(benchCommand()).parseAsync(args, { from: 'user' });
    });
  return program;
}

/** The broker settings the echo backend shares (same names, environment variables and checks), with what each means here. */
const ECHO_SETTINGS: Record<string, string> = {
  'tcp-host': "the broker's backend host",
  'tcp-port': "the broker's backend port",
  'backend-token': "sent in an auth line first: the broker's --backend-token",
};

/** --tcp-host, --tcp-port and --backend-token read exactly as the broker reads them, from the flags or their environment variables. */
function echoSettings(options: Record<string, unknown>): { tcpHost: string; tcpPort: number; backendToken: string | undefined } {
  const flags: Record<string, string | undefined> = {};
  const env: NodeJS.ProcessEnv = {};
  for (const s of SETTINGS) {
    if (!(s.flag in ECHO_SETTINGS)) continue;
    flags[s.flag] = options[camel(s.flag)] as string | undefined;
    for (const name of s.env) env[name] = process.env[name];
  }
  return checked(() => resolveConfig(flags, env));
}

function echoTls(options: Record<string, unknown>): tls.ConnectionOptions | undefined {
  const caFile = options.backendTlsCa as string | undefined;
  if (caFile !== undefined) {
    try {
      return { ca: readFileSync(caFile) };
    } catch (err) {
      fail(`cannot read --backend-tls-ca ${caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (options.backendTlsInsecure === true) return { rejectUnauthorized: false };
  return options.backendTls === true ? {} : undefined;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Output piped into `head` and the like: a reader that goes away ends the command quietly, with the status it had. */
function exitQuietlyOnEpipe(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err;
  process.exit();
}

if (require.main === module) {
  process.stdout.on('error', exitQuietlyOnEpipe);
  process.stderr.on('error', exitQuietlyOnEpipe);
  buildCli()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
      fail(err instanceof Error ? err.message : String(err));
    });
}

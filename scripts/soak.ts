/**
 * Soak test: the real broker, in its own process, under steady
 * WebSocket load while backend processes are killed with SIGKILL and
 * restarted, a backend sends bad lines and clients send oversized frames.
 * It then checks that the broker survived, gave back its sockets and memory,
 * lost nothing silently and kept each client's order; prints a report and
 * exits 1 if any check failed.
 *
 *   node dist/scripts/soak.js [--seconds N | --minutes N]      (default 20 s)
 *
 * Accounting: every client message is `m:<client>:<seq>:<pad>`. Backends run
 * in child processes and report the local port of each connection (by which
 * the broker's log names the link as it joins and leaves) and each id they get
 * at once (one IPC batch per event-loop turn). A killed backend loses what the
 * broker had written to its socket and it had not reported: for each client,
 * the tail of what its link got, which is all it got when the link had just
 * taken the client over, or when the backend died before it could report the
 * link at all. With client affinity a client's messages move to another link
 * only when a link joins or leaves, so a run of missing seqs counts as in
 * flight to a lost link only if that link got nothing of the client from the
 * run on and left, or saw a link join, between the sending of the run's last
 * message and the report of the next one; and, unless it got the message just
 * before the run, a link joined or left after that one was sent and before
 * then. Any other gap is a silent loss.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { readProcSample } from '../src/bench/proc-stats';
import { parseHostPort } from '../src/bench/options';
import { StrandsBackend } from '../src/sdk/backend';
import { LineFramer } from '../src/protocol/line-framer';
import { newMessageLine, serializeContext } from '../src/protocol/serializers';

const MiB = 1024 * 1024;
const HOST = '127.0.0.1';
const ROOM = 'soak';
export const CLIENTS = 32;
const BACKENDS = 3;
const TICK_MS = 50;
/** Messages per open client per tick: 100/s each, about 3000/s in all. */
const BURST = 5;
const PAD = 'p'.repeat(96);
/** A client skips its burst while this much is unsent on its socket. */
const CLIENT_BUFFER_LIMIT = 256 * 1024;
/** The share of the load time with kills; the rest is the final phase, with none. */
const CHAOS_SHARE = 0.7;
const MAX_PAYLOAD = 64 * 1024;
const MAX_LINE = 64 * 1024;
/** The broker's default --backend-hwm: unsent bytes a backend link may hold. */
const BACKEND_HWM = 4 * MiB;
/** Allowance for ids a backend had received but not yet reported when killed. */
const UNREPORTED_BYTES = 4 * MiB;
const RSS_SLACK = 64 * MiB;
const SHUTDOWN_BOUND_MS = 7000;

const BROKER_ARGS = [
  '--host', HOST, '--ws-port', '0', '--tcp-port', '0', '--metrics-port', '0', '--queue-size', '100000',
  // info, not warn: the line that names the ports is logged at info.
  '--log-level', 'info', '--balance', 'client', '--max-payload', String(MAX_PAYLOAD), '--max-line', String(MAX_LINE),
];

/** One of each kind of line the router must skip, and the start of the error the backend gets back for each. */
const BAD_LINES = ['this is not json\n', '[1,2,3]\n', '{"request_id":"soak-bad","action":"no_such_action","params":{}}\n', `{"pad":"${'x'.repeat(MAX_LINE)}"}\n`];
const BAD_REPLY = /^(invalid JSON|a line must be a JSON object|unknown action|line of \d+ bytes exceeds --max-line)/;
const BAD_KINDS = ['invalid_json', 'not_an_object', 'unknown_action', 'oversized_line'];

export const CHECK_NAMES = [
  'broker alive',
  'connections back to baseline',
  'memory bounded',
  'nothing lost silently',
  'no duplicates or strays',
  'queue order held',
  'final phase delivered exactly',
  'links broke only when killed',
  'faults survived',
  'no error logs',
  'graceful shutdown',
] as const;

type CheckName = (typeof CHECK_NAMES)[number] | 'soak run';

interface Check {
  name: CheckName;
  ok: boolean;
  detail: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const between = (min: number, max: number): number => min + Math.random() * (max - min);
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/** Polls `test` until it holds or `timeoutMs` passed; true if it held. */
async function waitFor(timeoutMs: number, test: () => boolean | Promise<boolean>, everyMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await test()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}

function messageText(client: number, seq: number): string {
  return `m:${client}:${seq}:${PAD}`;
}

function messageId(text: string): [number, number] {
  const [, client, seq] = text.split(':', 3);
  return [Number(client), Number(seq)];
}

// --- The broker process ------------------------------------------------------

interface BrokerProcess {
  child: ChildProcess;
  pid: number;
  ws: number;
  tcp: number;
  metrics: number;
  exited: Promise<number | null>;
  /** Log lines at warn, and at error or above, with the first few of either. */
  logs: { warn: number; error: number; samples: string[] };
  /** Backend links joining and leaving, in the order the broker logged them. */
  linkEvents: LinkEvent[];
}

/** A backend link the broker logged as joining or leaving, at the log line's time (ms since the epoch; the ledger shifts it to its own). */
export interface LinkEvent {
  joined: boolean;
  port: number;
  at: number;
}

/** The broker's log messages for a backend link joining, and for one leaving. */
const LINK_JOINED = 'backend connected';
const LINK_LEFT = new Set(['backend disconnected', 'backend dropped after a socket error']);

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Starts `node dist/src/main.js` and reads its ports from the "listening" log line. */
function startBroker(): Promise<BrokerProcess> {
  const child = spawn(process.execPath, [join(__dirname, '..', 'src', 'main.js'), ...BROKER_ARGS], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // However the soak ends (a startup timeout, a signal, a crash), it leaves no broker behind on a shared machine.
  process.once('exit', () => child.kill('SIGKILL'));
  const logs = { warn: 0, error: 0, samples: [] as string[] };
  const linkEvents: LinkEvent[] = [];
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4096)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the broker did not report its ports within 10 s')), 10_000);
    void exited.then((code) => reject(new Error(`the broker exited with ${code} before listening: ${stderr.trim()}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let entry: { level?: number; time?: number; msg?: string; ws?: string; tcp?: string; metrics?: string; backend?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        entry = { level: 50, msg: line };
      }
      if (entry.msg === 'strands broker listening') {
        clearTimeout(timer);
        resolve({ child, pid: child.pid as number, ws: parseHostPort(String(entry.ws)).port, tcp: parseHostPort(String(entry.tcp)).port, metrics: parseHostPort(String(entry.metrics)).port, exited, logs, linkEvents });
        return;
      }
      if (entry.msg === LINK_JOINED || LINK_LEFT.has(entry.msg ?? '')) linkEvents.push({ joined: entry.msg === LINK_JOINED, port: parseHostPort(String(entry.backend)).port, at: entry.time ?? Number.NaN });
      if ((entry.level ?? 0) >= 40) {
        if ((entry.level ?? 0) >= 50) logs.error++;
        else logs.warn++;
        if (logs.samples.length < 5) logs.samples.push(line.slice(0, 300));
      }
    });
  });
}

/** The metrics endpoint as `name{labels}` -> value. */
async function scrape(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://${HOST}:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
  const values = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

const metric = (values: Map<string, number>, key: string): number => values.get(key) ?? 0;

/** Resident memory of a process; NaN once it is gone. */
function rssOf(pid: number): number {
  return procSample(pid)?.rssBytes ?? Number.NaN;
}

/** CPU time of a process so far, in µs; NaN once it is gone. */
function cpuOf(pid: number): number {
  return procSample(pid)?.cpuUs ?? Number.NaN;
}

function procSample(pid: number): ReturnType<typeof readProcSample> {
  try {
    return readProcSample(pid, 0);
  } catch {
    return undefined;
  }
}

/** `3x503, 1x429`-style counts, or none. */
function counts(tally: Map<number, number>): string {
  return [...tally].map(([key, n]) => `${n}x${key}`).join(', ') || 'none';
}

// --- The ledger: every message sent, and who received it ----------------------

/** One connection of one backend process to the broker, as the soak heard of it. */
interface Link {
  name: string;
  /** The backend process incarnation it belongs to. */
  owner: string;
  /** The backend saw the broker close it (not a kill of ours). */
  closedByBroker: boolean;
  /** Its local port, by which the broker's log names it; 0 until it connected. */
  port: number;
  /** When the soak heard that it connected, in ledger ms. */
  connectedAt: number;
  /** Highest seq received per client, for the order check. */
  lastSeq: Uint32Array;
  received: number;
}

/** A link's life in the broker: indexes into its log of link events. */
interface Life {
  port: number;
  joined: number;
  left: number | undefined;
}

/**
 * A link the broker had, on which missing messages can be placed: the ledger's
 * own (same index), then those whose backend was killed before it could report
 * them (no lastSeq: they reported nothing).
 */
interface Place {
  name: string;
  life: Life | undefined;
  lost: boolean;
  lastSeq: Uint32Array | undefined;
}

export interface Audit {
  inFlight: number;
  lostLinks: number;
  /** Of those, links whose backend was killed before it reported them. */
  unreportedLinks: number;
  maxPerLink: number;
  unexplained: number;
  unexplainedSample: string;
  /** Links that the soak's records and the broker's log do not match on. */
  problems: string[];
  finalSent: number;
  finalMissing: number;
}

/** Per seq of one client: 1 + the index of the link that received it (0 while none), when it was sent, when its receipt was reported. */
class ClientTrack {
  receivers: Uint32Array = new Uint32Array(1024);
  sentAt: Uint32Array = new Uint32Array(1024);
  reportedAt: Uint32Array = new Uint32Array(1024);

  /** Makes room for `seq`, one past the last. */
  reserve(seq: number): void {
    if (seq < this.receivers.length) return;
    const grow = (old: Uint32Array): Uint32Array => {
      const bigger = new Uint32Array(old.length * 2);
      bigger.set(old);
      return bigger;
    };
    this.receivers = grow(this.receivers);
    this.sentAt = grow(this.sentAt);
    this.reportedAt = grow(this.reportedAt);
  }
}

export class Ledger {
  readonly sent = new Uint32Array(CLIENTS);
  readonly links: Link[] = [];
  readonly killed = new Set<string>();
  received = 0;
  duplicates = 0;
  strays = 0;
  outOfOrder = 0;
  firstDisorder = '';
  /** Ledger times are ms since this. */
  private readonly epoch: number;
  private readonly tracks = Array.from({ length: CLIENTS }, () => new ClientTrack());
  /** When each backend process incarnation was started. */
  private readonly startedAt = new Map<string, number>();

  /** `clock` gives ms since the epoch, as the broker's log times do. */
  constructor(private readonly clock: () => number = Date.now) {
    this.epoch = clock();
  }

  private now(): number {
    return this.clock() - this.epoch;
  }

  /** A backend process incarnation was started. */
  backendStarted(owner: string): void {
    this.startedAt.set(owner, this.now());
  }

  addLink(owner: string, name: string): number {
    this.links.push({ name, owner, closedByBroker: false, port: 0, connectedAt: 0, lastSeq: new Uint32Array(CLIENTS), received: 0 });
    return this.links.length - 1;
  }

  /** The link's backend says it connected, from `port`. */
  connected(link: number, port: number): void {
    Object.assign(this.links[link] as Link, { port, connectedAt: this.now() });
  }

  /** The next seq of `client`, counted as sent. */
  send(client: number): number {
    const seq = ++(this.sent[client] as number);
    const track = this.tracks[client] as ClientTrack;
    track.reserve(seq);
    track.sentAt[seq] = this.now();
    return seq;
  }

  receive(link: number, client: number, seq: number): void {
    if (!(Number.isInteger(client) && client >= 0 && client < CLIENTS && Number.isInteger(seq) && seq >= 1 && seq <= (this.sent[client] as number))) {
      this.strays++;
      return;
    }
    const info = this.links[link] as Link;
    const last = info.lastSeq[client] as number;
    if (seq <= last) {
      this.outOfOrder++;
      this.firstDisorder ||= `${info.name} got c${client} #${seq} after #${last}`;
    } else {
      info.lastSeq[client] = seq;
    }
    const track = this.tracks[client] as ClientTrack;
    if (track.receivers[seq] !== 0) {
      this.duplicates++;
      return;
    }
    track.receivers[seq] = link + 1;
    track.reportedAt[seq] = this.now();
    info.received++;
    this.received++;
  }

  /** How many clients have had at least one message received. */
  clientsHeard(): number {
    return this.tracks.filter((track) => track.receivers.some((r) => r !== 0)).length;
  }

  /**
   * Sorts every missing message into in flight to a lost link (see lostTo) or
   * unexplained; and counts what is missing of the final phase, which starts
   * after seq `finalFrom[client]`. `events` is the broker's log of link events.
   */
  audit(finalFrom: Uint32Array, events: readonly LinkEvent[]): Audit {
    const audit: Audit = { inFlight: 0, lostLinks: 0, unreportedLinks: 0, maxPerLink: 0, unexplained: 0, unexplainedSample: '', problems: [], finalSent: 0, finalMissing: 0 };
    const log: LinkEvent[] = events.map((event) => ({ ...event, at: event.at - this.epoch }));
    const places = this.places(log, audit.problems);
    const perPlace = new Map<number, number>();
    for (let client = 0; client < CLIENTS; client++) {
      const { receivers } = this.tracks[client] as ClientTrack;
      const sent = this.sent[client] as number;
      const finalStart = finalFrom[client] as number;
      audit.finalSent += sent - finalStart;
      let seq = 1;
      while (seq <= sent) {
        if (receivers[seq] !== 0) {
          seq++;
          continue;
        }
        const from = seq;
        while (seq <= sent && receivers[seq] === 0) seq++;
        const missing = seq - from;
        audit.finalMissing += Math.max(0, seq - 1 - Math.max(from - 1, finalStart));
        const place = this.lostTo(places, log, client, from, seq - 1);
        if (place >= 0) {
          perPlace.set(place, (perPlace.get(place) ?? 0) + missing);
          audit.inFlight += missing;
        } else {
          audit.unexplained += missing;
          audit.unexplainedSample ||= `c${client} #${from}..#${seq - 1}, between ${this.describe(receivers[from - 1] as number)} and ${this.describe(seq <= sent ? (receivers[seq] as number) : 0)}`;
        }
      }
    }
    audit.lostLinks = perPlace.size;
    audit.unreportedLinks = [...perPlace.keys()].filter((place) => place >= this.links.length).length;
    audit.maxPerLink = Math.max(0, ...perPlace.values());
    return audit;
  }

  /**
   * Every link in the broker's log, with its life there: the ledger's own,
   * matched by port (the nearest join in time: ports are reused), then each of
   * the others matched to a distinct backend that was killed with no link it
   * had reported open, and started before that link joined. A link of the
   * ledger missing from the log, or of the log left over, is a problem.
   */
  private places(log: readonly LinkEvent[], problems: string[]): Place[] {
    const lives: Life[] = [];
    const open = new Map<number, Life>();
    log.forEach((event, order) => {
      const life = open.get(event.port);
      if (event.joined) {
        const joined: Life = { port: event.port, joined: order, left: undefined };
        lives.push(joined);
        open.set(event.port, joined);
      } else if (life) {
        life.left = order;
        open.delete(event.port);
      }
    });
    const unmatched = new Set(lives);
    const distance = (life: Life, link: Link): number => Math.abs((log[life.joined] as LinkEvent).at - link.connectedAt);
    const places: Place[] = this.links.map((link) => {
      let match: Life | undefined;
      for (const life of unmatched) if (life.port === link.port && (match === undefined || distance(life, link) < distance(match, link))) match = life;
      if (match) unmatched.delete(match);
      else if (link.port !== 0) problems.push(`${link.name} (port ${link.port}) is not in the broker's log`);
      return { name: link.name, life: match, lost: this.lost(link), lastSeq: link.lastSeq };
    });
    const silent = [...this.killed].filter((owner) => this.links.every((l) => l.owner !== owner || l.closedByBroker));
    // In join order: a backend started early enough for one link is for every later one.
    for (const life of unmatched) {
      const i = silent.findIndex((owner) => (this.startedAt.get(owner) as number) <= (log[life.joined] as LinkEvent).at);
      if (i < 0) {
        problems.push(`the link from port ${life.port} is no backend's the soak started`);
        continue;
      }
      places.push({ name: `${silent.splice(i, 1)[0] as string}/unreported`, life, lost: true, lastSeq: undefined });
    }
    return places;
  }

  /**
   * The place that #from..#to of `client`, all missing, were in flight to, or
   * -1. With client affinity a client's messages move to another link only
   * when a link joins or leaves. So the place must be a lost link that got
   * nothing of the client from #from on, and that left, or saw a link join,
   * between the sending of #to and the report of #to+1: the move that sent
   * #to+1 elsewhere. Unless it got #from-1 itself, a link must also have
   * joined or left after #from-1 was sent and before that move: the one that
   * brought the client's messages to lost links.
   */
  private lostTo(places: readonly Place[], log: readonly LinkEvent[], client: number, from: number, to: number): number {
    const { receivers, sentAt, reportedAt } = this.tracks[client] as ClientTrack;
    const lastSent = sentAt[to] as number;
    const nextReported = to < (this.sent[client] as number) ? (reportedAt[to + 1] as number) : Infinity;
    const inWindow = (order: number): boolean => (log[order] as LinkEvent).at >= lastSent && (log[order] as LinkEvent).at <= nextReported;
    const firstChange = log.findIndex((event) => event.at >= (sentAt[from - 1] as number));
    const before = (receivers[from - 1] as number) - 1;
    const fits = (index: number): boolean => {
      const place = places[index] as Place;
      const { life } = place;
      if (!place.lost || life?.left === undefined || (place.lastSeq?.[client] ?? 0) >= from) return false;
      let move = inWindow(life.left) ? life.left : -1;
      for (let order = life.left - 1; move < 0 && order > life.joined; order--) if ((log[order] as LinkEvent).joined && inWindow(order)) move = order;
      if (move < 0) return false;
      return from === 1 || index === before || (firstChange >= 0 && firstChange < move);
    };
    // Several links can fit when they died together: the one that got the message before the run is the likeliest.
    return before >= 0 && fits(before) ? before : places.findIndex((_, index) => fits(index));
  }

  /** A receiver as 1 + link index (0: none), for reports. */
  private describe(receiver: number): string {
    if (receiver === 0) return 'none';
    const info = this.links[receiver - 1] as Link;
    return `${info.name}${this.lost(info) ? ' (lost)' : ''}`;
  }

  /** Killed, or closed by the broker: what it had not reported may be gone. */
  private lost(link: Link): boolean {
    return link.closedByBroker || this.killed.has(link.owner);
  }
}

// --- Backends: child processes running the SDK --------------------------------

type FromBackend = { t: 'connect'; link: number; port: number } | { t: 'disconnect'; link: number } | { t: 'got'; link: number; ids: number[] };

/** The child side: accepts every client, reports each connection's local port and each message id, acks it to its sender. */
function runBackend(tcpPort: number): void {
  const report = (message: FromBackend): void => void process.send?.(message);
  // The SDK's socket, seen as Node creates it: its local port names the link in the broker's log.
  let socket: Socket | undefined;
  subscribe('net.client.socket', (message) => (socket = (message as { socket: Socket }).socket));
  let link = 0;
  let ids: number[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (ids.length === 0) return;
    report({ t: 'got', link, ids });
    ids = [];
  };
  const backend = new StrandsBackend({ host: HOST, port: tcpPort, minBackoffMs: 20, maxBackoffMs: 200 })
    .onConnectionRequest((req) => ({ accepted: true, client_id: req.queryParam('client_id'), room_id: ROOM }))
    .onMessage((message, ctx) => {
      const [client, seq] = messageId(message);
      ids.push(client, seq);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      backend.sendToConnection(ctx.client_id, String(seq));
    });
  backend.on('connect', () => report({ t: 'connect', link: ++link, port: socket?.localPort ?? 0 }));
  backend.on('disconnect', () => {
    flush();
    report({ t: 'disconnect', link });
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => void backend.close().then(() => process.exit(0)));
  void backend.connect();
}

interface Slot {
  child: ChildProcess | undefined;
  name: string;
  incarnation: number;
  connected: boolean;
  restart: NodeJS.Timeout | undefined;
}

class Backends {
  kills = 0;
  /** Kills that left no backend at all. */
  blackouts = 0;
  disconnectsByBroker = 0;
  private readonly slots: Slot[] = Array.from({ length: BACKENDS }, () => ({ child: undefined, name: '', incarnation: 0, connected: false, restart: undefined }));

  constructor(
    private readonly tcpPort: number,
    private readonly ledger: Ledger,
  ) {}

  start(index: number): void {
    const slot = this.slots[index] as Slot;
    const name = `b${index}.${++slot.incarnation}`;
    const child = fork(__filename, ['backend', String(this.tcpPort)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    Object.assign(slot, { child, name, connected: false, restart: undefined });
    this.ledger.backendStarted(name);
    const links = new Map<number, number>();
    child.on('message', (message: FromBackend) => {
      if (message.t === 'got') {
        const link = links.get(message.link) as number;
        for (let i = 0; i < message.ids.length; i += 2) this.ledger.receive(link, message.ids[i] as number, message.ids[i + 1] as number);
      } else if (message.t === 'connect') {
        const link = this.ledger.addLink(name, `${name}/${message.link}`);
        this.ledger.connected(link, message.port);
        links.set(message.link, link);
        if (slot.child === child) slot.connected = true;
      } else {
        (this.ledger.links[links.get(message.link) as number] as Link).closedByBroker = true;
        this.disconnectsByBroker++;
        if (slot.child === child) slot.connected = false;
      }
    });
  }

  live(): number[] {
    return this.slots.flatMap((slot, index) => (slot.child ? [index] : []));
  }

  allConnected(): boolean {
    return this.slots.every((slot) => slot.connected);
  }

  /** SIGKILL, and a restart after `restartMs`. */
  kill(index: number, restartMs: number): void {
    const slot = this.slots[index] as Slot;
    slot.child?.kill('SIGKILL');
    this.ledger.killed.add(slot.name);
    slot.child = undefined;
    slot.connected = false;
    slot.restart = setTimeout(() => this.start(index), restartMs);
    this.kills++;
  }

  /** Starts at once every backend waiting for its restart. */
  reviveAll(): void {
    this.slots.forEach((slot, index) => {
      if (slot.child) return;
      clearTimeout(slot.restart);
      this.start(index);
    });
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot) => {
        clearTimeout(slot.restart);
        const child = slot.child;
        if (!child || !alive(child)) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        if (!(await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]))) child.kill('SIGKILL');
      }),
    );
  }
}

// --- Clients: paced senders that reconnect now and then -----------------------

class Clients {
  acks = 0;
  opened = 0;
  unexpectedCloses = 0;
  readonly refused = new Map<number, number>();
  private readonly sockets: (WebSocket | undefined)[] = new Array(CLIENTS).fill(undefined);
  private readonly closeAt = new Float64Array(CLIENTS);
  private readonly closing = new WeakSet<WebSocket>();
  private sending = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly ledger: Ledger,
  ) {}

  start(): void {
    for (let i = 0; i < CLIENTS; i++) this.connect(i);
    this.sending = true;
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stopSending(): void {
    this.sending = false;
  }

  /** Closes every client with 1000; resolves when all are closed (or after 5 s). */
  async closeAll(): Promise<boolean> {
    this.stopped = true;
    clearInterval(this.timer);
    for (const ws of this.sockets) {
      if (!ws) continue;
      this.closing.add(ws);
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      else ws.terminate();
    }
    return waitFor(5000, () => this.sockets.every((ws) => ws === undefined));
  }

  private connect(i: number): void {
    if (this.stopped) return;
    const ws = new WebSocket(`${this.url}/${ROOM}?client_id=c${i}`);
    this.sockets[i] = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      this.opened++;
      this.closeAt[i] = Date.now() + between(2000, 8000);
    });
    ws.on('message', () => this.acks++);
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      this.refused.set(status, (this.refused.get(status) ?? 0) + 1);
      res.resume();
      ws.terminate();
    });
    // A refused or reset connection; 'close' follows and decides what next.
    ws.on('error', () => undefined);
    ws.on('close', () => {
      this.sockets[i] = undefined;
      if (opened && !this.closing.has(ws)) this.unexpectedCloses++;
      setTimeout(() => this.connect(i), opened ? 0 : between(100, 300));
    });
  }

  private tick(): void {
    const now = Date.now();
    for (let i = 0; i < CLIENTS; i++) {
      const ws = this.sockets[i];
      if (!ws || ws.readyState !== WebSocket.OPEN || this.closing.has(ws)) continue;
      if (now >= (this.closeAt[i] as number)) {
        this.closing.add(ws);
        ws.close(1000);
      } else if (this.sending && ws.bufferedAmount < CLIENT_BUFFER_LIMIT) {
        for (let k = 0; k < BURST; k++) ws.send(messageText(i, this.ledger.send(i)));
      }
    }
  }
}

// --- Faults: a backend sending bad lines, clients sending oversized frames ----

class Faults {
  rounds = 0;
  badLines = 0;
  errorsBack = 0;
  oversized = 0;
  /** Close codes the oversized clients saw. */
  readonly oversizeCloses = new Map<number, number>();
  readonly problems: string[] = [];
  private paused = false;
  private stopped = false;
  private round: Promise<void> = Promise.resolve();
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly tcpPort: number,
    private readonly wsUrl: string,
    private readonly ledger: Ledger,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async pause(): Promise<void> {
    this.paused = true;
    await this.round;
  }

  resume(): void {
    this.paused = false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.paused) {
        this.round = Promise.all([this.badLineRound(), this.oversizeRound()]).then(() => undefined);
        await this.round;
      }
      await sleep(between(500, 1500));
    }
  }

  /**
   * Joins as a backend for a moment: sends BAD_LINES, waits for an error event
   * for each, takes (and records) whatever events the broker gives it, then
   * leaves with a clean half-close.
   */
  private badLineRound(): Promise<void> {
    const name = `fault.${++this.rounds}`;
    const link = this.ledger.addLink(name, name);
    const socket = connect(this.tcpPort, HOST);
    const stayUntil = Date.now() + between(200, 1500);
    let back = 0;
    const leave = (): void => {
      if (socket.writableEnded) return;
      socket.end();
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    const timer = setTimeout(() => {
      this.problems.push(`${name}: ${back} of ${BAD_LINES.length} error events within 5 s`);
      leave();
    }, 5000);
    const framer = new LineFramer(
      16 * MiB,
      (text) => {
        const line = JSON.parse(text) as { request_id: string; action: string; params: Record<string, string> };
        if (line.action === 'new_message') {
          this.ledger.receive(link, ...messageId(String(line.params.message)));
        } else if (line.action === 'connection_request' && !socket.writableEnded) {
          const client_id = new URLSearchParams(line.params.query).get('client_id') ?? undefined;
          socket.write(JSON.stringify({ request_id: line.request_id, action: 'response', params: { accepted: true, client_id, room_id: ROOM } }) + '\n');
        } else if (line.action === 'error' && BAD_REPLY.test(String(line.params.error)) && ++back === BAD_LINES.length) {
          this.errorsBack += back;
          clearTimeout(timer);
          setTimeout(leave, stayUntil - Date.now());
        }
      },
      (bytes) => this.problems.push(`${name}: the broker sent a line of ${bytes} bytes`),
    );
    socket.on('connect', () => {
      this.ledger.connected(link, socket.localPort ?? 0);
      socket.write(BAD_LINES.join(''));
      this.badLines += BAD_LINES.length;
    });
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', (err) => this.problems.push(`${name}: ${err.message}`));
    return new Promise((resolve) =>
      socket.on('close', () => {
        clearTimeout(timer);
        resolve();
      }),
    );
  }

  /** A client sending one frame over --max-payload must be closed: 1009, or 1006 (no close frame) where uWS forces it. */
  private oversizeRound(): Promise<void> {
    const ws = new WebSocket(`${this.wsUrl}/${ROOM}?client_id=fault-${this.rounds}`);
    let opened = false;
    const timer = setTimeout(() => {
      this.problems.push('an oversized frame left its client open for 5 s');
      ws.terminate();
    }, 5000);
    ws.on('open', () => {
      opened = true;
      this.oversized++;
      ws.send('x'.repeat(MAX_PAYLOAD + 1));
    });
    // Refused (no backend just then): the next round tries again.
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => undefined);
    return new Promise((resolve) =>
      ws.on('close', (code) => {
        clearTimeout(timer);
        if (opened) this.oversizeCloses.set(code, (this.oversizeCloses.get(code) ?? 0) + 1);
        if (opened && code !== 1009 && code !== 1006) this.problems.push(`an oversized frame closed its client with ${code}`);
        resolve();
      }),
    );
  }
}

// --- The run -------------------------------------------------------------------

/** Messages a killed link can take with it: its unsent bytes, both kernel socket buffers, and unreported ids. */
function inFlightBound(): number {
  const max = (file: string, fallback: number): number => {
    try {
      return Number(readFileSync(file, 'utf8').trim().split(/\s+/)[2]) || fallback;
    } catch {
      return fallback;
    }
  };
  const bytes = BACKEND_HWM + max('/proc/sys/net/ipv4/tcp_wmem', 4 * MiB) + max('/proc/sys/net/ipv4/tcp_rmem', 6 * MiB) + UNREPORTED_BYTES;
  const shortestLine = Buffer.byteLength(newMessageLine(messageText(0, 1), serializeContext({ client_id: 'c0', room_id: ROOM, metadata: {} })));
  return Math.floor(bytes / shortestLine);
}

interface Outcome {
  checks: Check[];
  lines: string[];
}

async function soak(seconds: number): Promise<Outcome> {
  const lines: string[] = [];
  const checks: Check[] = [];
  const check = (name: CheckName, ok: boolean, detail: string): void => void checks.push({ name, ok, detail });
  const broker = await startBroker();
  const ledger = new Ledger();
  const backends = new Backends(broker.tcp, ledger);
  const wsUrl = `ws://${HOST}:${broker.ws}`;
  const clients = new Clients(wsUrl, ledger);
  const faults = new Faults(broker.tcp, wsUrl, ledger);
  const metrics = (): Promise<Map<string, number>> => scrape(broker.metrics);
  const backendsSettled = async (): Promise<boolean> => backends.allConnected() && metric(await metrics(), 'strands_backends_connected') === BACKENDS;
  let sampler: NodeJS.Timeout | undefined;
  lines.push(`strands soak: ${seconds} s of load, ${CLIENTS} clients, ${BACKENDS} backends (--balance client), broker pid ${broker.pid} (ws ${broker.ws}, tcp ${broker.tcp}, metrics ${broker.metrics})`);
  try {
    for (let i = 0; i < BACKENDS; i++) backends.start(i);
    if (!(await waitFor(10_000, backendsSettled))) throw new Error('the backends did not all connect within 10 s');
    const rssBaseline = rssOf(broker.pid);
    const cpuBaseline = cpuOf(broker.pid);
    let rssPeak = rssBaseline;
    const t0 = Date.now();
    const loadEnd = t0 + seconds * 1000;
    let ticks = 0;
    sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssOf(broker.pid));
      if (++ticks % 10 === 0) console.log(`  t+${ticks}s: sent ${ledger.sent.reduce((a, b) => a + b, 0)}, received ${ledger.received}, kills ${backends.kills}, broker RSS ${mib(rssOf(broker.pid))}`);
    }, 1000);

    clients.start();
    if (!(await waitFor(10_000, () => ledger.clientsHeard() === CLIENTS))) throw new Error(`warm-up: only ${ledger.clientsHeard()} of ${CLIENTS} clients reached a backend within 10 s`);
    const warmUp = Date.now() - t0;
    faults.start();

    const chaosEnd = t0 + CHAOS_SHARE * seconds * 1000;
    while (Date.now() < chaosEnd && alive(broker.child)) {
      await sleep(Math.min(between(400, 1500), chaosEnd - Date.now()));
      const live = backends.live();
      if (Date.now() >= chaosEnd || live.length === 0) continue;
      const victims = Math.random() < 0.2 ? live : [live[Math.floor(Math.random() * live.length)] as number];
      if (victims.length === live.length) backends.blackouts++;
      for (const victim of victims) backends.kill(victim, between(100, 1000));
    }

    // The final phase starts once every backend is back and the broker has let go of the killed ones.
    const settleStart = Date.now();
    await faults.pause();
    backends.reviveAll();
    if (!(await waitFor(15_000, backendsSettled))) throw new Error('after the last kill the backends did not all reconnect within 15 s');
    const finalFrom = ledger.sent.slice();
    const finalStart = Date.now();
    faults.resume();
    await sleep(loadEnd - Date.now());
    clients.stopSending();
    await faults.stop();
    const loadStop = Date.now();

    let last = -1;
    const drained = await waitFor(
      30_000,
      async () => {
        const stable = ledger.received === last;
        last = ledger.received;
        return stable && metric(await metrics(), 'strands_queue_depth') === 0;
      },
      1000,
    );
    const atEnd = await metrics();
    const audit = ledger.audit(finalFrom, broker.linkEvents);
    const allClosed = await clients.closeAll();
    let afterClose = await metrics();
    await waitFor(5000, async () => metric((afterClose = await metrics()), 'strands_connections_open') === 0);
    clearInterval(sampler);
    const rssAfter = rssOf(broker.pid);
    const cpuAfter = cpuOf(broker.pid);
    const healthz = await fetch(`http://${HOST}:${broker.metrics}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);

    const sent = ledger.sent.reduce((a, b) => a + b, 0);
    const queued = metric(atEnd, 'strands_queue_depth');
    const dropped = metric(atEnd, 'strands_queue_dropped_total');
    const brokerIn = metric(atEnd, 'strands_messages_in_total{action="new_message"}');
    const opened = metric(afterClose, 'strands_connections_opened_total');
    const closed = [...afterClose].reduce((sum, [key, n]) => (key.startsWith('strands_connections_closed_total{') ? sum + n : sum), 0);
    const bound = inFlightBound();
    const faultReceived = ledger.links.filter((l) => l.owner.startsWith('fault')).reduce((sum, l) => sum + l.received, 0);
    lines.push(
      `  phases: warm-up ${(warmUp / 1000).toFixed(1)} s; chaos until ${((chaosEnd - t0) / 1000).toFixed(1)} s: ${backends.kills} kills (${backends.blackouts} left no backend); settle ${((finalStart - settleStart) / 1000).toFixed(1)} s; final phase ${((loadStop - finalStart) / 1000).toFixed(1)} s without kills; drained ${drained ? 'yes' : 'NO'}`,
      `  traffic: ${sent} messages sent, ${ledger.received} received by backends over ${ledger.links.length} links, ${clients.acks} acks back to clients; ${clients.opened} client connections, upgrades refused: ${counts(clients.refused)}, clients closed by the broker: ${clients.unexpectedCloses}`,
      `  faults: ${faults.rounds} bad-line backends (${faults.badLines} bad lines, ${faults.errorsBack} error events back, ${faultReceived} client messages taken), ${faults.oversized} oversized frames (closed: ${counts(faults.oversizeCloses)})`,
      `  broker: CPU ${((cpuAfter - cpuBaseline) / 1e6).toFixed(1)} s over the run; logs: ${broker.logs.warn} warn, ${broker.logs.error} error or worse${broker.logs.samples.map((l) => `\n    ${l}`).join('')}`,
    );

    check('broker alive', alive(broker.child) && healthz === 200, `pid ${broker.pid} ${alive(broker.child) ? 'running' : 'gone'}, /healthz ${healthz}`);
    check(
      'connections back to baseline',
      allClosed && metric(afterClose, 'strands_connections_open') === 0 && opened === closed && clients.unexpectedCloses === 0,
      `strands_connections_open ${metric(afterClose, 'strands_connections_open')} after all clients closed (baseline 0); ${opened} opened, ${closed} closed; ${clients.unexpectedCloses} closed by the broker`,
    );
    check('memory bounded', rssAfter < rssBaseline + RSS_SLACK, `RSS baseline ${mib(rssBaseline)}, peak ${mib(rssPeak)}, after load ${mib(rssAfter)} (bound ${mib(rssBaseline + RSS_SLACK)})`);
    check(
      'nothing lost silently',
      brokerIn === sent && audit.unexplained <= queued + dropped && audit.maxPerLink <= bound && audit.problems.length === 0,
      `sent ${sent} == received ${ledger.received} + queued ${queued} + dropped ${dropped} + in flight to killed backends ${audit.inFlight}` +
        (audit.unexplained > 0 ? ` + UNEXPLAINED ${audit.unexplained} (first: ${audit.unexplainedSample})` : '') +
        `; in flight: ${audit.lostLinks} lost links (${audit.unreportedLinks} never reported: their backend was killed while connecting), at most ${audit.maxPerLink} each (bound ${bound}); broker counted ${brokerIn} client messages in` +
        (audit.problems.length > 0 ? `; LINKS NOT ACCOUNTED FOR: ${audit.problems.slice(0, 3).join('; ')}` : ''),
    );
    check('no duplicates or strays', ledger.duplicates === 0 && ledger.strays === 0, `${ledger.duplicates} duplicates, ${ledger.strays} ids never sent`);
    check('queue order held', ledger.outOfOrder === 0, ledger.outOfOrder === 0 ? `each client's messages reached each backend link in send order (${ledger.links.length} links)` : `${ledger.outOfOrder} out of order; first: ${ledger.firstDisorder}`);
    check('final phase delivered exactly', audit.finalSent > 0 && audit.finalMissing === 0, `${audit.finalSent} messages sent after the last kill settled, ${audit.finalMissing} missing`);
    const dropsByBroker = metric(atEnd, 'strands_backends_dropped_total');
    check('links broke only when killed', backends.disconnectsByBroker <= dropsByBroker, `${backends.disconnectsByBroker} backend links closed by the broker, strands_backends_dropped_total ${dropsByBroker}`);
    const errorKinds = BAD_KINDS.map((kind) => metric(atEnd, `strands_errors_total{kind="${kind}"}`));
    check(
      'faults survived',
      faults.problems.length === 0 && faults.badLines > 0 && faults.errorsBack === faults.badLines && errorKinds.every((n) => n * BAD_LINES.length === faults.badLines) && faults.oversized > 0,
      `strands_errors_total ${BAD_KINDS.map((kind, i) => `${kind}=${errorKinds[i]}`).join(' ')} for ${faults.badLines / BAD_LINES.length} rounds of bad lines; ${faults.oversized} oversized frames, each client closed` +
        (faults.problems.length > 0 ? `; problems: ${faults.problems.slice(0, 3).join('; ')}` : ''),
    );
    check('no error logs', broker.logs.error === 0, broker.logs.error === 0 ? `${broker.logs.warn} warn lines, none at error or above` : broker.logs.samples.join(' | '));

    const stopStart = Date.now();
    broker.child.kill('SIGTERM');
    const code = await Promise.race([broker.exited, sleep(SHUTDOWN_BOUND_MS).then(() => 'timeout' as const)]);
    check('graceful shutdown', code === 0, `SIGTERM: exit ${code} after ${Date.now() - stopStart} ms (bound ${SHUTDOWN_BOUND_MS} ms)`);
  } catch (err) {
    check('soak run', false, (err as Error).message);
    check('broker alive', alive(broker.child), `pid ${broker.pid} ${alive(broker.child) ? 'running' : `exited ${broker.child.exitCode ?? broker.child.signalCode}`}`);
  } finally {
    clearInterval(sampler);
    await clients.closeAll();
    await faults.stop();
    await backends.stop();
    if (alive(broker.child)) broker.child.kill('SIGKILL');
  }
  return { checks, lines };
}

function parseSeconds(argv: string[]): number {
  let seconds = 20;
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--seconds') seconds = value;
    else if (argv[i] === '--minutes') seconds = value * 60;
    else seconds = Number.NaN;
  }
  if (!(seconds >= 5 && seconds <= 24 * 3600)) {
    process.stderr.write('usage: node dist/scripts/soak.js [--seconds N | --minutes N]   (5 s to 24 h; default 20 s)\n');
    process.exit(2);
  }
  return seconds;
}

async function main(): Promise<void> {
  const { checks, lines } = await soak(parseSeconds(process.argv.slice(2)));
  const failed = checks.filter((c) => !c.ok).length;
  console.log([...lines, 'checks:', ...checks.map((c) => `  ${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}`), `soak: ${failed === 0 ? 'PASS' : 'FAIL'} (${checks.length - failed}/${checks.length} checks passed)`].join('\n'));
  process.exit(failed === 0 ? 0 : 1);
}

if (require.main === module) {
  if (process.argv[2] === 'backend') runBackend(Number(process.argv[3]));
  else {
    // A signal (the test runner's timeout, Ctrl-C) exits through 'exit', which stops the broker.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(1));
    main().catch((err: unknown) => {
      console.error('soak: FAIL', err);
      process.exit(1);
    });
  }
}

import WebSocket from 'ws';
import { nowUs, sleepUntil } from './clock';
import { ErrorTally } from './error-tally';
import { createHistogram, encodeHistogram, type Histogram } from './histogram';
import type { ClientRole, FromWorker, ToWorker } from './ipc';
import { OpenLoop } from './open-loop';
import { PayloadWriter, readSendTime } from './payload';
import { CLIENT_ID_HEADER, clientId } from './wire';

/**
 * A client worker: a child process of the harness that holds a share of the
 * WebSocket clients, so that generating load is spread over processes and the
 * harness's own event loop stays free. Driven over IPC (see ipc.ts).
 */

const TEXT = { binary: false };
const TICK_MS = 1000;

interface Client {
  readonly ws: WebSocket;
  /** The index of the URL it connected to: its node. */
  readonly node: number;
  open: boolean;
  /** Its first failure was counted; later events of the same socket are not. */
  failed: boolean;
}

class Worker {
  private readonly clients: Client[] = [];
  private readonly errors = new ErrorTally();
  private sent = 0;
  private received = 0;
  private openCount = 0;
  private closing = false;

  private role: ClientRole = 'idle';
  private writer: PayloadWriter | undefined;
  private seq = 0;
  private nextClient = 0;
  private openLoop: OpenLoop | undefined;
  private measureStartUs = Infinity;
  private measureEndUs = -Infinity;
  private measuredSent = 0;
  /** Per URL (node), set up when the clients are opened. */
  private measured: number[] = [];
  private latency: Histogram[] = [];
  private perSecond: number[] = [];
  private clientsAtGo = 0;
  private cpuMark: NodeJS.CpuUsage | undefined;
  private cpuWindowUs: number | undefined;
  /** Messages to receive before the result is sent; known once draining starts. */
  private expected = Infinity;
  private finished = false;
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly ticker = setInterval(() => this.post({ type: 'tick', sent: this.sent, received: this.received, errors: this.errors.count, open: this.openCount }), TICK_MS);

  handle(msg: ToWorker): void {
    switch (msg.type) {
      case 'open':
        void this.open(msg);
        return;
      case 'go':
        this.go(msg);
        return;
      case 'drain':
        void this.drain(msg.perClient, msg.graceMs);
        return;
      case 'close':
        this.close();
        return;
    }
  }

  private async open(msg: Extract<ToWorker, { type: 'open' }>): Promise<void> {
    const cpuStart = process.cpuUsage();
    const handshakes = msg.urls.map(() => createHistogram());
    const ok = msg.urls.map(() => 0);
    this.measured = msg.urls.map(() => 0);
    this.latency = msg.urls.map(() => createHistogram());
    const perSecond: number[] = [];
    let firstStartUs = Infinity;
    let lastOpenUs = 0;
    const openOne = (index: number): Promise<void> =>
      new Promise((resolve) => {
        const id = clientId(msg.runId, index);
        const node = index % msg.urls.length;
        const url = new URL(msg.urls[node]!);
        url.searchParams.set('client_id', id);
        const startedUs = nowUs();
        firstStartUs = Math.min(firstStartUs, startedUs);
        const ws = new WebSocket(url, { headers: { [CLIENT_ID_HEADER]: id }, perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 10_000 });
        const client: Client = { ws, node, open: false, failed: false };
        const fail = (reason: string): void => {
          if (!client.open) resolve();
          if (client.failed || this.closing) return;
          client.failed = true;
          this.errors.add(reason);
        };
        ws.once('open', () => {
          const openedUs = nowUs();
          client.open = true;
          this.openCount++;
          this.clients.push(client);
          ok[node]!++;
          handshakes[node]!.recordValue(Math.floor(openedUs - startedUs));
          lastOpenUs = Math.max(lastOpenUs, openedUs);
          const s = Math.floor((openedUs - msg.baseUs) / 1e6);
          while (perSecond.length <= s) perSecond.push(0);
          perSecond[s] = (perSecond[s] ?? 0) + 1;
          resolve();
        });
        ws.on('message', (data) => this.onMessage(client, data as Buffer));
        ws.on('unexpected-response', (_req, res) => {
          fail(`upgrade answered with HTTP ${res.statusCode ?? '?'}`);
          res.resume();
          ws.terminate();
        });
        ws.on('error', (err) => fail(err.message));
        ws.on('close', (code) => {
          if (client.open) this.openCount--;
          fail(client.open ? `socket closed unexpectedly (${code})` : 'socket closed during the handshake');
          client.open = false;
        });
      });
    let next = msg.first;
    const end = msg.first + msg.count;
    const lane = async (): Promise<void> => {
      while (next < end) await openOne(next++);
    };
    await Promise.all(Array.from({ length: Math.min(msg.concurrency, msg.count) }, lane));
    const cpu = process.cpuUsage(cpuStart);
    this.post({
      type: 'opened',
      ok,
      handshakes: handshakes.map(encodeHistogram),
      firstStartUs,
      lastOpenUs,
      perSecond,
      cpuUs: cpu.user + cpu.system,
      errorSamples: this.errors.samples,
    });
  }

  private go(msg: Extract<ToWorker, { type: 'go' }>): void {
    this.role = msg.role;
    this.writer = new PayloadWriter(msg.payload);
    this.measureStartUs = msg.measureStartUs;
    this.measureEndUs = msg.measureEndUs;
    this.perSecond = new Array<number>(Math.ceil((msg.measureEndUs - msg.measureStartUs) / 1e6)).fill(0);
    this.clientsAtGo = this.openCount;
    void sleepUntil(msg.measureStartUs).then(() => (this.cpuMark = process.cpuUsage()));
    void sleepUntil(msg.measureEndUs).then(() => this.closeCpuWindow());
    if (msg.role === 'closed-loop') {
      void sleepUntil(msg.startUs).then(() => {
        for (const client of this.clients) this.send(client, Math.floor(nowUs()));
      });
    } else if (msg.role === 'open-loop' && this.clients.length > 0) {
      this.openLoop = new OpenLoop(msg.rate, msg.startUs, msg.measureEndUs, (intendedUs) => {
        this.send(this.clients[this.nextClient++ % this.clients.length]!, intendedUs);
      });
    }
  }

  /** `sendUs` is whole, so that the window test here and the receiver's agree. */
  private send(client: Client, sendUs: number): void {
    if (!client.open) return;
    client.ws.send(this.writer!.write(this.seq++, sendUs), TEXT);
    this.sent++;
    if (sendUs >= this.measureStartUs && sendUs < this.measureEndUs) this.measuredSent++;
  }

  private onMessage(client: Client, data: Buffer): void {
    const now = nowUs();
    this.received++;
    const sentUs = readSendTime(data);
    if (sentUs < 0) {
      this.errors.add('a message without a bench header');
      return;
    }
    if (sentUs >= this.measureStartUs && sentUs < this.measureEndUs) {
      this.latency[client.node]!.recordValue(Math.max(0, Math.floor(now - sentUs)));
      this.measured[client.node]!++;
      const s = Math.floor((sentUs - this.measureStartUs) / 1e6);
      this.perSecond[s] = (this.perSecond[s] ?? 0) + 1;
    }
    if (this.role === 'closed-loop' && now < this.measureEndUs) this.send(client, Math.floor(now));
    if (this.received >= this.expected) this.finish();
  }

  private async drain(perClient: number | undefined, graceMs: number): Promise<void> {
    // Sends are final once the window is over and the generator is done; only then is the count of expected echoes known.
    await sleepUntil(this.measureEndUs);
    await this.openLoop?.done;
    this.closeCpuWindow();
    this.expected = perClient === undefined ? this.sent : perClient * this.clientsAtGo;
    if (this.received >= this.expected) this.finish();
    else this.drainTimer = setTimeout(() => this.finish(), graceMs);
  }

  /** Runs once, at the end of the window or at the drain, whichever comes first. */
  private closeCpuWindow(): void {
    if (this.cpuWindowUs !== undefined) return;
    const cpu = process.cpuUsage(this.cpuMark);
    this.cpuWindowUs = cpu.user + cpu.system;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const lost = Math.max(0, this.expected - this.received);
    clearTimeout(this.drainTimer);
    this.post({
      type: 'result',
      measuredSent: this.measuredSent,
      measured: this.measured,
      latency: this.latency.map(encodeHistogram),
      perSecond: this.perSecond,
      lost,
      errors: this.errors.count,
      cpuUs: this.cpuWindowUs ?? 0,
      errorSamples: this.errors.samples,
    });
  }

  private close(): void {
    this.closing = true;
    clearInterval(this.ticker);
    this.openLoop?.stop();
    for (const client of this.clients) client.ws.terminate();
    process.exit(0);
  }

  private post(msg: FromWorker): void {
    process.send?.(msg);
  }
}

if (require.main === module) {
  const worker = new Worker();
  process.on('message', (msg: ToWorker) => worker.handle(msg));
  // The harness is gone: nobody will read the results.
  process.on('disconnect', () => process.exit(0));
}

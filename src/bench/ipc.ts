/** Messages between the harness and its client workers (child_process IPC, JSON). Times are µs since the epoch. */

/** What a worker's clients do once the run starts. */
export type ClientRole = 'closed-loop' | 'open-loop' | 'receive' | 'idle';

export type ToWorker =
  | {
      type: 'open';
      /** Client `index` connects to urls[index % urls.length]: spread round-robin over a cluster's nodes. */
      urls: string[];
      /** Client ids are `<runId>-<index>` for index in [first, first + count). */
      runId: string;
      first: number;
      count: number;
      concurrency: number;
      /** Origin of the per-second connection counts. */
      baseUs: number;
    }
  | {
      type: 'go';
      role: ClientRole;
      payload: number;
      /** This worker's share of the open-loop rate, msgs/s. */
      rate: number;
      startUs: number;
      measureStartUs: number;
      measureEndUs: number;
    }
  /** Finish once every expected message arrived or after graceMs. `perClient`: deliveries each client should have had (receivers); omitted, each sent message expects its echo. */
  | { type: 'drain'; perClient?: number; graceMs: number }
  | { type: 'close' };

export interface Counters {
  sent: number;
  received: number;
  errors: number;
  open: number;
}

export interface OpenedReport {
  type: 'opened';
  /** Clients opened, per URL. */
  ok: number[];
  /** Handshake latency per URL, encoded histograms. */
  handshakes: string[];
  firstStartUs: number;
  lastOpenUs: number;
  /** Connections opened in each second since baseUs. */
  perSecond: number[];
  cpuUs: number;
  errorSamples: string[];
}

export interface ResultReport {
  type: 'result';
  /** Sends whose intended time fell in the measured window. */
  measuredSent: number;
  /** Receipts of such messages per URL the receiving client connected to; their latencies are in `latency`. */
  measured: number[];
  /** Latency per URL, encoded histograms. */
  latency: string[];
  /** Measured receipts per second of the window, by send time. */
  perSecond: number[];
  lost: number;
  errors: number;
  /** This worker's CPU time during the measured window. */
  cpuUs: number;
  errorSamples: string[];
}

export type FromWorker = ({ type: 'tick' } & Counters) | OpenedReport | ResultReport;

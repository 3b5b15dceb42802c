import { nowUs } from './clock';

/**
 * Calls `emit(intendedUs)` `rate` times a second from startUs until endUs;
 * intended times are whole µs, as the payload carries them.
 * When the event loop runs late, overdue events go out at once, each with its
 * original intended time: latency measured from that time includes the stall,
 * which is the correction for coordinated omission.
 */
export class OpenLoop {
  readonly done: Promise<void>;
  private emitted = 0;
  private readonly total: number;
  private readonly intervalUs: number;
  private timer: NodeJS.Timeout | undefined;
  private finish!: () => void;

  constructor(
    rate: number,
    private readonly startUs: number,
    endUs: number,
    private readonly emit: (intendedUs: number) => void,
  ) {
    this.intervalUs = 1e6 / rate;
    this.total = Math.max(0, Math.ceil((endUs - startUs) / this.intervalUs));
    this.done = new Promise((resolve) => (this.finish = resolve));
    this.schedule();
  }

  /** Events emitted so far. */
  get count(): number {
    return this.emitted;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.finish();
  }

  private schedule(): void {
    if (this.emitted >= this.total) {
      this.finish();
      return;
    }
    const nextUs = this.startUs + this.emitted * this.intervalUs;
    this.timer = setTimeout(this.tick, (nextUs - nowUs()) / 1000);
  }

  private readonly tick = (): void => {
    const due = Math.min(this.total, Math.floor((nowUs() - this.startUs) / this.intervalUs) + 1);
    while (this.emitted < due) this.emit(Math.floor(this.startUs + this.emitted++ * this.intervalUs));
    this.schedule();
  };
}

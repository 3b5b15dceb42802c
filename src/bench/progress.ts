import { formatNumber } from './format';

const TICK_MS = 1000;

/** Calls `report(line(elapsedS))` once a second; returns the function that stops it. */
export function everySecond(report: (line: string) => void, line: (elapsedS: number) => string): () => void {
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    report(line((now - last) / 1000));
    last = now;
  }, TICK_MS);
  return () => clearInterval(timer);
}

/** Per-second rate of a growing counter, between calls. */
export function rateOf(read: () => number): (elapsedS: number) => string {
  let last = read();
  return (elapsedS) => {
    const now = read();
    const rate = elapsedS > 0 ? (now - last) / elapsedS : 0;
    last = now;
    return formatNumber(rate);
  };
}

/** A status line on stderr: rewritten in place on a terminal, one line per update otherwise. */
export class StatusLine {
  private shown = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  readonly update = (line: string): void => {
    if (this.stream.isTTY) {
      this.stream.write(`\r${line}\x1b[K`);
      this.shown = true;
    } else {
      this.stream.write(`${line}\n`);
    }
  };

  /** Ends an in-place line so that what follows starts on its own line. */
  end(): void {
    if (this.shown) this.stream.write('\n');
    this.shown = false;
  }
}

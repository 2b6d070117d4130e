/** Throughput and time left of a transfer, from the byte counts a progress answer gives over time. Pure: the caller passes the time. */

export interface RateSample {
  readonly atMs: number;
  readonly bytes: number;
}

/** Bytes per second over the last `windowMs` of samples (undefined until two samples span time). */
export class RateMeter {
  private samples: RateSample[] = [];

  constructor(private readonly windowMs = 5_000) {}

  add(atMs: number, bytes: number): void {
    const last = this.samples[this.samples.length - 1];
    // A count that goes back (a retried transfer) starts the window again.
    if (last && bytes < last.bytes) this.samples = [];
    this.samples.push({ atMs, bytes });
    while (this.samples.length > 2 && atMs - this.samples[1]!.atMs >= this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or undefined when not known yet. */
  bytesPerSecond(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.atMs <= first.atMs) return undefined;
    return ((last.bytes - first.bytes) * 1000) / (last.atMs - first.atMs);
  }

  /** Seconds until `total` at the current rate; undefined when the rate is unknown or zero. */
  secondsLeft(total: number): number | undefined {
    const rate = this.bytesPerSecond();
    const last = this.samples[this.samples.length - 1];
    if (rate === undefined || rate <= 0 || !last) return undefined;
    return Math.max(0, (total - last.bytes) / rate);
  }
}

/** Seconds for people: `7s`, `3m05s`, `1h02m`. */
export function etaText(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

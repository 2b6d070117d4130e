/** Small helpers shared by the benchmarks: scale, seeded randomness, timing, statistics, memory, tables. */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

export { yieldToLoop };

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** LIFEBOAT_BENCH_SCALE (default 1): multiplies data sizes and counts, for quick runs. */
export function benchScale(): number {
  const raw = process.env.LIFEBOAT_BENCH_SCALE;
  if (raw === undefined || raw.trim() === '') return 1;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0 || s > 10) throw new Error(`LIFEBOAT_BENCH_SCALE must be a number in (0, 10], not '${raw}'.`);
  return s;
}

/** A small, fast, seeded PRNG (mulberry32), so every configuration sees the same keys. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export const now = (): number => performance.now();

export interface Percentiles {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Percentiles (nearest rank) of samples, in the samples' unit. */
export function percentiles(samples: ArrayLike<number>): Percentiles {
  const a = Float64Array.from(samples).sort();
  const n = a.length;
  const at = (q: number): number => (n === 0 ? NaN : (a[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number));
  let sum = 0;
  for (const x of a) sum += x;
  return { count: n, mean: n ? sum / n : NaN, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: n ? (a[n - 1] as number) : NaN };
}

export function median(xs: readonly number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  const n = a.length;
  if (n === 0) return NaN;
  return n % 2 ? (a[(n - 1) / 2] as number) : ((a[n / 2 - 1] as number) + (a[n / 2] as number)) / 2;
}

/** fsyncs a file (the state library's own helper, so the baseline pays what Lifeboat pays). */
export { fsyncPath as fsyncFile } from '../src/state/files.ts';

/**
 * Flushes every dirty page of the system to disk (sync(1)), so that write-back left by one step is
 * not paid inside the next step's timing. Not timed itself.
 */
export function flushDirty(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

/** Summed over the machine's block devices (loop and ram devices left out): I/Os in flight and sectors written so far. */
function diskActivity(): { inFlight: number; written: number } | undefined {
  try {
    let inFlight = 0;
    let written = 0;
    for (const dev of readdirSync('/sys/block')) {
      if (/^(loop|ram|zram)/.test(dev)) continue;
      // Fields (Documentation/block/stat.rst): 7 sectors written, 9 I/Os in flight.
      const f = readFileSync(`/sys/block/${dev}/stat`, 'utf8').trim().split(/\s+/).map(Number);
      written += f[6] ?? 0;
      inFlight += f[8] ?? 0;
    }
    return { inFlight, written };
  } catch {
    return undefined;
  }
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/**
 * Waits until the disks have been quiet for `quietMs` (nothing in flight, no sector written), at most
 * `timeoutMs`; returns what it saw. `sync` returns once the guest's dirty pages are handed over, but a
 * virtual disk can go on writing for seconds after a large step (a deleted repository, an extracted
 * archive), and whichever step is timed next would pay for it.
 */
export function waitForQuietDisk(quietMs = 1000, timeoutMs = 30_000): string {
  const start = performance.now();
  let last = diskActivity();
  if (!last) return 'disk activity not readable (/sys/block)';
  let quietSince = start;
  for (;;) {
    sleepSync(100);
    const t = performance.now();
    const cur = diskActivity();
    if (!cur) return 'disk activity not readable (/sys/block)';
    if (cur.inFlight > 0 || cur.written !== last.written) quietSince = t;
    const writtenMiB = ((cur.written - last.written) * 512) / MiB;
    last = cur;
    if (t - quietSince >= quietMs) return `disk quiet after ${((t - start) / 1000).toFixed(1)} s`;
    if (t - start >= timeoutMs) return `disk still busy after ${(timeoutMs / 1000).toFixed(0)} s (${writtenMiB.toFixed(1)} MiB written in the last 0.1 s)`;
  }
}

function procStatusKiB(field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples the process RSS every `intervalMs` while running, and also reads the kernel's own peak
 * (VmHWM, reset at start through /proc/self/clear_refs where Linux allows), so a peak between
 * samples, or while the event loop is blocked, is not missed.
 */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peak = 0;
  private hwmReset = false;
  readonly startRss: number;

  constructor(private readonly intervalMs = 20) {
    this.startRss = process.memoryUsage.rss();
  }

  start(): this {
    try {
      writeFileSync('/proc/self/clear_refs', '5');
      this.hwmReset = true;
    } catch {
      this.hwmReset = false;
    }
    this.peak = process.memoryUsage.rss();
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, process.memoryUsage.rss());
    }, this.intervalMs);
    return this;
  }

  /** Stops sampling; returns bytes. `hwm` is the kernel's peak since start (undefined if it could not be reset). */
  stop(): { start: number; sampledPeak: number; hwm: number | undefined; peak: number } {
    if (this.timer) clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
    const hwmKiB = this.hwmReset ? procStatusKiB('VmHWM') : undefined;
    const hwm = hwmKiB === undefined ? undefined : hwmKiB * 1024;
    return { start: this.startRss, sampledPeak: this.peak, hwm, peak: Math.max(this.peak, hwm ?? 0) };
  }
}

// ---- formatting -------------------------------------------------------------------------------

export const fmtMiB = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
export const fmtMs = (ms: number): string => (ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`);
export const fmtS = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

export function fmtNum(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return String(x);
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtPct(ratio: number): string {
  if (!Number.isFinite(ratio)) return '—';
  return ratio >= 2 ? `${ratio.toFixed(2)}×` : `${(ratio * 100).toFixed(ratio < 0.1 ? 2 : 1)}%`;
}

/** A plain-text table with a header row; columns are left-aligned unless listed in `right`. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, right: ReadonlySet<number> = new Set()): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (right.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (right.has(i) ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}

export function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

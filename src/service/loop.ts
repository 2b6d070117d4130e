/**
 * A background loop on an injected clock and timer: runs `step`, then sleeps until the moment it
 * returns (at most `idleMs`, so changes it cannot see coming are picked up), or until `wake()`.
 * `stop()` ends it and waits for a step under way — at most `graceMs`, so a stuck step cannot hold
 * up shutdown forever. A step that throws is logged; the loop goes on.
 */
import { timerDelayMs } from '../core/schedule.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';

export interface LoopTimer {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** setTimeout that does not keep the process alive. */
export const systemTimer: LoopTimer = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface LoopOptions {
  readonly name: string;
  readonly clock: Clock;
  readonly timer?: LoopTimer;
  readonly idleMs: number;
  /**
   * The least time between the end of a step and the next (default 0): what comes due in a burst
   * is then done a batch per step, not a step per item, and wakes in a burst share a step.
   */
  readonly minGapMs?: number;
  readonly log?: Logger | undefined;
}

export class Loop {
  private handle: unknown;
  private running = false;
  private current: Promise<void> = Promise.resolve();
  /** A step is under way: a wake then asks for one more step after it, not one per wake. */
  private stepping = false;
  private again = false;
  /** When the armed step runs (clock ms); undefined when none is armed. */
  private armedAtMs: number | undefined;
  /** A step is owed by this moment (clock ms): asked by `wakeBy` during a step. */
  private byMs: number | undefined;
  private readonly timer: LoopTimer;

  /** `step` returns when it next has something to do (undefined: nothing scheduled). */
  constructor(private readonly step: () => Promise<Date | undefined>, private readonly o: LoopOptions) {
    this.timer = o.timer ?? systemTimer;
  }

  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arm(0);
  }

  /** Runs the step soon (something it waits for happened). */
  wake(): void {
    if (!this.running) return;
    // Hundreds of wakes during one long step (operations ending in a burst) run one step after it.
    if (this.stepping) this.again = true;
    else this.arm(0);
  }

  /** Runs a step no later than `at` (something needs seeing to by then, not at once). */
  wakeBy(at: Date): void {
    if (!this.running) return;
    const atMs = at.getTime();
    if (this.stepping) this.byMs = Math.min(this.byMs ?? atMs, atMs);
    else if (this.armedAtMs === undefined || this.armedAtMs > atMs) this.arm(timerDelayMs(at, this.o.clock.now()));
  }

  async stop(graceMs = 10_000): Promise<void> {
    this.running = false;
    if (this.handle !== undefined) this.timer.clearTimeout(this.handle);
    this.handle = undefined;
    this.armedAtMs = undefined;
    let timeout: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      this.current.then(() => true),
      new Promise<false>((resolve) => { timeout = setTimeout(() => resolve(false), graceMs); }),
    ]);
    clearTimeout(timeout);
    if (!settled) this.o.log?.warn({ graceMs }, `${this.o.name} stopped with a step still under way`);
  }

  private arm(ms: number): void {
    if (this.handle !== undefined) this.timer.clearTimeout(this.handle);
    this.armedAtMs = this.o.clock.now().getTime() + ms;
    this.handle = this.timer.setTimeout(() => {
      this.handle = undefined;
      this.armedAtMs = undefined;
      this.current = this.once();
    }, ms);
  }

  private async once(): Promise<void> {
    if (!this.running) return;
    let next: Date | undefined;
    this.stepping = true;
    this.again = false;
    this.byMs = undefined;
    try {
      next = await this.step();
    } catch (err) {
      this.o.log?.warn({ err: String(err) }, `${this.o.name} step failed`);
    } finally {
      this.stepping = false;
    }
    if (!this.running) return;
    const now = this.o.clock.now();
    let delay = this.again ? 0 : next ? Math.min(timerDelayMs(next, now), this.o.idleMs) : this.o.idleMs;
    if (this.byMs !== undefined) delay = Math.min(delay, Math.max(0, this.byMs - now.getTime()));
    this.arm(Math.max(delay, this.o.minGapMs ?? 0));
  }
}

/**
 * A bound on expensive requests (VerifyBackup streams and checks whole backups, with block
 * workers): at most `running` at once, at most `queued` waiting for a turn; beyond that a caller
 * is refused at once with LIFEBOAT_E_BUSY (503, Retry-After), so a flood of requests costs a
 * queue slot each, not a thread pool each.
 */
import { LifeboatError } from '../core/errors.ts';

export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly running: number, private readonly queued: number, private readonly what: string) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.running) {
      if (this.waiting.length >= this.queued) throw new LifeboatError('LIFEBOAT_E_BUSY', `${this.running} ${this.what} are running and ${this.queued} waiting; retry later.`);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      // The turn passes to the next waiter directly; `active` counts it.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

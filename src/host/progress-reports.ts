/**
 * A transfer's progress, sent to the service as InProgress reports while it runs: at most one
 * report in flight and one per interval, never holding the transfer up. A report lost on the way
 * costs nothing (the next one, or the final Success, says more). The interval is a rate limit on
 * reports, not a schedule, so it runs on the monotonic clock rather than the injected one.
 */
import type { TransferProgress } from '../core/host-protocol.ts';

export class ProgressReports {
  private sentAtMs = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly send: (p: TransferProgress) => Promise<void>,
    private readonly intervalMs: number,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  /** The transfer got this far: reported unless a report is on its way or one went out less than an interval ago. */
  update(p: TransferProgress): void {
    const now = this.nowMs();
    if (this.inFlight || now - this.sentAtMs < this.intervalMs) return;
    this.sentAtMs = now;
    this.inFlight = this.send(p).catch(() => undefined).finally(() => {
      this.inFlight = undefined;
    });
  }

  /** Waits for the report on its way, so that the operation's end is reported after it. */
  async drain(): Promise<void> {
    await this.inFlight;
  }
}

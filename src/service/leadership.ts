/**
 * Leadership of the background work (the scheduler, the retention sweeper, the deadline and
 * host-down sweeps) among the service instances on one catalog: a lease in the catalog
 * (`catalog.leases`), renewed every `renewMs` and good for `ttlMs`, and tried for by every
 * instance that does not hold it. An instance acts only while its lease is good by its own clock
 * (`turn()` carries the lease's fence then); every write of the background work carries that fence,
 * so the catalog refuses the writes of an instance that was paused past its lease and has been
 * replaced (LIFEBOAT_E_NOT_LEADER). With `ttlMs` 10 s and `renewMs` 2 s, a leader that dies is
 * replaced within about 12 s.
 */
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { Fence, LeaseStore } from '../catalog/port.ts';

export const LEADER_LEASE = 'background-work';

/** A turn at the background work: the fence its writes carry (none for a sole instance). */
export interface Turn {
  readonly fence: Fence | undefined;
}

/** Who may do the background work now: a turn while this instance leads, else undefined. */
export interface BackgroundWork {
  turn(): Turn | undefined;
}

/** Always this instance, unfenced: one process on its own catalog (the embedded SQLite default, unit tests). */
export const SOLE_INSTANCE: BackgroundWork = { turn: () => ({ fence: undefined }) };

export interface LeadershipDeps {
  readonly leases: LeaseStore;
  /** This instance, unique among those on the catalog. */
  readonly holder: string;
  /** Real time: a lease is about processes dying, whatever clock the schedules run on. */
  readonly clock: Clock;
  readonly ttlMs?: number;
  readonly renewMs?: number;
  readonly log?: Logger;
  /** Told when this instance becomes leader or stops being one. */
  readonly onChange?: (leading: boolean) => void;
}

export class Leadership implements BackgroundWork {
  private held: { token: number; untilMs: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly ttlMs: number;
  private readonly renewMs: number;

  constructor(private readonly d: LeadershipDeps) {
    this.ttlMs = d.ttlMs ?? 10_000;
    this.renewMs = d.renewMs ?? 2_000;
  }

  /** Tries for the lease once (awaited), then keeps trying and renewing in the background. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.attempt();
    this.schedule();
  }

  turn(): Turn | undefined {
    // A margin of one renewal: an instance stops acting before its lease runs out, not at it.
    if (!this.held || this.d.clock.now().getTime() >= this.held.untilMs - this.renewMs) return undefined;
    return { fence: { lease: LEADER_LEASE, holder: this.d.holder, token: this.held.token } };
  }

  get isLeader(): boolean {
    return this.turn() !== undefined;
  }

  get holder(): string {
    return this.d.holder;
  }

  /** Stops trying, and gives the lease up so another instance takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.held) {
      this.set(undefined);
      await this.d.leases.release(LEADER_LEASE, this.d.holder).catch(() => undefined);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.attempt().finally(() => this.schedule());
    }, this.renewMs);
    this.timer.unref();
  }

  /** Tries for (or renews) the lease now; the background loop calls it every renewMs. */
  async tryNow(): Promise<void> {
    await this.attempt();
  }

  private async attempt(): Promise<void> {
    const now = this.d.clock.now().getTime();
    try {
      const lease = await this.d.leases.acquire(LEADER_LEASE, this.d.holder, new Date(now).toISOString(), new Date(now + this.ttlMs).toISOString());
      if (this.stopped) return;
      this.set(lease ? { token: lease.token, untilMs: now + this.ttlMs } : undefined);
    } catch (err) {
      // The catalog cannot be reached: the lease held so far stays good until it runs out (turn() checks).
      this.d.log?.warn({ err: String(err) }, 'leadership: the lease could not be renewed');
    }
  }

  private set(next: { token: number; untilMs: number } | undefined): void {
    const was = this.held !== undefined;
    const tokenChanged = next?.token !== this.held?.token;
    this.held = next;
    if (was !== (next !== undefined) || (next && tokenChanged)) {
      this.d.log?.info({ holder: this.d.holder, token: next?.token }, next ? 'leadership: this instance leads the background work' : 'leadership: another instance leads the background work');
      this.d.onChange?.(next !== undefined);
    }
  }
}

/** Helpers for tests that drive the periodic scheduler on a fake clock. */
import type { TickResult } from '../../src/service/scheduler.ts';
import type { Partition } from '../../src/state/index.ts';
import { type TestLifeboat, waitFor } from './lifeboat.ts';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

export interface FakeClock { now(): Date; advance(ms: number): void }

/** A clock that stands still until advanced; starts on a whole minute after the real now. */
export function fakeClock(): FakeClock {
  let ms = Math.ceil(Date.now() / MINUTE) * MINUTE + MINUTE;
  return { now: () => new Date(ms), advance: (d) => { ms += d; } };
}

/** Moves the clock on, runs what is due and waits until the periodic backups it started ended. */
export async function step(lb: TestLifeboat, clock: FakeClock, ms = MINUTE): Promise<TickResult> {
  clock.advance(ms);
  const r = await lb.scheduler.tick();
  await waitFor(() => lb.scheduler.activePeriodicOperations(), (n) => n === 0, 30_000, 'periodic backups');
  return r;
}

/** One committed change per partition, so that every backup has something new. */
export function write(partitions: readonly Partition[], tag: string): void {
  for (const p of partitions) p.transact((tx) => { tx.dictionary('kv').set(`k-${tag}`, `v-${tag}`); tx.dictionary('kv').delete(`k-prev-${tag}`); });
}

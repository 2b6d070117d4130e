/**
 * When the next periodic backup is due, whether it is full or incremental, and what to do after a
 * failure — pure functions of (schedule, what happened, now). The scheduler that arms timers and the
 * clock live in the service; it records what these functions need and calls them again after every
 * backup, failure, policy change or restart. Follows the in-process agent of Service Fabric
 * (`BackupTimer`, `RescheduleTimer`, `BackupScheduler`; sf-behaviour.md §2.6, §2.7, rules 15–16),
 * with the deviations said at each function.
 */
import type { BackupOption } from './backup-chain.ts';
import { MS_PER_DAY, MS_PER_MINUTE } from './duration.ts';
import { LifeboatError } from './errors.ts';
import type { BackupSchedule, TimeBasedSchedule } from './policy.ts';

/** The longest delay `setTimeout` (and .NET's timers) can be armed with: 2^31 − 1 ms, about 24.8 days. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** What the scheduler of one partition remembers between decisions. */
export interface ScheduleState {
  /**
   * When the last periodic backup of this policy was due (the scheduled moment, not when it finished,
   * as Service Fabric records `LastRecoveryPoint.BackupTime` without jitter). Absent before the first.
   */
  readonly lastBackupUtc?: Date | undefined;
  /** When the partition got its current policy (enable, policy update, resume: a new schedule starts). */
  readonly policyAppliedUtc: Date;
  /**
   * When the scheduler gave up retrying a failed backup (see `retryAfterFailure`). The schedule then
   * counts from that moment, as Service Fabric's `postFailedReschedule`; without it a frequency
   * schedule whose last backup is long past would be "missed" again at once, for ever.
   */
  readonly gaveUpUtc?: Date | undefined;
}

export interface BackupDue {
  /** When to take the next backup; equal to `now` when it is due at once. */
  readonly dueUtc: Date;
  /**
   * True when a scheduled moment passed with no backup since (the service was down, the partition
   * had no primary, …): the backup is due now, once — not once per missed slot.
   */
  readonly missed: boolean;
}

/**
 * The moment a schedule counts from: the latest of the last backup, the policy's arrival and the
 * last give-up. A policy that arrived after the last backup restarts the schedule (Service Fabric
 * clears `LastRecoveryPoint` on a new policy, §2.6). `inclusive` is true when the anchor is the
 * policy's arrival: a run time exactly then is still to run (`RunTimes.First(t => t >= now)`); a run
 * time exactly at the last backup or give-up has been dealt with.
 */
function anchorOf(state: ScheduleState): { at: number; inclusive: boolean } {
  const applied = state.policyAppliedUtc.getTime();
  const done = Math.max(state.lastBackupUtc?.getTime() ?? -Infinity, state.gaveUpUtc?.getTime() ?? -Infinity);
  return applied > done ? { at: applied, inclusive: true } : { at: done, inclusive: false };
}

const DAY_INDEX = { Sunday: 0, Monday: 1, Tuesday: 2, Wednesday: 3, Thursday: 4, Friday: 5, Saturday: 6 } as const;

/**
 * The first run time of a time-based schedule after `afterMs` (at or after it when `inclusive`), in
 * UTC: Daily on every day, Weekly on the RunDays. Looks at most 8 days ahead, enough for a weekly
 * schedule with one run a week; a schedule with no run time (or a Weekly one with no run day),
 * which `parseBackupPolicy` never produces, is refused.
 */
export function nextRunTime(schedule: TimeBasedSchedule, afterMs: number, inclusive: boolean): number {
  const day0 = Math.floor(afterMs / MS_PER_DAY) * MS_PER_DAY;
  for (let i = 0; i <= 8; i++) {
    const day = day0 + i * MS_PER_DAY;
    const weekday = new Date(day).getUTCDay();
    if (schedule.frequency === 'Weekly' && !schedule.runDays.some((d) => DAY_INDEX[d] === weekday)) continue;
    for (const t of schedule.runTimesMs) {
      const at = day + t;
      if (at > afterMs || (inclusive && at === afterMs)) return at;
    }
  }
  throw new LifeboatError('E_INVALIDARG', 'A time-based schedule needs at least one run time, and a Weekly one at least one run day.');
}

/**
 * When the next periodic backup is due.
 *
 * - FrequencyBased: one interval after the anchor (last backup, policy arrival or give-up,
 *   whichever is latest). Before the first backup that is one interval after the policy arrived —
 *   Service Fabric counts from whenever the primary armed its timer, so a restart postponed the
 *   first backup again; we count from the policy's arrival and keep it due.
 * - TimeBased: the first UTC run time after the anchor (Daily: any day; Weekly: on RunDays).
 *
 * If that moment is already past, a backup was missed: it is due now (`missed: true`), once —
 * the next call, after it ran, counts from it (Service Fabric's missed-backup check on a new
 * primary, §2.6; rule 15 "run immediately … if a backup was missed"). Jitter is not added here; see
 * `jitteredFireTime`. Callers must not arm a timer with the raw difference: see `timerDelayMs`.
 */
export function nextBackupDue(schedule: BackupSchedule, state: ScheduleState, now: Date): BackupDue {
  const anchor = anchorOf(state);
  const due = schedule.kind === 'FrequencyBased'
    ? anchor.at + schedule.intervalMs
    : nextRunTime(schedule, anchor.at, anchor.inclusive);
  return due < now.getTime() ? { dueUtc: new Date(now.getTime()), missed: true } : { dueUtc: new Date(due), missed: false };
}

/**
 * The delay to arm a timer with for `due`: never negative, and never more than 2^31 − 1 ms, the most
 * `setTimeout` accepts (a larger value fires at once; .NET's timers throw — Service Fabric #269 took
 * BRS down with a 24-day retention timer). When the capped timer fires before `due`, the caller
 * calls `nextBackupDue` again and re-arms: long waits are chunked, never shortened.
 */
export function timerDelayMs(due: Date, now: Date): number {
  return Math.min(Math.max(due.getTime() - now.getTime(), 0), MAX_TIMER_DELAY_MS);
}

/**
 * Spread of scheduled backups around their due moment. Service Fabric's `JitterInBackupsInSeconds`
 * defaults to 10 s (§2.17); Lifeboat uses 5 s, so a one-minute policy's first backups land within
 * 65 s of EnableBackup, while 1,000 partitions still spread over ten seconds.
 */
export const DEFAULT_JITTER_MS = 5_000;

/**
 * Spreads the backups of many partitions that share a schedule (`BackupTimer.ArmTimer`): the timer
 * fires at `due` plus a random offset in [−min(due − now, J), +J), so never before `now`. Record
 * `due`, not the fire time, as the backup's scheduled moment (`ScheduleState.lastBackupUtc`).
 * `random` returns [0, 1); 0.5 fires at about `due`.
 */
export function jitteredFireTime(due: Date, now: Date, random: () => number, jitterMs = DEFAULT_JITTER_MS): Date {
  const ahead = Math.max(due.getTime() - now.getTime(), 0);
  const low = -Math.min(ahead, jitterMs);
  return new Date(due.getTime() + Math.floor(low + random() * (jitterMs - low)));
}

/** Retries after a failed periodic backup before the normal schedule resumes (`RescheduleTimer.RescheduleMaxCount`). */
export const MAX_BACKUP_RETRIES = 5;
/** The retry delay: one minute, ±5 % (`RescheduleTimer`: 60 s × [0.95, 1.05]). */
export const RETRY_DELAY_MS = MS_PER_MINUTE;

export type RetryDecision =
  | { readonly retry: true; readonly atUtc: Date; /** 1 … MAX_BACKUP_RETRIES */ readonly attempt: number }
  | { readonly retry: false };

/**
 * After `consecutiveFailures` failed attempts of one periodic backup (1 = the scheduled attempt
 * failed): retry about a minute later, up to five retries; after the fifth retry fails, return to the
 * normal schedule (`{ retry: false }`: record `gaveUpUtc = now` and call `nextBackupDue`). As Service
 * Fabric (§2.6): a flat minute rather than an exponential back-off — five retries cover a blip
 * within about five minutes, and a longer outage is the schedule's business (a back-off of 1, 2, 4,
 * 8, 16 min would outlast intervals as short as 15 min and delay the next scheduled backup).
 * `random` in [0, 1) gives the ±5 % jitter; the default 0.5 gives exactly one minute.
 */
export function retryAfterFailure(consecutiveFailures: number, now: Date, random: () => number = () => 0.5): RetryDecision {
  if (!Number.isInteger(consecutiveFailures) || consecutiveFailures < 1 || consecutiveFailures > MAX_BACKUP_RETRIES) return { retry: false };
  const delay = Math.round(RETRY_DELAY_MS * (0.95 + 0.1 * random()));
  return { retry: true, atUtc: new Date(now.getTime() + delay), attempt: consecutiveFailures };
}

export type BackupFailureNext =
  | { readonly kind: 'full-now'; readonly reason: 'MissingFullBackup' }
  | { readonly kind: 'retry'; readonly atUtc: Date; readonly attempt: number }
  | { readonly kind: 'schedule' };

/**
 * What follows a failed periodic backup. An incremental refused with FABRIC_E_MISSING_FULL_BACKUP
 * (epoch changed, log truncated, chain too large, parent mismatch) is not a failure to retry: a full
 * backup runs at once (§2.7, rule 16) and does not count as an attempt. Anything else retries per
 * `retryAfterFailure`, then returns to the schedule.
 */
export function afterBackupFailure(
  failure: { readonly code: string; readonly option: BackupOption; readonly consecutiveFailures: number },
  now: Date,
  random: () => number = () => 0.5,
): BackupFailureNext {
  if (failure.code === 'FABRIC_E_MISSING_FULL_BACKUP' && failure.option === 'Incremental') return { kind: 'full-now', reason: 'MissingFullBackup' };
  const r = retryAfterFailure(failure.consecutiveFailures, now, random);
  return r.retry ? { kind: 'retry', atUtc: r.atUtc, attempt: r.attempt } : { kind: 'schedule' };
}

/**
 * Why a backup must be full whatever the chain counter says (§2.7): the partition lost data or was
 * restored (new DataLossVersion), the policy changed (metadata reset), an on-demand backup ran
 * (the periodic chain's parent is no longer the last backup), the replica refused an incremental
 * (FABRIC_E_MISSING_FULL_BACKUP), or there is no chain to continue (no completed backup known).
 */
export type ForcedFullReason = 'DataLoss' | 'Restore' | 'PolicyChanged' | 'OnDemandBackup' | 'MissingFullBackup' | 'NoChain';

const FORCED_WHY: Record<ForcedFullReason, string> = {
  DataLoss: 'the partition lost data since the last backup',
  Restore: 'the partition was restored since the last backup',
  PolicyChanged: 'the backup policy changed',
  OnDemandBackup: 'an on-demand backup ran since the last periodic backup',
  MissingFullBackup: 'the replica refused an incremental backup (FABRIC_E_MISSING_FULL_BACKUP)',
  NoChain: 'there is no backup chain to continue',
};

export interface BackupOptionDecision {
  readonly option: BackupOption;
  /** The chain counter once this backup has succeeded: 1 after a full, counter + 1 after an incremental. Unchanged if it fails. */
  readonly chainCounterAfter: number;
  readonly reason: string;
}

/**
 * Full or incremental, by Service Fabric's counter rule (`NumberOfBackupsInChain`, §2.7, rule 16):
 * Full when the counter is 0 or greater than MaxIncrementalBackups, else Incremental; so a chain is
 * one full and at most MaxIncrementalBackups incrementals, and MaxIncrementalBackups 0 makes every
 * backup full. `forceFull` overrides the counter. Setting the counter to 0 (as the agent does after
 * a policy change or an on-demand backup) has the same effect.
 */
export function decideBackupOption(input: {
  readonly chainCounter: number;
  readonly maxIncrementalBackups: number;
  readonly forceFull?: ForcedFullReason | undefined;
}): BackupOptionDecision {
  const { chainCounter, maxIncrementalBackups, forceFull } = input;
  if (forceFull !== undefined) return { option: 'Full', chainCounterAfter: 1, reason: `full: ${FORCED_WHY[forceFull]}` };
  if (chainCounter <= 0) return { option: 'Full', chainCounterAfter: 1, reason: 'full: the chain counter is 0 (no chain yet)' };
  if (chainCounter > maxIncrementalBackups) {
    return { option: 'Full', chainCounterAfter: 1, reason: `full: the chain has its full backup and ${chainCounter - 1} incrementals, MaxIncrementalBackups is ${maxIncrementalBackups}` };
  }
  return { option: 'Incremental', chainCounterAfter: chainCounter + 1, reason: `incremental ${chainCounter} of at most ${maxIncrementalBackups} after the chain's full backup` };
}

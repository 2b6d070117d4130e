/**
 * Basic retention: which backups of one partition to keep and which to delete, each with its reason.
 * Follows Service Fabric's `RetentionManager.DeleteFilesForPartition` (sf-behaviour.md §2.13,
 * rule 22), and closes a gap in it: Service Fabric keeps the chain of the newest full backup older
 * than the cutoff, which protects a kept incremental only when chains follow one another in time.
 * With chains that overlap (an on-demand full between two periodic incrementals, backups of two
 * primaries, a skewed clock) it could delete a full or a link that a kept incremental needs. Here a
 * kept backup's whole chain — its parents up to the full, and the full named by its BackupChainId —
 * is always kept, whatever the input.
 *
 * The plan is pure; the sweeper lists the partition's backups, calls `planRetention` with the
 * policy as it is *now* (policy updates apply at the next run — Service Fabric ignored them, §3), and
 * carries out `deletionSteps`.
 */
import { humanDuration } from './duration.ts';
import { invalidArgUnless } from './errors.ts';

/** What retention needs to know of one backup (from its `.bkmetadata`). */
export interface RetentionBackup {
  readonly backupId: string;
  /** The BackupId of the chain's full backup. */
  readonly backupChainId: string;
  /** An incremental's parent; a full backup's is itself or empty, and is not followed. */
  readonly parentBackupId: string;
  readonly type: 'Full' | 'Incremental';
  readonly creationUtc: Date;
}

/** The policy's Basic retention, as `BasicRetentionPolicy` in policy.ts. */
export interface RetentionRule {
  readonly retentionMs: number;
  readonly minimumNumberOfBackups: number;
}

/**
 * Why a backup is kept or deleted: the rule of `planRetention` that decided it, with the numbers and
 * ids it decided on. `retentionReasonText` renders it for the REST plan and the log. Ages are
 * `now − creation` in milliseconds (negative for a backup dated in the future); durations are the
 * policy's RetentionDuration.
 */
export type RetentionReason =
  /** Step 1: no more backups than MinimumNumberOfBackups, so every one is kept. */
  | { readonly rule: 'not-above-minimum'; readonly detail: { readonly backups: number; readonly minimum: number } }
  /** Step 2: created at or after the cutoff. */
  | { readonly rule: 'within-retention'; readonly detail: { readonly ageMs: number; readonly retentionMs: number } }
  /** Step 3: the newest full backup older than the cutoff, base of the chain at the window's start. */
  | { readonly rule: 'window-base'; readonly detail: { readonly ageMs: number; readonly retentionMs: number } }
  /** Step 3: older than the cutoff but newer than the window's base full backup. */
  | { readonly rule: 'newer-than-window-base'; readonly detail: { readonly ageMs: number; readonly retentionMs: number; readonly baseBackupId: string } }
  /** Step 3: older than the cutoff, and no full backup is: kept until one is. */
  | { readonly rule: 'no-older-full'; readonly detail: { readonly ageMs: number; readonly retentionMs: number } }
  /** Step 4: the full backup or a link that a kept backup (the newest that needs it) needs. */
  | { readonly rule: 'needed-by-chain'; readonly detail: { readonly role: 'full' | 'link'; readonly neededBy: string } }
  /** Step 5: deletable, but kept so that MinimumNumberOfBackups remain. */
  | { readonly rule: 'minimum-count'; readonly detail: { readonly minimum: number } }
  /** Step 5: older than the cutoff and needed by no kept backup; `restorable` is false when its chain's full is gone. */
  | { readonly rule: 'expired'; readonly detail: { readonly ageMs: number; readonly retentionMs: number; readonly restorable: boolean } }
  /** The sweeper finishing a deletion that a run cut short began (see `deletionSteps`). */
  | { readonly rule: 'interrupted-deletion'; readonly detail: Readonly<Record<string, never>> };

export type RetentionRuleName = RetentionReason['rule'];

/** A reason as text, as the REST retention plan and the sweeper's log show it. */
export function retentionReasonText(reason: RetentionReason): string {
  const age = (ms: number): string => (ms < 0 ? 'dated in the future' : `${humanDuration(ms)} old`);
  switch (reason.rule) {
    case 'not-above-minimum': {
      const { backups, minimum } = reason.detail;
      return `kept: ${backups} backup${backups === 1 ? '' : 's'}, not more than the minimum number of backups (${minimum})`;
    }
    case 'within-retention':
      return `kept: within retention (${age(reason.detail.ageMs)}, retention ${humanDuration(reason.detail.retentionMs)})`;
    case 'window-base':
      return `kept: newest full backup older than ${humanDuration(reason.detail.retentionMs)} (${age(reason.detail.ageMs)}), base of the chain at the start of the retention window`;
    case 'newer-than-window-base': {
      const { ageMs, retentionMs, baseBackupId } = reason.detail;
      return `kept: ${age(ageMs)} but newer than ${baseBackupId}, the newest full backup older than ${humanDuration(retentionMs)}: restore point at the start of the retention window`;
    }
    case 'no-older-full':
      return `kept: ${age(reason.detail.ageMs)} but no full backup is older than ${humanDuration(reason.detail.retentionMs)}: older backups are kept until one is`;
    case 'needed-by-chain':
      return `kept: ${reason.detail.role === 'full' ? 'full backup' : 'link'} of a kept chain (needed by ${reason.detail.neededBy})`;
    case 'minimum-count':
      return `kept: minimum number of backups (${reason.detail.minimum})`;
    case 'expired': {
      const { ageMs, retentionMs, restorable } = reason.detail;
      return restorable
        ? `deleted: older than ${humanDuration(retentionMs)} (${age(ageMs)}) and not needed by a kept backup`
        : `deleted: older than ${humanDuration(retentionMs)} (${age(ageMs)}), not needed by a kept backup, and not restorable: its chain's full backup is gone`;
    }
    case 'interrupted-deletion':
      return 'deleted: finishing the deletion a previous run began';
  }
}

export interface RetentionDecision<T extends RetentionBackup> {
  readonly backup: T;
  readonly reason: RetentionReason;
}

export interface RetentionPlan<T extends RetentionBackup> {
  /** now − RetentionDuration: backups created at or after it are within retention. */
  readonly cutoffUtc: Date;
  /** Newest first. */
  readonly keep: ReadonlyArray<RetentionDecision<T>>;
  /** In the order to delete them: see `planRetention`. */
  readonly delete: ReadonlyArray<RetentionDecision<T>>;
}

const time = (b: RetentionBackup): number => b.creationUtc.getTime();

/** Newest first; ties by BackupId so that plans are deterministic. */
function newestFirst(a: RetentionBackup, b: RetentionBackup): number {
  return time(b) - time(a) || (a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0);
}

/** Dependencies between the listed backups: what each needs to be restored, and what needs it. */
class Chains<T extends RetentionBackup> {
  private readonly byId = new Map<string, T[]>();
  private readonly needsOf = new Map<T, T[]>();
  private readonly neededBy = new Map<T, T[]>();
  private readonly restorableCache = new Map<T, true>();

  constructor(backups: readonly T[]) {
    const add = <K>(m: Map<K, T[]>, k: K, b: T): void => {
      const list = m.get(k);
      if (list) list.push(b);
      else m.set(k, [b]);
    };
    for (const b of backups) add(this.byId, b.backupId, b);
    for (const b of backups) {
      const needs = b.type === 'Full' ? [] : [...new Set([
        ...(this.byId.get(b.parentBackupId) ?? []),
        ...(this.byId.get(b.backupChainId) ?? []).filter((f) => f.type === 'Full'),
      ])].filter((d) => d !== b);
      this.needsOf.set(b, needs.sort(newestFirst));
      for (const d of needs) add(this.neededBy, d, b);
    }
    for (const list of this.neededBy.values()) list.sort(newestFirst);
  }

  /** The backups `b` directly needs: its parent and its chain's full. */
  needs(b: T): readonly T[] {
    return this.needsOf.get(b) ?? [];
  }

  /** The backups that directly need `b`. */
  dependents(b: T): readonly T[] {
    return this.neededBy.get(b) ?? [];
  }

  /** Whether a full backup is among the listed backups `b` needs, directly or not (or `b` is one). */
  restorable(b: T): boolean {
    const seen = new Set<T>();
    const walk = (x: T): boolean => {
      const known = this.restorableCache.get(x);
      if (known !== undefined) return known;
      if (x.type === 'Full') return true;
      if (seen.has(x)) return false; // a loop of parent links
      seen.add(x);
      const result = this.needs(x).some(walk);
      if (result) this.restorableCache.set(x, true); // "false" may be an artefact of a loop cut short
      return result;
    };
    return walk(b);
  }
}

/**
 * Decides what Basic retention keeps and deletes among one partition's backups in one storage.
 *
 * 1. If there are no more backups than MinimumNumberOfBackups, everything is kept (Service Fabric:
 *    `count ≤ Minimum` → stop).
 * 2. Backups created at or after `now − RetentionDuration` are kept: within retention.
 * 3. Of the older ones, walking newest first, everything up to and including the first full backup
 *    met is kept: the chain that restores the state at the start of the retention window (Service
 *    Fabric; with no older full, all older backups are kept).
 * 4. Added: every kept backup's parents up to its full, and the full its BackupChainId names, are
 *    kept too (repeatedly), so no kept incremental ever loses its full or a link.
 * 5. The rest is deleted, newest first, while more than MinimumNumberOfBackups backups remain
 *    (counting all of them, recent ones included); the remainder is kept for the minimum. As in
 *    Service Fabric, the minimum therefore keeps the *oldest* of the deletable backups. We keep that:
 *    the deletions are then always a prefix of one fixed order, which is what makes an interrupted
 *    run resume exactly where it stopped; the newest restore points are within retention or kept by
 *    step 3 anyway.
 *
 * Deletion order: newest first, and never a backup before one that needs it (a parent after its
 * incrementals, a full after its chain). So a run cut short at any point leaves every chain a valid
 * prefix — a full and its first k incrementals — and running the plan again deletes the rest.
 */
export function planRetention<T extends RetentionBackup>(backups: readonly T[], policy: RetentionRule, now: Date): RetentionPlan<T> {
  const { retentionMs, minimumNumberOfBackups: min } = policy;
  invalidArgUnless(Number.isFinite(retentionMs) && retentionMs >= 0, 'The retention duration must be a non-negative number of milliseconds.');
  invalidArgUnless(Number.isInteger(min) && min >= 0, 'MinimumNumberOfBackups must be a non-negative integer.');
  const cutoff = now.getTime() - retentionMs;
  const sorted = [...backups].sort(newestFirst);
  const ageMs = (b: T): number => now.getTime() - time(b);

  if (sorted.length <= min) {
    const reason: RetentionReason = { rule: 'not-above-minimum', detail: { backups: sorted.length, minimum: min } };
    return { cutoffUtc: new Date(cutoff), keep: sorted.map((backup) => ({ backup, reason })), delete: [] };
  }

  const chains = new Chains(sorted);
  const kept = new Map<T, RetentionReason>();
  const old: T[] = [];
  for (const b of sorted) {
    if (time(b) >= cutoff) kept.set(b, { rule: 'within-retention', detail: { ageMs: ageMs(b), retentionMs } });
    else old.push(b);
  }

  const newestOldFull = old.find((b) => b.type === 'Full');
  for (const b of old) {
    if (b === newestOldFull) {
      kept.set(b, { rule: 'window-base', detail: { ageMs: ageMs(b), retentionMs } });
      break;
    }
    kept.set(b, newestOldFull
      ? { rule: 'newer-than-window-base', detail: { ageMs: ageMs(b), retentionMs, baseBackupId: newestOldFull.backupId } }
      : { rule: 'no-older-full', detail: { ageMs: ageMs(b), retentionMs } });
  }

  // Close the kept set under "needs", newest first so each gets the newest backup that needs it.
  const work = sorted.filter((b) => kept.has(b));
  for (let i = 0; i < work.length; i++) {
    const b = work[i] as T;
    for (const d of chains.needs(b)) {
      if (kept.has(d)) continue;
      kept.set(d, { rule: 'needed-by-chain', detail: { role: d.type === 'Full' ? 'full' : 'link', neededBy: b.backupId } });
      work.push(d);
    }
  }

  // The rest in deletion order: a backup only after everything that needs it, otherwise newest first.
  const candidates = new Set(sorted.filter((b) => !kept.has(b)));
  const order: T[] = [];
  const placed = new Set<T>();
  const visiting = new Set<T>();
  const place = (b: T): void => {
    if (placed.has(b) || visiting.has(b)) return;
    visiting.add(b);
    for (const d of chains.dependents(b)) if (candidates.has(d)) place(d);
    visiting.delete(b);
    placed.add(b);
    order.push(b);
  };
  for (const b of candidates) place(b);

  const budget = sorted.length - min;
  const toDelete: Array<RetentionDecision<T>> = order.slice(0, budget).map((backup) => ({
    backup,
    reason: { rule: 'expired', detail: { ageMs: ageMs(backup), retentionMs, restorable: chains.restorable(backup) } },
  }));
  for (const b of order.slice(budget)) kept.set(b, { rule: 'minimum-count', detail: { minimum: min } });

  return {
    cutoffUtc: new Date(cutoff),
    keep: sorted.filter((b) => kept.has(b)).map((backup) => ({ backup, reason: kept.get(backup) as RetentionReason })),
    delete: toDelete,
  };
}

export interface DeletionStep<T extends RetentionBackup> {
  readonly backup: T;
  readonly object: 'metadata' | 'data';
}

/**
 * The storage operations that carry out a plan's deletions: for each backup its `.bkmetadata` first,
 * then its data (§2.13). Backups are listed by their metadata, so a backup whose metadata is gone is
 * no longer offered to retention or restore — and a half-deleted one must not be. The sweeper records
 * the backup it is deleting before its first step and clears the record after its last; after a
 * crash it passes the recorded backup as `interrupted`, whose (idempotent) steps then come first —
 * its metadata may already be gone, so the new listing would not show it (Service Fabric's
 * `OnGoingRetentionFile`). Moving it first is safe: everything that needed it was deleted before it.
 */
export function deletionSteps<T extends RetentionBackup>(toDelete: ReadonlyArray<RetentionDecision<T>>, interrupted?: T): Array<DeletionStep<T>> {
  const backups = toDelete.map((d) => d.backup);
  const ordered = interrupted ? [interrupted, ...backups.filter((b) => b.backupId !== interrupted.backupId)] : backups;
  return ordered.flatMap((backup) => [{ backup, object: 'metadata' as const }, { backup, object: 'data' as const }]);
}

/**
 * Rules of backup chains, without I/O: which backups a restore applies and in what order, whether
 * a restore may replace the current state (Safe), and whether an incremental backup may be taken.
 * Follows Service Fabric's replica rules (sf-behaviour.md §1.4, §1.6, §1.7).
 */
import { LifeboatError } from './errors.ts';
import { type Epoch, type StateVersion, compareEpochs, compareVersions, epochsEqual, formatEpoch } from './epoch.ts';

export type BackupOption = 'Full' | 'Incremental';

/** What a chain decision needs to know of one backup. */
export interface ChainLink {
  readonly backupId: string;
  /** A full backup's parent is itself; an incremental's is the backup it follows. */
  readonly parentBackupId: string;
  /** The BackupId of the chain's full backup. */
  readonly backupChainId: string;
  readonly option: BackupOption;
  /** Epoch in which the backup was taken. */
  readonly epoch: Epoch;
  /** First LSN the backup holds changes for (a full backup: 1). */
  readonly firstLsn: bigint;
  /** LSN of the state the backup restores to. */
  readonly lastLsn: bigint;
}

export interface RestorePlan<T extends ChainLink> {
  /** The full backup, then each incremental in order. */
  readonly chain: readonly T[];
  /** Backups given but not part of the chain (divergent duplicates), with why. */
  readonly dropped: ReadonlyArray<{ readonly backup: T; readonly reason: string }>;
}

const versionOf = (b: ChainLink): StateVersion => ({ epoch: b.epoch, lsn: b.lastLsn });

/**
 * Chooses the chain to restore from a set of backups: exactly one full backup, and the incrementals
 * that lead from it to the newest backup by parent links. Other incrementals are dropped as
 * divergent (e.g. uploaded but never recorded). Throws FABRIC_E_MISSING_FULL_BACKUP when there is no
 * or more than one full backup, LIFEBOAT_E_BACKUP_CHAIN_BROKEN when links, LSNs or DataLossVersions
 * do not fit, and LIFEBOAT_E_BACKUP_CORRUPT when a backup describes itself inconsistently.
 */
export function planRestoreChain<T extends ChainLink>(backups: readonly T[]): RestorePlan<T> {
  const fulls = backups.filter((b) => b.option === 'Full');
  if (fulls.length !== 1) {
    throw new LifeboatError('FABRIC_E_MISSING_FULL_BACKUP',
      fulls.length === 0 ? 'One full backup must be given; none was found.' : `One full backup must be given; ${fulls.length} were found (${fulls.map((f) => f.backupId).join(', ')}).`);
  }
  const full = fulls[0] as T;
  if (full.parentBackupId !== full.backupId || full.backupChainId !== full.backupId) {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Full backup ${full.backupId} names another backup as its parent or chain.`);
  }
  const byId = new Map<string, T>();
  for (const b of backups) {
    if (b.lastLsn < b.firstLsn - 1n) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup ${b.backupId} says it holds LSNs ${b.firstLsn}..${b.lastLsn}.`);
    }
    if (byId.has(b.backupId)) throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN', `Backup ${b.backupId} is given twice.`);
    byId.set(b.backupId, b);
  }
  // The chain ends at the newest backup; ties go to the longer path.
  const depth = (b: T): number => {
    let n = 0;
    for (let cur: T | undefined = b; cur && cur.option === 'Incremental' && n <= backups.length; cur = byId.get(cur.parentBackupId)) n++;
    return n;
  };
  const head = [...backups].sort((a, b) => compareVersions(versionOf(b), versionOf(a)) || depth(b) - depth(a))[0] as T;

  const chain: T[] = [];
  for (let cur: T = head; ; ) {
    chain.push(cur);
    if (cur.option === 'Full') break;
    const parent = byId.get(cur.parentBackupId);
    if (!parent) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN', `Backup ${cur.backupId} follows ${cur.parentBackupId}, which was not given: the chain has a gap.`);
    }
    if (chain.includes(parent)) throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN', `Backups ${cur.backupId} and ${parent.backupId} form a loop.`);
    cur = parent;
  }
  chain.reverse();

  for (let i = 1; i < chain.length; i++) {
    const prev = chain[i - 1] as T;
    const link = chain[i] as T;
    if (link.backupChainId !== full.backupId) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN', `Backup ${link.backupId} belongs to chain ${link.backupChainId}, not to ${full.backupId}.`);
    }
    if (link.epoch.dataLossVersion !== full.epoch.dataLossVersion) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN', `Backup ${link.backupId} has DataLossVersion ${link.epoch.dataLossVersion}, the full backup ${full.epoch.dataLossVersion}.`);
    }
    if (compareEpochs(link.epoch, prev.epoch) < 0) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN', `Backup ${link.backupId} has an older epoch (${formatEpoch(link.epoch)}) than the backup it follows.`);
    }
    if (link.firstLsn !== prev.lastLsn + 1n || link.lastLsn < prev.lastLsn) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN',
        `Backup ${link.backupId} holds LSNs ${link.firstLsn}..${link.lastLsn} but follows a backup ending at LSN ${prev.lastLsn}.`);
    }
  }
  const inChain = new Set(chain);
  const dropped = backups.filter((b) => !inChain.has(b)).map((backup) => ({ backup, reason: `not on the path from the full backup to the newest backup ${head.backupId}` }));
  return { chain, dropped };
}

/**
 * Safe restore refuses a backup that is not newer than the partition's state: when the epoch of
 * the partition's last write is newer than the backup's, or its LSN is at or past the backup's.
 * Returns the reason, or undefined when Safe allows the restore.
 */
export function safeRestoreRefusal(current: StateVersion, backup: StateVersion): string | undefined {
  if (compareEpochs(current.epoch, backup.epoch) > 0) {
    return `the partition's state is of epoch ${formatEpoch(current.epoch)}, newer than the backup's ${formatEpoch(backup.epoch)}`;
  }
  if (current.lsn >= backup.lsn) {
    return `the partition is at LSN ${current.lsn}, at or past the backup's LSN ${backup.lsn}`;
  }
  return undefined;
}

/** The last completed backup, as a partition remembers it to continue the chain. */
export interface LastBackup {
  readonly backupId: string;
  readonly backupChainId: string;
  readonly epoch: Epoch;
  readonly lastLsn: bigint;
  /** Bytes of change log held by the incrementals of the chain so far (0 after a full). */
  readonly chainLogBytes: number;
}

export interface IncrementalCheck {
  readonly lastBackup: LastBackup | undefined;
  readonly currentEpoch: Epoch;
  /** Every change with LSN ≤ this has been truncated from the log. */
  readonly logTruncatedThrough: bigint;
  /** Bytes of change log since the last backup. */
  readonly logBytesSinceBackup: number;
  readonly maxChainLogBytes: number;
}

/** Why an incremental backup cannot be taken now, or undefined when it can. */
export function incrementalRefusal(c: IncrementalCheck): string | undefined {
  const last = c.lastBackup;
  if (!last) return 'no backup has been completed yet';
  if (!epochsEqual(last.epoch, c.currentEpoch)) {
    return `the epoch changed since the last backup ${last.backupId} (${formatEpoch(last.epoch)} → ${formatEpoch(c.currentEpoch)})`;
  }
  if (c.logTruncatedThrough > last.lastLsn) {
    return `the change log after LSN ${last.lastLsn} was truncated (through LSN ${c.logTruncatedThrough})`;
  }
  const total = last.chainLogBytes + c.logBytesSinceBackup;
  if (total >= c.maxChainLogBytes) {
    return `the chain's change log would reach ${total} bytes, at or over the limit of ${c.maxChainLogBytes}`;
  }
  return undefined;
}

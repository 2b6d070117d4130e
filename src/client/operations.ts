/** On-demand backup and restore of a partition, their progress, SkipAutoRestore and VerifyBackup. */
import type { StorageDescription } from '../core/storage-description.ts';
import { SKIP_AUTO_RESTORE_API_VERSION } from '../wire/api-version.ts';
import { ACTIVE_BACKUP_STATES, ACTIVE_RESTORE_STATES, type BackupProgress, type RestoreProgress, type VerifyResultWire } from '../wire/operations.ts';
import { ROUTES, pathOf } from '../wire/routes.ts';
import { type Caller, pollUntil } from './caller.ts';

export interface BackupOptions {
  /** Where this one backup goes; absent: the storage of the partition's policy. */
  readonly storage?: StorageDescription;
  /** BackupTimeout, in minutes (the service's default when absent). */
  readonly timeoutMinutes?: number;
}

/** The backup to restore or verify: one named in a storage (BackupId and BackupLocation), or the newest (`latest`). */
export type BackupRef =
  | { readonly backupId: string; readonly backupLocation: string; readonly storage?: StorageDescription }
  | { readonly latest: true; readonly storage?: StorageDescription };

export interface WaitOptions {
  /** Give up after this long (default 30 s) with FABRIC_E_TIMEOUT. */
  readonly timeoutMs?: number;
  /** Time between progress reads (default 50 ms). */
  readonly intervalMs?: number;
}

function refBody(ref: BackupRef): Record<string, unknown> | undefined {
  const storage = ref.storage ? { BackupStorage: ref.storage } : {};
  if ('latest' in ref) return ref.storage ? storage : undefined;
  return { BackupId: ref.backupId, BackupLocation: ref.backupLocation, ...storage };
}

export class OperationsClient {
  constructor(private readonly c: Caller) {}

  /** BackupPartition: resolves when the service accepted it (202); backupProgress follows it. */
  async backupPartition(partitionId: string, o: BackupOptions = {}): Promise<void> {
    await this.c.call('POST', pathOf(ROUTES.backupPartition, { partitionId }), {
      version: 'backup', query: { BackupTimeout: o.timeoutMinutes }, ...(o.storage ? { body: { BackupStorage: o.storage } } : {}),
    });
  }

  backupProgress(partitionId: string): Promise<BackupProgress> {
    return this.c.call('GET', pathOf(ROUTES.backupProgress, { partitionId }), { version: 'backup' });
  }

  /** The progress once the partition's latest on-demand backup has ended (Success, Failure or Timeout). */
  waitForBackup(partitionId: string, w: WaitOptions = {}): Promise<BackupProgress> {
    return pollUntil(() => this.backupProgress(partitionId), (p) => !ACTIVE_BACKUP_STATES.includes(p.BackupState),
      w.timeoutMs ?? 30_000, w.intervalMs ?? 50, `the backup of ${partitionId} to end`);
  }

  /** RestorePartition: resolves when the service accepted it (202); restoreProgress follows it. */
  async restorePartition(partitionId: string, ref: BackupRef, o: { readonly timeoutMinutes?: number } = {}): Promise<void> {
    const body = refBody(ref);
    await this.c.call('POST', pathOf(ROUTES.restorePartition, { partitionId }), {
      version: 'backup', query: { RestoreTimeout: o.timeoutMinutes, Latest: 'latest' in ref ? true : undefined }, ...(body ? { body } : {}),
    });
  }

  restoreProgress(partitionId: string): Promise<RestoreProgress> {
    return this.c.call('GET', pathOf(ROUTES.restoreProgress, { partitionId }), { version: 'backup' });
  }

  /** The progress once the partition's latest restore has ended. */
  waitForRestore(partitionId: string, w: WaitOptions = {}): Promise<RestoreProgress> {
    return pollUntil(() => this.restoreProgress(partitionId), (p) => !ACTIVE_RESTORE_STATES.includes(p.RestoreState),
      w.timeoutMs ?? 30_000, w.intervalMs ?? 50, `the restore of ${partitionId} to end`);
  }

  /** SkipAutoRestore (api-version 9.1): the partition in data loss keeps its replica's state. */
  async skipAutoRestore(partitionId: string, o: { readonly timeoutMinutes?: number } = {}): Promise<void> {
    await this.c.call('POST', pathOf(ROUTES.skipAutoRestore, { partitionId }), {
      version: { exactly: SKIP_AUTO_RESTORE_API_VERSION }, query: { RestoreTimeout: o.timeoutMinutes },
    });
  }

  /** VerifyBackup (Lifeboat's): checks a backup and its whole chain without restoring it. */
  verifyBackup(partitionId: string, ref: BackupRef): Promise<VerifyResultWire> {
    const body = refBody(ref);
    return this.c.call('POST', pathOf(ROUTES.verifyBackup, { partitionId }), {
      version: 'backup', query: { Latest: 'latest' in ref ? true : undefined }, ...(body ? { body } : {}),
    });
  }
}

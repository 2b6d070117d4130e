/**
 * On-demand operations on a partition: the bodies of BackupPartition, RestorePartition and
 * VerifyBackup, and the progress answers (BackupProgressInfo, RestoreProgressInfo).
 */
import type { StorageDescription } from '../core/storage-description.ts';
import type { FailureErrorWire } from './errors.ts';
import type { EpochWire } from './epoch.ts';

/** The all-zero GUID: BackupId of a progress before any backup. */
export const EMPTY_ID = '00000000-0000-0000-0000-000000000000';

/** BackupState values that mean "not ended yet". */
export const ACTIVE_BACKUP_STATES: readonly string[] = ['Accepted', 'BackupInProgress'];
/** RestoreState values that mean "not ended yet". */
export const ACTIVE_RESTORE_STATES: readonly string[] = ['Accepted', 'RestoreInProgress'];

/** BackupPartitionDescription: the storage of this one backup, else the partition's policy's. */
export interface BackupPartitionRequest {
  BackupStorage?: StorageDescription;
}

/** RestorePartitionDescription (also VerifyBackup's body): the backup, and where it is. */
export interface RestorePartitionRequest {
  BackupId: string;
  BackupLocation: string;
  /** Absent: the storage of the partition's policy. */
  BackupStorage?: StorageDescription;
}

export interface BackupProgress {
  BackupState: string;
  TimeStampUtc: string;
  BackupId: string;
  BackupLocation: string;
  /** null before a backup succeeded. */
  EpochOfLastBackupRecord: EpochWire | null;
  LsnOfLastBackupRecord: string;
  FailureError: FailureErrorWire | null;
  /**
   * Lifeboat's extensions: bytes of the partition read into the backup so far, and the total the
   * host expects to read (a full backup: the database file; an incremental: the change log), as
   * the host reports them while it streams (about once a second). Absent before the host starts
   * or when it does not know; at Success BytesTransferred is the total read.
   */
  BytesTransferred?: number;
  TotalBytes?: number;
}

export interface RestoreProgress {
  RestoreState: string;
  TimeStampUtc: string;
  RestoredEpoch: EpochWire | null;
  RestoredLsn: string;
  FailureError: FailureErrorWire | null;
  /** Lifeboat's extensions: stored bytes of the chain read so far, and the chain's stored size (as for BackupProgress). */
  BytesTransferred?: number;
  TotalBytes?: number;
}

/** The byte counts an operation's result holds, as the progress answers show them (absent ones are left out). */
export function progressBytes(result: Readonly<Record<string, unknown>>): Pick<BackupProgress, 'BytesTransferred' | 'TotalBytes'> {
  const n = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  return { ...(n(result.BytesTransferred) ? { BytesTransferred: result.BytesTransferred } : {}), ...(n(result.TotalBytes) ? { TotalBytes: result.TotalBytes } : {}) };
}

/** What VerifyBackup found of one backup of the chain. */
export interface CheckedBackupWire {
  readonly BackupId: string;
  readonly BackupLocation: string;
  readonly BackupType: 'Full' | 'Incremental';
  /** `.lbk` version. */
  readonly Version: 1 | 2;
  readonly Files: number;
  /** Blocks of version 2 (0 for version 1). */
  readonly Blocks: number;
  readonly StoredBytes: number;
  readonly Encrypted: boolean;
  /** Every file was decompressed (and decrypted) and compared with its SHA-256. */
  readonly ContentsChecked: boolean;
  /** Every block passed AES-GCM authentication under the backup's data key (encrypted backups, with the key). */
  readonly Authenticated: boolean;
}

/** VerifyBackup's answer (Lifeboat's extension): the backup and its whole chain, full backup first. */
export interface VerifyResultWire {
  readonly BackupId: string;
  readonly Chain: CheckedBackupWire[];
  readonly Ok: true;
}

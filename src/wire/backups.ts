/**
 * Stored backups as the listing routes answer them (Service Fabric's BackupInfo), the body of
 * GetBackupsFromBackupLocation, and GetRetentionPlan's answer (Lifeboat's extension).
 */
import type { StorageDescription } from '../core/storage-description.ts';
import type { EpochWire } from './epoch.ts';
import type { BackupEntityWire } from './protection.ts';

/** The wire form of one backup (Service Fabric's BackupInfo). */
export interface BackupInfoWire {
  BackupId: string;
  BackupChainId: string;
  ApplicationName: string;
  ServiceName: string;
  /** partitionInformationWire's form. */
  PartitionInformation: Record<string, string>;
  BackupLocation: string;
  BackupType: string;
  EpochOfLastBackupRecord: EpochWire;
  LsnOfLastBackupRecord: string;
  CreationTimeUtc: string;
  ServiceManifestVersion: string;
  FailureError: null;
}

/** GetBackupByStorageQueryDescription: which backups of an entity a storage holds. */
export interface BackupsInStorageRequest {
  Storage: StorageDescription;
  BackupEntity: BackupEntityWire;
  /** Only the newest backup of each partition (in the time range). */
  Latest?: boolean;
  StartDateTimeFilter?: string;
  EndDateTimeFilter?: string;
}

/** One backup retention keeps or deletes, and why. */
export interface RetentionDecisionWire {
  BackupId: string;
  BackupType: 'Full' | 'Incremental';
  BackupChainId: string;
  BackupLocation: string;
  CreationTimeUtc: string;
  Reason: string;
}

/** What GetRetentionPlan answers: the plan a run would carry out now, and when one runs. */
export interface RetentionPlanWire {
  PartitionId: string;
  PolicyName: string;
  RetentionDuration: string;
  MinimumNumberOfBackups: number;
  CutoffUtc: string;
  LastRunUtc: string | null;
  NextRunUtc: string;
  LastError: string | null;
  Keep: RetentionDecisionWire[];
  Delete: RetentionDecisionWire[];
}

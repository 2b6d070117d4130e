/**
 * The REST shapes the use cases answer with, in Service Fabric's spelling.
 * TODO(issue 20): these move to src/wire.
 */
import type { PartitionInfo } from '../core/partitioning.ts';

export const ZERO_TIME = '0001-01-01T00:00:00Z';
export const EMPTY_ID = '00000000-0000-0000-0000-000000000000';

export interface BackupProgress {
  BackupState: string;
  TimeStampUtc: string;
  BackupId: string;
  BackupLocation: string;
  EpochOfLastBackupRecord: { DataLossVersion: string; ConfigurationVersion: string } | null;
  LsnOfLastBackupRecord: string;
  FailureError: { Code: string; Message: string } | null;
}

export interface RestoreProgress {
  RestoreState: string;
  TimeStampUtc: string;
  RestoredEpoch: { DataLossVersion: string; ConfigurationVersion: string } | null;
  RestoredLsn: string;
  FailureError: { Code: string; Message: string } | null;
}

export interface ListFilter {
  readonly latest: boolean;
  readonly start?: Date;
  readonly end?: Date;
}

/** The wire form of one backup (Service Fabric's BackupInfo). */
export interface BackupInfoWire {
  BackupId: string;
  BackupChainId: string;
  ApplicationName: string;
  ServiceName: string;
  PartitionInformation: Record<string, string>;
  BackupLocation: string;
  BackupType: string;
  EpochOfLastBackupRecord: { DataLossVersion: string; ConfigurationVersion: string };
  LsnOfLastBackupRecord: string;
  CreationTimeUtc: string;
  ServiceManifestVersion: string;
  FailureError: null;
}

export function wireTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

export function partitionInformationWire(id: string, info: PartitionInfo): Record<string, string> {
  switch (info.kind) {
    case 'Singleton': return { ServicePartitionKind: 'Singleton', Id: id };
    case 'Named': return { ServicePartitionKind: 'Named', Id: id, Name: info.name };
    case 'Int64Range': return { ServicePartitionKind: 'Int64Range', Id: id, LowKey: info.lowKey.toString(), HighKey: info.highKey.toString() };
  }
}

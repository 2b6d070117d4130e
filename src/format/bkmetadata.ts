/**
 * The `.bkmetadata` object: what enumeration and restore need to know of a stored backup without
 * reading its data. Written after the data object, so its presence is the commit point.
 */
import { createHash } from 'node:crypto';
import { LifeboatError } from '../core/errors.ts';
import { type PartitionInfo, partitionInfoFromJson, partitionInfoToJson } from '../core/partitioning.ts';

export const BKMETADATA_VERSION = 1;

export interface StoredBackupMetadata {
  readonly BackupId: string;
  readonly BackupChainId: string;
  /** Empty for a full backup (as Service Fabric writes it). */
  readonly ParentBackupId: string;
  readonly ParentBackupLocation: string;
  readonly BackupLocation: string;
  readonly BackupType: 'Full' | 'Incremental';
  readonly ApplicationName: string;
  readonly ServiceName: string;
  readonly PartitionId: string;
  readonly PartitionInformation: PartitionInfo;
  readonly EpochOfLastBackupRecord: { readonly DataLossVersion: string; readonly ConfigurationVersion: string };
  readonly LsnOfLastBackupRecord: string;
  readonly FirstLsn: string;
  readonly CreationTimeUtc: string;
  readonly ServiceManifestVersion: string;
  readonly DataSize: number;
  readonly DataSha256: string;
}

export function encodeBkMetadata(m: StoredBackupMetadata): Buffer {
  const body = { Version: BKMETADATA_VERSION, ...m, PartitionInformation: partitionInfoToJson(m.PartitionInformation) };
  const text = JSON.stringify(body);
  return Buffer.from(`${JSON.stringify({ Body: body, Sha256: createHash('sha256').update(text).digest('hex') })}\n`);
}

export function decodeBkMetadata(bytes: Buffer, where: string): StoredBackupMetadata {
  const bad = (why: string): LifeboatError => new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup metadata ${where} is damaged: ${why}.`);
  let outer: { Body?: Record<string, unknown>; Sha256?: unknown };
  try {
    outer = JSON.parse(bytes.toString('utf8')) as typeof outer;
  } catch {
    throw bad('not JSON');
  }
  const b = outer.Body;
  if (!b || createHash('sha256').update(JSON.stringify(b)).digest('hex') !== outer.Sha256) throw bad('checksum mismatch');
  if (b.Version !== BKMETADATA_VERSION) throw bad(`version ${String(b.Version)} is not one this Lifeboat reads`);
  try {
    const e = b.EpochOfLastBackupRecord as Record<string, unknown>;
    const type = b.BackupType;
    if (type !== 'Full' && type !== 'Incremental') throw new Error('BackupType');
    return {
      BackupId: String(b.BackupId), BackupChainId: String(b.BackupChainId), ParentBackupId: String(b.ParentBackupId ?? ''),
      ParentBackupLocation: String(b.ParentBackupLocation ?? ''), BackupLocation: String(b.BackupLocation), BackupType: type,
      ApplicationName: String(b.ApplicationName), ServiceName: String(b.ServiceName), PartitionId: String(b.PartitionId),
      PartitionInformation: partitionInfoFromJson(b.PartitionInformation),
      EpochOfLastBackupRecord: { DataLossVersion: String(e.DataLossVersion), ConfigurationVersion: String(e.ConfigurationVersion) },
      LsnOfLastBackupRecord: String(b.LsnOfLastBackupRecord), FirstLsn: String(b.FirstLsn), CreationTimeUtc: String(b.CreationTimeUtc),
      ServiceManifestVersion: String(b.ServiceManifestVersion ?? ''), DataSize: Number(b.DataSize), DataSha256: String(b.DataSha256),
    };
  } catch {
    throw bad('a field is missing or malformed');
  }
}

/**
 * The `.bkmetadata` object: what enumeration and restore need to know of a stored backup without
 * reading its data, and (encrypted backups) the wrapped data key. Written after the data object,
 * so its presence is the commit point. Version 2 is written; versions 1 and 2 are read. The layout
 * is in docs/backup-format.md.
 */
import { createHash } from 'node:crypto';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { type PartitionInfo, partitionInfoFromJson, partitionInfoToJson } from '../core/partitioning.ts';
import { type WrappedDataKey, checkWrappedDataKey } from './lbk2-keys.ts';

/** The version written. 2: the data is `.lbk` version 2 (and may be encrypted), so an older Lifeboat skips it rather than fail on it. */
export const BKMETADATA_VERSION = 2;
const READABLE_VERSIONS: ReadonlySet<unknown> = new Set([1, 2]);

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
  /** Bytes and SHA-256 (hex) of the data object. */
  readonly DataSize: number;
  readonly DataSha256: string;
  /** The data key of an encrypted backup, wrapped under a keyring key; absent when not encrypted. */
  readonly Encryption?: WrappedDataKey;
}

function seal(body: Record<string, unknown>): Buffer {
  // The checksum covers JSON.stringify of the body, which a reader recomputes from the parsed body.
  const text = JSON.stringify(body);
  return Buffer.from(`${JSON.stringify({ Body: body, Sha256: createHash('sha256').update(text).digest('hex') })}\n`);
}

/**
 * The object's bytes. `version` 1 writes what Lifeboat wrote before `.lbk` version 2 (for
 * compatibility tests); it cannot carry Encryption, which a version 1 reader would ignore.
 */
export function encodeBkMetadata(m: StoredBackupMetadata, version: 1 | 2 = BKMETADATA_VERSION): Buffer {
  invalidArgUnless(version === 2 || m.Encryption === undefined, 'A version 1 .bkmetadata cannot carry Encryption.');
  return seal({ Version: version, ...m, PartitionInformation: partitionInfoToJson(m.PartitionInformation) });
}

function corrupt(where: string, why: string): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup metadata ${where} is damaged: ${why}.`);
}

/** The checked Body of a `.bkmetadata` (checksum and version), as parsed. */
function checkedBody(bytes: Buffer, where: string): Record<string, unknown> {
  let outer: { Body?: Record<string, unknown>; Sha256?: unknown };
  try {
    outer = JSON.parse(bytes.toString('utf8')) as typeof outer;
  } catch {
    throw corrupt(where, 'not JSON');
  }
  const b = outer?.Body;
  if (!b || typeof b !== 'object' || createHash('sha256').update(JSON.stringify(b)).digest('hex') !== outer.Sha256) throw corrupt(where, 'checksum mismatch');
  if (!READABLE_VERSIONS.has(b.Version)) throw corrupt(where, `version ${String(b.Version)} is not one this Lifeboat reads`);
  return b;
}

export function decodeBkMetadata(bytes: Buffer, where: string): StoredBackupMetadata {
  const b = checkedBody(bytes, where);
  let m: StoredBackupMetadata;
  try {
    const e = b.EpochOfLastBackupRecord as Record<string, unknown>;
    const type = b.BackupType;
    if (type !== 'Full' && type !== 'Incremental') throw new Error('BackupType');
    m = {
      BackupId: String(b.BackupId), BackupChainId: String(b.BackupChainId), ParentBackupId: String(b.ParentBackupId ?? ''),
      ParentBackupLocation: String(b.ParentBackupLocation ?? ''), BackupLocation: String(b.BackupLocation), BackupType: type,
      ApplicationName: String(b.ApplicationName), ServiceName: String(b.ServiceName), PartitionId: String(b.PartitionId),
      PartitionInformation: partitionInfoFromJson(b.PartitionInformation),
      EpochOfLastBackupRecord: { DataLossVersion: String(e.DataLossVersion), ConfigurationVersion: String(e.ConfigurationVersion) },
      LsnOfLastBackupRecord: String(b.LsnOfLastBackupRecord), FirstLsn: String(b.FirstLsn), CreationTimeUtc: String(b.CreationTimeUtc),
      ServiceManifestVersion: String(b.ServiceManifestVersion ?? ''), DataSize: Number(b.DataSize), DataSha256: String(b.DataSha256),
    };
  } catch {
    throw corrupt(where, 'a field is missing or malformed');
  }
  if (b.Encryption === undefined || b.Encryption === null) return m;
  // Its own message says what is wrong with the record (LIFEBOAT_E_BACKUP_CORRUPT).
  return { ...m, Encryption: checkWrappedDataKey(b.Encryption, `Backup metadata ${where}`) };
}

/**
 * The same `.bkmetadata` with its wrapped data key replaced (key rotation): every other field is
 * kept exactly as stored, unknown ones included, and the checksum is recomputed. The original is
 * checked first (LIFEBOAT_E_BACKUP_CORRUPT), so damage is never sealed with a fresh checksum.
 */
export function withEncryption(bytes: Buffer, where: string, record: WrappedDataKey): Buffer {
  const body = checkedBody(bytes, where);
  decodeBkMetadata(bytes, where);
  return seal({ ...body, Version: BKMETADATA_VERSION, Encryption: checkWrappedDataKey(record, 'The new wrapped data key') });
}

/**
 * The `.bkmetadata` object: what enumeration and restore need to know of a stored backup without
 * reading its data, and (encrypted backups) the wrapped data key. Written after the data object,
 * so its presence is the commit point. Version 2 is written; versions 1 and 2 are read. The layout
 * is in docs/backup-format.md.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { type PartitionInfo, partitionInfoFromJson, partitionInfoToJson } from '../core/partitioning.ts';
import { type WrappedDataKey, checkWrappedDataKey } from './lbk2/keys.ts';
import { hashingReader } from '../fs/streams.ts';

/**
 * The version written. 2: the data is `.lbk` version 2 (and may be encrypted); 3: the data is
 * checked by DataFramesSha256 instead of DataSha256. A Lifeboat that does not know a version
 * skips the backup rather than fail on it.
 */
export const BKMETADATA_VERSION = 3;
const READABLE_VERSIONS: ReadonlySet<unknown> = new Set([1, 2, 3]);

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
  /** Bytes of the data object. */
  readonly DataSize: number;
  /**
   * What the data object is checked against: its frames digest (`.lbk` version 2; what Lifeboat
   * writes), or the SHA-256 of all its bytes (what it wrote before, and always for version 1).
   * A `.bkmetadata` has one of them.
   */
  readonly DataFramesSha256?: string;
  readonly DataSha256?: string;
  /** The data key of an encrypted backup, wrapped under a keyring key; absent when not encrypted. */
  readonly Encryption?: WrappedDataKey;
}

function seal(body: Record<string, unknown>): Buffer {
  // The checksum covers JSON.stringify of the body, which a reader recomputes from the parsed body.
  const text = JSON.stringify(body);
  return Buffer.from(`${JSON.stringify({ Body: body, Sha256: createHash('sha256').update(text).digest('hex') })}\n`);
}

/**
 * The object's bytes. Versions 1 and 2 write what Lifeboat wrote before (for compatibility
 * tests): they carry DataSha256, and version 1 no Encryption, which a version 1 reader would ignore.
 */
export function encodeBkMetadata(m: StoredBackupMetadata, version: 1 | 2 | 3 = BKMETADATA_VERSION): Buffer {
  invalidArgUnless(version !== 1 || m.Encryption === undefined, 'A version 1 .bkmetadata cannot carry Encryption.');
  invalidArgUnless(version === 3 || (m.DataSha256 !== undefined && m.DataFramesSha256 === undefined), `A version ${version} .bkmetadata records DataSha256, not DataFramesSha256.`);
  invalidArgUnless((m.DataSha256 === undefined) !== (m.DataFramesSha256 === undefined), 'A .bkmetadata records DataFramesSha256 or DataSha256, one of them.');
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

function digestText(v: unknown): string {
  if (typeof v !== 'string') throw new Error('digest');
  return v;
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
      ServiceManifestVersion: String(b.ServiceManifestVersion ?? ''), DataSize: Number(b.DataSize),
      ...(b.DataFramesSha256 !== undefined ? { DataFramesSha256: digestText(b.DataFramesSha256) } : { DataSha256: digestText(b.DataSha256) }),
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
  // At least 2 (it carries Encryption now); a version 2 stays 2, so what read it still does.
  return seal({ ...body, Version: Math.max(2, Number(body.Version)), Encryption: checkWrappedDataKey(record, 'The new wrapped data key') });
}

/** Checks a data object against its `.bkmetadata` while a decoder or verifier reads it. */
export interface DataObjectCheck {
  /** The object, to read through (hashed on the way only against a DataSha256). */
  readonly stream: Readable;
  /** Once the reader has read all of it: what does not match the metadata, or undefined. */
  mismatch(read: { readonly storedBytes: number; readonly framesSha256?: string | undefined }): string | undefined;
}

/**
 * How to check `source` against `m`: by the frames digest the decoder computes (no second pass
 * over the payloads), or, for a backup whose metadata records DataSha256, by hashing every byte.
 */
export function dataObjectCheck(m: StoredBackupMetadata, source: Readable): DataObjectCheck {
  if (m.DataFramesSha256 !== undefined) {
    const want = m.DataFramesSha256;
    return {
      stream: source,
      mismatch: (read) => (read.storedBytes !== m.DataSize || read.framesSha256 !== want
        ? `it is ${read.storedBytes} bytes with other frames than its metadata records (DataSize ${m.DataSize}, DataFramesSha256)` : undefined),
    };
  }
  const hashed = hashingReader(source);
  return {
    stream: hashed.stream,
    mismatch: () => {
      const got = hashed.digest();
      return got.bytes !== m.DataSize || got.sha256 !== m.DataSha256
        ? `it is ${got.bytes} bytes with another SHA-256 than its metadata records (DataSize ${m.DataSize}, DataSha256)` : undefined;
    },
  };
}

/**
 * A replica backup folder, as the state library writes it and restore reads it:
 *
 *   backup.metadata   JSON describing the backup, with the SHA-256 of each data file and of itself;
 *                     written last (atomically), so a folder without it is not a backup
 *   data.sqlite       full backup: a consistent copy of the partition's database
 *   changes.log       incremental backup: the changes since the previous backup (changelog-codec.ts)
 *
 * The layout is specified in docs/replica-backup.md.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupOption, ChainLink } from '../core/backup-chain.ts';
import type { Epoch } from '../core/epoch.ts';
import { LifeboatError } from '../core/errors.ts';
import { type PartitionInfo, partitionInfoFromJson, partitionInfoToJson } from '../core/partitioning.ts';
import { writeFileAtomic } from './files.ts';

export const METADATA_FILE = 'backup.metadata';
export const FULL_DATA_FILE = 'data.sqlite';
export const INCREMENTAL_DATA_FILE = 'changes.log';
export const METADATA_FORMAT = 'lifeboat-replica-backup';
export const METADATA_VERSION = 1;

export interface BackupFile {
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** What a backup is: handed to the backup callback, and read back by restore. */
export interface BackupInfo extends ChainLink {
  readonly option: BackupOption;
  readonly serviceName: string;
  readonly partitionId: string;
  readonly partitionInfo: PartitionInfo;
  /** Number of change records in an incremental (0 for a full backup). */
  readonly recordCount: number;
  /** Bytes of change log in this incremental (0 for a full backup). */
  readonly logBytes: number;
  /** Bytes of change log held by the incrementals of this chain up to and including this one. */
  readonly chainLogBytes: number;
  /** When the backup was taken, ISO-8601 UTC. */
  readonly takenAtUtc: string;
  readonly files: readonly BackupFile[];
  /** The folder the backup is in. */
  readonly directory: string;
}

type StoredMetadata = Omit<BackupInfo, 'directory'>;

function toJson(m: StoredMetadata): Record<string, unknown> {
  return {
    format: METADATA_FORMAT,
    version: METADATA_VERSION,
    backupId: m.backupId,
    parentBackupId: m.parentBackupId,
    backupChainId: m.backupChainId,
    option: m.option,
    epoch: { dataLossVersion: m.epoch.dataLossVersion.toString(), configurationVersion: m.epoch.configurationVersion.toString() },
    firstLsn: m.firstLsn.toString(),
    lastLsn: m.lastLsn.toString(),
    serviceName: m.serviceName,
    partitionId: m.partitionId,
    partitionInfo: partitionInfoToJson(m.partitionInfo),
    recordCount: m.recordCount,
    logBytes: m.logBytes,
    chainLogBytes: m.chainLogBytes,
    takenAtUtc: m.takenAtUtc,
    files: m.files.map((f) => ({ name: f.name, bytes: f.bytes, sha256: f.sha256 })),
  };
}

const digest = (body: string): string => createHash('sha256').update(body).digest('hex');

/** The text of a `backup.metadata` file. */
export function backupMetadataText(m: StoredMetadata): string {
  const body = JSON.stringify(toJson(m));
  // The checksum covers the exact bytes of the body, so no canonical form is needed to check it.
  return `${JSON.stringify({ body: JSON.parse(body) as unknown, sha256: digest(body) })}\n`;
}

export async function writeBackupMetadata(folder: string, m: StoredMetadata): Promise<void> {
  await writeFileAtomic(join(folder, METADATA_FILE), backupMetadataText(m));
}

function bad(folder: string, what: string): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup metadata in ${folder} is damaged: ${what}.`);
}

export async function readBackupMetadata(folder: string): Promise<BackupInfo> {
  let text: string;
  try {
    text = await readFile(join(folder, METADATA_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LifeboatError('E_INVALIDARG', `${folder} holds no backup (no ${METADATA_FILE}).`);
    }
    throw err;
  }
  return parseBackupMetadata(text, folder);
}

/**
 * Reads the text of a `backup.metadata` file; `folder` is where the backup is (or, for one
 * streamed from storage, the name of the object), for messages and BackupInfo.directory.
 */
export function parseBackupMetadata(text: string, folder: string): BackupInfo {
  let outer: { body?: unknown; sha256?: unknown };
  try {
    outer = JSON.parse(text) as typeof outer;
  } catch {
    throw bad(folder, 'not JSON');
  }
  const bodyText = JSON.stringify(outer.body);
  if (typeof outer.sha256 !== 'string' || digest(bodyText) !== outer.sha256) throw bad(folder, 'checksum mismatch');
  const b = outer.body as Record<string, unknown>;
  if (b.format !== METADATA_FORMAT) throw bad(folder, `unknown format ${String(b.format)}`);
  if (b.version !== METADATA_VERSION) {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup in ${folder} has metadata version ${String(b.version)}; this Lifeboat reads version ${METADATA_VERSION}.`);
  }
  try {
    const e = b.epoch as Record<string, string>;
    const epoch: Epoch = { dataLossVersion: BigInt(e.dataLossVersion ?? ''), configurationVersion: BigInt(e.configurationVersion ?? '') };
    const option = b.option;
    if (option !== 'Full' && option !== 'Incremental') throw new Error('option');
    return {
      backupId: String(b.backupId),
      parentBackupId: String(b.parentBackupId),
      backupChainId: String(b.backupChainId),
      option,
      epoch,
      firstLsn: BigInt(String(b.firstLsn)),
      lastLsn: BigInt(String(b.lastLsn)),
      serviceName: String(b.serviceName),
      partitionId: String(b.partitionId),
      partitionInfo: partitionInfoFromJson(b.partitionInfo),
      recordCount: Number(b.recordCount),
      logBytes: Number(b.logBytes),
      chainLogBytes: Number(b.chainLogBytes),
      takenAtUtc: String(b.takenAtUtc),
      files: (b.files as Array<Record<string, unknown>>).map((f) => ({ name: String(f.name), bytes: Number(f.bytes), sha256: String(f.sha256) })),
      directory: folder,
    };
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw bad(folder, 'a field is missing or malformed');
  }
}

/**
 * Finds the backup folders in `sources`: each source is a backup folder, or a folder searched
 * recursively for backup folders (as Service Fabric's RestoreAsync does).
 */
export async function findBackupFolders(sources: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.isFile() && e.name === METADATA_FILE)) {
      found.push(dir);
      return;
    }
    for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) await visit(join(dir, e.name));
  };
  for (const source of sources) {
    let s;
    try {
      s = await stat(source);
    } catch {
      throw new LifeboatError('E_INVALIDARG', `Backup folder ${source} does not exist.`);
    }
    if (!s.isDirectory()) throw new LifeboatError('E_INVALIDARG', `${source} is not a folder.`);
    const before = found.length;
    await visit(source);
    // A folder named on purpose that holds no backup (e.g. an interrupted one) is a mistake to report.
    if (found.length === before) throw new LifeboatError('E_INVALIDARG', `${source} holds no backup (no ${METADATA_FILE} in it or below it).`);
  }
  return [...new Set(found)];
}

export function fileOf(info: BackupInfo, name: string): BackupFile {
  const f = info.files.find((x) => x.name === name);
  if (!f) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup ${info.backupId} in ${info.directory} lists no ${name}.`);
  return f;
}

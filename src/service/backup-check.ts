/**
 * Checking stored backups without restoring them: a backup's chain read from the `.bkmetadata`
 * objects (parent links, chain ids, LSNs, one DataLossVersion, one partition), and each data
 * object streamed through the `.lbk` reader (every block's SHA-256; with the key, its
 * authentication and contents) and compared with the size and SHA-256 its metadata records.
 * The first problem is thrown, naming the object and where in it. Memory stays flat: objects are
 * streamed, never held.
 */
import { type ChainLink, planRestoreChain } from '../core/backup-chain.ts';
import { metadataKeyOf, normalizeLocation } from '../core/backup-layout.ts';
import { LifeboatError, isLifeboatError } from '../core/errors.ts';
import { type StoredBackupMetadata, dataObjectCheck, decodeBkMetadata } from '../format/bkmetadata.ts';
import { type ArchiveSummary, type BlockRunner, type Keyring, verifyArchive } from '../format/lbk2/index.ts';
import type { BlobStore } from '../storage/port.ts';
import type { CheckedBackupWire } from '../wire/index.ts';
import { readAll } from '../fs/streams.ts';

/** A backup as its `.bkmetadata` describes it, and where that is. */
export interface ChainEntry {
  /** The data key (BackupLocation), normalized. */
  readonly location: string;
  readonly metadata: StoredBackupMetadata;
}

/** The `.bkmetadata` of the backup at `location`; LIFEBOAT_E_STORAGE_NOT_FOUND when there is none. */
export async function readBackupMetadataAt(store: BlobStore, location: string): Promise<ChainEntry> {
  const key = metadataKeyOf(location);
  const bytes = await readAll(await store.get(key)).catch((err: unknown) => {
    if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) throw new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `No backup at ${location} in ${store.description}.`);
    throw err;
  });
  return { location: normalizeLocation(location), metadata: decodeBkMetadata(bytes, `${store.description}/${key}`) };
}

function broken(message: string): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN', message);
}

/** A chain rule's view of a stored backup (a full backup's parent is itself, as the chain rules have it). */
function linkOf(store: BlobStore, e: ChainEntry): ChainLink & { entry: ChainEntry } {
  const m = e.metadata;
  try {
    return {
      entry: e, backupId: m.BackupId, parentBackupId: m.BackupType === 'Full' && m.ParentBackupId === '' ? m.BackupId : m.ParentBackupId,
      backupChainId: m.BackupChainId, option: m.BackupType,
      epoch: { dataLossVersion: BigInt(m.EpochOfLastBackupRecord.DataLossVersion), configurationVersion: BigInt(m.EpochOfLastBackupRecord.ConfigurationVersion) },
      firstLsn: BigInt(m.FirstLsn), lastLsn: BigInt(m.LsnOfLastBackupRecord),
    };
  } catch {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup metadata ${store.description}/${metadataKeyOf(e.location)} is damaged: an epoch or LSN is not a number.`);
  }
}

/**
 * The chain that ends in `target`, full backup first, read by following ParentBackupLocation:
 * each parent must be there and be the backup named. LIFEBOAT_E_BACKUP_CHAIN_BROKEN (a parent
 * missing or another backup than named) or LIFEBOAT_E_BACKUP_CORRUPT (a metadata object damaged).
 */
export async function readChain(store: BlobStore, target: ChainEntry): Promise<ChainEntry[]> {
  const chain: ChainEntry[] = [target];
  for (let cur = target; cur.metadata.BackupType === 'Incremental';) {
    const m = cur.metadata;
    if (chain.length > 10_000) throw broken(`The chain of ${target.metadata.BackupId} does not end in a full backup.`);
    let parentLocation: string;
    try {
      parentLocation = normalizeLocation(m.ParentBackupLocation);
    } catch {
      throw broken(`Incremental backup ${m.BackupId} at ${cur.location} names no valid parent location (ParentBackupLocation '${m.ParentBackupLocation}').`);
    }
    const parent = await readBackupMetadataAt(store, parentLocation).catch((err: unknown) => {
      if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) {
        throw broken(`Backup ${m.BackupId} at ${cur.location} follows ${m.ParentBackupId} at ${parentLocation}, which is not in ${store.description}: the chain has a gap.`);
      }
      throw err;
    });
    if (parent.metadata.BackupId.toLowerCase() !== m.ParentBackupId.toLowerCase()) {
      throw broken(`Backup ${m.BackupId} at ${cur.location} follows ${m.ParentBackupId}, but the backup at ${parentLocation} is ${parent.metadata.BackupId}.`);
    }
    chain.unshift(parent);
    cur = parent;
  }
  return chain;
}

/**
 * Checks a chain read by readChain as restore will check it (core/backup-chain): the full backup
 * is its own parent and chain, one chain id, one partition, one DataLossVersion, LSNs that continue.
 */
export function checkChain(store: BlobStore, chain: readonly ChainEntry[]): void {
  const full = chain[0] as ChainEntry;
  const target = chain[chain.length - 1] as ChainEntry;
  for (const e of chain) {
    if (e.metadata.PartitionId !== full.metadata.PartitionId) {
      throw broken(`Backup ${e.metadata.BackupId} at ${e.location} is of partition ${e.metadata.PartitionId}; its chain's full backup ${full.metadata.BackupId} of ${full.metadata.PartitionId}.`);
    }
  }
  const plan = planRestoreChain(chain.map((e) => linkOf(store, e)));
  if (plan.chain.length !== chain.length) {
    const off = plan.dropped[0]?.backup.entry ?? target;
    throw broken(`Backup ${off.metadata.BackupId} at ${off.location} is not on the chain from full backup ${full.metadata.BackupId} to ${target.metadata.BackupId}.`);
  }
}

/** What the check found of one backup: VerifyBackup's wire form. */
export type CheckedBackup = CheckedBackupWire;

function corrupt(where: string, what: string): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is damaged: ${what}.`);
}

/**
 * Streams one backup's data object through the `.lbk` reader and compares it with its metadata.
 * With a keyring, an encrypted backup's blocks are authenticated and its contents checked; a
 * keyring without the backup's key id is LIFEBOAT_E_ENCRYPTION_KEY_MISSING (a restore would fail).
 * Without a keyring, the stored bytes and the structure are checked, and the answer says so.
 */
export async function checkBackupData(store: BlobStore, e: ChainEntry, keyring: Keyring | undefined, workers: BlockRunner): Promise<CheckedBackup> {
  const m = e.metadata;
  const where = `${store.description}/${e.location}`;
  const source = await store.get(e.location).catch((err: unknown) => {
    if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is missing; its metadata is there.`);
    throw err;
  });
  const check = dataObjectCheck(m, source);
  let summary: ArchiveSummary;
  try {
    summary = await verifyArchive(check.stream, where, { encryption: m.Encryption, keyring: m.Encryption ? keyring : undefined, workers });
  } finally {
    source.destroy();
  }
  const mismatch = check.mismatch(summary);
  if (mismatch !== undefined) throw corrupt(where, mismatch);
  if (summary.encrypted && !m.Encryption) throw corrupt(where, 'it is encrypted, but its metadata holds no wrapped data key (Body.Encryption)');
  return {
    BackupId: m.BackupId, BackupLocation: e.location, BackupType: m.BackupType, Version: summary.version, Files: summary.files, Blocks: summary.blocks,
    StoredBytes: summary.storedBytes, Encrypted: summary.encrypted, ContentsChecked: summary.contentsChecked, Authenticated: summary.authenticated,
  };
}

/**
 * Restoring a partition from a backup chain, as free functions: finding and checking the chain
 * (planned from folders, or checked link by link as a staged chain arrives), building the next
 * generation from it (the full backup's database copied or streamed in, each incremental
 * replayed, checksums compared), ready for Partition.restore to commit by switching `state.json`.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { planRestoreChain } from '../core/backup-chain.ts';
import type { Epoch } from '../core/epoch.ts';
import { LifeboatError, invalidArgUnless, isLifeboatError } from '../core/errors.ts';
import {
  type BackupInfo, FULL_DATA_FILE, INCREMENTAL_DATA_FILE, fileOf, findBackupFolders, readBackupMetadata,
} from './backup-folder.ts';
import { type ChangeRecord, decodeChangeLog } from './changelog-codec.ts';
import { type CopiedFile, HashingStream, copyFileHashed, fsyncPath, writeStreamHashed } from './files.ts';
import { writeNewFile } from '../fs/sync-behind.ts';
import { type Durability, Store, openDatabase } from './store.ts';

export type RestorePolicy = 'Safe' | 'Force';

export interface RestoreOptions {
  /** Safe (default) refuses a backup that is not newer than the partition's state; Force does not. */
  readonly policy?: RestorePolicy;
}

export interface RestoreResult {
  readonly restoredEpoch: Epoch;
  readonly restoredLsn: bigint;
  /** BackupIds applied, the full backup first. */
  readonly chain: readonly string[];
  readonly dropped: ReadonlyArray<{ readonly backupId: string; readonly reason: string }>;
}

/**
 * A full backup read as a stream, e.g. decoded from storage as it downloads: restored without a
 * local copy. Only as the first link of a chain given link by link.
 */
export interface StreamedFullBackup {
  /** The bytes of its `data.sqlite`, in order; each chunk may be reused once the next is asked for. */
  readonly data: AsyncIterable<Uint8Array>;
  /**
   * The SHA-256 (hex) of exactly the bytes `data` yielded, from a source that hashes them anyway
   * (a decoder checking the backup's own digests): given, the restore compares it with the
   * metadata instead of hashing a second time. It may settle once `data` has ended.
   */
  readonly dataSha256?: PromiseLike<string>;
  /**
   * Its `backup.metadata`, once the whole backup has been read and checked (it may come after the
   * data): the restore compares the data with it, and commits only after it resolves.
   */
  readonly metadata: PromiseLike<BackupInfo>;
  /**
   * Write the data file with O_DIRECT where its chunks allow (views on an aligned region, as the
   * backup decoder's are: src/fs/direct-io.ts), past the page cache; default true.
   */
  readonly directWrite?: boolean;
}

/**
 * A backup folder, or a promise of one (a download under way), or a full backup as a stream. A
 * list with promises or a stream is the chain itself, full backup first: each link is awaited
 * only when its turn to be applied comes.
 */
export type RestoreSource = string | PromiseLike<string> | StreamedFullBackup;

const APPLY_BATCH_RECORDS = 5000;

/** The links of a restore chain, full backup first; undefined past the last. */
export interface ChainSource {
  next(index: number): Promise<BackupInfo | undefined>;
  /** The chain arrives link by link (so Safe is checked once the last is known). */
  readonly staged: boolean;
  /** The full backup's data as a stream; its metadata is then `next(0)`, known after the data. */
  readonly streamedFull?: StreamedFullBackup | undefined;
}

function isPromiseLike(v: unknown): v is PromiseLike<string> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export function isStreamedFull(v: unknown): v is StreamedFullBackup {
  return typeof v === 'object' && v !== null && !isPromiseLike(v) && isPromiseLike((v as StreamedFullBackup).metadata)
    && typeof (v as StreamedFullBackup).data?.[Symbol.asyncIterator] === 'function';
}

/**
 * Checks what `Partition.restore` was given and returns it as a list: folders, promises of
 * folders, and a streamed full backup only as the first.
 */
export function restoreSourceList(sources: string | readonly RestoreSource[]): RestoreSource[] {
  const list = typeof sources === 'string' ? [sources] : [...sources];
  invalidArgUnless(list.length > 0 && list.every((s, i) => (typeof s === 'string' && s.length > 0) || isPromiseLike(s) || (i === 0 && isStreamedFull(s))),
    'Give at least one backup folder to restore from (a streamed full backup only as the first).');
  // A later source may fail while an earlier one is applied: that failure is reported when its turn comes.
  for (const s of list) if (typeof s !== 'string') Promise.resolve(isStreamedFull(s) ? s.metadata : s).catch(() => undefined);
  return list;
}

/**
 * The links of a chain given in order as folders, promises of folders or (the first) a stream,
 * one backup each. Each is checked against those before it as it arrives: the chain planned from
 * the links so far must be exactly them, in the order given.
 */
function stagedChain(sources: readonly RestoreSource[]): ChainSource['next'] {
  const seen: BackupInfo[] = [];
  return async (index) => {
    if (index >= sources.length) return undefined;
    const source = sources[index] as RestoreSource;
    const info = isStreamedFull(source) ? await source.metadata : await readBackupMetadata(await source);
    seen.push(info);
    const plan = planRestoreChain(seen);
    if (plan.dropped.length > 0 || plan.chain[plan.chain.length - 1] !== info) {
      const prev = seen[index - 1];
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN',
        `Backup ${info.backupId} (link ${index + 1} of the chain given) does not continue ${prev ? `backup ${prev.backupId}` : 'the chain'}: it follows ${info.parentBackupId}.`);
    }
    return info;
  };
}

/**
 * The chain to restore from backup folders: they are searched and the chain planned from all
 * their backups now, and `refuseUnlessSafe` is given its target before anything changes.
 */
export async function plannedChain(folders: readonly string[], refuseUnlessSafe: (target: BackupInfo) => void): Promise<{ links: ChainSource; dropped: RestoreResult['dropped'] }> {
  const found = await findBackupFolders(folders);
  const plan = planRestoreChain(await Promise.all(found.map((f) => readBackupMetadata(f))));
  refuseUnlessSafe(plan.chain[plan.chain.length - 1] as BackupInfo);
  return {
    links: { next: async (i) => plan.chain[i], staged: false },
    dropped: plan.dropped.map((d) => ({ backupId: d.backup.backupId, reason: d.reason })),
  };
}

/** The chain given link by link (a list with promises or a stream): checked as each link arrives. */
export function stagedChainOf(sources: readonly RestoreSource[]): { links: ChainSource; dropped: RestoreResult['dropped'] } {
  const first = sources[0];
  return { links: { next: stagedChain(sources), staged: true, streamedFull: isStreamedFull(first) ? first : undefined }, dropped: [] };
}

/** The partition a generation is built for: its id (written into the database), folder and durability. */
export interface PartitionFiles {
  readonly partitionId: string;
  readonly dir: string;
  readonly durability: Durability;
}

/**
 * Writes the restored database into `file`: the full backup's copy, then each incremental
 * replayed, taking the links one by one from `links`; returns the chain and the new epoch.
 */
export async function buildRestoredGeneration(partition: PartitionFiles, file: string, links: ChainSource, epochFor: (target: BackupInfo) => Epoch): Promise<{ chain: BackupInfo[]; epoch: Epoch }> {
  let full: BackupInfo;
  let copy: CopiedFile;
  if (links.streamedFull) {
    // Written as it arrives; its metadata (known once all of it was read and checked) follows.
    const { data, dataSha256, directWrite } = links.streamedFull;
    const direct = { direct: directWrite ?? true };
    copy = dataSha256 ? { bytes: await writeNewFile(file, data, undefined, direct), sha256: await dataSha256 } : await writeStreamHashed(data, file, direct);
    full = await links.next(0) as BackupInfo;
  } else {
    const info = await links.next(0) as BackupInfo;
    full = info;
    copy = await copyFileHashed(join(info.directory, FULL_DATA_FILE), file).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Full backup ${info.backupId} in ${info.directory} has no ${FULL_DATA_FILE}.`);
      throw err;
    });
  }
  const chain: BackupInfo[] = [full];
  const expected = fileOf(full, FULL_DATA_FILE);
  if (copy.bytes !== expected.bytes || copy.sha256 !== expected.sha256) {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Full backup ${full.backupId} in ${full.directory}: ${FULL_DATA_FILE} does not match its checksum.`);
  }
  let db: Database.Database;
  let store: Store;
  try {
    db = openDatabase(file, { durability: partition.durability });
    store = new Store(db);
    const lsn = store.lastLsn();
    if (lsn !== full.lastLsn) throw new Error(`it holds LSN ${lsn}, its metadata says ${full.lastLsn}`);
  } catch (err) {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Full backup ${full.backupId} in ${full.directory} is not a readable partition database: ${(err as Error).message}.`, { cause: err });
  }
  let epoch: Epoch;
  try {
    for (let i = 1; ; i++) {
      const inc = await links.next(i);
      if (!inc) break;
      chain.push(inc);
      await replay(store, inc);
    }
    const target = chain[chain.length - 1] as BackupInfo;
    epoch = epochFor(target);
    db.transaction(() => {
      db.exec('DELETE FROM changes');
      db.prepare(`UPDATE partition_meta SET partition_id = ?, data_loss_version = ?, configuration_version = ?, write_dlv = ?, write_cv = ?,
          base_lsn = ?, log_truncated_through = ?, last_backup_id = NULL, last_backup_chain_id = NULL, last_backup_dlv = NULL,
          last_backup_cv = NULL, last_backup_lsn = NULL, chain_log_bytes = NULL WHERE singleton = 1`)
        .run(partition.partitionId, epoch.dataLossVersion, epoch.configurationVersion, epoch.dataLossVersion, epoch.configurationVersion, target.lastLsn, target.lastLsn);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  await fsyncPath(file);
  await fsyncPath(partition.dir);
  return { chain, epoch };
}

/** Replays one incremental's changes, checking its checksum and LSN range. */
async function replay(store: Store, inc: BackupInfo): Promise<void> {
  const expected = fileOf(inc, INCREMENTAL_DATA_FILE);
  const path = join(inc.directory, INCREMENTAL_DATA_FILE);
  const hashing = new HashingStream();
  const source = createReadStream(path);
  source.on('error', (err) => hashing.destroy(err));
  const chunks = source.pipe(hashing);
  const apply = store.db.transaction((batch: ChangeRecord[]) => {
    for (const r of batch) store.apply(r);
  });
  try {
    for await (const batch of decodeChangeLog(chunks as AsyncIterable<Buffer>, { file: path, firstLsn: inc.firstLsn, lastLsn: inc.lastLsn })) {
      for (let i = 0; i < batch.length; i += APPLY_BATCH_RECORDS) apply(batch.slice(i, i + APPLY_BATCH_RECORDS));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Incremental backup ${inc.backupId} in ${inc.directory} has no ${INCREMENTAL_DATA_FILE}.`);
    if (isLifeboatError(err)) throw err;
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Incremental backup ${inc.backupId} in ${inc.directory} cannot be applied: ${(err as Error).message}.`, { cause: err });
  }
  if (hashing.bytes !== expected.bytes || hashing.hash.digest('hex') !== expected.sha256) {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Incremental backup ${inc.backupId} in ${inc.directory}: ${INCREMENTAL_DATA_FILE} does not match its checksum.`);
  }
}

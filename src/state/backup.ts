/**
 * Replica backups of a partition, as free functions over what a backup reads (`BackupSource`):
 * a full backup is a consistent snapshot of the database file, taken online; an incremental is
 * the change log after the last completed backup. Either is copied into a local folder, or its
 * files are handed to a writer (the host's path: no local copy), `backup.metadata` last.
 * Partition.backup decides whether a backup may run and records it once its callback accepts it.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupOption, LastBackup } from '../core/backup-chain.ts';
import type { Epoch } from '../core/epoch.ts';
import { LifeboatError } from '../core/errors.ts';
import {
  type BackupFile, type BackupInfo, FULL_DATA_FILE, INCREMENTAL_DATA_FILE, METADATA_FILE, backupMetadataText, writeBackupMetadata,
} from './backup-folder.ts';
import { type ChangeOp, changeLogBytes, encodeHeader, encodeRecord, encodeTrailer } from './changelog-codec.ts';
import { HashingStream, PRIVATE_FILE, copyFileHashed, fsyncPath, recreateDir } from './files.ts';
import { type MetaRow, Store, openDatabase } from './store.ts';

export interface BackupOptions {
  readonly option?: BackupOption;
  /** Where to write the backup; re-created. Default: the partition's `backup/` folder. Not with `writer`. */
  readonly folder?: string;
  /**
   * Hands the backup's files to this writer as they are read, instead of copying them into a
   * folder: e.g. into an archive it uploads, so the data is read once and never written locally.
   * The partition holds the snapshot the files come from until the writer's promise settles.
   */
  readonly writer?: BackupWriter;
  /**
   * Called with the backup once it is written; the backup counts (advances the chain) only when
   * this resolves true (Service Fabric's post-backup callback). Default: accept.
   */
  readonly callback?: (info: BackupInfo) => Promise<boolean> | boolean;
}

/** A file of a backup handed to a writer (BackupOptions.writer). */
export type BackupFileSource =
  /** The first `bytes` bytes of the file at `path`, which stay unchanged until the writer's promise settles. */
  | { readonly name: string; readonly path: string; readonly bytes: number }
  /** The bytes as they are read from the partition's snapshot; read them before the writer's promise settles. */
  | { readonly name: string; readonly stream: AsyncIterable<Uint8Array> }
  /** `backup.metadata`, made from the size and SHA-256 of the data file before it, as the writer read them. */
  | { readonly name: string; readonly content: (before: readonly BackupFile[]) => Uint8Array };

/** A backup as a writer gets it: what is known before its data is read, and its files. */
export interface BackupStream {
  readonly backupId: string;
  readonly option: BackupOption;
  readonly parentBackupId: string;
  readonly backupChainId: string;
  readonly epoch: Epoch;
  readonly firstLsn: bigint;
  readonly lastLsn: bigint;
  readonly takenAtUtc: string;
  /**
   * To be read in this order, each to its end: the data file (`data.sqlite` or `changes.log`),
   * then `backup.metadata`, whose content records the data file's size and SHA-256.
   */
  readonly files: readonly BackupFileSource[];
}

/** Writes a backup's files somewhere; resolves to where (BackupInfo.directory), once all are written. */
export type BackupWriter = (backup: BackupStream) => Promise<string>;

/** What a backup reads: the partition's id (for messages), its open database and that database's file. */
export interface BackupSource {
  readonly partitionId: string;
  readonly store: Store;
  readonly file: string;
}

/** What every backup of one run records, whatever its kind. */
export type BackupCommon = Pick<BackupInfo, 'backupId' | 'epoch' | 'serviceName' | 'partitionId' | 'partitionInfo' | 'takenAtUtc'>;

function fullInfo(common: BackupCommon, lastLsn: bigint, file: BackupFile): Omit<BackupInfo, 'directory'> {
  return {
    ...common, option: 'Full', parentBackupId: common.backupId, backupChainId: common.backupId, firstLsn: 1n, lastLsn,
    recordCount: 0, logBytes: 0, chainLogBytes: 0, files: [file],
  };
}

function incrementalInfo(common: BackupCommon, base: LastBackup, lastLsn: bigint, counts: { records: number; logBytes: number }, file: BackupFile): Omit<BackupInfo, 'directory'> {
  return {
    ...common, option: 'Incremental', parentBackupId: base.backupId, backupChainId: base.backupChainId, firstLsn: base.lastLsn + 1n, lastLsn,
    recordCount: counts.records, logBytes: counts.logBytes, chainLogBytes: base.chainLogBytes + counts.logBytes, files: [file],
  };
}

/**
 * Writes the backup into `folder` (re-created): a copy of the snapshot's database file, or the
 * change log after `parent`, each with its size and SHA-256, then `backup.metadata` (atomic).
 */
export async function backupToFolder(source: BackupSource, option: BackupOption, common: BackupCommon, parent: LastBackup | undefined, folder: string): Promise<BackupInfo> {
  let info: BackupInfo;
  await recreateDir(folder);
  if (option === 'Full') {
    info = await withSnapshot(source, async (snap) => {
      const copy = await copyFileHashed(snap.file, join(folder, FULL_DATA_FILE), snap.bytes);
      return { ...fullInfo(common, snap.lastLsn, { name: FULL_DATA_FILE, ...copy }), directory: folder };
    });
  } else {
    const base = parent as LastBackup;
    info = await withChangeLog(source, base.lastLsn, async (log) => {
      const target = join(folder, INCREMENTAL_DATA_FILE);
      const hashing = new HashingStream();
      await pipeline(log.source, hashing, createWriteStream(target, { flags: 'wx', mode: PRIVATE_FILE }));
      await fsyncPath(target);
      const file = { name: INCREMENTAL_DATA_FILE, bytes: hashing.bytes, sha256: hashing.hash.digest('hex') };
      return { ...incrementalInfo(common, base, log.lastLsn, log.counts(), file), directory: folder };
    });
  }
  await writeBackupMetadata(folder, info);
  await fsyncPath(folder);
  return info;
}

/**
 * Hands the backup's files to `writer` while the snapshot they come from is held: the data file
 * (the pinned database file itself, or the change log as it is read), then `backup.metadata`
 * made from the digest the writer computed of it.
 */
export async function streamBackup(source: BackupSource, option: BackupOption, common: BackupCommon, parent: LastBackup | undefined, writer: BackupWriter): Promise<BackupInfo> {
  let made: Omit<BackupInfo, 'directory'> | undefined;
  const metadata = (name: string, bytes: number | undefined, build: (file: BackupFile) => Omit<BackupInfo, 'directory'>): BackupFileSource => ({
    name: METADATA_FILE,
    content: (before) => {
      const file = before.find((f) => f.name === name);
      if (!file || (bytes !== undefined && file.bytes !== bytes)) {
        throw new LifeboatError('E_FAIL', `The backup writer of partition ${source.partitionId} read ${file ? `${file.bytes} bytes of ${name}, not ${bytes}` : `no ${name}`} before ${METADATA_FILE}.`);
      }
      made = build({ name: file.name, bytes: file.bytes, sha256: file.sha256 });
      return Buffer.from(backupMetadataText(made));
    },
  });
  const written = async (stream: BackupStream): Promise<BackupInfo> => {
    const directory = await writer(stream);
    if (!made) throw new LifeboatError('E_FAIL', `The backup writer of partition ${source.partitionId} did not write ${METADATA_FILE}.`);
    return { ...made, directory };
  };
  const head = { backupId: common.backupId, option, epoch: common.epoch, takenAtUtc: common.takenAtUtc };
  if (option === 'Full') {
    return withSnapshot(source, (snap) => written({
      ...head, parentBackupId: common.backupId, backupChainId: common.backupId, firstLsn: 1n, lastLsn: snap.lastLsn,
      files: [
        { name: FULL_DATA_FILE, path: snap.file, bytes: snap.bytes },
        metadata(FULL_DATA_FILE, snap.bytes, (file) => fullInfo(common, snap.lastLsn, file)),
      ],
    }));
  }
  const base = parent as LastBackup;
  return withChangeLog(source, base.lastLsn, (log) => written({
    ...head, parentBackupId: base.backupId, backupChainId: base.backupChainId, firstLsn: base.lastLsn + 1n, lastLsn: log.lastLsn,
    files: [
      { name: INCREMENTAL_DATA_FILE, stream: log.source },
      metadata(INCREMENTAL_DATA_FILE, undefined, (file) => incrementalInfo(common, base, log.lastLsn, log.counts(), file)),
    ],
  }));
}

/**
 * Runs the backup's callback (Service Fabric's post-backup callback; default: accept). The backup
 * counts only when it resolves true: a throw or any other answer is LIFEBOAT_E_BACKUP_CALLBACK_FAILED.
 */
export async function runBackupCallback(partitionId: string, callback: BackupOptions['callback'], info: BackupInfo): Promise<void> {
  let accepted: boolean;
  try {
    accepted = (await (callback ?? (() => true))(info)) === true;
  } catch (err) {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CALLBACK_FAILED', `The backup callback of partition ${partitionId} threw: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  if (!accepted) throw new LifeboatError('LIFEBOAT_E_BACKUP_CALLBACK_FAILED', `The backup callback of partition ${partitionId} returned false; backup ${info.backupId} does not count.`);
}

/** The chain's newest backup, as the partition's meta row records it: the one the next incremental follows. */
export function lastBackupOf(m: MetaRow): LastBackup | undefined {
  if (m.last_backup_id === null || m.last_backup_chain_id === null || m.last_backup_lsn === null || m.last_backup_dlv === null || m.last_backup_cv === null) return undefined;
  return {
    backupId: m.last_backup_id,
    backupChainId: m.last_backup_chain_id,
    epoch: { dataLossVersion: m.last_backup_dlv, configurationVersion: m.last_backup_cv },
    lastLsn: m.last_backup_lsn,
    chainLogBytes: Number(m.chain_log_bytes ?? 0n),
  };
}

/** Records an accepted backup in the meta row as the chain's newest (read back by lastBackupOf). */
export function recordLastBackup(store: Store, info: BackupInfo): LastBackup {
  const last: LastBackup = { backupId: info.backupId, backupChainId: info.backupChainId, epoch: info.epoch, lastLsn: info.lastLsn, chainLogBytes: info.chainLogBytes };
  store.db.prepare(`UPDATE partition_meta SET last_backup_id = ?, last_backup_chain_id = ?, last_backup_dlv = ?, last_backup_cv = ?,
      last_backup_lsn = ?, chain_log_bytes = ? WHERE singleton = 1`)
    .run(last.backupId, last.backupChainId, last.epoch.dataLossVersion, last.epoch.configurationVersion, last.lastLsn, BigInt(last.chainLogBytes));
  return last;
}

/**
 * Runs `fn` with a consistent snapshot of the database: the first `bytes` bytes of `file`, which
 * do not change until `fn` settles, and the LSN they hold. Writers go on meanwhile (in the WAL).
 */
async function withSnapshot<T>(source: BackupSource, fn: (snap: { file: string; bytes: number; lastLsn: bigint }) => Promise<T>): Promise<T> {
  const file = source.file;
  // Move every committed page into the database file and empty the WAL. A read transaction
  // begun now reads the file alone, and SQLite's checkpointer cannot write into the file while
  // such a reader lives: the file's pages stay exactly this snapshot while writers go on in the WAL.
  const [ck] = source.store.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: bigint }>;
  if (!ck || ck.busy !== 0n) throw new LifeboatError('FABRIC_E_NOT_READY', `Partition ${source.partitionId} could not checkpoint for a backup; try again.`);
  const reader = openDatabase(file, { readonly: true });
  const db = source.store.db;
  const autocheckpoint = db.pragma('wal_autocheckpoint', { simple: true });
  try {
    reader.exec('BEGIN');
    const snap = new Store(reader);
    const lastLsn = snap.lastLsn();
    const pageSize = reader.pragma('page_size', { simple: true }) as bigint;
    const pageCount = reader.pragma('page_count', { simple: true }) as bigint;
    // Checkpoints cannot succeed while the reader pins the file; without this every commit
    // past the threshold would try one and fail, costing each commit far more than it does.
    db.pragma('wal_autocheckpoint = 0');
    return await fn({ file, bytes: Number(pageSize * pageCount), lastLsn });
  } finally {
    reader.close();
    if (db.open) db.pragma(`wal_autocheckpoint = ${Number(autocheckpoint)}`);
  }
}

/**
 * Runs `fn` with the change log after `afterLsn` as a stream (changes.log, changelog-codec.ts),
 * read from one consistent snapshot that is held until `fn` settles; `counts()` is final once
 * the stream has ended.
 */
async function withChangeLog<T>(source: BackupSource, afterLsn: bigint, fn: (log: { lastLsn: bigint; source: Readable; counts(): { records: number; logBytes: number } }) => Promise<T>): Promise<T> {
  const reader = openDatabase(source.file, { readonly: true });
  let records: Generator<Buffer> | undefined;
  try {
    reader.exec('BEGIN');
    const snap = new Store(reader);
    const meta = snap.meta();
    if (meta.log_truncated_through > afterLsn) {
      throw new LifeboatError('FABRIC_E_MISSING_FULL_BACKUP', `An incremental backup of partition ${source.partitionId} cannot be taken: the change log after LSN ${afterLsn} was truncated. Take a full backup.`);
    }
    const lastLsn = snap.lastLsn(meta);
    const select = reader.prepare('SELECT lsn, seq, op, dict, key, value FROM changes WHERE lsn > ? ORDER BY lsn, seq');
    let count = 0;
    let logBytes = 0;
    let ended = false;
    records = (function* () {
      const rows = select.iterate(afterLsn) as IterableIterator<{
        lsn: bigint; seq: bigint; op: bigint; dict: bigint; key: string | null; value: string | Buffer | null;
      }>;
      yield encodeHeader();
      let batch: Buffer[] = [];
      let size = 0;
      for (const r of rows) {
        const buf = encodeRecord({ lsn: r.lsn, seq: Number(r.seq), op: Number(r.op) as ChangeOp, dict: Number(r.dict), key: r.key, value: r.value });
        count++;
        logBytes += changeLogBytes(r.key, r.value);
        batch.push(buf);
        size += buf.length;
        if (size >= 256 * 1024) {
          yield Buffer.concat(batch);
          batch = [];
          size = 0;
        }
      }
      batch.push(encodeTrailer(count));
      ended = true;
      yield Buffer.concat(batch);
    })();
    const counts = (): { records: number; logBytes: number } => {
      if (!ended) throw new LifeboatError('E_FAIL', `The change log of partition ${source.partitionId} was not read to its end.`);
      return { records: count, logBytes };
    };
    return await fn({ lastLsn, source: Readable.from(records), counts });
  } finally {
    // A log not read to its end still holds its statement: end it (synchronously) before the connection closes.
    records?.return(undefined);
    reader.close();
  }
}

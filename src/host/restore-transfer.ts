/**
 * Storage to restore, as a host carries out a restore order: each backup's `.bkmetadata` read
 * (its wrapped data key, size and digest), the chain's full backup streamed into the partition's
 * next generation as it is decoded, and the incrementals downloaded into folders meanwhile,
 * PARALLEL_DOWNLOADS at a time, handed over in chain order as they arrive. Every block is checked
 * as it streams, and each object against its metadata: damage is LIFEBOAT_E_BACKUP_CORRUPT naming
 * the object and where.
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LifeboatError } from '../core/errors.ts';
import { type StoredBackupMetadata, dataObjectCheck } from '../format/bkmetadata.ts';
import { type ArchiveSink, type ArchiveSummary, archiveVersion, decodeFiles, decodeToFolder } from '../format/lbk2/index.ts';
import { Handoff, readAll } from '../fs/streams.ts';
import type { BackupRepository } from '../repository/backup-repository.ts';
import { type BackupInfo, type StreamedFullBackup, FULL_DATA_FILE, METADATA_FILE, parseBackupMetadata } from '../state/index.ts';
import type { TransferContext } from './backup-transfer.ts';

/** Backups of a chain downloaded at once during a restore. */
const PARALLEL_DOWNLOADS = 3;

/**
 * Downloads one backup of a chain into `folder`: its `.bkmetadata` (for the wrapped data key,
 * size and SHA-256), then its data, decoded (version 1 or 2) and checked block by block and
 * against the metadata. Any damage is LIFEBOAT_E_BACKUP_CORRUPT naming the object and where.
 * `known`: the metadata, when the caller has read it already.
 */
async function download(t: TransferContext, repo: BackupRepository, location: string, folder: string, signal: AbortSignal, known?: StoredBackupMetadata): Promise<string> {
  const where = repo.where(location);
  const meta = known ?? await storedMetadata(t, repo, location);
  if (signal.aborted) throw new LifeboatError('E_ABORT', 'The restore ended before this backup was downloaded.');
  const source = await repo.openData(location);
  const stop = (): void => { source.destroy(new LifeboatError('E_ABORT', 'The restore ended before this backup was downloaded.')); };
  signal.addEventListener('abort', stop, { once: true });
  // The whole object is read (the decoder checks nothing follows the end), then compared with the metadata.
  const check = dataObjectCheck(meta, source);
  let summary: ArchiveSummary;
  try {
    await mkdir(folder);
    summary = await decodeToFolder(check.stream, folder, where, { encryption: meta.Encryption, keyring: t.keyring, workers: t.workers, ...readCounter(t) });
  } finally {
    signal.removeEventListener('abort', stop);
    source.destroy(); // read to the end already, unless the decoder stopped early
  }
  checkObject(check.mismatch(summary), repo, location);
  return folder;
}

const readCounter = (t: TransferContext): { onStoredBytes?: (bytes: number) => void } => (t.onStoredBytesRead ? { onStoredBytes: t.onStoredBytesRead } : {});

/** The backup's `.bkmetadata`, checked to be readable with this host's keys. */
async function storedMetadata(t: TransferContext, repo: BackupRepository, location: string): Promise<StoredBackupMetadata> {
  const meta = (await repo.at(location)).metadata;
  if (meta.Encryption && !t.keyring) {
    throw new LifeboatError('LIFEBOAT_E_ENCRYPTION_KEY_MISSING',
      `Backup data ${repo.where(location)} is encrypted with key '${meta.Encryption.KeyId}', and host ${t.hostId} has no encryption keyring (--encryption-keys).`);
  }
  return meta;
}

/**
 * The chain's full backup, for the partition to write straight into its new generation as it is
 * downloaded and decoded. Resolves once what can be checked cheaply was (its `.bkmetadata`, the
 * key, the object's size and format), before the partition is touched; every block, the files' digests
 * and the object's SHA-256 are checked as it streams, and its `metadata` resolves only after all
 * of them. A version 1 archive is downloaded into `folder` instead (resolves to the folder).
 */
async function openFullBackup(t: TransferContext, repo: BackupRepository, location: string, folder: string, signal: AbortSignal): Promise<string | StreamedFullBackup> {
  const meta = await storedMetadata(t, repo, location);
  const where = repo.where(location);
  const object = await repo.dataInfo(location);
  if (!object) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is missing; its metadata is there.`);
  if (object.size !== meta.DataSize) {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is damaged: it is ${object.size} bytes, its metadata records ${meta.DataSize}.`);
  }
  const version = archiveVersion(await readAll(await repo.openData(location, { start: 0, end: Math.min(5, object.size) })));
  if (version !== 2) return download(t, repo, location, folder, signal, meta);

  const data = new Handoff();
  // The decoder hashes data.sqlite to check it against the archive's trailer: the partition takes that digest.
  let digested!: { resolve: (sha256: string) => void; reject: (err: unknown) => void };
  const dataSha256 = new Promise<string>((resolve, reject) => { digested = { resolve, reject }; });
  dataSha256.catch(() => undefined);
  const aborted = (): LifeboatError => new LifeboatError('E_ABORT', 'The restore ended before this backup was downloaded.');
  const metadata = (async (): Promise<BackupInfo> => {
    if (signal.aborted) throw aborted();
    const source = await repo.openData(location);
    const stop = (): void => {
      source.destroy(aborted());
      data.fail(aborted());
    };
    signal.addEventListener('abort', stop, { once: true });
    const check = dataObjectCheck(meta, source);
    const metadataText: Buffer[] = [];
    const seen = new Set<string>();
    let current: string | undefined;
    const sink: ArchiveSink = {
      open: async (name) => {
        if (name !== FULL_DATA_FILE && name !== METADATA_FILE) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} holds ${name}: it is not a full backup.`);
        current = name;
        seen.add(name);
      },
      // The decoder reuses its buffers: the data goes to the partition one chunk at a time, the metadata is copied.
      write: (chunk) => (current === FULL_DATA_FILE ? data.push(chunk) : (metadataText.push(Buffer.from(chunk)), Promise.resolve())),
      close: async (file) => {
        if (current === FULL_DATA_FILE) {
          digested.resolve(file.sha256);
          data.end();
        }
        current = undefined;
      },
    };
    try {
      const summary = await decodeFiles(check.stream, where, sink, { encryption: meta.Encryption, keyring: t.keyring, workers: t.workers, ...readCounter(t) });
      checkObject(check.mismatch(summary), repo, location);
      for (const name of [FULL_DATA_FILE, METADATA_FILE]) {
        if (!seen.has(name)) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} has no ${name}: it is not a full backup.`);
      }
      return parseBackupMetadata(Buffer.concat(metadataText).toString('utf8'), where);
    } catch (err) {
      data.fail(err);
      digested.reject(err);
      throw err;
    } finally {
      data.end();
      signal.removeEventListener('abort', stop);
      source.destroy(); // read to the end already, unless the decoder stopped early
    }
  })();
  metadata.catch(() => undefined); // the partition reads it in its turn (or the first failure ends the restore)
  const streamed: StreamedFullBackup = { data, dataSha256, metadata, ...(t.directIo === undefined ? {} : { directWrite: t.directIo }) };
  return streamed;
}

/** Fails with what does not match between the data object as read and its `.bkmetadata` (dataObjectCheck). */
function checkObject(mismatch: string | undefined, repo: BackupRepository, location: string): void {
  if (mismatch !== undefined) {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${repo.where(location)} is damaged: ${mismatch}; the metadata is ${repo.metadataWhere(location)}.`);
  }
}

/**
 * Starts reading the chain: the full backup streamed (openFullBackup), the incrementals
 * downloaded into folders, PARALLEL_DOWNLOADS at a time, in chain order; one promise per backup.
 */
export function openChain(
  t: TransferContext, repo: BackupRepository, chain: readonly string[], scratch: string, signal: AbortSignal,
): { full: Promise<string | StreamedFullBackup>; incrementals: Array<Promise<string>> } {
  let free = PARALLEL_DOWNLOADS - 1; // one reads the full backup
  const queue: Array<() => void> = [];
  const slot = (): Promise<void> => (free > 0 ? (free--, Promise.resolve()) : new Promise((resolve) => queue.push(resolve)));
  const release = (): void => {
    const next = queue.shift();
    if (next) next();
    else free++;
  };
  const folder = (i: number): string => join(scratch, `${i}-${randomUUID()}`);
  const full = openFullBackup(t, repo, chain[0] as string, folder(0), signal);
  const incrementals = chain.slice(1).map(async (location, i): Promise<string> => {
    await slot();
    try {
      return await download(t, repo, location, folder(i + 1), signal);
    } finally {
      release();
    }
  });
  for (const d of [full, ...incrementals]) d.catch(() => undefined); // each is read in its turn (or the first failure ends the restore)
  return { full, incrementals };
}

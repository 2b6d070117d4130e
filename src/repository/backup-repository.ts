/**
 * The backups in one storage, each one thing: its data object (`<stem>.lbk`, the BackupLocation)
 * and its `.bkmetadata` (the commit point). The one place that turns a backup into object keys
 * (through core/backup-layout) and metadata bytes (format/bkmetadata): the service, the hosts,
 * retention, CleanBackup, VerifyBackup and key rotation all go through it.
 *
 * Contract:
 * - A backup exists when its `.bkmetadata` is committed and readable. Data without metadata (a
 *   backup cut short between its two writes, or a deletion between its two steps) is never
 *   listed, read or chained; it only keeps its name from being taken again.
 * - Metadata is read by one reader that stops at MAX_SMALL_OBJECT_BYTES (1 MiB): a hostile or
 *   broken store cannot make it buffer more. A damaged one is LIFEBOAT_E_BACKUP_CORRUPT.
 * - Writing: `freeLocation` picks a name (one-second names; a taken second moves to the next
 *   free one), `putData` streams the data, `commit` writes the metadata, last.
 * - Deleting: the metadata first (the backup is gone from every listing at once), then the data.
 *   Each step is idempotent, so a deletion cut short is finished by running it again with the
 *   same location (retention records the location before it starts).
 */
import type { Readable } from 'node:stream';
import {
  type StoredBackupScope, backupDataKey, dataKeyOfMetadata, METADATA_EXTENSION, metadataKeyOf, normalizeLocation, scopePrefix,
} from '../core/backup-layout.ts';
import { LifeboatError, isLifeboatError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { type StoredBackupMetadata, decodeBkMetadata, encodeBkMetadata, withEncryption } from '../format/bkmetadata.ts';
import { type Keyring, rewrapDataKey } from '../format/lbk2/index.ts';
import { readAll } from '../fs/streams.ts';
import type { BlobStore, ObjectInfo } from '../storage/port.ts';

/** A committed backup: where its data is (the normalized BackupLocation) and what its `.bkmetadata` says. */
export interface StoredBackup {
  readonly location: string;
  readonly metadata: StoredBackupMetadata;
}

/** What a backup's writer knows when it commits: everything but the location, which the repository gave it. */
export type NewBackupMetadata = Omit<StoredBackupMetadata, 'BackupLocation'>;

export interface RewrapReport {
  /** `.bkmetadata` objects read. */
  readonly scanned: number;
  /** Re-wrapped under the current key now. */
  readonly rewrapped: number;
  /** Already wrapped under the current key. */
  readonly current: number;
  /** Not encrypted (nothing to re-wrap). */
  readonly unencrypted: number;
  /** Whose data object is gone (deleted since listing, e.g. by retention): left alone, not brought back. */
  readonly gone: number;
  /** Could not be re-wrapped: damaged, or wrapped under a key the keyring lacks; each with its code. */
  readonly failed: ReadonlyArray<{ readonly key: string; readonly code: string; readonly message: string }>;
}

/** How far past a taken second a new backup's name may move before the write is refused. */
const MAX_NAME_TRIES = 60;

export class BackupRepository {
  constructor(private readonly store: BlobStore) {}

  /** The storage, for messages (never holds secrets). */
  get description(): string {
    return this.store.description;
  }

  /** `location` as messages name it: the storage and the key. */
  where(location: string): string {
    return `${this.store.description}/${location}`;
  }

  /**
   * Every readable backup in `scope`, in key order. An unreadable `.bkmetadata` is reported to
   * `onUnreadable` and skipped: one damaged backup must not hide the others.
   */
  async list(scope: StoredBackupScope, onUnreadable: (key: string, err: unknown) => void): Promise<StoredBackup[]> {
    const out: StoredBackup[] = [];
    for await (const key of this.metadataKeys(scope)) {
      try {
        out.push({ location: dataKeyOfMetadata(key), metadata: decodeBkMetadata(await this.readMetadata(key), this.where(key)) });
      } catch (err) {
        onUnreadable(key, err);
      }
    }
    return out;
  }

  /** The backup at `location`; LIFEBOAT_E_STORAGE_NOT_FOUND when none is committed there. */
  async at(location: string): Promise<StoredBackup> {
    const normalized = normalizeLocation(location);
    const key = metadataKeyOf(normalized);
    const bytes = await this.readMetadata(key).catch((err: unknown) => {
      if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) throw new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `No backup at ${normalized} in ${this.store.description}.`);
      throw err;
    });
    return { location: normalized, metadata: decodeBkMetadata(bytes, this.where(key)) };
  }

  /** The `.bkmetadata` of the backup at `location`, as messages name it. */
  metadataWhere(location: string): string {
    return this.where(metadataKeyOf(location));
  }

  /**
   * The two objects a backup occupies: for a record that outlives this process (retention's
   * deletion in progress, in the catalog). Nothing but the repository reads or writes them.
   */
  objectKeys(location: string): { readonly data: string; readonly metadata: string } {
    return { data: normalizeLocation(location), metadata: metadataKeyOf(location) };
  }

  /** Size and time of a backup's data object; undefined when it is missing. */
  dataInfo(location: string): Promise<ObjectInfo | undefined> {
    return this.store.head(normalizeLocation(location));
  }

  /**
   * A backup's data, or `[start, end)` of it. Missing data under committed metadata is
   * LIFEBOAT_E_BACKUP_CORRUPT: the backup cannot be read.
   */
  async openData(location: string, range?: { start: number; end?: number }): Promise<Readable> {
    try {
      return await this.store.get(normalizeLocation(location), range);
    } catch (err) {
      if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${this.where(location)} is missing; its metadata is there.`);
      throw err;
    }
  }

  /**
   * The location for a new backup of the partition taken at `takenAtUtc`: its second's name, or
   * the next second whose name neither object holds (two backups in one second, or a backup
   * whose data was written and never committed).
   */
  async freeLocation(serviceName: string, partitionId: string, takenAtUtc: Date): Promise<string> {
    let at = takenAtUtc;
    for (let tries = 0; ; tries++) {
      const location = backupDataKey(serviceName, partitionId, at);
      if (!(await this.store.head(location)) && !(await this.store.head(metadataKeyOf(location)))) return location;
      if (tries >= MAX_NAME_TRIES) throw new LifeboatError('LIFEBOAT_E_STORAGE_OBJECT_EXISTS', `No free backup name near ${takenAtUtc.toISOString()}.`);
      at = new Date(at.getTime() + 1000);
    }
  }

  /** Streams a new backup's data to `location` (from freeLocation). Invisible until `commit`. */
  putData(location: string, body: Readable): Promise<void> {
    return this.store.put(location, body);
  }

  /** Writes the backup's `.bkmetadata`, last: from now on the backup exists. */
  commit(location: string, metadata: NewBackupMetadata): Promise<void> {
    return this.store.put(metadataKeyOf(location), encodeBkMetadata({ ...metadata, BackupLocation: location }));
  }

  /** Deletion's first step: the `.bkmetadata`, so no listing shows the backup any more. */
  deleteMetadata(location: string): Promise<void> {
    return this.store.delete(metadataKeyOf(location));
  }

  /** Deletion's second step: the data. Only after deleteMetadata (the data of a listed backup must stay readable). */
  deleteData(location: string): Promise<void> {
    return this.store.delete(normalizeLocation(location));
  }

  /** Deletes every backup in `scope`, each metadata first; how many. Run again after a failure, it finishes. */
  async deleteAll(scope: StoredBackupScope): Promise<number> {
    const keys: string[] = [];
    for await (const key of this.metadataKeys(scope)) keys.push(key);
    for (const key of keys) {
      await this.store.delete(key);
      await this.store.delete(dataKeyOfMetadata(key));
    }
    return keys.length;
  }

  /**
   * Key rotation (docs/backup-format.md, "Rotation"): every `.bkmetadata` in `scope` whose
   * wrapped data key names another key than the keyring's current one gets it re-wrapped under
   * the current key and is written back whole with `put(…, { overwrite: true })` (atomic:
   * readers see the old record or the new, both valid while the old key is in the keyring). Data
   * objects are never touched. Idempotent and resumable: a second run re-wraps only what still
   * names an old key.
   */
  async rewrapKeys(scope: StoredBackupScope, keyring: Keyring, log?: Pick<Logger, 'info'>): Promise<RewrapReport> {
    const counts = { scanned: 0, rewrapped: 0, current: 0, unencrypted: 0, gone: 0 };
    const failed: Array<{ key: string; code: string; message: string }> = [];
    for await (const key of this.metadataKeys(scope)) {
      counts.scanned++;
      const where = this.where(key);
      try {
        const bytes = await this.readMetadata(key);
        const m = decodeBkMetadata(bytes, where);
        if (!m.Encryption) {
          counts.unencrypted++;
          continue;
        }
        if (m.Encryption.KeyId === keyring.current.id) {
          counts.current++;
          continue;
        }
        const record = rewrapDataKey(m.Encryption, keyring);
        // The put would create the object again if retention deleted the backup meanwhile.
        if (!(await this.store.head(dataKeyOfMetadata(key)))) {
          counts.gone++;
          continue;
        }
        await this.store.put(key, withEncryption(bytes, where, record), { overwrite: true });
        counts.rewrapped++;
        log?.info({ key, from: m.Encryption.KeyId, to: keyring.current.id }, 'data key re-wrapped');
      } catch (err) {
        // A backup deleted between listing and reading is not a failure.
        if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) {
          counts.gone++;
          continue;
        }
        failed.push({ key, code: isLifeboatError(err) ? err.code : 'E_FAIL', message: err instanceof Error ? err.message : String(err) });
      }
    }
    return { ...counts, failed };
  }

  private async *metadataKeys(scope: StoredBackupScope): AsyncIterable<string> {
    for await (const obj of this.store.list(scopePrefix(scope))) if (obj.key.endsWith(METADATA_EXTENSION)) yield obj.key;
  }

  /** The one metadata reader: at most MAX_SMALL_OBJECT_BYTES, whatever the store serves. */
  private async readMetadata(key: string): Promise<Buffer> {
    return readAll(await this.store.get(key), undefined, `Backup metadata ${this.where(key)}`);
  }
}

/**
 * Reading what a storage holds: the backups under a key prefix, found by their `.bkmetadata`
 * objects (the commit point of a backup: data without metadata is not a backup).
 */
import { METADATA_EXTENSION } from '../core/backup-layout.ts';
import { type StoredBackupMetadata, decodeBkMetadata } from '../format/bkmetadata.ts';
import { readAll } from '../fs/streams.ts';
import type { BlobStore } from '../storage/port.ts';

export interface StoredBackup {
  /** The `.bkmetadata` object's key. */
  readonly metadataKey: string;
  readonly metadata: StoredBackupMetadata;
}

/**
 * Every readable backup under `prefix`, in key order. An unreadable metadata object is reported to
 * `onUnreadable` and skipped: one damaged backup must not hide the others.
 */
export async function listStoredBackups(store: BlobStore, prefix: string, onUnreadable: (key: string, err: unknown) => void): Promise<StoredBackup[]> {
  const out: StoredBackup[] = [];
  for await (const obj of store.list(prefix)) {
    if (!obj.key.endsWith(METADATA_EXTENSION)) continue;
    try {
      out.push({ metadataKey: obj.key, metadata: decodeBkMetadata(await readAll(await store.get(obj.key)), `${store.description}/${obj.key}`) });
    } catch (err) {
      onUnreadable(obj.key, err);
    }
  }
  return out;
}

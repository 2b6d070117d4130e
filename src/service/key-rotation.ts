/**
 * Key rotation (docs/backup-format.md, "Rotation"): every `.bkmetadata` under a prefix whose
 * wrapped data key names another key than the keyring's current one gets its data key re-wrapped
 * under the current key, and is written back whole with `put(…, { overwrite: true })` (atomic:
 * readers see the old record or the new, both valid while the old key is in the keyring). Data
 * objects are never touched. Idempotent and resumable: a second run, or a run after an
 * interrupted one, re-wraps only what still names an old key.
 */
import { METADATA_EXTENSION, dataKeyOfMetadata } from '../core/backup-layout.ts';
import { isLifeboatError } from '../core/errors.ts';
import { decodeBkMetadata, withEncryption } from '../format/bkmetadata.ts';
import { type Keyring, rewrapDataKey } from '../format/lbk2/index.ts';
import type { BlobStore } from '../storage/port.ts';
import { readAll } from '../fs/streams.ts';

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

export async function rewrapKeys(
  store: BlobStore, prefix: string, keyring: Keyring, log?: { info(obj: unknown, msg?: string): void },
): Promise<RewrapReport> {
  let scanned = 0;
  let rewrapped = 0;
  let current = 0;
  let unencrypted = 0;
  let gone = 0;
  const failed: Array<{ key: string; code: string; message: string }> = [];
  for await (const obj of store.list(prefix)) {
    if (!obj.key.endsWith(METADATA_EXTENSION)) continue;
    scanned++;
    const where = `${store.description}/${obj.key}`;
    try {
      const bytes = await readAll(await store.get(obj.key));
      const m = decodeBkMetadata(bytes, where);
      if (!m.Encryption) {
        unencrypted++;
        continue;
      }
      if (m.Encryption.KeyId === keyring.current.id) {
        current++;
        continue;
      }
      const record = rewrapDataKey(m.Encryption, keyring);
      // The put would create the object again if retention deleted the backup meanwhile.
      if (!(await store.head(dataKeyOfMetadata(obj.key)))) {
        gone++;
        continue;
      }
      await store.put(obj.key, withEncryption(bytes, where, record), { overwrite: true });
      rewrapped++;
      log?.info({ key: obj.key, from: m.Encryption.KeyId, to: keyring.current.id }, 'data key re-wrapped');
    } catch (err) {
      // A backup deleted between listing and reading is not a failure.
      if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) {
        gone++;
        continue;
      }
      failed.push({ key: obj.key, code: isLifeboatError(err) ? err.code : 'E_FAIL', message: err instanceof Error ? err.message : String(err) });
    }
  }
  return { scanned, rewrapped, current, unencrypted, gone, failed };
}

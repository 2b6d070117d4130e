/**
 * Checking a stored backup's data without restoring it (VerifyBackup): the data object streamed
 * through the `.lbk` reader (every block's SHA-256; with the key, its authentication and contents)
 * and compared with the size and digest its metadata records. Memory stays flat: the object is
 * streamed, never held. The first problem is thrown, naming the object and where in it.
 */
import { LifeboatError } from '../core/errors.ts';
import { dataObjectCheck } from '../format/bkmetadata.ts';
import { type ArchiveSummary, type BlockRunner, type Keyring, verifyArchive } from '../format/lbk2/index.ts';
import type { CheckedBackupWire } from '../wire/index.ts';
import type { BackupRepository, StoredBackup } from './backup-repository.ts';

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
export async function checkBackupData(repo: BackupRepository, e: StoredBackup, keyring: Keyring | undefined, workers: BlockRunner): Promise<CheckedBackup> {
  const m = e.metadata;
  const where = repo.where(e.location);
  const source = await repo.openData(e.location);
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

/** Checking backups without restoring them (VerifyBackup) and re-wrapping their keys (key rotation). */
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { parseStorageDescription } from '../core/storage-description.ts';
import { createBlockPool, defaultWorkers } from '../format/lbk2/index.ts';
import { type RewrapReport } from '../repository/backup-repository.ts';
import { checkChain, readChain } from '../repository/chain.ts';
import { type CheckedBackup, checkBackupData } from '../repository/check-data.ts';
import type { Hierarchy } from './hierarchy.ts';
import { Limiter } from './limiter.ts';
import { type BackupReference, namedBackup } from './named-backup.ts';
import type { ServicePorts } from './ports.ts';
import type { VerifyResultWire } from '../wire/index.ts';

/** VerifyBackup's answer: the backup and its whole chain, full backup first. */
export type VerifyResult = VerifyResultWire;

export class Verification {
  /** VerifyBackups: two at once (each with its block workers), 32 waiting; more get 503. */
  private readonly verifyLimit = new Limiter(2, 32, 'backup verifications');

  constructor(private readonly p: ServicePorts, private readonly hierarchy: Hierarchy) {}

  /**
   * VerifyBackup (Lifeboat): checks the backup a RestorePartition body would name, and its whole
   * chain, without restoring: the metadata of each (checksums, parent links, chain ids, LSNs),
   * then each data object streamed from the storage (every block; with the keyring, encrypted
   * blocks authenticated and contents checked; size and SHA-256 against the metadata). Runs here,
   * in the service, streaming: memory stays flat. The first problem is thrown (CORRUPT, CHAIN_BROKEN,
   * ENCRYPTION_KEY_*), saying which object and where.
   */
  async verifyBackup(partitionId: string, given: BackupReference, latest = false): Promise<VerifyResult> {
    const partition = await this.hierarchy.getPartition(partitionId);
    return this.verifyLimit.run(async () => {
      const { repo, target } = await namedBackup(this.p, partition, given, latest);
      const chain = await readChain(repo, target);
      checkChain(repo, chain);
      // One pool for the chain: the blocks' SHA-256 (and AES-GCM) off the event loop that serves the API.
      const pool = createBlockPool(defaultWorkers());
      try {
        const checked: CheckedBackup[] = [];
        for (const e of chain) checked.push(await checkBackupData(repo, e, this.p.keyring, pool));
        return { BackupId: target.metadata.BackupId, Chain: checked, Ok: true };
      } finally {
        await pool.close();
      }
    });
  }

  /**
   * Key rotation: re-wraps the data key of every encrypted backup under `prefix` in the storage
   * under the keyring's current key (BackupRepository.rewrapKeys). Needs the keyring to hold the old keys too.
   */
  async rewrapKeys(storageValue: unknown, prefix = ''): Promise<RewrapReport> {
    if (!this.p.keyring) throw new LifeboatError('E_INVALIDARG', 'No encryption keyring is configured (--encryption-keys): there is no current key to re-wrap under.');
    invalidArgUnless(storageValue !== undefined && storageValue !== null, 'Storage is required.');
    return this.p.repositoryFor(parseStorageDescription(storageValue)).rewrapKeys({ kind: 'Prefix', prefix }, this.p.keyring, this.p.log);
  }
}

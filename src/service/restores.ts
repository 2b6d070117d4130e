/** Restores (RestorePartition, and the auto-restore of data loss) and their progress (GetPartitionRestoreProgress). */
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import type { OperationRecord } from '../catalog/port.ts';
import { readChain } from '../repository/chain.ts';
import type { Hierarchy } from './hierarchy.ts';
import { type BackupReference, namedBackup } from './named-backup.ts';
import type { OrderBoard } from './orders.ts';
import { type ServicePorts, timeoutMinutes } from './ports.ts';
import { type RestoreProgress, ZERO_TIME, progressBytes, wireTime } from '../wire/index.ts';

export class Restores {
  constructor(private readonly p: ServicePorts, private readonly hierarchy: Hierarchy, private readonly orders: OrderBoard) {}

  /**
   * Accepts a restore of the partition from the backup at BackupLocation (and the chain it ends),
   * after checking the backup exists, is the one named, is of a partition like this one, and that
   * each backup of its chain is there and is the parent named (the partition checks the rest of
   * the chain's rules, and the host the data, as it downloads).
   */
  async restorePartition(
    partitionId: string, given: BackupReference, restoreTimeout?: number, latest = false, auto = false,
  ): Promise<OperationRecord> {
    const minutes = timeoutMinutes(restoreTimeout, 'RestoreTimeout');
    const partition = await this.hierarchy.getPartition(partitionId);
    const { storage, repo, target } = await namedBackup(this.p, partition, given, latest);
    const chain = await readChain(repo, target);
    const m = target.metadata;
    // Service Fabric restores a backup of another service without a word: a trap (another
    // service's data under this one's name). Lifeboat asks the caller to say so.
    const allowCross = (given as Record<string, unknown> | undefined)?.AllowCrossServiceRestore;
    invalidArgUnless(allowCross === undefined || allowCross === null || typeof allowCross === 'boolean', 'AllowCrossServiceRestore must be true or false.');
    if (m.ServiceName !== partition.serviceName && allowCross !== true) {
      throw new LifeboatError('FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH',
        `Backup ${m.BackupId} is of service ${m.ServiceName}, not ${partition.serviceName}; send "AllowCrossServiceRestore": true to restore it here anyway.`);
    }
    if (this.p.requireEncryptedRestores && this.p.keyring) {
      const clear = chain.find((e) => e.metadata.Encryption === undefined);
      if (clear) throw new LifeboatError('E_INVALIDARG', `Backup ${clear.metadata.BackupId} is not encrypted, and this Lifeboat restores only encrypted backups (--require-encrypted-restores).`);
    }
    return this.orders.accept(partition, 'Restore', minutes, {
      storage, chain: chain.map((e) => e.location), backupId: m.BackupId, backupEpoch: m.EpochOfLastBackupRecord, backupLsn: m.LsnOfLastBackupRecord, ...(auto ? { auto: true } : {}),
    });
  }

  async restoreProgress(partitionId: string): Promise<RestoreProgress> {
    await this.hierarchy.getPartition(partitionId);
    const op = await this.p.catalog.operations.latest(partitionId, 'Restore');
    if (!op) return { RestoreState: 'Invalid', TimeStampUtc: ZERO_TIME, RestoredEpoch: null, RestoredLsn: '0', FailureError: null };
    const r = op.result as { RestoredEpoch?: RestoreProgress['RestoredEpoch']; RestoredLsn?: string };
    return {
      RestoreState: op.state, TimeStampUtc: wireTime(new Date(op.updatedUtc)), RestoredEpoch: r.RestoredEpoch ?? null,
      RestoredLsn: r.RestoredLsn ?? '0', FailureError: op.failure ?? null, ...progressBytes(op.result),
    };
  }
}

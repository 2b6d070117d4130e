/**
 * Backups: on demand (BackupPartition, always Full) and periodic (started by the scheduler),
 * through the one-operation-per-partition gate, and their progress (GetPartitionBackupProgress).
 */
import { isLifeboatError } from '../core/errors.ts';
import { type StorageDescription, parseStorageDescription } from '../core/storage-description.ts';
import type { Fence, OperationRecord, PartitionRecord } from '../catalog/port.ts';
import type { Hierarchy } from './hierarchy.ts';
import type { OrderBoard } from './orders.ts';
import { policyOfPartition } from './policies.ts';
import { type ServicePorts, timeoutMinutes } from './ports.ts';
import { type BackupProgress, EMPTY_ID, ZERO_TIME, progressBytes, wireTime } from '../wire/index.ts';

export class Backups {
  constructor(private readonly p: ServicePorts, private readonly hierarchy: Hierarchy, private readonly orders: OrderBoard) {}

  /** Accepts an on-demand (always Full) backup of the partition to the storage given. */
  async backupPartition(partitionId: string, body: { BackupStorage?: unknown } | undefined, backupTimeout?: number): Promise<OperationRecord> {
    const minutes = timeoutMinutes(backupTimeout, 'BackupTimeout');
    const partition = await this.hierarchy.getPartition(partitionId);
    // Without BackupStorage: the effective policy's storage — also while periodic backups are
    // suspended (suspension stops the schedule, not on-demand backups; sf-behaviour §2.10).
    const storage = body?.BackupStorage === undefined || body.BackupStorage === null
      ? (await policyOfPartition(this.p.catalog, partition)).storage
      : parseStorageDescription(body.BackupStorage);
    this.p.storageFor(storage); // refuses paths and kinds this installation does not allow
    return this.orders.accept(partition, 'Backup', minutes, { storage });
  }

  async backupProgress(partitionId: string): Promise<BackupProgress> {
    await this.hierarchy.getPartition(partitionId);
    const op = await this.p.catalog.operations.latest(partitionId, 'Backup');
    if (!op) {
      return { BackupState: 'Invalid', TimeStampUtc: ZERO_TIME, BackupId: EMPTY_ID, BackupLocation: '', EpochOfLastBackupRecord: null, LsnOfLastBackupRecord: '0', FailureError: null };
    }
    const r = op.result as { BackupId?: string; BackupLocation?: string; EpochOfLastBackupRecord?: BackupProgress['EpochOfLastBackupRecord']; LsnOfLastBackupRecord?: string; TimeStampUtc?: string };
    return {
      BackupState: op.state,
      TimeStampUtc: op.state === 'Success' && r.TimeStampUtc ? wireTime(new Date(r.TimeStampUtc)) : wireTime(new Date(op.updatedUtc)),
      BackupId: r.BackupId ?? EMPTY_ID,
      BackupLocation: r.BackupLocation ?? '',
      EpochOfLastBackupRecord: r.EpochOfLastBackupRecord ?? null,
      LsnOfLastBackupRecord: r.LsnOfLastBackupRecord ?? '0',
      FailureError: op.failure ?? null,
      ...progressBytes(op.result),
    };
  }

  /**
   * Starts a periodic backup for the scheduler, through the same one-operation-per-partition gate
   * as on-demand requests; undefined (nothing started) when the partition has an active operation.
   * Kind 'PeriodicBackup': GetPartitionBackupProgress keeps reporting the latest on-demand request.
   */
  async startPeriodicBackup(
    /** The partition as the scheduler's pass read it (its host is looked up afresh). */
    partition: PartitionRecord,
    request: {
      storage: StorageDescription; option: 'Full' | 'Incremental'; parentBackupId?: string | undefined; parentBackupLocation?: string | undefined; timeoutMinutes?: number;
      /** The id to give it (the scheduler records it as pending first). */
      operationId?: string;
    },
    fence?: Fence,
  ): Promise<OperationRecord | undefined> {
    this.p.storageFor(request.storage);
    const periodic = { option: request.option, ...(request.option === 'Incremental' ? { parentBackupId: request.parentBackupId, parentBackupLocation: request.parentBackupLocation } : {}) };
    try {
      return await this.orders.accept(partition, 'PeriodicBackup', request.timeoutMinutes ?? 10, { storage: request.storage, periodic }, fence, request.operationId);
    } catch (err) {
      if (isLifeboatError(err, 'FABRIC_E_BACKUP_IN_PROGRESS') || isLifeboatError(err, 'FABRIC_E_RESTORE_IN_PROGRESS')) return undefined;
      throw err;
    }
  }
}

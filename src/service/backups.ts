/**
 * Backups: on demand (BackupPartition, always Full) and periodic (started by the scheduler),
 * through the one-operation-per-partition gate, and their progress (GetPartitionBackupProgress).
 */
import { type StorageDescription, parseStorageDescription } from '../core/storage-description.ts';
import type { Fence, HostRecord, OperationRecord, PartitionRecord } from '../catalog/port.ts';
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
   * Starts periodic backups for the scheduler (a pass's due partitions at once), through the same
   * one-operation-per-partition gate as on-demand requests. Each comes back started, busy (the
   * partition has an active operation: nothing started), or refused as its host is down.
   * Kind 'PeriodicBackup': GetPartitionBackupProgress keeps reporting the latest on-demand request.
   */
  async startPeriodicBackups(
    requests: ReadonlyArray<{
      /** The partition as the scheduler's pass read it. */
      readonly partition: PartitionRecord;
      readonly storage: StorageDescription; readonly option: 'Full' | 'Incremental'; readonly parentBackupId?: string | undefined; readonly parentBackupLocation?: string | undefined;
      readonly timeoutMinutes?: number;
      /** The id to give it (the scheduler records it as pending first). */
      readonly operationId: string;
    }>,
    fence?: Fence,
  ): Promise<Array<{ op: OperationRecord } | { busy: true } | { hostDown: HostRecord } | { refused: Error }>> {
    // Each storage is checked once (a pass's partitions mostly share their policy's); one that
    // cannot be used refuses its own partitions' backups, not the others'.
    const refused = new Map<StorageDescription, Error>();
    for (const storage of new Set(requests.map((r) => r.storage))) {
      try {
        this.p.storageFor(storage);
      } catch (err) {
        refused.set(storage, err instanceof Error ? err : new Error(String(err)));
      }
    }
    const usable = requests.filter((r) => !refused.has(r.storage));
    const accepted = await this.orders.acceptMany(usable.map((r) => ({
      partition: r.partition, kind: 'PeriodicBackup' as const, minutes: r.timeoutMinutes ?? 10, id: r.operationId,
      request: { storage: r.storage, periodic: { option: r.option, ...(r.option === 'Incremental' ? { parentBackupId: r.parentBackupId, parentBackupLocation: r.parentBackupLocation } : {}) } },
    })), fence);
    let k = 0;
    return requests.map((r) => {
      const error = refused.get(r.storage);
      return error ? { refused: error } : accepted[k++] as (typeof accepted)[number];
    });
  }
}

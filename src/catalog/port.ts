/**
 * The catalog port: what the Lifeboat service keeps durably — hosts, the services and partitions
 * they serve, backup and restore operations, and the index of backups taken.
 *
 * Contract every adapter keeps:
 * - Every method's effect is durable when its promise resolves.
 * - `insertOperation` is atomic with its check: it refuses (returns the conflicting operation)
 *   when the partition already has an active (Accepted or InProgress) operation, so two
 *   concurrent requests for one partition never both succeed, whichever instance serves them.
 * - `updateOperation` changes an operation only while it is active; an update of a finished
 *   operation is ignored and returns false (a late report never rewrites a result).
 * - Lists come back in a stable order (given per method) so paging is deterministic.
 */
import type { PartitionInfo, PartitionScheme } from '../core/partitioning.ts';

export interface EpochWire {
  readonly DataLossVersion: string;
  readonly ConfigurationVersion: string;
}

export interface HostRecord {
  readonly id: string;
  readonly registeredUtc: string;
  readonly lastSeenUtc: string;
}

export interface ServiceRecord {
  readonly name: string;
  readonly application: string;
  readonly scheme: PartitionScheme;
  readonly hasPersistedState: boolean;
}

export interface PartitionRecord {
  readonly id: string;
  readonly serviceName: string;
  readonly info: PartitionInfo;
  readonly hostId: string;
  readonly epoch: EpochWire;
  readonly lastLsn: string;
}

export type OperationKind = 'Backup' | 'Restore';
export type OperationState = 'Accepted' | 'BackupInProgress' | 'RestoreInProgress' | 'Success' | 'Failure' | 'Timeout';

export interface FailureError {
  readonly Code: string;
  readonly Message: string;
}

export interface OperationRecord {
  readonly id: string;
  readonly kind: OperationKind;
  readonly partitionId: string;
  readonly state: OperationState;
  readonly acceptedUtc: string;
  readonly deadlineUtc: string;
  readonly updatedUtc: string;
  /** What the host needs to carry it out (storage, chain); holds secrets, never sent to API callers. */
  readonly request: Readonly<Record<string, unknown>>;
  /** What progress reports: BackupId, BackupLocation, epoch, LSN, … */
  readonly result: Readonly<Record<string, unknown>>;
  readonly failure: FailureError | undefined;
}

export interface BackupRecord {
  readonly backupId: string;
  readonly backupChainId: string;
  readonly parentBackupId: string;
  readonly applicationName: string;
  readonly serviceName: string;
  readonly partitionId: string;
  readonly partitionInfo: PartitionInfo;
  readonly backupLocation: string;
  readonly backupType: 'Full' | 'Incremental';
  readonly epoch: EpochWire;
  readonly lsn: string;
  readonly creationTimeUtc: string;
  /** Identifies the storage it is in (kind and path/container), without secrets. */
  readonly storageKey: string;
}

export interface BackupFilter {
  readonly applicationName?: string;
  readonly serviceName?: string;
  readonly partitionId?: string;
  readonly startUtc?: string;
  readonly endUtc?: string;
}

export interface Catalog {
  upsertHost(id: string, nowUtc: string): Promise<void>;
  /** Records a service a host serves, and its partitions, as served by that host. */
  registerService(hostId: string, service: ServiceRecord, partitions: ReadonlyArray<Omit<PartitionRecord, 'hostId' | 'serviceName'>>): Promise<void>;
  updatePartitionState(id: string, epoch: EpochWire, lastLsn: string): Promise<void>;
  /** Applications by name. */
  listApplications(): Promise<string[]>;
  /** Services by name; of one application when given. */
  listServices(application?: string): Promise<ServiceRecord[]>;
  getService(name: string): Promise<ServiceRecord | undefined>;
  /** Partitions of a service, in scheme order. */
  listPartitions(serviceName: string): Promise<PartitionRecord[]>;
  getPartition(id: string): Promise<PartitionRecord | undefined>;

  /** Inserts an Accepted operation, or returns the partition's active operation instead. */
  insertOperation(op: OperationRecord): Promise<{ inserted: true } | { inserted: false; active: OperationRecord }>;
  updateOperation(id: string, patch: { state: OperationState; updatedUtc: string; result?: Record<string, unknown>; failure?: FailureError }): Promise<boolean>;
  getOperation(id: string): Promise<OperationRecord | undefined>;
  /** The newest operation of this kind on the partition. */
  latestOperation(partitionId: string, kind: OperationKind): Promise<OperationRecord | undefined>;
  /** Active operations, oldest first; of one host's partitions when given. */
  activeOperations(hostId?: string): Promise<OperationRecord[]>;

  insertBackup(b: BackupRecord): Promise<void>;
  getBackup(backupId: string): Promise<BackupRecord | undefined>;
  /** Backups by (serviceName, partitionId, creationTimeUtc, backupId). */
  listBackups(filter: BackupFilter): Promise<BackupRecord[]>;

  close(): Promise<void>;
}

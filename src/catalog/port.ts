/**
 * The catalog port: what the Lifeboat service keeps durably — hosts, the services and partitions
 * they serve, backup and restore operations, and the index of backups taken.
 *
 * Contract every adapter keeps:
 * - Every method's effect is durable when its promise resolves.
 * - `operations.insert` is atomic with its check: it refuses (returns the conflicting operation)
 *   when the partition already has an active (Accepted or InProgress) operation, so two
 *   concurrent requests for one partition never both succeed, whichever instance serves them.
 * - `operations.update` changes an operation only while it is active; an update of a finished
 *   operation is ignored and returns false (a late report never rewrites a result).
 * - Lists come back in a stable order (given per method) so paging is deterministic.
 * - Policies: `policies.insert` refuses an existing name atomically with its check (two concurrent
 *   creates of one name: exactly one succeeds); `policies.update` replaces an existing policy only,
 *   with a new uniqueId. The stored policy holds secrets: it never leaves the service unmasked.
 * - Protection (mappings entity → policy, suspensions) changes only through `policies.changeProtection` and
 *   `policies.delete`, each one transaction: the state is read, the pure change (src/core/protection.ts)
 *   decides on it, and its new state is written — or, on a refusal, nothing is. Concurrent changes
 *   never lose one another's effect.
 * - `policies.delete` removes a policy only while no existing entity maps to it (protection.deletePolicy
 *   with the catalog's own services and partitions as the existing entities), in one transaction.
 * - Leases (`leases`): at most one holder per lease at a time; each new taking gets a fencing token
 *   greater than every one before, and a write given a `Fence` happens only while that token is
 *   still the lease's (so a paused old leader's late writes are refused: LIFEBOAT_E_NOT_LEADER).
 * - Orders are handed out through the catalog (`operations.claimOrders`): of several instances
 *   claiming one order at once, exactly one gets it.
 * - `signals` reach every subscriber of every instance on the same catalog (after the change they
 *   announce is durable); they are hints to look again, never the only record of anything.
 * - Text is ordered by its bytes (code points), whatever the database's locale.
 */
import type { FailureError, OperationKind, OperationState } from '../core/operation.ts';
import type { PartitionInfo, PartitionScheme } from '../core/partitioning.ts';
import type { BackupPolicy } from '../core/policy.ts';
import type { BackupEntity, Outcome, PolicyNames, ProtectionMapping, ProtectionState } from '../core/protection.ts';

export interface EpochWire {
  readonly DataLossVersion: string;
  readonly ConfigurationVersion: string;
}

export interface HostRecord {
  readonly id: string;
  readonly registeredUtc: string;
  /** The last registration, order poll (start or end) or report of the host, on any instance. */
  readonly lastSeenUtc: string;
  /** Random per host process start: a registration with another one is a host that restarted. */
  readonly incarnation: string;
  /** Whether an order poll of it is open (since lastSeenUtc): a host in a long poll is live though quiet. */
  readonly polling: boolean;
  /** The host ended its last poll by hanging up (its process went away): gone at once. */
  readonly hungUp: boolean;
}

/** What a host did that shows it alive (hierarchy.hostSeen). */
export type HostSighting = 'poll-started' | 'poll-ended' | 'hung-up';

/**
 * A lease held by one instance (leadership of the background work). Writes made with it
 * (`operations.insert`, `schedules.put*`) happen only while `token` is still the lease's.
 */
export interface Fence {
  readonly lease: string;
  readonly holder: string;
  readonly token: number;
}

/** A lease as it is now. */
export interface LeaseRecord {
  readonly name: string;
  readonly holder: string;
  readonly token: number;
  readonly untilUtc: string;
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

/** 'Backup' is an on-demand backup (what GetPartitionBackupProgress reports); 'PeriodicBackup' one the scheduler started. */
/** Operation kinds, states and failures are the core's (core/operation.ts: their one reducer). */
export type { FailureError, OperationKind, OperationState } from '../core/operation.ts';

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

/** A backup's place in the index's order: (serviceName, partitionId, creationTimeUtc, backupId). */
export type BackupKey = readonly [serviceName: string, partitionId: string, creationTimeUtc: string, backupId: string];

export interface BackupPageQuery {
  /** Only backups after this key. */
  readonly after?: BackupKey | undefined;
  /** At most this many (0: all). */
  readonly limit: number;
  /** Only the newest backup of each partition (ties: the greatest backupId), among those the filter keeps. */
  readonly latest?: boolean;
}

export interface PolicyRecord {
  readonly name: string;
  /** The validated policy, secrets included. */
  readonly policy: BackupPolicy;
  /** Changes on every update (Service Fabric's UniqueId). */
  readonly uniqueId: string;
  readonly createdUtc: string;
  readonly updatedUtc: string;
}

/**
 * What the scheduler remembers of one partition between ticks (and restarts): the periodic chain,
 * the schedule's anchors, failures and the periodic operation under way. Times are ISO-8601 UTC.
 */
export interface PeriodicScheduleRecord {
  readonly partitionId: string;
  /** False while the partition has no policy or is suspended (a policy arriving again restarts the schedule). */
  readonly active: boolean;
  readonly policyName: string;
  /** The policy's uniqueId the schedule was computed for: a different one resets the chain counter. */
  readonly policyUniqueId: string;
  readonly policyAppliedUtc: string;
  /** The scheduled moment of the last successful periodic backup. */
  readonly lastBackupUtc?: string | undefined;
  readonly lastBackupId?: string | undefined;
  readonly lastBackupLocation?: string | undefined;
  readonly lastBackupChainId?: string | undefined;
  /** The partition's DataLossVersion at the last periodic backup (a different one now: data loss or restore). */
  readonly lastDataLossVersion?: string | undefined;
  readonly chainCounter: number;
  readonly consecutiveFailures: number;
  readonly gaveUpUtc?: string | undefined;
  readonly retryAtUtc?: string | undefined;
  /** Set when the next backup must be full whatever the counter says (a ForcedFullReason). */
  readonly forceFull?: string | undefined;
  /** A full backup due at once (after FABRIC_E_MISSING_FULL_BACKUP), since this moment. */
  readonly fullNowUtc?: string | undefined;
  /** The scheduled moment a retried (or immediately repeated) backup stands for. */
  readonly attemptScheduledUtc?: string | undefined;
  readonly pending?: {
    readonly operationId: string;
    readonly option: 'Full' | 'Incremental';
    readonly chainCounterAfter: number;
    readonly scheduledUtc: string;
  } | undefined;
  /** The newest on-demand backup and restore operations already taken into account. */
  readonly seenOnDemandId?: string | undefined;
  readonly seenRestoreId?: string | undefined;
}

/**
 * The retention sweeper's state of one partition: when it last ran (per policy version) and the
 * backup it was deleting, if a run stopped halfway (finished first on the next run, §2.13).
 */
export interface RetentionStateRecord {
  readonly partitionId: string;
  /** The policy version (uniqueId) the last run applied: a new one makes a run due at once. */
  readonly policyUniqueId: string;
  readonly lastRunUtc?: string | undefined;
  readonly consecutiveFailures: number;
  readonly retryAtUtc?: string | undefined;
  readonly lastError?: string | undefined;
  readonly deleting?: {
    /** storageIdentity() of the storage it is in: only that storage's sweep finishes it. */
    readonly storageKey: string;
    readonly backupId: string;
    readonly backupChainId: string;
    readonly parentBackupId: string;
    readonly backupType: 'Full' | 'Incremental';
    readonly creationUtc: string;
    readonly metadataKey: string;
    readonly dataKey: string;
  } | undefined;
}

/** A pure, synchronous change of the protection state (runs inside the catalog's transaction). */
export type ProtectionChange<T extends { state: ProtectionState }> = (state: ProtectionState, policies: PolicyNames) => Outcome<T>;

export interface PolicyDeletion {
  readonly removedMappings: ProtectionMapping[];
  readonly removedSuspensions: BackupEntity[];
}

/** The catalog in parts by record kind, over one store (one database: a part's transaction may read another's tables). */
export interface Catalog {
  readonly hierarchy: HierarchyStore;
  readonly operations: OperationStore;
  readonly backups: BackupIndex;
  readonly policies: PolicyStore;
  readonly schedules: ScheduleStore;
  readonly leases: LeaseStore;
  readonly signals: SignalBus;
  close(): Promise<void>;
}

/**
 * What an instance tells the others through the catalog: a host has orders waiting (`orders`), an
 * operation ended (`ended`), the protection or a policy changed (`protection`).
 */
export type CatalogSignal =
  | { readonly kind: 'orders'; readonly hostId: string }
  | { readonly kind: 'ended'; readonly operationId: string }
  | { readonly kind: 'protection' };

/** Signals between the instances on one catalog (in one process: between its parts). */
export interface SignalBus {
  /** Sends a signal to every subscriber, this instance's included. */
  publish(signal: CatalogSignal): Promise<void>;
  /** Calls `listener` for every signal; returns the unsubscribe. */
  subscribe(listener: (signal: CatalogSignal) => void): () => void;
}

/** Leases: one holder at a time, a fencing token per taking. */
export interface LeaseStore {
  /**
   * Takes the lease for `holder` until `untilUtc`, or renews it: when it is free, expired at
   * `nowUtc`, or the holder's own and not expired. A renewal keeps the token; a new taking (by
   * anyone, the same holder after its lease expired too) gets one greater than any before.
   * Undefined when another holds it.
   */
  acquire(name: string, holder: string, nowUtc: string, untilUtc: string): Promise<LeaseRecord | undefined>;
  /** Gives the lease up, when `holder` holds it: another may take it at once. */
  release(name: string, holder: string): Promise<void>;
  /** The lease as it is (held or expired), or undefined when it was never taken. */
  get(name: string): Promise<LeaseRecord | undefined>;
}

/** Hosts, the services they serve and their partitions. */
export interface HierarchyStore {
  /** Records a host's registration; returns the incarnation it had before (undefined: a new host). */
  upsertHost(id: string, incarnation: string, nowUtc: string): Promise<{ previousIncarnation: string | undefined }>;
  /** Notes a sign of life of a registered host (nothing for an unknown one). */
  hostSeen(id: string, sighting: HostSighting, nowUtc: string): Promise<void>;
  getHost(id: string): Promise<HostRecord | undefined>;
  /** Hosts by id. */
  listHosts(): Promise<HostRecord[]>;
  /**
   * Records a host's service and the partitions it serves (taking over those other hosts served:
   * the service decides whether it may). Partitions of the service this host served and no longer
   * lists are removed; other hosts' partitions are never touched.
   */
  registerService(hostId: string, service: ServiceRecord, partitions: ReadonlyArray<Omit<PartitionRecord, 'hostId' | 'serviceName'>>): Promise<void>;
  updatePartitionState(id: string, epoch: EpochWire, lastLsn: string): Promise<void>;
  /** Keeps a SkipAutoRestore request of the partition until `untilUtc`. */
  setSkipAutoRestore(partitionId: string, untilUtc: string): Promise<void>;
  /** Takes the partition's SkipAutoRestore request (it is used once): its until, or undefined. */
  takeSkipAutoRestore(partitionId: string): Promise<string | undefined>;
  /** Applications by name. */
  listApplications(): Promise<string[]>;
  /** Services by name; of one application when given. */
  listServices(application?: string): Promise<ServiceRecord[]>;
  getService(name: string): Promise<ServiceRecord | undefined>;
  /** Partitions of a service, in scheme order. */
  listPartitions(serviceName: string): Promise<PartitionRecord[]>;
  getPartition(id: string): Promise<PartitionRecord | undefined>;
}

/** A change to an operation: its new state and what comes with it. */
export interface OperationPatch {
  readonly state: OperationState;
  readonly updatedUtc: string;
  readonly result?: Record<string, unknown>;
  readonly failure?: FailureError;
}

/** What a host's final report writes besides the operation's end (`OperationStore.end`). */
export interface HostReportRecords {
  /** The operation's partition's epoch and last LSN, as the host saw them. */
  readonly partitionState?: { readonly epoch: EpochWire; readonly lastLsn: string };
  /** The backup the host made; its partition is the operation's. */
  readonly backup?: Omit<BackupRecord, 'applicationName'>;
}

/** What `OperationStore.end` did. */
export type EndOutcome = 'ended' | 'not-active' | 'foreign-backup';

/** Backup and restore operations (their requests hold secrets). */
export interface OperationStore {
  /**
   * Inserts an Accepted operation, or returns the partition's active operation instead. With a
   * fence, only while its token is the lease's (else LIFEBOAT_E_NOT_LEADER, nothing written).
   */
  insert(op: OperationRecord, fence?: Fence): Promise<{ inserted: true } | { inserted: false; active: OperationRecord }>;
  /**
   * Changes an active operation (its result merged key by key into the one kept); whether it was
   * active. Of two racing changes, both are written in turn; once one ends it, the other is not.
   */
  update(id: string, patch: OperationPatch): Promise<boolean>;
  /**
   * Ends an active operation with its host's report, in one transaction: `update`'s patch (an end
   * state) and, only with it, the partition's epoch and LSN the host reported and the backup it
   * made, indexed under its service's application (the service name's own if the service has no
   * row). Nothing is written if the operation is no longer active ('not-active'), nor if the
   * backup's id is another partition's already ('foreign-backup'): a host cannot overwrite
   * another partition's index row.
   */
  end(id: string, patch: OperationPatch, report: HostReportRecords): Promise<EndOutcome>;
  get(id: string): Promise<OperationRecord | undefined>;
  /**
   * Inserts, in one transaction, each operation whose partition has no active one (as `insert`
   * does, one after another); returns the ids inserted. With a fence, none unless it holds (else
   * LIFEBOAT_E_NOT_LEADER).
   */
  insertMany(ops: readonly OperationRecord[], fence?: Fence): Promise<Set<string>>;
  /** The newest operation of this kind on the partition. */
  latest(partitionId: string, kind: OperationKind): Promise<OperationRecord | undefined>;
  /** `latest` of each of the partitions, in one read: by partition id, those that have one. */
  latestOf(partitionIds: readonly string[], kind: OperationKind): Promise<Map<string, OperationRecord>>;
  /** The newest operation of one of `kinds` on the partition that has ended (Success, Failure, Timeout). */
  latestEnded(partitionId: string, kinds: readonly OperationKind[]): Promise<OperationRecord | undefined>;
  /** Active operations, oldest first; of one host's partitions when given. */
  active(hostId?: string): Promise<OperationRecord[]>;
  /** The ids of the active operations: `active` without reading (or opening) the records. */
  activeIds(): Promise<Set<string>>;
  /** Those of the operations that exist, by id, in one read. */
  getMany(ids: readonly string[]): Promise<Map<string, OperationRecord>>;
  /**
   * Hands out to `hostId` the orders of its partitions' active operations that are not out to it
   * already — never handed out, handed to another host (the partition moved), or handed before
   * `againBeforeUtc` (a host that went quiet gets it again) — and returns them, oldest first. One
   * statement: of several instances claiming at once, each order goes to exactly one of them.
   */
  claimOrders(hostId: string, nowUtc: string, againBeforeUtc: string): Promise<OperationRecord[]>;
  /** Forgets which of the host's orders are out: a host that restarted gets them all again. */
  releaseOrders(hostId: string): Promise<void>;
}

/** The index of backups taken. */
export interface BackupIndex {
  insert(b: BackupRecord): Promise<void>;
  get(backupId: string): Promise<BackupRecord | undefined>;
  /** Backups by (serviceName, partitionId, creationTimeUtc, backupId). */
  list(filter: BackupFilter): Promise<BackupRecord[]>;
  /** One page of `list`'s order (keyset paging: its cost does not grow with the pages before it). */
  page(filter: BackupFilter, q: BackupPageQuery): Promise<BackupRecord[]>;
  /** How many backups the index holds, in all. */
  count(): Promise<number>;
  /** Removes a backup from the index (deleting a missing one is not an error). */
  delete(backupId: string): Promise<void>;
}

/** Backup policies (they hold secrets) and protection: the two change together, in one transaction. */
export interface PolicyStore {
  /** Inserts a new policy; false (and nothing written) when the name exists. */
  insert(p: PolicyRecord): Promise<boolean>;
  /** Replaces an existing policy (keeps createdUtc); false when there is none of that name. */
  update(p: Omit<PolicyRecord, 'createdUtc'>): Promise<boolean>;
  get(name: string): Promise<PolicyRecord | undefined>;
  /** Policies by name. */
  list(): Promise<PolicyRecord[]>;
  /**
   * Deletes a policy unless an existing entity still maps to it (FABRIC_E_BACKUP_IS_ENABLED) or it
   * does not exist (FABRIC_E_BACKUP_POLICY_NOT_EXISTING); mappings of entities that no longer exist,
   * and the suspensions under the policy, go with it. One transaction.
   */
  delete(name: string): Promise<Outcome<PolicyDeletion>>;
  /** The protection state as it is now. */
  getProtection(): Promise<ProtectionState>;
  /** Applies `change` to the current state in one transaction; writes its state when it is ok. */
  changeProtection<T extends { state: ProtectionState }>(change: ProtectionChange<T>): Promise<Outcome<T>>;
}

/** What the background loops remember per partition: the scheduler's and the retention sweeper's state. */
export interface ScheduleStore {
  /** The scheduler's state of a partition. */
  getPeriodic(partitionId: string): Promise<PeriodicScheduleRecord | undefined>;
  /** The scheduler's state of every partition that has one (one read per scheduler pass, not one per partition). */
  listPeriodic(): Promise<PeriodicScheduleRecord[]>;
  /**
   * Writes (replaces) the scheduler's states of partitions, all in one transaction (a pass writes
   * hundreds at once); of two for one partition, the last. With a fence, only while it holds
   * (else LIFEBOAT_E_NOT_LEADER, and none is written).
   */
  putPeriodic(records: readonly PeriodicScheduleRecord[], updatedUtc: string, fence?: Fence): Promise<void>;
  /** The retention sweeper's state of a partition. */
  getRetention(partitionId: string): Promise<RetentionStateRecord | undefined>;
  /** Writes (replaces) the retention sweeper's state of a partition; with a fence, only while it holds (else LIFEBOAT_E_NOT_LEADER). */
  putRetention(r: RetentionStateRecord, updatedUtc: string, fence?: Fence): Promise<void>;
}

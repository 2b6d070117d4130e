/**
 * The Lifeboat service's use cases: on-demand backup and restore of partitions, their progress,
 * backup listing, the hierarchy of applications, services and partitions, and the hosts that
 * carry orders out. I/O only through the catalog and storage ports; time from the clock.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { METADATA_EXTENSION, dataKeyOfMetadata, normalizeLocation, partitionFolder, serviceFolder } from '../core/backup-layout.ts';
import { LifeboatError, invalidArgUnless, isLifeboatError } from '../core/errors.ts';
import { HOST_ID } from '../core/access.ts';
import { type DataLossDecision, type HostChannel, type Order, type Registration, type Report, type StoredBackupSummary, parseRegistration, parseReport } from '../core/host-protocol.ts';
import { type EndedOperation, aggregatedHealthState, backupRestoreHealthEvents, eventsMatchingFilter } from '../core/health.ts';
import { applicationOf } from '../core/ids.ts';
import { parseServiceName } from '../core/names.ts';
import { type PartitionInfo, partitionInfoFromJson, partitionInfoToJson, samePartitionInfo, schemeFromJson, schemeToJson } from '../core/partitioning.ts';
import { SECRET_FIELDS, SECRET_MASK, type StorageDescription, parseStorageDescription, storageIdentity } from '../core/storage-description.ts';
import { type BackupPolicy, checkPolicyName, parseBackupPolicy, policyToWire } from '../core/policy.ts';
import {
  type BackupEntity, type CleanBackupTarget, type EntityLevel, type PartitionRef, type ProtectionState, type Refusal, cleanBackupTargets, disableBackup, effectivePolicy,
  effectivePolicyOf, enableBackup, entitiesOfPolicy, entityKey, overridesBelow, resumeBackup, suspendBackup, suspensionOf,
} from '../core/protection.ts';
import type { BackupRecord, Catalog, OperationKind, OperationRecord, PartitionRecord } from '../catalog/port.ts';
/** The catalog's records the routes read (src/api does not import the catalog). */
export type { PartitionRecord, ServiceRecord } from '../catalog/port.ts';
import type { StoredBackupMetadata } from '../format/bkmetadata.ts';
import { type Keyring, createBlockPool, defaultWorkers } from '../format/lbk2.ts';
import type { BlobStore } from '../storage/port.ts';
import { type ChainEntry, type CheckedBackup, checkBackupData, checkChain, readBackupMetadataAt, readChain } from './backup-check.ts';
import { type RewrapReport, rewrapKeys } from './key-rotation.ts';
import { Limiter } from './limiter.ts';
import { listStoredBackups } from './stored-backups.ts';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface ServiceDeps {
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly openStorage: (d: StorageDescription) => BlobStore;
  readonly newId?: () => string;
  readonly log?: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void };
  /** The installation's encryption keys: VerifyBackup authenticates encrypted backups with them; key rotation re-wraps under the current one. */
  readonly keyring?: Keyring | undefined;
  /** `--require-encrypted-restores`: with a keyring, a restore of a chain holding an unencrypted backup is refused. */
  readonly requireEncryptedRestores?: boolean;
}

/** VerifyBackup's answer: the backup and its whole chain, full backup first. */
export interface VerifyResult {
  readonly BackupId: string;
  readonly Chain: CheckedBackup[];
  readonly Ok: true;
}

export interface BackupProgress {
  BackupState: string;
  TimeStampUtc: string;
  BackupId: string;
  BackupLocation: string;
  EpochOfLastBackupRecord: { DataLossVersion: string; ConfigurationVersion: string } | null;
  LsnOfLastBackupRecord: string;
  FailureError: { Code: string; Message: string } | null;
}

export interface RestoreProgress {
  RestoreState: string;
  TimeStampUtc: string;
  RestoredEpoch: { DataLossVersion: string; ConfigurationVersion: string } | null;
  RestoredLsn: string;
  FailureError: { Code: string; Message: string } | null;
}

export type BackupScope = { kind: 'Application'; name: string } | { kind: 'Service'; name: string } | { kind: 'Partition'; id: string };

export interface ListFilter {
  readonly latest: boolean;
  readonly start?: Date;
  readonly end?: Date;
}

/** The wire form of one backup (Service Fabric's BackupInfo). */
export interface BackupInfoWire {
  BackupId: string;
  BackupChainId: string;
  ApplicationName: string;
  ServiceName: string;
  PartitionInformation: Record<string, string>;
  BackupLocation: string;
  BackupType: string;
  EpochOfLastBackupRecord: { DataLossVersion: string; ConfigurationVersion: string };
  LsnOfLastBackupRecord: string;
  CreationTimeUtc: string;
  ServiceManifestVersion: string;
  FailureError: null;
}

const MIN_TIMEOUT_MINUTES = 1;
const MAX_TIMEOUT_MINUTES = 7 * 24 * 60;
const ZERO_TIME = '0001-01-01T00:00:00Z';
const EMPTY_ID = '00000000-0000-0000-0000-000000000000';
/** A host that has not polled for this long is no longer serving (its in-flight orders are re-sent when it returns). */
const ORDER_REDISPATCH_MS = 60_000;
/** A host whose last poll ended this recently (and not by hanging up) is alive: it polls in a loop. */
const HOST_LIVE_MS = 5_000;
/** Order polls one host may hold open at once (a host holds one; more is a host gone wrong, or an attack). */
const MAX_POLLS_PER_HOST = 4;
/** What one host may register. */
const REGISTRATION_LIMITS = { services: 256, partitions: 10_000 } as const;
const ACTIVE_STATES: ReadonlySet<string> = new Set(['Accepted', 'BackupInProgress', 'RestoreInProgress']);

function checkRegistrationSize(r: Registration): void {
  invalidArgUnless(r.Services.length <= REGISTRATION_LIMITS.services, `A host registers at most ${REGISTRATION_LIMITS.services} services.`);
  const partitions = r.Services.reduce((n, s) => n + s.Partitions.length, 0);
  invalidArgUnless(partitions <= REGISTRATION_LIMITS.partitions, `A host registers at most ${REGISTRATION_LIMITS.partitions} partitions.`);
  const ids = new Set<string>();
  for (const s of r.Services) {
    for (const p of s.Partitions) {
      invalidArgUnless(!ids.has(p.Id), `Partition ${p.Id} is registered twice.`);
      ids.add(p.Id);
      invalidArgUnless(JSON.stringify(p.Info).length <= 1024, `The Info of partition ${p.Id} is too long.`);
    }
  }
}

export function wireTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

export function partitionInformationWire(id: string, info: PartitionInfo): Record<string, string> {
  switch (info.kind) {
    case 'Singleton': return { ServicePartitionKind: 'Singleton', Id: id };
    case 'Named': return { ServicePartitionKind: 'Named', Id: id, Name: info.name };
    case 'Int64Range': return { ServicePartitionKind: 'Int64Range', Id: id, LowKey: info.lowKey.toString(), HighKey: info.highKey.toString() };
  }
}

function timeoutMinutes(value: number | undefined, what: string): number {
  if (value === undefined) return 10;
  invalidArgUnless(Number.isInteger(value) && value >= MIN_TIMEOUT_MINUTES && value <= MAX_TIMEOUT_MINUTES, `${what} must be a whole number of minutes from ${MIN_TIMEOUT_MINUTES} to ${MAX_TIMEOUT_MINUTES}.`);
  return value;
}

function backupToWire(b: BackupRecord): BackupInfoWire {
  return {
    BackupId: b.backupId, BackupChainId: b.backupChainId, ApplicationName: b.applicationName, ServiceName: b.serviceName,
    PartitionInformation: partitionInformationWire(b.partitionId, b.partitionInfo), BackupLocation: b.backupLocation, BackupType: b.backupType,
    EpochOfLastBackupRecord: b.epoch, LsnOfLastBackupRecord: b.lsn, CreationTimeUtc: wireTime(new Date(b.creationTimeUtc)), ServiceManifestVersion: '1.0.0', FailureError: null,
  };
}

function metadataToWire(m: StoredBackupMetadata): BackupInfoWire {
  return {
    BackupId: m.BackupId, BackupChainId: m.BackupChainId, ApplicationName: m.ApplicationName, ServiceName: m.ServiceName,
    PartitionInformation: partitionInformationWire(m.PartitionId, m.PartitionInformation), BackupLocation: m.BackupLocation, BackupType: m.BackupType,
    EpochOfLastBackupRecord: m.EpochOfLastBackupRecord, LsnOfLastBackupRecord: m.LsnOfLastBackupRecord, CreationTimeUtc: wireTime(new Date(m.CreationTimeUtc)),
    ServiceManifestVersion: m.ServiceManifestVersion || '1.0.0', FailureError: null,
  };
}

/** Keeps, per partition, only the newest backup (Latest=true). */
function newestPerPartition<T extends { ServiceName: string; PartitionInformation: Record<string, string>; CreationTimeUtc: string }>(items: T[]): T[] {
  const newest = new Map<string, T>();
  for (const b of items) {
    const key = `${b.ServiceName}#${b.PartitionInformation.Id ?? ''}`;
    const cur = newest.get(key);
    if (!cur || cur.CreationTimeUtc <= b.CreationTimeUtc) newest.set(key, b);
  }
  return items.filter((b) => newest.get(`${b.ServiceName}#${b.PartitionInformation.Id ?? ''}`) === b);
}

export class LifeboatService implements HostChannel {
  private readonly catalog: Catalog;
  private readonly clock: Clock;
  private readonly storageFor: (d: StorageDescription) => BlobStore;
  private readonly newId: () => string;
  private readonly log: NonNullable<ServiceDeps['log']>;
  private readonly keyring: Keyring | undefined;
  private readonly requireEncryptedRestores: boolean;
  /** VerifyBackups: two at once (each with its block workers), 32 waiting; more get 503. */
  private readonly verifyLimit = new Limiter(2, 32, 'backup verifications');
  private readonly wake = new EventEmitter();
  /**
   * 'ended' (operation) when a host reported an operation's end; 'protection-changed' when a
   * policy or the protection changed. The scheduler listens, so a schedule starts when its
   * policy is enabled, not at the loop's next idle wake-up.
   */
  readonly operationEvents = new EventEmitter();
  /** Orders handed to a host and when; not handed again until it re-registers or goes quiet. */
  private readonly dispatched = new Map<string, { hostId: string; atMs: number }>();
  private shuttingDown = false;
  /** Order polls per host: how many are open, when the last ended, and whether the host hung up on it. */
  private readonly polls = new Map<string, { open: number; lastEndMs: number; hungUp: boolean }>();
  /** SkipAutoRestore requests, until when they hold. */
  private readonly skipAutoRestoreUntil = new Map<string, Date>();

  constructor(deps: ServiceDeps) {
    this.catalog = deps.catalog;
    this.clock = deps.clock;
    this.storageFor = deps.openStorage;
    this.newId = deps.newId ?? randomUUID;
    this.log = deps.log ?? { warn: () => undefined, info: () => undefined };
    this.keyring = deps.keyring;
    this.requireEncryptedRestores = deps.requireEncryptedRestores === true;
    this.wake.setMaxListeners(0);
  }

  private nowUtc(): string {
    return this.clock.now().toISOString();
  }

  // ---- startup ----------------------------------------------------------------------------

  /**
   * After a restart: operations a host was carrying out when the service stopped end in Failure
   * (their host's report went nowhere); Accepted ones stay queued and are handed out again.
   */
  async recoverAfterRestart(): Promise<void> {
    for (const op of await this.catalog.activeOperations()) {
      if (op.state === 'Accepted') continue;
      await this.catalog.updateOperation(op.id, {
        state: 'Failure', updatedUtc: this.nowUtc(),
        failure: { Code: 'E_ABORT', Message: `The ${op.kind.toLowerCase()} was cut off: Lifeboat restarted while it ran. Request it again.` },
      });
    }
    // Accepted ones whose time ran out while Lifeboat was down end now, before any host sees them.
    await this.expireOperations();
  }

  /** Ends active operations whose deadline has passed with Timeout. */
  async expireOperations(): Promise<number> {
    const now = this.clock.now();
    let n = 0;
    for (const op of await this.catalog.activeOperations()) {
      if (new Date(op.deadlineUtc) > now) continue;
      const ok = await this.catalog.updateOperation(op.id, {
        state: 'Timeout', updatedUtc: now.toISOString(),
        failure: { Code: 'FABRIC_E_TIMEOUT', Message: `The request of ${op.kind.toLowerCase()} has timed out.` },
      });
      if (ok) n++;
      this.dispatched.delete(op.id);
    }
    return n;
  }

  // ---- hosts ------------------------------------------------------------------------------

  async register(hostId: string, value: Registration): Promise<void> {
    invalidArgUnless(typeof hostId === 'string' && HOST_ID.test(hostId), 'A host id is 1 to 128 letters, digits, dots, dashes or underscores.');
    let registration: Registration;
    try {
      registration = parseRegistration(value);
    } catch (err) {
      throw new LifeboatError('E_INVALIDARG', `Registration of host ${hostId} is not valid: ${(err as Error).message}.`);
    }
    checkRegistrationSize(registration);
    const services = registration.Services.map((s) => ({ s, name: parseServiceName(s.Name), scheme: schemeFromJson(s.Scheme) }));
    // A partition another host serves is taken over only when that host is gone (no poll open, the
    // last one ended by a hang-up or long ago): a host token cannot steal a live host's partitions,
    // and with them its orders and their storage credentials.
    for (const { s, name, scheme } of services) {
      const known = await this.catalog.getService(name.uri);
      if (known && JSON.stringify(schemeToJson(known.scheme)) !== JSON.stringify(schemeToJson(scheme))) {
        const others = (await this.catalog.listPartitions(name.uri)).filter((p) => p.hostId !== hostId && this.hostIsLive(p.hostId));
        if (others.length > 0) throw new LifeboatError('E_ACCESSDENIED', `Service ${name.uri} has another partitioning, and live host ${others[0]?.hostId ?? ''} serves it.`);
      }
      for (const p of s.Partitions) {
        const owner = (await this.catalog.getPartition(p.Id))?.hostId;
        if (owner !== undefined && owner !== hostId && this.hostIsLive(owner)) {
          throw new LifeboatError('E_ACCESSDENIED', `Partition ${p.Id} is served by host ${owner}, which is alive; a partition moves only when its host is gone.`);
        }
      }
    }
    await this.catalog.upsertHost(hostId, this.nowUtc());
    for (const { s, name, scheme } of services) {
      await this.catalog.registerService(hostId, { name: name.uri, application: name.application, scheme, hasPersistedState: s.HasPersistedState !== false },
        s.Partitions.map((p) => ({ id: p.Id, info: partitionInfoFromJson(p.Info), epoch: p.Epoch, lastLsn: p.Lsn })));
    }
    // A host that registers again lost whatever it was doing: hand its orders out afresh.
    for (const [opId, d] of this.dispatched) if (d.hostId === hostId) this.dispatched.delete(opId);
    this.wake.emit(hostId);
  }

  /** Whether the host polls for orders now, or did a moment ago without hanging up. */
  private hostIsLive(hostId: string): boolean {
    const h = this.polls.get(hostId);
    if (!h) return false;
    return h.open > 0 || (!h.hungUp && Date.now() - h.lastEndMs < HOST_LIVE_MS);
  }

  /** Shutting down: every waiting order poll ends now, and later ones return at once. */
  wakeAll(): void {
    this.shuttingDown = true;
    for (const name of this.wake.eventNames()) this.wake.emit(name);
  }

  /**
   * Orders for the host's partitions; waits up to `waitMs` for one. `signal` ends the wait when
   * the asking host has gone (its connection closed), so no order is handed to nobody.
   */
  async pollOrders(hostId: string, waitMs: number, signal?: AbortSignal): Promise<Order[]> {
    const h = this.polls.get(hostId) ?? { open: 0, lastEndMs: 0, hungUp: false };
    if (h.open >= MAX_POLLS_PER_HOST) throw new LifeboatError('LIFEBOAT_E_BUSY', `Host ${hostId} has ${h.open} order polls open already; one at a time is enough.`);
    h.open++;
    this.polls.set(hostId, h);
    try {
      return await this.waitForOrders(hostId, waitMs, signal);
    } finally {
      h.open--;
      h.lastEndMs = Date.now();
      h.hungUp = signal?.aborted === true;
    }
  }

  private async waitForOrders(hostId: string, waitMs: number, signal?: AbortSignal): Promise<Order[]> {
    const deadline = Date.now() + Math.max(0, Math.min(waitMs, 60_000));
    for (;;) {
      if (signal?.aborted) return [];
      const orders = await this.ordersFor(hostId);
      if (orders.length > 0 || Date.now() >= deadline || this.shuttingDown) return orders;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.wake.off(hostId, done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, deadline - Date.now());
        this.wake.on(hostId, done);
        signal?.addEventListener('abort', done);
      });
    }
  }

  private async ordersFor(hostId: string): Promise<Order[]> {
    const orders: Order[] = [];
    const nowMs = Date.now();
    const now = this.clock.now();
    let overdue = false;
    for (const op of await this.catalog.activeOperations(hostId)) {
      if (new Date(op.deadlineUtc) <= now) {
        overdue = true;
        continue;
      }
      // Not handed again to the host that has it, while that host is alive; a partition that
      // moved to another host gets its order at once.
      const d = this.dispatched.get(op.id);
      if (d && d.hostId === hostId && nowMs - d.atMs < ORDER_REDISPATCH_MS) continue;
      this.dispatched.set(op.id, { hostId, atMs: nowMs });
      const storage = op.request.storage as StorageDescription;
      const periodic = op.request.periodic as { option?: 'Full' | 'Incremental'; parentBackupId?: string; parentBackupLocation?: string } | undefined;
      orders.push(op.kind !== 'Restore'
        ? {
          OperationId: op.id, Kind: 'Backup', PartitionId: op.partitionId, Storage: storage, DeadlineUtc: op.deadlineUtc,
          ...(periodic?.option === 'Incremental'
            ? { Option: 'Incremental' as const, ParentBackupId: periodic.parentBackupId ?? '', ParentBackupLocation: periodic.parentBackupLocation ?? '' }
            : {}),
        }
        : {
          OperationId: op.id, Kind: 'Restore', PartitionId: op.partitionId, Storage: storage, DeadlineUtc: op.deadlineUtc, Chain: op.request.chain as string[],
          RestorePolicy: op.request.auto === true ? 'Safe' as const : 'Force' as const,
        });
    }
    if (overdue) await this.expireOperations();
    return orders;
  }

  async report(hostId: string, value: Report): Promise<void> {
    let r: Report;
    try {
      r = parseReport(value);
    } catch (err) {
      throw new LifeboatError('E_INVALIDARG', `Report from host ${hostId} is not valid: ${(err as Error).message}.`);
    }
    const op = await this.catalog.getOperation(r.OperationId);
    const partition = op && (await this.catalog.getPartition(op.partitionId));
    // One answer for an operation that does not exist and one of another host's partitions: a
    // host learns nothing of operations that are not its own.
    if (!op || !partition || partition.hostId !== hostId) throw new LifeboatError('E_INVALIDARG', `Host ${hostId} has no operation ${r.OperationId}.`);
    if ('Partition' in r && r.Partition) invalidArgUnless(r.Partition.Id === op.partitionId, `The report names partition ${r.Partition.Id}; operation ${op.id} is of partition ${op.partitionId}.`);
    const now = this.nowUtc();
    if (!ACTIVE_STATES.has(op.state)) {
      // Ended: nothing changes, but a backup that really reached storage after its deadline is
      // indexed (it exists, and retention must see it).
      if (op.state === 'Timeout' && r.State === 'Success' && r.Backup && op.kind !== 'Restore') await this.indexBackup(op, partition, r.Backup);
      return;
    }
    if ('Partition' in r && r.Partition) await this.catalog.updatePartitionState(op.partitionId, r.Partition.Epoch, r.Partition.Lsn);
    if (r.State === 'InProgress') {
      await this.catalog.updateOperation(op.id, { state: op.kind === 'Restore' ? 'RestoreInProgress' : 'BackupInProgress', updatedUtc: now });
      return;
    }
    this.dispatched.delete(op.id);
    try {
      await this.finish(op, partition, r, now);
    } finally {
      this.operationEvents.emit('ended', op);
    }
  }

  /**
   * Records a backup a host reports in the index. Its location must be in the partition's own
   * folder, and its id new or already this partition's: a host cannot overwrite the index row of
   * another partition's backup, nor index another partition's objects as its own.
   */
  private async indexBackup(op: OperationRecord, partition: PartitionRecord, b: StoredBackupSummary): Promise<void> {
    const folder = `${partitionFolder(partition.serviceName, partition.id)}/`;
    let location: string;
    try {
      location = normalizeLocation(b.BackupLocation);
    } catch {
      throw new LifeboatError('E_INVALIDARG', `BackupLocation '${b.BackupLocation}' is not a valid relative path.`);
    }
    invalidArgUnless(location.startsWith(folder) && !location.slice(folder.length).includes('/'), `BackupLocation '${b.BackupLocation}' is not in partition ${partition.id}'s folder ${folder}.`);
    const existing = await this.catalog.getBackup(b.BackupId);
    invalidArgUnless(!existing || existing.partitionId === partition.id, `Backup ${b.BackupId} is another partition's.`);
    const service = await this.catalog.getService(partition.serviceName);
    await this.catalog.insertBackup({
      backupId: b.BackupId, backupChainId: b.BackupChainId, parentBackupId: b.ParentBackupId, applicationName: service?.application ?? applicationOf(partition.serviceName),
      serviceName: partition.serviceName, partitionId: partition.id, partitionInfo: partition.info, backupLocation: b.BackupLocation, backupType: b.BackupType,
      epoch: b.EpochOfLastBackupRecord, lsn: b.LsnOfLastBackupRecord, creationTimeUtc: b.CreationTimeUtc, storageKey: storageIdentity(op.request.storage as StorageDescription),
    });
  }

  private async finish(op: OperationRecord, partition: PartitionRecord, r: Exclude<Report, { State: 'InProgress' }>, now: string): Promise<void> {
    if (r.State === 'Failure') {
      await this.catalog.updateOperation(op.id, { state: 'Failure', updatedUtc: now, failure: r.Error });
      return;
    }
    if (op.kind !== 'Restore' && r.Backup) {
      const b = r.Backup;
      await this.indexBackup(op, partition, b);
      await this.catalog.updateOperation(op.id, {
        state: 'Success', updatedUtc: now,
        result: { BackupId: b.BackupId, BackupChainId: b.BackupChainId, BackupLocation: b.BackupLocation, EpochOfLastBackupRecord: b.EpochOfLastBackupRecord, LsnOfLastBackupRecord: b.LsnOfLastBackupRecord, TimeStampUtc: b.CreationTimeUtc },
      });
    } else if (op.kind === 'Restore' && r.Restored) {
      // As Service Fabric reports it: the restored backup's epoch and LSN (the partition itself
      // is now in a newer epoch, shown by GET /Partitions/{id}).
      await this.catalog.updateOperation(op.id, {
        state: 'Success', updatedUtc: now,
        result: { RestoredEpoch: op.request.backupEpoch ?? r.Restored.Epoch, RestoredLsn: r.Restored.Lsn, PartitionEpoch: r.Restored.Epoch, TimeStampUtc: now },
      });
    } else {
      throw new LifeboatError('E_INVALIDARG', `A successful ${op.kind.toLowerCase()} report must carry its result.`);
    }
  }

  // ---- hierarchy --------------------------------------------------------------------------

  async listApplications(): Promise<string[]> {
    return this.catalog.listApplications();
  }

  async getApplication(name: string): Promise<string> {
    if (!(await this.catalog.listApplications()).includes(name)) throw new LifeboatError('FABRIC_E_APPLICATION_NOT_FOUND', `Application ${name} does not exist.`);
    return name;
  }

  async listServices(application: string): Promise<ReturnType<Catalog['listServices']>> {
    await this.getApplication(application);
    return this.catalog.listServices(application);
  }

  async getService(name: string): Promise<NonNullable<Awaited<ReturnType<Catalog['getService']>>>> {
    const s = await this.catalog.getService(name);
    if (!s) throw new LifeboatError('FABRIC_E_SERVICE_DOES_NOT_EXIST', `Service ${name} does not exist.`);
    return s;
  }

  async listPartitions(serviceName: string): Promise<PartitionRecord[]> {
    await this.getService(serviceName);
    return this.catalog.listPartitions(serviceName);
  }

  async getPartition(id: string): Promise<PartitionRecord> {
    const p = await this.catalog.getPartition(id);
    if (!p) throw new LifeboatError('FABRIC_E_PARTITION_NOT_FOUND', `Partition ${id} does not exist.`);
    return p;
  }

  // ---- on-demand backup -------------------------------------------------------------------

  /** Accepts an on-demand (always Full) backup of the partition to the storage given. */
  async backupPartition(partitionId: string, body: { BackupStorage?: unknown } | undefined, backupTimeout?: number): Promise<OperationRecord> {
    const minutes = timeoutMinutes(backupTimeout, 'BackupTimeout');
    const partition = await this.getPartition(partitionId);
    // Without BackupStorage: the effective policy's storage — also while periodic backups are
    // suspended (suspension stops the schedule, not on-demand backups; sf-behaviour §2.10).
    const storage = body?.BackupStorage === undefined || body.BackupStorage === null
      ? (await this.policyOfPartition(partition)).storage
      : parseStorageDescription(body.BackupStorage);
    this.storageFor(storage); // refuses paths and kinds this installation does not allow
    return this.accept(partition, 'Backup', minutes, { storage });
  }

  async backupProgress(partitionId: string): Promise<BackupProgress> {
    await this.getPartition(partitionId);
    const op = await this.catalog.latestOperation(partitionId, 'Backup');
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
    };
  }

  // ---- restore ------------------------------------------------------------------------------

  /**
   * The backup a RestorePartition or VerifyBackup body names, read from its `.bkmetadata` and
   * checked to be the BackupId named and of a partition like this one. Without a body (or with
   * Latest) the newest backup of the partition in its policy's storage, or the BackupStorage
   * given, as the backup index knows it (9.1).
   */
  private async namedBackup(
    partition: PartitionRecord, given: { BackupId?: unknown; BackupLocation?: unknown; BackupStorage?: unknown } | undefined, latest: boolean,
  ): Promise<{ storage: StorageDescription; store: BlobStore; target: ChainEntry }> {
    let body = given;
    if (body === undefined || body === null || latest) {
      const storage = body?.BackupStorage === undefined || body.BackupStorage === null
        ? (await this.policyOfPartition(partition)).storage
        : parseStorageDescription(body.BackupStorage);
      const key = storageIdentity(storage);
      const newest = (await this.catalog.listBackups({ partitionId: partition.id })).filter((b) => b.storageKey === key)
        .sort((a, b) => (a.creationTimeUtc < b.creationTimeUtc ? -1 : a.creationTimeUtc > b.creationTimeUtc ? 1 : 0)).pop();
      if (!newest) throw new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `No backup of partition ${partition.id} is known in ${key}.`);
      body = { BackupId: newest.backupId, BackupLocation: newest.backupLocation, BackupStorage: storage };
    }
    invalidArgUnless(typeof body.BackupId === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(body.BackupId), 'BackupId must be a GUID.');
    invalidArgUnless(typeof body.BackupLocation === 'string' && body.BackupLocation.length > 0, 'BackupLocation is required.');
    const storage = body.BackupStorage === undefined || body.BackupStorage === null
      ? (await this.policyOfPartition(partition)).storage
      : parseStorageDescription(body.BackupStorage);
    const store = this.storageFor(storage);
    const target = await readBackupMetadataAt(store, normalizeLocation(body.BackupLocation));
    const m = target.metadata;
    if (m.BackupId.toLowerCase() !== body.BackupId.toLowerCase()) {
      throw new LifeboatError('E_INVALIDARG', `The backup at ${target.location} is ${m.BackupId}, not ${body.BackupId}.`);
    }
    if (!samePartitionInfo(m.PartitionInformation, partition.info)) {
      throw new LifeboatError('FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH',
        `Backup ${m.BackupId} is of a ${JSON.stringify(partitionInfoToJson(m.PartitionInformation))} partition; partition ${partition.id} is ${JSON.stringify(partitionInfoToJson(partition.info))}.`);
    }
    return { storage, store, target };
  }

  /**
   * Accepts a restore of the partition from the backup at BackupLocation (and the chain it ends),
   * after checking the backup exists, is the one named, is of a partition like this one, and that
   * each backup of its chain is there and is the parent named (the partition checks the rest of
   * the chain's rules, and the host the data, as it downloads).
   */
  async restorePartition(
    partitionId: string, given: { BackupId?: unknown; BackupLocation?: unknown; BackupStorage?: unknown } | undefined, restoreTimeout?: number, latest = false, auto = false,
  ): Promise<OperationRecord> {
    const minutes = timeoutMinutes(restoreTimeout, 'RestoreTimeout');
    const partition = await this.getPartition(partitionId);
    const { storage, store, target } = await this.namedBackup(partition, given, latest);
    const chain = await readChain(store, target);
    const m = target.metadata;
    // Service Fabric restores a backup of another service without a word: a trap (another
    // service's data under this one's name). Lifeboat asks the caller to say so.
    const allowCross = (given as Record<string, unknown> | undefined)?.AllowCrossServiceRestore;
    invalidArgUnless(allowCross === undefined || allowCross === null || typeof allowCross === 'boolean', 'AllowCrossServiceRestore must be true or false.');
    if (m.ServiceName !== partition.serviceName && allowCross !== true) {
      throw new LifeboatError('FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH',
        `Backup ${m.BackupId} is of service ${m.ServiceName}, not ${partition.serviceName}; send "AllowCrossServiceRestore": true to restore it here anyway.`);
    }
    if (this.requireEncryptedRestores && this.keyring) {
      const clear = chain.find((e) => e.metadata.Encryption === undefined);
      if (clear) throw new LifeboatError('E_INVALIDARG', `Backup ${clear.metadata.BackupId} is not encrypted, and this Lifeboat restores only encrypted backups (--require-encrypted-restores).`);
    }
    return this.accept(partition, 'Restore', minutes, {
      storage, chain: chain.map((e) => e.location), backupId: m.BackupId, backupEpoch: m.EpochOfLastBackupRecord, backupLsn: m.LsnOfLastBackupRecord, ...(auto ? { auto: true } : {}),
    });
  }

  /**
   * VerifyBackup (Lifeboat): checks the backup a RestorePartition body would name, and its whole
   * chain, without restoring: the metadata of each (checksums, parent links, chain ids, LSNs),
   * then each data object streamed from the storage (every block; with the keyring, encrypted
   * blocks authenticated and contents checked; size and SHA-256 against the metadata). Runs here,
   * in the service, streaming: memory stays flat. The first problem is thrown (CORRUPT, CHAIN_BROKEN,
   * ENCRYPTION_KEY_*), saying which object and where.
   */
  async verifyBackup(partitionId: string, given: { BackupId?: unknown; BackupLocation?: unknown; BackupStorage?: unknown } | undefined, latest = false): Promise<VerifyResult> {
    const partition = await this.getPartition(partitionId);
    return this.verifyLimit.run(async () => {
      const { store, target } = await this.namedBackup(partition, given, latest);
      const chain = await readChain(store, target);
      checkChain(store, chain);
      // One pool for the chain: the blocks' SHA-256 (and AES-GCM) off the event loop that serves the API.
      const pool = createBlockPool(defaultWorkers());
      try {
        const checked: CheckedBackup[] = [];
        for (const e of chain) checked.push(await checkBackupData(store, e, this.keyring, pool));
        return { BackupId: target.metadata.BackupId, Chain: checked, Ok: true };
      } finally {
        await pool.close();
      }
    });
  }

  /**
   * Key rotation: re-wraps the data key of every encrypted backup under `prefix` in the storage
   * under the keyring's current key (key-rotation.ts). Needs the keyring to hold the old keys too.
   */
  async rewrapKeys(storageValue: unknown, prefix = ''): Promise<RewrapReport> {
    if (!this.keyring) throw new LifeboatError('E_INVALIDARG', 'No encryption keyring is configured (--encryption-keys): there is no current key to re-wrap under.');
    invalidArgUnless(storageValue !== undefined && storageValue !== null, 'Storage is required.');
    const store = this.storageFor(parseStorageDescription(storageValue));
    return rewrapKeys(store, prefix, this.keyring, this.log);
  }

  async restoreProgress(partitionId: string): Promise<RestoreProgress> {
    await this.getPartition(partitionId);
    const op = await this.catalog.latestOperation(partitionId, 'Restore');
    if (!op) return { RestoreState: 'Invalid', TimeStampUtc: ZERO_TIME, RestoredEpoch: null, RestoredLsn: '0', FailureError: null };
    const r = op.result as { RestoredEpoch?: RestoreProgress['RestoredEpoch']; RestoredLsn?: string };
    return {
      RestoreState: op.state, TimeStampUtc: wireTime(new Date(op.updatedUtc)), RestoredEpoch: r.RestoredEpoch ?? null,
      RestoredLsn: r.RestoredLsn ?? '0', FailureError: op.failure ?? null,
    };
  }

  /**
   * Starts a periodic backup for the scheduler, through the same one-operation-per-partition gate
   * as on-demand requests; undefined (nothing started) when the partition has an active operation.
   * Kind 'PeriodicBackup': GetPartitionBackupProgress keeps reporting the latest on-demand request.
   */
  async startPeriodicBackup(
    partitionId: string,
    request: { storage: StorageDescription; option: 'Full' | 'Incremental'; parentBackupId?: string | undefined; parentBackupLocation?: string | undefined; timeoutMinutes?: number },
  ): Promise<OperationRecord | undefined> {
    const partition = await this.getPartition(partitionId);
    this.storageFor(request.storage);
    const periodic = { option: request.option, ...(request.option === 'Incremental' ? { parentBackupId: request.parentBackupId, parentBackupLocation: request.parentBackupLocation } : {}) };
    try {
      return await this.accept(partition, 'PeriodicBackup', request.timeoutMinutes ?? 10, { storage: request.storage, periodic });
    } catch (err) {
      if (isLifeboatError(err, 'FABRIC_E_BACKUP_IN_PROGRESS') || isLifeboatError(err, 'FABRIC_E_RESTORE_IN_PROGRESS')) return undefined;
      throw err;
    }
  }

  private async accept(partition: PartitionRecord, kind: OperationKind, minutes: number, request: Record<string, unknown>): Promise<OperationRecord> {
    const now = this.clock.now();
    const op: OperationRecord = {
      id: this.newId(), kind, partitionId: partition.id, state: 'Accepted', acceptedUtc: now.toISOString(),
      deadlineUtc: new Date(now.getTime() + minutes * 60_000).toISOString(), updatedUtc: now.toISOString(), request, result: {}, failure: undefined,
    };
    const res = await this.catalog.insertOperation(op);
    if (!res.inserted) {
      const busy = res.active.kind === 'Restore' ? 'FABRIC_E_RESTORE_IN_PROGRESS' : 'FABRIC_E_BACKUP_IN_PROGRESS';
      throw new LifeboatError(busy, `A ${res.active.kind.toLowerCase()} of partition ${partition.id} is ${res.active.state}; one backup or restore per partition at a time.`);
    }
    this.wake.emit(partition.hostId);
    return op;
  }

  // ---- health ---------------------------------------------------------------------------------

  /** GetPartitionHealth: the BackupRestore events of the partition (core/health.ts). */
  async partitionHealth(partitionId: string, eventsHealthStateFilter = 0): Promise<Record<string, unknown>> {
    const partition = await this.getPartition(partitionId);
    const eff = effectivePolicy((await this.catalog.getProtection()).mappings, { applicationName: applicationOf(partition.serviceName), serviceName: partition.serviceName, partitionId: partition.id });
    // latestEndedOperation answers only ended operations.
    const ended = (op: OperationRecord | undefined): EndedOperation | undefined => op && {
      state: op.state as EndedOperation['state'], updatedUtc: op.updatedUtc, failure: op.failure, auto: op.request.auto === true,
    };
    const events = backupRestoreHealthEvents({
      policyName: eff?.policyName,
      lastBackup: ended(await this.catalog.latestEndedOperation(partition.id, ['Backup', 'PeriodicBackup'])),
      lastRestore: ended(await this.catalog.latestEndedOperation(partition.id, ['Restore'])),
    }, this.clock.now());
    const aggregated = aggregatedHealthState(events);
    return {
      AggregatedHealthState: aggregated,
      HealthEvents: eventsMatchingFilter(events, eventsHealthStateFilter),
      UnhealthyEvaluations: events.filter((e) => e.HealthState !== 'Ok').map((e) => ({
        HealthEvaluation: {
          Kind: 'Event', AggregatedHealthState: e.HealthState, ConsiderWarningAsError: false, UnhealthyEvent: e,
          Description: `${e.HealthState} event: SourceId='${e.SourceId}', Property='${e.Property}'.`,
        },
      })),
      HealthStatistics: null,
      PartitionId: partition.id,
      ReplicaHealthStates: [],
    };
  }

  // ---- data loss (§2.12) ----------------------------------------------------------------------

  /**
   * A host's partition is in data loss. Not protected → its own handler runs. Protected: with
   * AutoRestoreOnDataLoss the newest backup's chain is restored (Safe) through a Restore
   * operation, which GetRestoreProgress shows; without it, or with no backup, the partition waits
   * for a user's restore (Service Fabric 10.0: "wait for user intervention"). SkipAutoRestore lets
   * it go on with the replica's state.
   */
  async dataLoss(hostId: string, partitionId: string): Promise<DataLossDecision> {
    const partition = await this.catalog.getPartition(partitionId);
    if (!partition || partition.hostId !== hostId) return { Action: 'NotProtected' };
    const now = this.clock.now();
    const skip = this.skipAutoRestoreUntil.get(partitionId);
    if (skip) {
      this.skipAutoRestoreUntil.delete(partitionId);
      if (skip > now) return { Action: 'Skip' };
    }
    const eff = effectivePolicy((await this.catalog.getProtection()).mappings, { applicationName: applicationOf(partition.serviceName), serviceName: partition.serviceName, partitionId });
    const record = eff && await this.catalog.getPolicy(eff.policyName);
    if (!record) return { Action: 'NotProtected' };
    const active = (await this.catalog.activeOperations(hostId)).find((o) => o.partitionId === partitionId && o.kind === 'Restore');
    if (active) return { Action: 'Wait', Reason: `restore ${active.id} is under way` };
    if (!record.policy.autoRestoreOnDataLoss) {
      return { Action: 'Wait', Reason: `policy '${record.name}' does not restore automatically: waiting for RestorePartition or SkipAutoRestore` };
    }
    try {
      const op = await this.restorePartition(partitionId, undefined, undefined, true, true);
      this.log.info({ partition: partitionId, operation: op.id, backup: op.request.backupId }, 'data loss: auto-restore of the newest backup started');
      return { Action: 'Wait', Reason: `auto-restore ${op.id} of backup ${String(op.request.backupId)}` };
    } catch (err) {
      const why = isLifeboatError(err) ? err.message : String(err);
      return { Action: 'Wait', Reason: `auto-restore cannot start (${why}): waiting for RestorePartition or SkipAutoRestore` };
    }
  }

  /**
   * SkipAutoRestore (9.1): the partition leaves data loss keeping its replica's state instead of
   * being restored. An auto-restore not yet handed to the host is dropped; one already running
   * finishes. The request holds for RestoreTimeout minutes (and is not kept across a restart).
   */
  async skipAutoRestore(partitionId: string, restoreTimeout?: number): Promise<void> {
    const minutes = timeoutMinutes(restoreTimeout, 'RestoreTimeout');
    const partition = await this.getPartition(partitionId);
    const now = this.clock.now();
    this.skipAutoRestoreUntil.set(partition.id, new Date(now.getTime() + minutes * 60_000));
    const op = await this.catalog.latestOperation(partition.id, 'Restore');
    if (op && op.state === 'Accepted' && op.request.auto === true) {
      const dropped = await this.catalog.updateOperation(op.id, {
        state: 'Failure', updatedUtc: now.toISOString(),
        failure: { Code: 'E_ABORT', Message: 'The auto-restore was skipped (SkipAutoRestore): the partition keeps its replica\'s state.' },
      });
      if (dropped) this.dispatched.delete(op.id);
    }
    this.log.info({ partition: partition.id, minutes }, 'SkipAutoRestore requested');
    this.wake.emit(partition.hostId);
  }

  // ---- listing ------------------------------------------------------------------------------

  /** Backups recorded for an application, service or partition, filtered by time and Latest. */
  async listBackups(scope: BackupScope, f: ListFilter): Promise<BackupInfoWire[]> {
    const filter = {
      ...(f.start ? { startUtc: f.start.toISOString() } : {}),
      ...(f.end ? { endUtc: f.end.toISOString() } : {}),
    };
    let rows: BackupRecord[];
    if (scope.kind === 'Application') {
      await this.getApplication(scope.name);
      rows = await this.catalog.listBackups({ applicationName: scope.name, ...filter });
    } else if (scope.kind === 'Service') {
      await this.getService(scope.name);
      rows = await this.catalog.listBackups({ serviceName: scope.name, ...filter });
    } else {
      await this.getPartition(scope.id);
      rows = await this.catalog.listBackups({ partitionId: scope.id, ...filter });
    }
    const items = rows.map(backupToWire);
    return f.latest ? newestPerPartition(items) : items;
  }

  /** Backups found in a storage by reading its metadata objects (GetBackupsFromBackupLocation). */
  async backupsInStorage(storageValue: unknown, entity: unknown, f: ListFilter): Promise<BackupInfoWire[]> {
    invalidArgUnless(storageValue !== undefined && storageValue !== null, 'Storage is required.');
    const store = this.storageFor(parseStorageDescription(storageValue));
    invalidArgUnless(entity !== null && typeof entity === 'object', 'BackupEntity is required.');
    const e = entity as Record<string, unknown>;
    let prefix: string;
    let partitionId: string | undefined;
    if (e.EntityKind === 'Application') {
      invalidArgUnless(typeof e.ApplicationName === 'string', 'ApplicationName is required for EntityKind Application.');
      const app = e.ApplicationName.startsWith('fabric:/') ? e.ApplicationName : `fabric:/${e.ApplicationName}`;
      invalidArgUnless(/^fabric:\/[^/]+$/.test(app), `ApplicationName '${e.ApplicationName}' is not an application name.`);
      prefix = `${app.slice('fabric:/'.length)}/`;
    } else if (e.EntityKind === 'Service' || e.EntityKind === 'Partition') {
      invalidArgUnless(typeof e.ServiceName === 'string', `ServiceName is required for EntityKind ${e.EntityKind}.`);
      const name = parseServiceName(e.ServiceName.startsWith('fabric:/') ? e.ServiceName : `fabric:/${e.ServiceName}`);
      if (e.EntityKind === 'Partition') {
        invalidArgUnless(typeof e.PartitionId === 'string' && /^[0-9a-f-]{36}$/i.test(e.PartitionId), 'PartitionId must be a GUID.');
        partitionId = e.PartitionId.toLowerCase();
        prefix = `${partitionFolder(name.uri, partitionId)}/`;
      } else {
        prefix = `${serviceFolder(name.uri)}/`;
      }
    } else {
      throw new LifeboatError('E_INVALIDARG', `Invalid EntityKind ${JSON.stringify(e.EntityKind)}: use Application, Service or Partition.`);
    }
    const items: BackupInfoWire[] = [];
    const stored = await listStoredBackups(store, prefix, (key, err) => this.log.warn({ key, err: String(err) }, 'skipping unreadable backup metadata'));
    for (const { metadata: m } of stored) {
      const created = new Date(m.CreationTimeUtc);
      if (f.start && created < f.start) continue;
      if (f.end && created > f.end) continue;
      items.push(metadataToWire(m));
    }
    items.sort((a, b) => (a.ServiceName + (a.PartitionInformation.Id ?? '') + a.CreationTimeUtc).localeCompare(b.ServiceName + (b.PartitionInformation.Id ?? '') + b.CreationTimeUtc));
    return f.latest ? newestPerPartition(items) : items;
  }

  // ---- backup policies --------------------------------------------------------------------------

  /**
   * Checks a policy's storage: this installation must be able to write there (kind, allowed
   * roots — always), and with ValidateConnection it must be reachable and writable now.
   */
  private async checkPolicyStorage(policy: BackupPolicy, validateConnection: boolean): Promise<void> {
    const store = this.storageFor(policy.storage);
    if (!validateConnection) return;
    try {
      await store.validate();
    } catch (err) {
      const reason = isLifeboatError(err) ? err.message : 'the storage could not be reached';
      throw new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', `ValidateConnection failed for the storage of policy '${policy.name}' (${store.description}): ${reason}`);
    }
  }

  /** CreateBackupPolicy: 409 FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING for a name in use. */
  async createPolicy(body: unknown, validateConnection: boolean): Promise<void> {
    const policy = parseBackupPolicy(body);
    for (const field of SECRET_FIELDS) {
      invalidArgUnless((policy.storage as Record<string, unknown>)[field] !== SECRET_MASK,
        `${field} is '${SECRET_MASK}', the mask Lifeboat answers in place of a secret: send the secret itself.`);
    }
    await this.checkPolicyStorage(policy, validateConnection);
    const now = this.nowUtc();
    const inserted = await this.catalog.insertPolicy({ name: policy.name, policy, uniqueId: this.newId(), createdUtc: now, updatedUtc: now });
    if (!inserted) throw new LifeboatError('FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING', `A backup policy named '${policy.name}' already exists.`);
    this.log.info({ policy: policy.name }, 'backup policy created');
    this.operationEvents.emit('protection-changed');
  }

  /**
   * UpdateBackupPolicy: replaces the policy named in the path. The body's Name must be the same
   * name (a policy cannot be renamed: its mappings refer to it by name), else E_INVALIDARG.
   */
  async updatePolicy(name: string, body: unknown, validateConnection: boolean): Promise<void> {
    checkPolicyName(name, 'backupPolicyName');
    const given = parseBackupPolicy(body);
    invalidArgUnless(given.name === name, `The Name in the body ('${given.name}') must be the policy's name in the path ('${name}'); a policy cannot be renamed.`);
    const stored = await this.catalog.getPolicy(name);
    if (!stored) throw notExisting(name);
    const policy: BackupPolicy = { ...given, storage: keepMaskedSecrets(given.storage, stored.policy.storage) };
    await this.checkPolicyStorage(policy, validateConnection);
    const updated = await this.catalog.updatePolicy({ name, policy, uniqueId: this.newId(), updatedUtc: this.nowUtc() });
    if (!updated) throw notExisting(name);
    this.log.info({ policy: name }, 'backup policy updated');
    this.operationEvents.emit('protection-changed');
  }

  /** Policies by name, secrets masked. */
  async listPolicies(): Promise<Array<Record<string, unknown>>> {
    return (await this.catalog.listPolicies()).map((p) => policyToWire(p.policy));
  }

  async getPolicy(name: string): Promise<Record<string, unknown>> {
    checkPolicyName(name, 'backupPolicyName');
    const p = await this.catalog.getPolicy(name);
    if (!p) throw notExisting(name);
    return policyToWire(p.policy);
  }

  /** DeleteBackupPolicy: refused with FABRIC_E_BACKUP_IS_ENABLED while an existing entity uses it. */
  async deletePolicy(name: string): Promise<void> {
    checkPolicyName(name, 'backupPolicyName');
    const out = await this.catalog.deletePolicy(name);
    if (!out.ok) throw refusalError(out);
    this.log.info({ policy: name, removedMappings: out.removedMappings.length }, 'backup policy deleted');
    this.operationEvents.emit('protection-changed');
  }

  /** GetAllEntitiesBackedUpByPolicy: the entities mapped to the policy, by entity key. */
  async entitiesOfPolicy(name: string): Promise<Array<{ key: string; wire: Record<string, unknown> }>> {
    checkPolicyName(name, 'backupPolicyName');
    if (!(await this.catalog.getPolicy(name))) throw notExisting(name);
    return entitiesOfPolicy(await this.catalog.getProtection(), name).map((e) => ({ key: entityKey(e), wire: entityWire(e) }));
  }

  // ---- protection -------------------------------------------------------------------------------

  /** The entity a scope names, after checking it exists and (service, partition) persists state. */
  private async protectionEntity(scope: BackupScope): Promise<BackupEntity> {
    if (scope.kind === 'Application') return { kind: 'Application', applicationName: await this.getApplication(scope.name) };
    if (scope.kind === 'Service') {
      const svc = await this.getService(scope.name);
      refuseStateless(svc.name, svc.hasPersistedState);
      return { kind: 'Service', serviceName: svc.name };
    }
    const p = await this.getPartition(scope.id);
    const svc = await this.getService(p.serviceName);
    refuseStateless(svc.name, svc.hasPersistedState);
    return { kind: 'Partition', serviceName: p.serviceName, partitionId: p.id };
  }

  async enableBackup(scope: BackupScope, body: Record<string, unknown> | undefined): Promise<void> {
    invalidArgUnless(body !== undefined, 'EnableBackup needs a body {"BackupPolicyName": …}.');
    const policyName = checkPolicyName(body.BackupPolicyName, 'BackupPolicyName');
    const entity = await this.protectionEntity(scope);
    const out = await this.catalog.changeProtection((s, names) => enableBackup(s, entity, policyName, names));
    if (!out.ok) throw refusalError(out);
    this.log.info({ entity: entityKey(entity), policy: policyName, replaced: out.replaced }, 'backup enabled');
    this.operationEvents.emit('protection-changed');
  }

  /**
   * DisableBackup. With CleanBackup=true, the backups of the partitions that lose the disabled
   * mapping (protection.cleanBackupTargets) are deleted from the disabled policy's storage —
   * each backup's metadata object first, then its data — and from the backup index.
   */
  async disableBackup(scope: BackupScope, body: Record<string, unknown> | undefined): Promise<{ cleaned: CleanBackupTarget[] }> {
    let clean = false;
    if (body !== undefined) {
      invalidArgUnless(body.CleanBackup !== undefined && body.CleanBackup !== null, 'The CleanBackup field is required.');
      invalidArgUnless(typeof body.CleanBackup === 'boolean', 'CleanBackup must be true or false.');
      clean = body.CleanBackup;
    }
    const entity = await this.protectionEntity(scope);
    const partitions = clean ? await this.partitionsUnder(entity) : [];
    const policies = new Map((clean ? await this.catalog.listPolicies() : []).map((p) => [p.name, p.policy]));
    let targets: CleanBackupTarget[] = [];
    const out = await this.catalog.changeProtection((s) => {
      const r = disableBackup(s, entity);
      if (r.ok && clean) {
        targets = cleanBackupTargets(s, entity, partitions, (name) => {
          const p = policies.get(name);
          return p && storageIdentity(p.storage);
        });
      }
      return r;
    });
    if (!out.ok) throw refusalError(out);
    this.log.info({ entity: entityKey(entity), policy: out.removed.policyName, cleanBackup: clean }, 'backup disabled');
    this.operationEvents.emit('protection-changed');
    const storage = policies.get(out.removed.policyName)?.storage;
    const cleaned = targets.filter((t) => t.clean);
    if (storage && cleaned.length > 0) await this.cleanBackups(storage, cleaned);
    return { cleaned };
  }

  async suspendBackup(scope: BackupScope): Promise<void> {
    const entity = await this.protectionEntity(scope);
    const out = await this.catalog.changeProtection((s) => suspendBackup(s, entity));
    if (!out.ok) throw refusalError(out);
    this.operationEvents.emit('protection-changed');
  }

  async resumeBackup(scope: BackupScope): Promise<void> {
    const entity = await this.protectionEntity(scope);
    const out = await this.catalog.changeProtection((s) => resumeBackup(s, entity));
    if (!out.ok) throw refusalError(out);
    this.operationEvents.emit('protection-changed');
  }

  /**
   * Get{Application,Service}BackupConfigurationInfo: the entity itself (when a policy applies to
   * it or it is suspended), then the mappings and suspensions below it that override it, by key.
   * GetPartitionBackupConfigurationInfo: the partition alone (PolicyInheritedFrom Invalid when no
   * policy applies).
   */
  async backupConfiguration(scope: BackupScope): Promise<Array<Record<string, unknown>>> {
    const entity = await this.protectionEntity(scope);
    const state = await this.catalog.getProtection();
    if (entity.kind === 'Partition') return [configurationWire(state, entity)];
    const below = overridesBelow(state, entity);
    const byKey = new Map<string, BackupEntity>();
    for (const m of below.mappings) byKey.set(entityKey(m.entity), m.entity);
    for (const e of below.suspended) byKey.set(entityKey(e), e);
    const self = effectivePolicyOf(state.mappings, entity) || suspensionOf(state.suspensions, entity).isSuspended ? [entity] : [];
    const rest = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
    return [...self, ...rest].map((e) => configurationWire(state, e));
  }

  /** The policy that applies to a partition now, or FABRIC_E_BACKUP_NOT_ENABLED. */
  private async policyOfPartition(partition: PartitionRecord): Promise<BackupPolicy> {
    const state = await this.catalog.getProtection();
    const eff = effectivePolicy(state.mappings, { applicationName: applicationOf(partition.serviceName), serviceName: partition.serviceName, partitionId: partition.id });
    const record = eff && await this.catalog.getPolicy(eff.policyName);
    if (!record) throw new LifeboatError('FABRIC_E_BACKUP_NOT_ENABLED', `Partition ${partition.id} has no backup policy; give BackupStorage in the request, or enable a policy for it.`);
    return record.policy;
  }

  private async partitionsUnder(entity: BackupEntity): Promise<PartitionRef[]> {
    const refs = async (serviceName: string): Promise<PartitionRef[]> =>
      (await this.catalog.listPartitions(serviceName)).map((p) => ({ applicationName: applicationOf(serviceName), serviceName, partitionId: p.id }));
    switch (entity.kind) {
      case 'Application': {
        const out: PartitionRef[] = [];
        for (const svc of await this.catalog.listServices(entity.applicationName)) if (svc.hasPersistedState) out.push(...await refs(svc.name));
        return out;
      }
      case 'Service': return refs(entity.serviceName);
      case 'Partition': return [{ applicationName: applicationOf(entity.serviceName), serviceName: entity.serviceName, partitionId: entity.partitionId }];
    }
  }

  /** Deletes every backup of the partitions in the storage (metadata first, then data) and from the index. */
  private async cleanBackups(storage: StorageDescription, targets: readonly CleanBackupTarget[]): Promise<void> {
    const key = storageIdentity(storage);
    for (const t of targets) {
      try {
        const store = this.storageFor(storage);
        const keys: string[] = [];
        for await (const obj of store.list(`${partitionFolder(t.partition.serviceName, t.partition.partitionId)}/`)) keys.push(obj.key);
        let n = 0;
        for (const k of keys.filter((x) => x.endsWith(METADATA_EXTENSION))) {
          await store.delete(k);
          await store.delete(dataKeyOfMetadata(k));
          n++;
        }
        for (const b of await this.catalog.listBackups({ partitionId: t.partition.partitionId })) {
          if (b.storageKey === key) await this.catalog.deleteBackup(b.backupId);
        }
        this.log.info({ partition: t.partition.partitionId, storage: key, backups: n, reason: t.reason }, 'CleanBackup: backups deleted');
      } catch (err) {
        this.log.warn({ partition: t.partition.partitionId, storage: key, err: isLifeboatError(err) ? err.message : String(err) }, 'CleanBackup: deleting backups failed');
      }
    }
  }
}


function notExisting(name: string): LifeboatError {
  return new LifeboatError('FABRIC_E_BACKUP_POLICY_NOT_EXISTING', `Backup policy '${name}' does not exist.`);
}

/** The user name or key id a secret belongs to: a secret kept through the mask keeps its owner too. */
const SECRET_OWNER: Readonly<Record<string, string>> = { PrimaryPassword: 'PrimaryUserName', SecondaryPassword: 'SecondaryUserName', SecretAccessKey: 'AccessKeyId' };

/**
 * UpdateBackupPolicy after a GetBackupPolicy: a secret sent back as the mask ("****") keeps the
 * stored secret, when the storage is the same one (kind and storageIdentity, worked out with the
 * kept secrets, since an Azure ConnectionString names the account) and the secret's user name or
 * key id is unchanged. Otherwise the mask is refused (E_INVALIDARG): the secret must be sent again.
 */
function keepMaskedSecrets(given: StorageDescription, stored: StorageDescription): StorageDescription {
  const g = given as Record<string, unknown>;
  const s = stored as Record<string, unknown>;
  const masked = SECRET_FIELDS.filter((f) => g[f] === SECRET_MASK);
  if (masked.length === 0) return given;
  const sendAgain = `send the secret again: the storage changed`;
  if (given.StorageKind !== stored.StorageKind) throw new LifeboatError('E_INVALIDARG', `${masked.join(', ')} is '${SECRET_MASK}' but the StorageKind is not the stored policy's: ${sendAgain}.`);
  const merged: Record<string, unknown> = { ...g };
  for (const f of masked) {
    invalidArgUnless(typeof s[f] === 'string', `${f} is '${SECRET_MASK}' but the stored policy has no ${f}: send the secret itself.`);
    const owner = SECRET_OWNER[f];
    invalidArgUnless(owner === undefined || g[owner] === s[owner], `${f} is '${SECRET_MASK}' but ${owner ?? ''} is not the stored policy's: send the secret again with it.`);
    merged[f] = s[f];
  }
  const out = merged as StorageDescription;
  invalidArgUnless(storageIdentity(out) === storageIdentity(stored), `${masked.join(', ')} is '${SECRET_MASK}' but the storage is not the stored policy's: ${sendAgain}.`);
  return out;
}

function refusalError(r: Refusal): LifeboatError {
  return new LifeboatError(r.code, r.message);
}

function refuseStateless(serviceName: string, hasPersistedState: boolean): void {
  if (!hasPersistedState) {
    throw new LifeboatError('FABRIC_E_INVALID_FOR_STATELESS_SERVICES', `Service ${serviceName} has no persisted state; backup applies only to stateful services that persist their state.`);
  }
}

/** A BackupEntity on the wire. */
export function entityWire(e: BackupEntity): Record<string, unknown> {
  switch (e.kind) {
    case 'Application': return { EntityKind: 'Application', ApplicationName: e.applicationName };
    case 'Service': return { EntityKind: 'Service', ServiceName: e.serviceName };
    case 'Partition': return { EntityKind: 'Partition', ServiceName: e.serviceName, PartitionId: e.partitionId };
  }
}

/** A {Application,Service,Partition}BackupConfigurationInfo. */
function configurationWire(state: ProtectionState, e: BackupEntity): Record<string, unknown> {
  const eff = effectivePolicyOf(state.mappings, e);
  const susp = suspensionOf(state.suspensions, e);
  const from: EntityLevel | 'Invalid' = eff?.inheritedFrom ?? 'Invalid';
  const names = e.kind === 'Application' ? { ApplicationName: e.applicationName }
    : e.kind === 'Service' ? { ServiceName: e.serviceName } : { ServiceName: e.serviceName, PartitionId: e.partitionId };
  return {
    Kind: e.kind, ...(eff ? { PolicyName: eff.policyName } : {}), PolicyInheritedFrom: from, ...names,
    SuspensionInfo: { IsSuspended: susp.isSuspended, SuspensionInheritedFrom: susp.inheritedFrom },
  };
}

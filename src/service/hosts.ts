/**
 * The service's side of the host protocol (core/host-protocol.ts): hosts register what they
 * serve, poll for orders (long poll), report progress and ends, and ask what to do on data loss.
 * A host may act only on its own partitions, and take a partition over only when its owner is gone.
 * What matters is kept in the catalog, so a host may talk to any instance, and move between them:
 * its sightings (liveness), its incarnation (a restart), the orders handed to it (claims).
 */
import { randomUUID } from 'node:crypto';
import { HOST_ID } from '../core/access.ts';
import { locationInPartition } from '../core/backup-layout.ts';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { type DataLossDecision, type HostChannel, type Order, type Registration, type Report, type StoredBackupSummary, type TransferProgress, parseRegistration, parseReport } from '../core/host-protocol.ts';
import { applicationOf } from '../core/ids.ts';
import { parseServiceName } from '../core/names.ts';
import { MAX_ORDER_POLL_MS, hostIsLive } from '../core/host-liveness.ts';
import { isActive } from '../core/operation.ts';
import { partitionInfoFromJson, schemeFromJson, schemeToJson } from '../core/partitioning.ts';
import { type StorageDescription, storageIdentity } from '../core/storage-description.ts';
import type { BackupRecord, HostReportRecords, OperationRecord, PartitionRecord } from '../catalog/port.ts';
import type { DataLossDesk } from './data-loss.ts';
import { Limiter } from './limiter.ts';
import type { OrderBoard } from './orders.ts';
import type { ServicePorts } from './ports.ts';

/** Order polls one host may hold open at once on one instance (a host holds one; more is a host gone wrong, or an attack). */
const MAX_POLLS_PER_HOST = 4;
/** The longest an order poll waits without looking at the catalog again. */
const ORDER_RECHECK_MS = 5_000;
/**
 * Host reports this instance writes at once; the rest wait their turn (up to REPORTS_QUEUED, then
 * LIFEBOAT_E_BUSY, which hosts retry). A burst of thousands of reports (10,000 partitions ending
 * their backups within seconds) would otherwise hold every catalog connection, and the leader's
 * scheduler, queued behind them, started its backups seconds late.
 */
const REPORTS_AT_ONCE = 4;
const REPORTS_QUEUED = 20_000;
/** What one host may register. */
const REGISTRATION_LIMITS = { services: 256, partitions: 10_000 } as const;

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

export class HostDesk implements HostChannel {
  /** Order polls open on this instance, per host (a bound on what one host holds here; liveness is in the catalog). */
  private readonly polls = new Map<string, number>();
  private readonly reports = new Limiter(REPORTS_AT_ONCE, REPORTS_QUEUED, 'host reports');

  constructor(private readonly p: ServicePorts, private readonly orders: OrderBoard, private readonly dataLossDesk: DataLossDesk) {}

  async register(hostId: string, value: Registration): Promise<void> {
    invalidArgUnless(typeof hostId === 'string' && HOST_ID.test(hostId), 'A host id is 1 to 128 letters, digits, dots, dashes or underscores.');
    this.orders.hostSeen(hostId);
    let registration: Registration;
    try {
      registration = parseRegistration(value);
    } catch (err) {
      throw new LifeboatError('E_INVALIDARG', `Registration of host ${hostId} is not valid: ${(err as Error).message}.`);
    }
    checkRegistrationSize(registration);
    const { catalog } = this.p;
    const services = registration.Services.map((s) => ({ s, name: parseServiceName(s.Name), scheme: schemeFromJson(s.Scheme) }));
    // A partition another host serves is taken over only when that host is gone (no poll open, the
    // last one ended by a hang-up or long ago): a host token cannot steal a live host's partitions,
    // and with them its orders and their storage credentials.
    for (const { s, name, scheme } of services) {
      const known = await catalog.hierarchy.getService(name.uri);
      if (known && JSON.stringify(schemeToJson(known.scheme)) !== JSON.stringify(schemeToJson(scheme))) {
        for (const other of new Set((await catalog.hierarchy.listPartitions(name.uri)).map((p) => p.hostId))) {
          if (other !== hostId && await this.hostIsLive(other)) throw new LifeboatError('E_ACCESSDENIED', `Service ${name.uri} has another partitioning, and live host ${other} serves it.`);
        }
      }
      for (const p of s.Partitions) {
        const owner = (await catalog.hierarchy.getPartition(p.Id))?.hostId;
        if (owner !== undefined && owner !== hostId && await this.hostIsLive(owner)) {
          throw new LifeboatError('E_ACCESSDENIED', `Partition ${p.Id} is served by host ${owner}, which is alive; a partition moves only when its host is gone.`);
        }
      }
    }
    // No incarnation (an older host): every registration is taken for a restart, as before.
    const incarnation = registration.Incarnation ?? randomUUID();
    const { previousIncarnation } = await catalog.hierarchy.upsertHost(hostId, incarnation, this.p.wallClock.now().toISOString());
    for (const { s, name, scheme } of services) {
      await catalog.hierarchy.registerService(hostId, { name: name.uri, application: name.application, scheme, hasPersistedState: s.HasPersistedState !== false },
        s.Partitions.map((p) => ({ id: p.Id, info: partitionInfoFromJson(p.Info), epoch: p.Epoch, lastLsn: p.Lsn })));
    }
    // The same incarnation again is the same process, moved to this instance: it carries on with
    // what it has. A new one lost what it carried out, and gets its queued orders afresh.
    if (previousIncarnation !== incarnation) await this.orders.hostRestarted(hostId);
    await this.orders.wakeHost(hostId);
  }

  /** Whether the host polls for orders now (on any instance), or did a moment ago without hanging up. */
  private async hostIsLive(hostId: string): Promise<boolean> {
    const h = await this.p.catalog.hierarchy.getHost(hostId);
    return h !== undefined && hostIsLive(h, this.p.wallClock.now());
  }

  /**
   * Orders for the host's partitions; waits up to `waitMs` for one. `signal` ends the wait when
   * the asking host has gone (its connection closed), so no order is handed to nobody.
   */
  async pollOrders(hostId: string, waitMs: number, signal?: AbortSignal): Promise<Order[]> {
    this.orders.hostSeen(hostId); // readiness: a host that polls is one the service can reach
    const open = this.polls.get(hostId) ?? 0;
    if (open >= MAX_POLLS_PER_HOST) throw new LifeboatError('LIFEBOAT_E_BUSY', `Host ${hostId} has ${open} order polls open already; one at a time is enough.`);
    this.polls.set(hostId, open + 1);
    const { hierarchy } = this.p.catalog;
    try {
      await hierarchy.hostSeen(hostId, 'poll-started', this.p.wallClock.now().toISOString());
      return await this.waitForOrders(hostId, waitMs, signal);
    } finally {
      const left = (this.polls.get(hostId) ?? 1) - 1;
      if (left > 0) this.polls.set(hostId, left);
      else this.polls.delete(hostId);
      // A poll the host hung up on: its process went away (a host in a loop polls again at once).
      await hierarchy.hostSeen(hostId, signal?.aborted === true ? 'hung-up' : 'poll-ended', this.p.wallClock.now().toISOString()).catch(() => undefined);
    }
  }

  private async waitForOrders(hostId: string, waitMs: number, signal?: AbortSignal): Promise<Order[]> {
    const deadline = Date.now() + Math.max(0, Math.min(waitMs, MAX_ORDER_POLL_MS));
    for (;;) {
      if (signal?.aborted) return [];
      const orders = await this.ordersFor(hostId);
      if (orders.length > 0 || Date.now() >= deadline || this.orders.isShuttingDown) return orders;
      // Woken by a signal from any instance; looked at again now and then all the same, since a
      // signal is a hint (one sent while the catalog reconnected is lost).
      await this.orders.waitForWake(hostId, Math.min(deadline - Date.now(), ORDER_RECHECK_MS), signal);
    }
  }

  private async ordersFor(hostId: string): Promise<Order[]> {
    const now = this.p.clock.now();
    let overdue = false;
    const out: Order[] = [];
    // Not handed again to the host that has it, while that host is alive; a partition that moved
    // to another host gets its order at once. One claim for all: a busy host may have hundreds.
    for (const op of await this.orders.takeForDispatch(hostId)) {
      if (new Date(op.deadlineUtc) <= now) overdue = true;
      else out.push(orderOf(op));
    }
    if (overdue) await this.orders.expireOperations();
    return out;
  }

  report(hostId: string, value: Report): Promise<void> {
    return this.reports.run(() => this.take(hostId, value));
  }

  private async take(hostId: string, value: Report): Promise<void> {
    let r: Report;
    try {
      r = parseReport(value);
    } catch (err) {
      throw new LifeboatError('E_INVALIDARG', `Report from host ${hostId} is not valid: ${(err as Error).message}.`);
    }
    const { catalog } = this.p;
    const op = await catalog.operations.get(r.OperationId);
    const partition = op && (await catalog.hierarchy.getPartition(op.partitionId));
    // One answer for an operation that does not exist and one of another host's partitions: a
    // host learns nothing of operations that are not its own.
    if (!op || !partition || partition.hostId !== hostId) throw new LifeboatError('E_INVALIDARG', `Host ${hostId} has no operation ${r.OperationId}.`);
    if ('Partition' in r && r.Partition) invalidArgUnless(r.Partition.Id === op.partitionId, `The report names partition ${r.Partition.Id}; operation ${op.id} is of partition ${op.partitionId}.`);
    const now = this.p.clock.now().toISOString();
    if (!isActive(op.state)) {
      // Ended: nothing changes, but a backup that really reached storage after its deadline is
      // indexed (it exists, and retention must see it).
      if (op.state === 'Timeout' && r.State === 'Success' && r.Backup && op.kind !== 'Restore') await this.indexLateBackup(op, partition, r.Backup);
      return;
    }
    const partitionState = 'Partition' in r && r.Partition ? { epoch: r.Partition.Epoch, lastLsn: r.Partition.Lsn } : undefined;
    if (r.State === 'InProgress') {
      if (partitionState) await catalog.hierarchy.updatePartitionState(op.partitionId, partitionState.epoch, partitionState.lastLsn);
      await this.orders.apply(op, r.Progress ? { type: 'HostProgressed', progress: progressResult(r.Progress) } : { type: 'HostStarted' }, now);
      return;
    }
    try {
      await this.finish(op, partition, r, now, partitionState);
    } finally {
      await this.orders.ended(op.id);
    }
  }

  dataLoss(hostId: string, partitionId: string): Promise<DataLossDecision> {
    return this.dataLossDesk.decide(hostId, partitionId);
  }

  /**
   * Records in the index a backup that reached storage after its operation's deadline (it exists,
   * and retention must see it). As at a successful end, a host can index only its partition's.
   */
  private async indexLateBackup(op: OperationRecord, partition: PartitionRecord, b: StoredBackupSummary): Promise<void> {
    const { catalog } = this.p;
    const record = backupRecordOf(op, partition, b);
    const existing = await catalog.backups.get(b.BackupId);
    invalidArgUnless(!existing || existing.partitionId === partition.id, `Backup ${b.BackupId} is another partition's.`);
    const service = await catalog.hierarchy.getService(partition.serviceName);
    await catalog.backups.insert({ ...record, applicationName: service?.application ?? applicationOf(partition.serviceName) });
  }

  private async finish(op: OperationRecord, partition: PartitionRecord, r: Exclude<Report, { State: 'InProgress' }>, now: string, partitionState: HostReportRecords['partitionState']): Promise<void> {
    const state = partitionState ? { partitionState } : {};
    if (r.State === 'Failure') {
      await this.orders.apply(op, { type: 'HostFailed', error: r.Error }, now, state);
      return;
    }
    if (op.kind !== 'Restore' && r.Backup) {
      const b = r.Backup;
      // The operation's end, the partition's state and the backup's index row: one write.
      const ended = await this.orders.apply(op, {
        type: 'HostSucceeded',
        result: {
          BackupId: b.BackupId, BackupChainId: b.BackupChainId, BackupLocation: b.BackupLocation, EpochOfLastBackupRecord: b.EpochOfLastBackupRecord,
          LsnOfLastBackupRecord: b.LsnOfLastBackupRecord, TimeStampUtc: b.CreationTimeUtc, ...progressResult(r.Progress),
        },
      }, now, { ...state, backup: backupRecordOf(op, partition, b) });
      if (!ended && (await this.p.catalog.operations.get(op.id))?.state === 'Timeout') await this.indexLateBackup(op, partition, b);
    } else if (op.kind === 'Restore' && r.Restored) {
      // As Service Fabric reports it: the restored backup's epoch and LSN (the partition itself
      // is now in a newer epoch, shown by GET /Partitions/{id}).
      await this.orders.apply(op, {
        type: 'HostSucceeded',
        result: {
          RestoredEpoch: op.request.backupEpoch ?? r.Restored.Epoch, RestoredLsn: r.Restored.Lsn, PartitionEpoch: r.Restored.Epoch, TimeStampUtc: now, ...progressResult(r.Progress),
        },
      }, now, state);
    } else {
      throw new LifeboatError('E_INVALIDARG', `A successful ${op.kind.toLowerCase()} report must carry its result.`);
    }
  }
}

/**
 * The index row of a backup a host reports (its application comes from the service's record).
 * Its location must be in the partition's own folder: a host cannot index another partition's
 * objects as its own.
 */
function backupRecordOf(op: OperationRecord, partition: PartitionRecord, b: StoredBackupSummary): Omit<BackupRecord, 'applicationName'> {
  locationInPartition(partition.serviceName, partition.id, b.BackupLocation);
  return {
    backupId: b.BackupId, backupChainId: b.BackupChainId, parentBackupId: b.ParentBackupId, serviceName: partition.serviceName, partitionId: partition.id,
    partitionInfo: partition.info, backupLocation: b.BackupLocation, backupType: b.BackupType, epoch: b.EpochOfLastBackupRecord, lsn: b.LsnOfLastBackupRecord,
    creationTimeUtc: b.CreationTimeUtc, storageKey: storageIdentity(op.request.storage as StorageDescription),
  };
}

/** A report's byte counts as the operation's result keeps them (GetBackupProgress and GetRestoreProgress show them). */
function progressResult(p: TransferProgress | undefined): Record<string, number> {
  if (!p) return {};
  return { BytesTransferred: p.BytesTransferred, ...(p.TotalBytes !== undefined ? { TotalBytes: p.TotalBytes } : {}), ...(p.StoredBytes !== undefined ? { StoredBytes: p.StoredBytes } : {}) };
}

/** The order a host gets for an operation. */
function orderOf(op: OperationRecord): Order {
  const storage = op.request.storage as StorageDescription;
  const periodic = op.request.periodic as { option?: 'Full' | 'Incremental'; parentBackupId?: string; parentBackupLocation?: string } | undefined;
  if (op.kind !== 'Restore') {
    return {
      OperationId: op.id, Kind: 'Backup', PartitionId: op.partitionId, Storage: storage, DeadlineUtc: op.deadlineUtc,
      ...(periodic?.option === 'Incremental'
        ? { Option: 'Incremental' as const, ParentBackupId: periodic.parentBackupId ?? '', ParentBackupLocation: periodic.parentBackupLocation ?? '' }
        : {}),
    };
  }
  return {
    OperationId: op.id, Kind: 'Restore', PartitionId: op.partitionId, Storage: storage, DeadlineUtc: op.deadlineUtc, Chain: op.request.chain as string[],
    RestorePolicy: op.request.auto === true ? 'Safe' as const : 'Force' as const,
  };
}

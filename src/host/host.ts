/**
 * A host: serves partitions of stateful services and carries out the service's orders. It
 * registers what it serves, asks for orders (long poll), and reports progress. Backup data goes
 * from the host to storage directly; the service only sees orders and reports.
 *
 * This is the agent: registration, the poll loop, carrying out orders and reporting, and data
 * loss. The bytes move in the transfer pipelines it calls: backup-transfer.ts (partition →
 * `.lbk` → storage) and restore-transfer.ts (storage → partition), through one block pool of
 * worker threads per host, and through the backup repository (src/repository) for every object.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { LifeboatError, isLifeboatError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { DataLossDecision, HostChannel, Order, PartitionState, RegisteredService, Report } from '../core/host-protocol.ts';
import { partitionInfoToJson, schemeToJson } from '../core/partitioning.ts';
import type { StorageDescription } from '../core/storage-description.ts';
import { type BlockRunner, type Compression, type Keyring, createBlockPool, defaultWorkers } from '../format/lbk2/index.ts';
import { BackupRepository } from '../repository/backup-repository.ts';
import type { DataLossHandler, Partition, RestoreContext, RestoreResult, RestoreSource, StatefulService } from '../state/index.ts';
import type { BlobStore } from '../storage/port.ts';
import { type BackupOrder, type TransferContext, backupToStorage } from './backup-transfer.ts';
import { ProgressReports } from './progress-reports.ts';
import { openChain } from './restore-transfer.ts';

export interface HostOptions {
  readonly id: string;
  readonly channel: HostChannel;
  /** Scratch space for backup folders and downloads. */
  readonly workDir: string;
  readonly openStorage: (d: StorageDescription) => BlobStore;
  /** Deadlines are checked against it; default the system's. */
  readonly clock?: Clock;
  /** Called on data loss that is not a restore this host is carrying out. */
  readonly onDataLoss?: DataLossHandler;
  readonly log?: Logger;
  /** How long one order poll waits on the service. */
  readonly pollWaitMs?: number;
  /** How often a partition in data loss asks the service again (Service Fabric: 15 s). */
  readonly dataLossRetryMs?: number;
  /** Keys to encrypt new backups with (under its current key) and to read encrypted ones; none: backups are not encrypted. */
  readonly keyring?: Keyring | undefined;
  /** Compression of new backups; default zstd (gzip where zstd cannot be loaded). */
  readonly compression?: Compression;
  /** Worker threads of the host's block pool; default min(4, cores). */
  readonly blockWorkers?: number;
  /** Their nice value, 0 (the host's priority) to 19; default BLOCK_WORKER_NICE (10): serving comes first. */
  readonly blockWorkerNice?: number;
  /**
   * Backups read, and restores write, a partition's database file with O_DIRECT where the system
   * allows (default true; src/fs/direct-io.ts): no page cache, so less CPU, and the service's
   * cached pages stay. false for a disk so slow (a throttled network disk) that reading again
   * what the cache holds costs more than the copies.
   */
  readonly directIo?: boolean;
  /** Least time between two progress reports of one operation (default 1 s; 0: one per block). */
  readonly progressIntervalMs?: number;
}

/** A restore order handed to a partition's data-loss handler. */
interface PendingRestore {
  /** The chain, full backup first (streamed or a folder), then the incrementals' folders as their downloads finish. */
  readonly folders: readonly RestoreSource[];
  readonly policy: 'Safe' | 'Force';
  taken: boolean;
  result?: RestoreResult;
  /** Resolved (or rejected) by the handler once it restored. */
  readonly settled: Promise<void>;
  settle(err?: unknown): void;
}

function pendingRestore(folders: readonly RestoreSource[], policy: 'Safe' | 'Force'): PendingRestore {
  let settle: (err?: unknown) => void = () => undefined;
  const settled = new Promise<void>((resolve, reject) => { settle = (err) => (err === undefined ? resolve() : reject(err)); });
  settled.catch(() => undefined); // read by the order; never an unhandled rejection
  return { folders, policy, taken: false, settled, settle: (err) => settle(err) };
}

const stateOf = (p: Partition): PartitionState => ({
  Id: p.id,
  Epoch: { DataLossVersion: p.epoch.dataLossVersion.toString(), ConfigurationVersion: p.epoch.configurationVersion.toString() },
  Lsn: p.lastLsn.toString(),
});

function failureOf(err: unknown): { Code: string; Message: string } {
  if (isLifeboatError(err)) return { Code: err.code, Message: err.message };
  return { Code: 'E_FAIL', Message: err instanceof Error ? err.message : String(err) };
}

export class Host {
  readonly id: string;
  private readonly o: HostOptions;
  private readonly services: StatefulService[] = [];
  private readonly pendingRestores = new Map<string, PendingRestore>();
  /** Partitions whose data-loss handler is running, and how to wake it when a restore arrives. */
  private readonly inDataLoss = new Map<string, { wake?: (() => void) | undefined }>();
  private readonly running = new Set<Promise<void>>();
  /** Operations being carried out, by id. */
  private readonly inFlight = new Set<string>();
  private stopping = false;
  private readonly stopWaiters = new Set<() => void>();
  private loop: Promise<void> | undefined;
  private readonly clock: Clock;
  private blocks: BlockRunner | undefined;

  constructor(o: HostOptions) {
    this.id = o.id;
    this.o = o;
    this.clock = o.clock ?? { now: () => new Date() };
  }

  /**
   * Pass this as `onDataLoss` when opening the services the host serves. A restore this host is
   * carrying out is applied at once. Otherwise the service decides (§2.12): not protected → the
   * application's own handler; protected → wait for a restore order (the service starts an
   * auto-restore when the policy says so; else a user's restore), asking again every
   * `dataLossRetryMs`; SkipAutoRestore → leave data loss keeping the replica's state. A failed
   * restore is reported and the partition goes on waiting, as Service Fabric retries OnDataLoss.
   */
  readonly onDataLoss: DataLossHandler = async (ctx: RestoreContext) => {
    const id = ctx.partition.id;
    const slot: { wake?: (() => void) | undefined } = {};
    this.inDataLoss.set(id, slot);
    let lastReason = '';
    try {
      for (;;) {
        const pending = this.pendingRestores.get(id);
        if (pending && !pending.taken) {
          pending.taken = true;
          try {
            pending.result = await ctx.restore(pending.folders, { policy: pending.policy });
            pending.settle();
            return true;
          } catch (err) {
            pending.settle(err);
            if (this.stopping) throw err;
            // A restore that failed leaves the partition as it was, waiting for another restore.
            await this.waitForRestore(id, slot);
            continue;
          }
        }
        if (this.stopping) throw new LifeboatError('E_ABORT', `Host ${this.id} stopped while partition ${id} was in data loss.`);
        let decision: DataLossDecision;
        try {
          decision = await this.o.channel.dataLoss(this.id, id);
        } catch (err) {
          this.o.log?.warn({ partition: id, err: String(err) }, 'asking the Lifeboat service about data loss failed; asking again');
          await this.waitForRestore(id, slot);
          continue;
        }
        if (decision.Action === 'NotProtected') return this.o.onDataLoss ? this.o.onDataLoss(ctx) : false;
        if (decision.Action === 'Skip') {
          this.o.log?.info({ partition: id }, 'data loss: auto-restore skipped; the partition keeps its state');
          return false;
        }
        if (decision.Reason !== lastReason) this.o.log?.info({ partition: id, reason: decision.Reason }, 'data loss: waiting for a restore');
        lastReason = decision.Reason;
        await this.waitForRestore(id, slot);
      }
    } finally {
      this.inDataLoss.delete(id);
    }
  };

  /** Sleeps until a restore order for the partition arrives, the retry interval passes, or stop(). */
  private waitForRestore(id: string, slot: { wake?: (() => void) | undefined }): Promise<void> {
    if (this.pendingRestores.get(id)?.taken === false) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.stopWaiters.delete(done);
        slot.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.o.dataLossRetryMs ?? 15_000);
      this.stopWaiters.add(done);
      slot.wake = done;
    });
  }

  addService(service: StatefulService): void {
    this.services.push(service);
  }

  /** This start of the host: the service tells a restart (what it carried out is lost) from a move to another instance by it. */
  private readonly incarnation = randomUUID();

  private registration(): RegisteredService[] {
    return this.services.map((s) => ({
      Name: s.name,
      Scheme: schemeToJson(s.scheme),
      HasPersistedState: true,
      Partitions: s.partitionList.map((p) => ({ ...stateOf(p), Info: partitionInfoToJson(p.info) })),
    }));
  }

  private partition(id: string): { service: StatefulService; partition: Partition } {
    for (const service of this.services) {
      const partition = service.partitionList.find((p) => p.id === id);
      if (partition) return { service, partition };
    }
    throw new LifeboatError('FABRIC_E_PARTITION_NOT_FOUND', `Host ${this.id} does not serve partition ${id}.`);
  }

  /** Registers with the service and starts carrying out orders. */
  async start(): Promise<void> {
    await mkdir(this.o.workDir, { recursive: true });
    await this.o.channel.register(this.id, { Services: this.registration(), Incarnation: this.incarnation });
    this.loop = this.pollLoop();
  }

  private async pollLoop(): Promise<void> {
    let backoff = 100;
    while (!this.stopping) {
      try {
        const orders = await this.o.channel.pollOrders(this.id, this.o.pollWaitMs ?? 20_000);
        backoff = 100;
        for (const order of orders) {
          // The service hands an order out again when it has not heard of it for a while (a host
          // that went quiet); one this host is still carrying out must not start a second time.
          if (this.inFlight.has(order.OperationId)) continue;
          this.inFlight.add(order.OperationId);
          const run = this.carryOut(order).finally(() => {
            this.running.delete(run);
            this.inFlight.delete(order.OperationId);
          });
          this.running.add(run);
        }
      } catch (err) {
        if (this.stopping) break;
        this.o.log?.warn({ err: String(err) }, 'polling the Lifeboat service failed; retrying');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
        // The service may have restarted and forgotten what we serve.
        await this.o.channel.register(this.id, { Services: this.registration(), Incarnation: this.incarnation }).catch(() => undefined);
      }
    }
  }

  /** Stops taking orders and waits for those under way, at most `graceMs` (shutdown must end). */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    for (const wake of this.stopWaiters) wake();
    this.stopWaiters.clear();
    let timeout: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.allSettled([...this.running]).then(() => true),
      new Promise<false>((resolve) => { timeout = setTimeout(() => resolve(false), graceMs); }),
    ]);
    clearTimeout(timeout);
    if (!settled) this.o.log?.warn({ orders: this.running.size, graceMs }, 'host stopped with orders still under way');
    // Its worker threads end here, so that a process that stopped its host can exit.
    await this.blocks?.close();
  }

  /** The block pool of this host, once a backup or restore has used it (closed by stop()). */
  get blockPool(): BlockRunner | undefined {
    return this.blocks;
  }

  private pool(): BlockRunner {
    if (this.stopping && !this.blocks) throw new LifeboatError('E_ABORT', `Host ${this.id} is stopping.`);
    this.blocks ??= createBlockPool(this.o.blockWorkers ?? defaultWorkers(), this.o.blockWorkerNice === undefined ? {} : { nice: this.o.blockWorkerNice });
    return this.blocks;
  }

  /** Waits for the poll loop to notice `stop()` (it may sit in a long poll until then). */
  async stopped(): Promise<void> {
    await this.loop;
  }

  private async send(report: Report): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.o.channel.report(this.id, report);
        return;
      } catch (err) {
        // A refusal is final, but not "busy": the service takes the report when its turn comes.
        if ((isLifeboatError(err) && err.code !== 'LIFEBOAT_E_BUSY') || attempt >= 5) {
          this.o.log?.warn({ err: String(err), operation: report.OperationId }, 'the service did not take a report');
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  private async carryOut(order: Order): Promise<void> {
    const scratch = join(this.o.workDir, order.OperationId);
    let partition: Partition | undefined;
    try {
      partition = this.partition(order.PartitionId).partition;
      if (this.clock.now() > new Date(order.DeadlineUtc)) {
        throw new LifeboatError('FABRIC_E_TIMEOUT', `The request of ${order.Kind.toLowerCase()} has timed out before it could start.`);
      }
      await this.send({ OperationId: order.OperationId, State: 'InProgress' });
      await rm(scratch, { recursive: true, force: true });
      await mkdir(scratch, { recursive: true });
      if (order.Kind === 'Backup') await this.backup(order);
      else await this.restore(order, scratch);
    } catch (err) {
      this.o.log?.warn({ err: String(err), operation: order.OperationId }, `${order.Kind.toLowerCase()} failed`);
      await this.send({ OperationId: order.OperationId, State: 'Failure', Error: failureOf(err), ...(partition ? { Partition: stateOf(partition) } : {}) });
    } finally {
      this.pendingRestores.delete(order.PartitionId);
      await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async backup(order: BackupOrder): Promise<void> {
    const { service, partition } = this.partition(order.PartitionId);
    const repo = new BackupRepository(this.o.openStorage(order.Storage));
    const reports = this.progressReports(order.OperationId);
    const { backup, progress } = await backupToStorage({ ...this.transfer(), onBackupProgress: (p) => reports.update(p) }, repo, service, partition, order);
    await reports.drain();
    await this.send({ OperationId: order.OperationId, State: 'Success', Partition: stateOf(partition), Backup: backup, Progress: progress });
  }

  /** What the transfer pipelines take from this host. */
  private transfer(): TransferContext {
    return { hostId: this.id, clock: this.clock, workers: this.pool(), keyring: this.o.keyring, compression: this.o.compression, directIo: this.o.directIo, log: this.o.log };
  }

  /** InProgress reports of one operation's byte counts (a lost one is not retried: the next says more). */
  private progressReports(operationId: string): ProgressReports {
    return new ProgressReports((p) => this.o.channel.report(this.id, { OperationId: operationId, State: 'InProgress', Progress: p }), this.o.progressIntervalMs ?? 1000);
  }

  private async restore(order: Extract<Order, { Kind: 'Restore' }>, scratch: string): Promise<void> {
    const { partition } = this.partition(order.PartitionId);
    const repo = new BackupRepository(this.o.openStorage(order.Storage));
    const ended = new AbortController();
    let result: RestoreResult | undefined;
    // The chain's stored size, for the progress total (a missing object fails the chain's read itself).
    const sizes = await Promise.all(order.Chain.map((location) => repo.dataInfo(location).catch(() => undefined)));
    const total = sizes.reduce((n, o) => n + (o?.size ?? 0), 0);
    const reports = this.progressReports(order.OperationId);
    let read = 0;
    const counted = { ...this.transfer(), onStoredBytesRead: (n: number) => reports.update({ BytesTransferred: read += n, TotalBytes: total }) };
    const { full, incrementals } = openChain(counted, repo, order.Chain, scratch, ended.signal);
    const reading: Array<PromiseLike<unknown>> = [full, ...incrementals];
    try {
      // What can be checked of the full backup before its data is read (its metadata, the key, its
      // size): a problem there fails the order while the partition goes on serving. Then the
      // partition writes it as it streams in, while the incrementals go on downloading.
      const first = await full;
      if (typeof first !== 'string') reading.push(first.metadata);
      const chain: RestoreSource[] = [first, ...incrementals];
      const policy = order.RestorePolicy ?? 'Force';
      const waiting = this.inDataLoss.get(partition.id);
      if (waiting) {
        // Already in data loss (waiting for this order): its handler applies the restore.
        const pending = pendingRestore(chain, policy);
        this.pendingRestores.set(partition.id, pending);
        waiting.wake?.();
        await pending.settled;
        result = pending.result;
      } else {
        // A serving partition restores as a data loss of its own: it refuses writes while the chain
        // streams in, and takes the new epoch only when the restore commits. Damage found on the
        // way leaves its data, LSN, epoch and status as they were.
        result = await partition.restore(chain, { policy });
      }
    } catch (err) {
      // Downloads not needed any more stop; none may write into scratch after it is removed.
      // (A restore that succeeded consumed them all.)
      ended.abort();
      await Promise.allSettled(reading);
      throw err;
    }
    const r = result;
    if (!r) throw new LifeboatError('E_FAIL', `Partition ${partition.id} did not restore during data loss.`);
    await reports.drain();
    await this.send({
      OperationId: order.OperationId, State: 'Success', Partition: stateOf(partition), Progress: { BytesTransferred: read, TotalBytes: total },
      Restored: { Epoch: { DataLossVersion: r.restoredEpoch.dataLossVersion.toString(), ConfigurationVersion: r.restoredEpoch.configurationVersion.toString() }, Lsn: r.restoredLsn.toString() },
    });
  }
}

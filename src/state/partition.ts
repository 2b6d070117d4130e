/**
 * A partition of a stateful service: transactional reliable dictionaries over one SQLite
 * database, with an LSN per commit, an epoch, replica-level full and incremental backups, restore
 * from a backup chain, and data loss.
 *
 * On disk (`dir`):
 *   state.json            { generation, epoch } — which database file is current; replaced atomically
 *   data-<gen>.sqlite     the current generation's database (WAL mode)
 *   backup/               the default local backup folder, re-created by every backup
 *
 * A restore builds the next generation beside the current one and switches `state.json` to it in
 * one atomic rename, so a crash leaves the partition either as it was or fully restored; files of
 * other generations are leftovers and are removed when the partition opens.
 *
 * The class keeps the state and decides what may run; free functions beside it do the work:
 * transaction.ts (transactions, dictionaries), generations.ts (state.json, generation files),
 * backup.ts (full and incremental backups), restore.ts (the chain, the next generation).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Clock } from '../core/clock.ts';
import { type BackupOption, type LastBackup, incrementalRefusal, safeRestoreRefusal } from '../core/backup-chain.ts';
import { type Epoch, INITIAL_EPOCH, compareEpochs, epochsEqual, maxBigint } from '../core/epoch.ts';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import type { PartitionInfo } from '../core/partitioning.ts';
import {
  type BackupOptions, type BackupSource, backupToFolder, lastBackupOf, recordLastBackup, runBackupCallback, streamBackup,
} from './backup.ts';
import type { BackupInfo } from './backup-folder.ts';
import { dataFileName, openCurrentGeneration, readState, removeGenerationFiles, writeState } from './generations.ts';
import {
  type RestoreOptions, type RestorePolicy, type RestoreResult, type RestoreSource, buildRestoredGeneration, plannedChain, restoreSourceList, stagedChainOf,
} from './restore.ts';
import { type Durability, Store, openDatabase } from './store.ts';
import { type Committed, DictionaryReader, Transaction, checkDictionaryName, internal } from './transaction.ts';

export type PartitionStatus = 'Ready' | 'DataLoss' | 'Restoring' | 'Closed';

/** What an `onDataLoss` handler gets: the partition, and restore. */
export interface RestoreContext {
  readonly partition: Partition;
  restore(sources: string | readonly RestoreSource[], options?: RestoreOptions): Promise<RestoreResult>;
}

/** Called after data loss, before the partition accepts writes; resolve true if state was restored. */
export type DataLossHandler = (ctx: RestoreContext) => Promise<boolean> | boolean;

export interface PartitionOpenOptions {
  readonly serviceName: string;
  readonly id: string;
  readonly info: PartitionInfo;
  readonly dir: string;
  /** The partition existed before: a missing or unreadable database is data loss, not a new partition. */
  readonly existed: boolean;
  readonly durability?: Durability;
  /** An incremental is refused once the chain's change log would reach this many bytes. */
  readonly maxChainLogBytes?: number;
  readonly onDataLoss?: DataLossHandler;
  /** What backups are dated by; injected so tests control time (default the system's). */
  readonly clock?: Clock;
}

export const DEFAULT_MAX_CHAIN_LOG_BYTES = 800 * 1024 * 1024;
/** Useless log (no backup could use it) is dropped once it passes this size. */
const USELESS_LOG_TRUNCATE_BYTES = 4 * 1024 * 1024;
/** Rows deleted per event-loop turn when truncating the change log. */
const TRUNCATE_STEP_ROWS = 2000;

export class Partition {
  readonly serviceName: string;
  readonly id: string;
  readonly info: PartitionInfo;
  readonly dir: string;
  private readonly durability: Durability;
  private readonly maxChainLogBytes: number;
  private readonly onDataLoss: DataLossHandler | undefined;
  private readonly clock: Clock;

  private store!: Store;
  private generation = 0;
  private dictIds = new Map<string, number>();
  private nextDictId = 1;
  private currentEpoch: Epoch = INITIAL_EPOCH;
  /** Epoch of the last commit; a commit under a newer epoch records the new one. */
  private writeEpoch: Epoch = INITIAL_EPOCH;
  private lsn = 0n;
  private lastBackup: LastBackup | undefined;
  private logTruncatedThrough = 0n;
  private logBytesSinceBackup = 0;
  private currentStatus: PartitionStatus = 'Ready';
  private inTransaction = false;
  private backupRunning: Promise<unknown> | undefined;
  private restoreRunning: Promise<unknown> | undefined;
  private truncation: Promise<void> | undefined;
  private lossPending = false;
  private inDataLossHandler = false;

  private constructor(o: PartitionOpenOptions) {
    this.serviceName = o.serviceName;
    this.id = o.id;
    this.info = o.info;
    this.dir = o.dir;
    this.durability = o.durability ?? 'full';
    this.maxChainLogBytes = o.maxChainLogBytes ?? DEFAULT_MAX_CHAIN_LOG_BYTES;
    this.onDataLoss = o.onDataLoss;
    this.clock = o.clock ?? { now: () => new Date() };
  }

  /**
   * Opens (or creates) the partition in `o.dir`. When its data is missing or unreadable and it
   * `existed`, that is data loss: the partition starts empty under a new DataLossVersion and
   * `dataLossPending` is set; call `handlePendingDataLoss()` to run the handler.
   */
  static async open(o: PartitionOpenOptions): Promise<Partition> {
    const p = new Partition(o);
    await p.openFiles(o.existed);
    return p;
  }

  // ---- public state -------------------------------------------------------------------------

  get epoch(): Epoch {
    return this.currentEpoch;
  }

  /** LSN of the last commit (0 for a new partition). */
  get lastLsn(): bigint {
    return this.lsn;
  }

  get status(): PartitionStatus {
    return this.currentStatus;
  }

  /** True after open found the partition's data lost, until `handlePendingDataLoss()` ran. */
  get dataLossPending(): boolean {
    return this.lossPending;
  }

  /** The backup the next incremental would follow, if any. */
  get lastCompletedBackup(): LastBackup | undefined {
    return this.lastBackup;
  }

  dictionaryNames(): string[] {
    this.assertReadable();
    return [...this.dictIds.keys()].sort();
  }

  dictionary(name: string): DictionaryReader {
    checkDictionaryName(name);
    this.assertReadable();
    return new DictionaryReader(this, name);
  }

  // ---- transactions -------------------------------------------------------------------------

  /**
   * Runs `fn` as one transaction and commits it with the next LSN; a throw rolls everything
   * back. `fn` must be synchronous: SQLite has one writer, and a commit holds no lock across
   * awaits, so commits stay microseconds long and never interleave.
   */
  transact<T>(fn: (tx: Transaction) => T): Committed<T> {
    this.assertWritable();
    invalidArgUnless(!this.inTransaction, 'Transactions cannot be nested.');
    const tx = new Transaction(this, this.lsn + 1n);
    let value!: T;
    let ended = { changes: 0, bytes: 0 };
    this.inTransaction = true;
    try {
      this.store.inTransaction(() => {
        value = fn(tx);
        if (value instanceof Promise) {
          void value.catch(() => undefined);
          throw new LifeboatError('E_INVALIDARG', 'The transaction function must be synchronous; it returned a promise.');
        }
        ended = tx[internal].end();
        if (ended.changes > 0 && !epochsEqual(this.writeEpoch, this.currentEpoch)) this.store.setWriteEpoch(this.currentEpoch);
      });
    } catch (err) {
      tx[internal].end();
      // Dictionaries created or removed by the rolled-back transaction: the database knows best.
      this.dictIds = this.store.dictionaries();
      throw err;
    } finally {
      this.inTransaction = false;
    }
    if (ended.changes === 0) return { lsn: undefined, value };
    this.lsn = tx.lsn;
    this.writeEpoch = this.currentEpoch;
    this.logBytesSinceBackup += ended.bytes;
    this.maybeDropUselessLog();
    return { lsn: tx.lsn, value };
  }

  // ---- backup -------------------------------------------------------------------------------

  /**
   * Takes a replica backup into a local folder. Full: a consistent snapshot of the database,
   * taken online (writers go on). Incremental: the changes since the last completed backup;
   * refused with FABRIC_E_MISSING_FULL_BACKUP when there is none, the epoch changed since, the
   * log it needs was truncated, or the chain's log would pass the size limit. One backup at a
   * time (FABRIC_E_BACKUP_IN_PROGRESS). The backup advances the chain only when the callback
   * resolves true; then change-log records no later backup needs are truncated.
   */
  async backup(options: BackupOptions = {}): Promise<BackupInfo> {
    const option = options.option ?? 'Full';
    invalidArgUnless(option === 'Full' || option === 'Incremental', `Backup option must be Full or Incremental, not '${String(option)}'.`);
    this.assertOpen();
    if (this.restoreRunning || this.currentStatus === 'Restoring') throw new LifeboatError('FABRIC_E_RESTORE_IN_PROGRESS', `Partition ${this.id} is being restored.`);
    if (this.backupRunning) throw new LifeboatError('FABRIC_E_BACKUP_IN_PROGRESS', `A backup of partition ${this.id} is already in progress.`);
    if (this.currentStatus !== 'Ready') throw new LifeboatError('FABRIC_E_NOT_READY', `Partition ${this.id} is handling data loss; back it up afterwards.`);
    const run = this.runBackup(option, options);
    this.backupRunning = run;
    try {
      return await run;
    } finally {
      this.backupRunning = undefined;
    }
  }

  private async runBackup(option: BackupOption, options: BackupOptions): Promise<BackupInfo> {
    const parent = this.lastBackup;
    if (option === 'Incremental') {
      const refusal = this.incrementalRefusal();
      if (refusal !== undefined) throw new LifeboatError('FABRIC_E_MISSING_FULL_BACKUP', `An incremental backup of partition ${this.id} cannot be taken: ${refusal}. Take a full backup.`);
    }
    invalidArgUnless(options.writer === undefined || options.folder === undefined, 'Give a backup folder or a writer, not both.');
    const epoch = this.currentEpoch;
    const backupId = randomUUID();
    const takenAtUtc = this.clock.now().toISOString();
    const common = { backupId, epoch, serviceName: this.serviceName, partitionId: this.id, partitionInfo: this.info, takenAtUtc };
    // What the backup reads: the current generation's database.
    const source: BackupSource = { partitionId: this.id, store: this.store, file: join(this.dir, dataFileName(this.generation)) };
    const info = options.writer
      ? await streamBackup(source, option, common, parent, options.writer)
      : await backupToFolder(source, option, common, parent, options.folder ?? join(this.dir, 'backup'));
    await runBackupCallback(this.id, options.callback, info);
    // A backup of an older epoch (data loss or restore meanwhile) cannot start a chain here.
    if (this.currentStatus !== 'Closed' && epochsEqual(epoch, this.currentEpoch)) this.recordBackup(info);
    return info;
  }

  private recordBackup(info: BackupInfo): void {
    const last = recordLastBackup(this.store, info);
    this.lastBackup = last;
    this.logBytesSinceBackup = this.store.logBytesAfter(last.lastLsn);
    // Only changes after this backup can be needed by the next incremental.
    this.truncateLog(last.lastLsn);
  }

  // ---- change-log truncation ----------------------------------------------------------------

  /** Why an incremental cannot be taken now (core/backup-chain), or undefined when it can. */
  private incrementalRefusal(): string | undefined {
    return incrementalRefusal({
      lastBackup: this.lastBackup,
      currentEpoch: this.currentEpoch,
      logTruncatedThrough: this.logTruncatedThrough,
      logBytesSinceBackup: this.logBytesSinceBackup,
      maxChainLogBytes: this.maxChainLogBytes,
    });
  }

  /** Whether the next incremental could use the log: otherwise it need not be kept. */
  private logIsUseful(): boolean {
    return this.incrementalRefusal() === undefined;
  }

  private maybeDropUselessLog(): void {
    if (this.truncation || this.backupRunning || this.logBytesSinceBackup < USELESS_LOG_TRUNCATE_BYTES) return;
    if (!this.logIsUseful()) this.truncateLog(this.lsn);
  }

  /** Deletes logged changes with LSN ≤ `through`, a slice per tick so writers are not held up. */
  private truncateLog(through: bigint): void {
    if (through > this.logTruncatedThrough) {
      this.logTruncatedThrough = through;
      // `through` is a committed LSN, so it is also the last LSN once the log is emptied.
      this.store.db.prepare('UPDATE partition_meta SET log_truncated_through = max(log_truncated_through, ?), base_lsn = max(base_lsn, ?) WHERE singleton = 1').run(through, through);
      if (this.lastBackup === undefined || this.lastBackup.lastLsn < through) this.logBytesSinceBackup = this.store.logBytesAfter(through);
    }
    this.deleteTruncatedLog();
  }

  /**
   * Deletes the logged changes at or below the truncation point, a slice per event-loop turn so
   * writers are not held up. Runs after any deletion already under way; also resumes one a crash
   * or close cut short (called when the partition opens).
   */
  private deleteTruncatedLog(): void {
    const store = this.store;
    const run = async (): Promise<void> => {
      for (;;) {
        // Yield first: the caller (a commit or a finished backup) does not pay for the deletes.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.store !== store || this.currentStatus === 'Closed') return;
        if (store.deleteLogUpTo(this.logTruncatedThrough, TRUNCATE_STEP_ROWS) === 0) return;
      }
    };
    const next: Promise<void> = (this.truncation ?? Promise.resolve()).then(run).finally(() => {
      if (this.truncation === next) this.truncation = undefined;
    });
    this.truncation = next;
  }

  // ---- restore ------------------------------------------------------------------------------

  /**
   * Restores the partition from backup folders: `sources` are backup folders, or folders
   * searched for them, holding one full backup and any incrementals of its chain. The chain is
   * validated (one full, parent links, one DataLossVersion, increasing LSNs, checksums) before
   * anything changes. Safe refuses a backup not newer than the current state; Force does not.
   * Atomic: a crash leaves the partition as it was or fully restored, and a failed restore can
   * be retried. Afterwards the LSN continues from the backup's, the DataLossVersion is new, and
   * the next backup must be Full.
   *
   * Sources that are promises (downloads under way) make the list the chain itself, full backup
   * first, one backup folder each: each is awaited when it is to be applied, so downloading the
   * next overlaps applying this one. Each link is checked as it arrives, and Safe once the last
   * is known, still before the commit: a refusal or a failed source leaves the partition as it was.
   */
  async restore(sources: string | readonly RestoreSource[], options: RestoreOptions = {}): Promise<RestoreResult> {
    const policy = options.policy ?? 'Safe';
    invalidArgUnless(policy === 'Safe' || policy === 'Force', `Restore policy must be Safe or Force, not '${String(policy)}'.`);
    const list = restoreSourceList(sources);
    this.assertOpen();
    if (this.restoreRunning) throw new LifeboatError('FABRIC_E_RESTORE_IN_PROGRESS', `A restore of partition ${this.id} is already in progress.`);
    if (this.backupRunning) throw new LifeboatError('FABRIC_E_BACKUP_IN_PROGRESS', `A backup of partition ${this.id} is in progress; restore after it.`);
    const run = this.runRestore(list, policy);
    this.restoreRunning = run;
    try {
      return await run;
    } finally {
      this.restoreRunning = undefined;
    }
  }

  private async runRestore(sources: RestoreSource[], policy: RestorePolicy): Promise<RestoreResult> {
    const refuseUnlessSafe = (target: BackupInfo): void => {
      if (policy !== 'Safe') return;
      const refusal = safeRestoreRefusal({ epoch: this.writeEpoch, lsn: this.lsn }, { epoch: target.epoch, lsn: target.lastLsn });
      if (refusal !== undefined) throw new LifeboatError('FABRIC_E_RESTORE_SAFE_CHECK_FAILED', `Safe restore of partition ${this.id} refused: ${refusal}. Use Force to restore anyway.`);
    };
    // A chain given link by link is not awaited here: the partition is Restoring as restore() returns.
    const { links, dropped } = sources.every((s): s is string => typeof s === 'string') ? await plannedChain(sources, refuseUnlessSafe) : stagedChainOf(sources);
    const previousStatus = this.currentStatus;
    this.currentStatus = 'Restoring';
    if (this.truncation) await this.truncation;
    const gen = this.generation + 1;
    const file = join(this.dir, dataFileName(gen));
    // A restore within data-loss handling takes that data loss's epoch; otherwise it is a data loss of its own.
    const baseDlv = this.inDataLossHandler ? this.currentEpoch.dataLossVersion : this.currentEpoch.dataLossVersion + 1n;
    const epochFor = (target: BackupInfo): Epoch => ({ dataLossVersion: maxBigint(baseDlv, target.epoch.dataLossVersion + 1n), configurationVersion: this.currentEpoch.configurationVersion });
    let built: { chain: BackupInfo[]; epoch: Epoch } | undefined;
    try {
      await removeGenerationFiles(this.dir, (g) => g === gen);
      built = await buildRestoredGeneration({ partitionId: this.id, dir: this.dir, durability: this.durability }, file, links, epochFor);
      // A staged chain's target is known only now; Safe still decides before the commit.
      if (links.staged) refuseUnlessSafe(built.chain[built.chain.length - 1] as BackupInfo);
      // The commit point: from here the partition is the restored one, even after a crash.
      await writeState(this.dir, this.id, { generation: gen, epoch: built.epoch });
    } catch (err) {
      const committed = (await readState(this.dir).catch(() => undefined))?.generation === gen;
      if (!committed) {
        this.currentStatus = previousStatus;
        await removeGenerationFiles(this.dir, (g) => g === gen).catch(() => undefined);
        throw err;
      }
    }
    const { chain, epoch: newEpoch } = built as { chain: BackupInfo[]; epoch: Epoch };
    const target = chain[chain.length - 1] as BackupInfo;
    const old = this.store;
    this.generation = gen;
    this.attach(openDatabase(file, { durability: this.durability }));
    old.db.close();
    await removeGenerationFiles(this.dir, (g) => g !== gen);
    this.currentStatus = previousStatus === 'Restoring' ? 'Ready' : previousStatus;
    return {
      restoredEpoch: newEpoch,
      restoredLsn: target.lastLsn,
      chain: chain.map((b) => b.backupId),
      dropped,
    };
  }

  // ---- epochs and data loss -------------------------------------------------------------------

  /**
   * Declares data loss: the DataLossVersion advances (so the next backup must be Full), and the
   * `onDataLoss` handler runs before writes are accepted again; it may restore. Resolves to the
   * handler's answer (true: state was restored or changed).
   */
  async startDataLoss(): Promise<boolean> {
    this.assertOpen();
    if (this.currentStatus !== 'Ready') throw new LifeboatError('FABRIC_E_NOT_READY', `Partition ${this.id} is ${this.currentStatus}; data loss cannot start now.`);
    await this.setEpoch({ dataLossVersion: this.currentEpoch.dataLossVersion + 1n, configurationVersion: this.currentEpoch.configurationVersion });
    this.lossPending = true;
    return this.handlePendingDataLoss();
  }

  /** Runs the data-loss handler for data loss found at open (or started); no-op when none is pending. */
  async handlePendingDataLoss(): Promise<boolean> {
    if (!this.lossPending) return false;
    this.currentStatus = 'DataLoss';
    this.inDataLossHandler = true;
    try {
      const ctx: RestoreContext = { partition: this, restore: (sources, options) => this.restore(sources, options) };
      const changed = this.onDataLoss ? (await this.onDataLoss(ctx)) === true : false;
      this.lossPending = false;
      return changed;
    } finally {
      this.inDataLossHandler = false;
      if (this.currentStatus === 'DataLoss') this.currentStatus = 'Ready';
    }
  }

  /** A new primary: ConfigurationVersion advances, which breaks the incremental chain (as a failover does). */
  async advanceConfiguration(): Promise<Epoch> {
    this.assertOpen();
    await this.setEpoch({ dataLossVersion: this.currentEpoch.dataLossVersion, configurationVersion: this.currentEpoch.configurationVersion + 1n });
    return this.currentEpoch;
  }

  private async setEpoch(epoch: Epoch): Promise<void> {
    // state.json first: if the database update is lost, open takes the larger of the two.
    await writeState(this.dir, this.id, { generation: this.generation, epoch });
    this.store.db.prepare('UPDATE partition_meta SET data_loss_version = ?, configuration_version = ? WHERE singleton = 1').run(epoch.dataLossVersion, epoch.configurationVersion);
    this.currentEpoch = epoch;
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Waits for a running backup, restore or truncation, then closes the database. */
  async close(): Promise<void> {
    if (this.currentStatus === 'Closed') return;
    await Promise.allSettled([this.backupRunning, this.restoreRunning]);
    while (this.truncation) await this.truncation;
    this.currentStatus = 'Closed';
    this.store.db.close();
  }

  private async openFiles(existed: boolean): Promise<void> {
    const { db, generation, epoch, lost } = await openCurrentGeneration({ dir: this.dir, partitionId: this.id, durability: this.durability, existed, clock: this.clock });
    this.generation = generation;
    this.attach(db);
    // state.json is written before the database on epoch changes: take the larger.
    if (compareEpochs(epoch, this.currentEpoch) > 0) {
      db.prepare('UPDATE partition_meta SET data_loss_version = ?, configuration_version = ? WHERE singleton = 1').run(epoch.dataLossVersion, epoch.configurationVersion);
      this.currentEpoch = epoch;
    }
    this.lossPending = lost;
    this.currentStatus = lost ? 'DataLoss' : 'Ready';
  }

  /** Points the partition at an open database and loads what it keeps in memory. */
  private attach(db: Database.Database): void {
    this.store = new Store(db);
    const meta = this.store.meta();
    this.currentEpoch = { dataLossVersion: meta.data_loss_version, configurationVersion: meta.configuration_version };
    this.writeEpoch = { dataLossVersion: meta.write_dlv, configurationVersion: meta.write_cv };
    this.lsn = this.store.lastLsn(meta);
    this.lastBackup = lastBackupOf(meta);
    this.logTruncatedThrough = meta.log_truncated_through;
    this.logBytesSinceBackup = this.store.logBytesAfter(maxBigint(this.lastBackup?.lastLsn ?? 0n, meta.log_truncated_through));
    this.dictIds = this.store.dictionaries();
    this.nextDictId = Math.max(0, ...this.dictIds.values()) + 1;
    this.deleteTruncatedLog();
  }

  private assertOpen(): void {
    if (this.currentStatus === 'Closed') throw new LifeboatError('FABRIC_E_OBJECT_CLOSED', `Partition ${this.id} is closed.`);
  }

  private assertReadable(): void {
    this.assertOpen();
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.currentStatus === 'Restoring') throw new LifeboatError('FABRIC_E_NOT_READY', `Partition ${this.id} is being restored; writes resume when it is done.`);
    if (this.currentStatus === 'DataLoss') throw new LifeboatError('FABRIC_E_NOT_READY', `Partition ${this.id} is handling data loss; writes resume when it is done.`);
  }

  readonly [internal] = {
    store: (): Store => this.store,
    dictId: (name: string): number | undefined => this.dictIds.get(name),
    allocateDictionary: (name: string): number => {
      const id = this.nextDictId++;
      this.dictIds.set(name, id);
      return id;
    },
    forgetDictionary: (name: string): void => {
      this.dictIds.delete(name);
    },
  };
}

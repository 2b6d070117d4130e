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
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Database from 'better-sqlite3';
import {
  type BackupOption, type LastBackup, incrementalRefusal, planRestoreChain, safeRestoreRefusal,
} from '../core/backup-chain.ts';
import { type Epoch, INITIAL_EPOCH, compareEpochs, epochsEqual, maxBigint } from '../core/epoch.ts';
import { LifeboatError, invalidArgUnless, isLifeboatError } from '../core/errors.ts';
import { prefixUpperBound } from '../core/keys.ts';
import type { PartitionInfo } from '../core/partitioning.ts';
import {
  type BackupFile, type BackupInfo, FULL_DATA_FILE, INCREMENTAL_DATA_FILE, METADATA_FILE, backupMetadataText, fileOf, findBackupFolders,
  readBackupMetadata, writeBackupMetadata,
} from './backup-folder.ts';
import { ChangeOp, type ChangeRecord, changeLogBytes, decodeChangeLog, encodeHeader, encodeRecord, encodeTrailer } from './changelog-codec.ts';
import {
  type CopiedFile, HashingStream, PRIVATE_FILE, copyFileHashed, fsyncPath, mkdirPrivate, readJsonIfExists, recreateDir, writeFileAtomic, writeStreamHashed,
} from './files.ts';
import { writeNewFile } from '../fs/sync-behind.ts';
import { type Durability, type MetaRow, Store, initSchema, openDatabase } from './store.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A dictionary value: anything JSON can hold, or bytes. */
export type Value = JsonValue | Uint8Array;

export type PartitionStatus = 'Ready' | 'DataLoss' | 'Restoring' | 'Closed';
export type RestorePolicy = 'Safe' | 'Force';

export interface Committed<T> {
  /** The commit's LSN, or undefined when the transaction changed nothing. */
  readonly lsn: bigint | undefined;
  readonly value: T;
}

export interface EnumerateOptions {
  /** Only keys starting with this. */
  readonly prefix?: string;
  /** Keys ≥ this. */
  readonly from?: string;
  /** Keys < this. */
  readonly to?: string;
  /** Keys > this: continue a paged enumeration after the last key seen. */
  readonly after?: string;
  readonly limit?: number;
  readonly reverse?: boolean;
}

export interface Entry {
  readonly key: string;
  readonly value: Value;
}

export interface BackupOptions {
  readonly option?: BackupOption;
  /** Where to write the backup; re-created. Default: the partition's `backup/` folder. Not with `writer`. */
  readonly folder?: string;
  /**
   * Hands the backup's files to this writer as they are read, instead of copying them into a
   * folder: e.g. into an archive it uploads, so the data is read once and never written locally.
   * The partition holds the snapshot the files come from until the writer's promise settles.
   */
  readonly writer?: BackupWriter;
  /**
   * Called with the backup once it is written; the backup counts (advances the chain) only when
   * this resolves true (Service Fabric's post-backup callback). Default: accept.
   */
  readonly callback?: (info: BackupInfo) => Promise<boolean> | boolean;
}

/** A file of a backup handed to a writer (BackupOptions.writer). */
export type BackupFileSource =
  /** The first `bytes` bytes of the file at `path`, which stay unchanged until the writer's promise settles. */
  | { readonly name: string; readonly path: string; readonly bytes: number }
  /** The bytes as they are read from the partition's snapshot; read them before the writer's promise settles. */
  | { readonly name: string; readonly stream: AsyncIterable<Uint8Array> }
  /** `backup.metadata`, made from the size and SHA-256 of the data file before it, as the writer read them. */
  | { readonly name: string; readonly content: (before: readonly BackupFile[]) => Uint8Array };

/** A backup as a writer gets it: what is known before its data is read, and its files. */
export interface BackupStream {
  readonly backupId: string;
  readonly option: BackupOption;
  readonly parentBackupId: string;
  readonly backupChainId: string;
  readonly epoch: Epoch;
  readonly firstLsn: bigint;
  readonly lastLsn: bigint;
  readonly takenAtUtc: string;
  /**
   * To be read in this order, each to its end: the data file (`data.sqlite` or `changes.log`),
   * then `backup.metadata`, whose content records the data file's size and SHA-256.
   */
  readonly files: readonly BackupFileSource[];
}

/** Writes a backup's files somewhere; resolves to where (BackupInfo.directory), once all are written. */
export type BackupWriter = (backup: BackupStream) => Promise<string>;

export interface RestoreOptions {
  /** Safe (default) refuses a backup that is not newer than the partition's state; Force does not. */
  readonly policy?: RestorePolicy;
}

export interface RestoreResult {
  readonly restoredEpoch: Epoch;
  readonly restoredLsn: bigint;
  /** BackupIds applied, the full backup first. */
  readonly chain: readonly string[];
  readonly dropped: ReadonlyArray<{ readonly backupId: string; readonly reason: string }>;
}

/**
 * A full backup read as a stream, e.g. decoded from storage as it downloads: restored without a
 * local copy. Only as the first link of a chain given link by link.
 */
export interface StreamedFullBackup {
  /** The bytes of its `data.sqlite`, in order; each chunk may be reused once the next is asked for. */
  readonly data: AsyncIterable<Uint8Array>;
  /**
   * The SHA-256 (hex) of exactly the bytes `data` yielded, from a source that hashes them anyway
   * (a decoder checking the backup's own digests): given, the restore compares it with the
   * metadata instead of hashing a second time. It may settle once `data` has ended.
   */
  readonly dataSha256?: PromiseLike<string>;
  /**
   * Its `backup.metadata`, once the whole backup has been read and checked (it may come after the
   * data): the restore compares the data with it, and commits only after it resolves.
   */
  readonly metadata: PromiseLike<BackupInfo>;
  /**
   * Write the data file with O_DIRECT where its chunks allow (views on an aligned region, as the
   * backup decoder's are: src/fs/direct-io.ts), past the page cache; default true.
   */
  readonly directWrite?: boolean;
}

/**
 * A backup folder, or a promise of one (a download under way), or a full backup as a stream. A
 * list with promises or a stream is the chain itself, full backup first: each link is awaited
 * only when its turn to be applied comes.
 */
export type RestoreSource = string | PromiseLike<string> | StreamedFullBackup;

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
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now?: () => number;
}

export const DEFAULT_MAX_CHAIN_LOG_BYTES = 800 * 1024 * 1024;
const STATE_FILE = 'state.json';
const DATA_FILE = /^data-(\d+)\.sqlite(-wal|-shm|-journal)?$/;
const MAX_KEY_BYTES = 64 * 1024;
/** Useless log (no backup could use it) is dropped once it passes this size. */
const USELESS_LOG_TRUNCATE_BYTES = 4 * 1024 * 1024;
/** Rows deleted per event-loop turn when truncating the change log. */
const TRUNCATE_STEP_ROWS = 2000;
const APPLY_BATCH_RECORDS = 5000;

const dataFileName = (gen: number): string => `data-${gen}.sqlite`;

/** The links of a restore chain, full backup first; undefined past the last. */
interface ChainSource {
  next(index: number): Promise<BackupInfo | undefined>;
  /** The chain arrives link by link (so Safe is checked once the last is known). */
  readonly staged: boolean;
  /** The full backup's data as a stream; its metadata is then `next(0)`, known after the data. */
  readonly streamedFull?: StreamedFullBackup | undefined;
}

function isPromiseLike(v: unknown): v is PromiseLike<string> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function isStreamedFull(v: unknown): v is StreamedFullBackup {
  return typeof v === 'object' && v !== null && !isPromiseLike(v) && isPromiseLike((v as StreamedFullBackup).metadata)
    && typeof (v as StreamedFullBackup).data?.[Symbol.asyncIterator] === 'function';
}

/**
 * The links of a chain given in order as folders, promises of folders or (the first) a stream,
 * one backup each. Each is checked against those before it as it arrives: the chain planned from
 * the links so far must be exactly them, in the order given.
 */
function stagedChain(sources: readonly RestoreSource[]): ChainSource['next'] {
  const seen: BackupInfo[] = [];
  return async (index) => {
    if (index >= sources.length) return undefined;
    const source = sources[index] as RestoreSource;
    const info = isStreamedFull(source) ? await source.metadata : await readBackupMetadata(await source);
    seen.push(info);
    const plan = planRestoreChain(seen);
    if (plan.dropped.length > 0 || plan.chain[plan.chain.length - 1] !== info) {
      const prev = seen[index - 1];
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN',
        `Backup ${info.backupId} (link ${index + 1} of the chain given) does not continue ${prev ? `backup ${prev.backupId}` : 'the chain'}: it follows ${info.parentBackupId}.`);
    }
    return info;
  };
}

/** What every backup of one run records, whatever its kind. */
type BackupCommon = Pick<BackupInfo, 'backupId' | 'epoch' | 'serviceName' | 'partitionId' | 'partitionInfo' | 'takenAtUtc'>;

function fullInfo(common: BackupCommon, lastLsn: bigint, file: BackupFile): Omit<BackupInfo, 'directory'> {
  return {
    ...common, option: 'Full', parentBackupId: common.backupId, backupChainId: common.backupId, firstLsn: 1n, lastLsn,
    recordCount: 0, logBytes: 0, chainLogBytes: 0, files: [file],
  };
}

function incrementalInfo(common: BackupCommon, base: LastBackup, lastLsn: bigint, counts: { records: number; logBytes: number }, file: BackupFile): Omit<BackupInfo, 'directory'> {
  return {
    ...common, option: 'Incremental', parentBackupId: base.backupId, backupChainId: base.backupChainId, firstLsn: base.lastLsn + 1n, lastLsn,
    recordCount: counts.records, logBytes: counts.logBytes, chainLogBytes: base.chainLogBytes + counts.logBytes, files: [file],
  };
}

function encodeValue(value: unknown): string | Uint8Array {
  if (value instanceof Uint8Array) return value;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new LifeboatError('E_INVALIDARG', `Value cannot be stored as JSON: ${(err as Error).message}.`);
  }
  invalidArgUnless(text !== undefined, 'Value must be JSON (not undefined or a function) or bytes.');
  return text;
}

function decodeValue(stored: string | Buffer): Value {
  return typeof stored === 'string' ? (JSON.parse(stored) as JsonValue) : stored;
}

function checkKey(key: unknown): asserts key is string {
  invalidArgUnless(typeof key === 'string', 'Dictionary keys must be strings.');
  invalidArgUnless(Buffer.byteLength(key) <= MAX_KEY_BYTES, `Dictionary keys must be at most ${MAX_KEY_BYTES} bytes.`);
}

function checkDictionaryName(name: unknown): asserts name is string {
  invalidArgUnless(typeof name === 'string' && name.length > 0 && name.length <= 1024, 'A dictionary name must be a non-empty string of at most 1024 characters.');
}

function bounds(o: EnumerateOptions): { lower?: string; lowerInclusive?: boolean; upper?: string; limit?: number; reverse?: boolean } {
  let lower: string | undefined;
  let lowerInclusive = true;
  let upper: string | undefined;
  const raise = (k: string, inclusive: boolean): void => {
    if (lower === undefined || k > lower || (k === lower && !inclusive)) {
      lower = k;
      lowerInclusive = inclusive;
    }
  };
  const lowerUpper = (k: string): void => {
    if (upper === undefined || k < upper) upper = k;
  };
  if (o.prefix !== undefined) {
    checkKey(o.prefix);
    raise(o.prefix, true);
    const ub = prefixUpperBound(o.prefix);
    if (ub !== undefined) lowerUpper(ub);
  }
  if (o.from !== undefined) { checkKey(o.from); raise(o.from, true); }
  if (o.after !== undefined) { checkKey(o.after); raise(o.after, false); }
  if (o.to !== undefined) { checkKey(o.to); lowerUpper(o.to); }
  if (o.limit !== undefined) invalidArgUnless(Number.isSafeInteger(o.limit) && o.limit >= 0, 'limit must be a whole number ≥ 0.');
  return {
    ...(lower !== undefined ? { lower, lowerInclusive } : {}),
    ...(upper !== undefined ? { upper } : {}),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    ...(o.reverse ? { reverse: true } : {}),
  };
}

/** Read access to one dictionary. */
export class DictionaryReader {
  constructor(
    protected readonly partition: Partition,
    readonly name: string,
  ) {}

  protected id(): number | undefined {
    return this.partition[internal].dictId(this.name);
  }

  get(key: string): Value | undefined {
    checkKey(key);
    const id = this.id();
    if (id === undefined) return undefined;
    const stored = this.partition[internal].store().get(id, key);
    return stored === undefined ? undefined : decodeValue(stored);
  }

  has(key: string): boolean {
    checkKey(key);
    const id = this.id();
    return id !== undefined && this.partition[internal].store().get(id, key) !== undefined;
  }

  count(): number {
    const id = this.id();
    return id === undefined ? 0 : this.partition[internal].store().count(id);
  }

  /** Entries in key order (UTF-8 byte order), within the bounds given. */
  enumerate(options: EnumerateOptions = {}): Entry[] {
    const b = bounds(options);
    const id = this.id();
    if (id === undefined) return [];
    return this.partition[internal].store().range(id, b).map((r) => ({ key: r.key, value: decodeValue(r.value) }));
  }
}

/** Read and write access to one dictionary inside a transaction. */
export class TransactionDictionary extends DictionaryReader {
  constructor(
    partition: Partition,
    name: string,
    private readonly tx: Transaction,
  ) {
    super(partition, name);
  }

  /** Sets the key to a JSON value (anything JSON.stringify keeps: plain objects, arrays, …) or bytes. */
  set(key: string, value: unknown): void {
    checkKey(key);
    const encoded = encodeValue(value);
    const id = this.tx[internal].ensureDictionary(this.name);
    this.partition[internal].store().upsert(id, key, encoded);
    this.tx[internal].log(ChangeOp.Set, id, key, encoded);
  }

  /** Removes the key; returns whether it was there. */
  delete(key: string): boolean {
    checkKey(key);
    const id = this.id();
    if (id === undefined || !this.partition[internal].store().delete(id, key)) return false;
    this.tx[internal].log(ChangeOp.Delete, id, key, null);
    return true;
  }
}

const internal = Symbol('internal');

/** A transaction in progress. Valid only inside the function given to `Partition.transact`. */
export class Transaction {
  private seq = 0;
  private bytes = 0;
  private open = true;

  constructor(
    private readonly partition: Partition,
    readonly lsn: bigint,
  ) {}

  dictionary(name: string): TransactionDictionary {
    checkDictionaryName(name);
    this.assertOpen();
    return new TransactionDictionary(this.partition, name, this);
  }

  /** Removes a dictionary and all its entries; returns whether it existed. */
  removeDictionary(name: string): boolean {
    checkDictionaryName(name);
    this.assertOpen();
    const p = this.partition[internal];
    const id = p.dictId(name);
    if (id === undefined) return false;
    p.store().dropDictionary(id);
    p.forgetDictionary(name);
    this.log(ChangeOp.DropDictionary, id, name, null);
    return true;
  }

  private assertOpen(): void {
    invalidArgUnless(this.open, 'The transaction has ended; use it only inside the function given to transact().');
  }

  private log(op: ChangeOp, dict: number, key: string | null, value: string | Uint8Array | null): void {
    this.assertOpen();
    this.partition[internal].store().log(this.lsn, this.seq++, op, dict, key, value);
    this.bytes += changeLogBytes(key, value);
  }

  readonly [internal] = {
    ensureDictionary: (name: string): number => {
      this.assertOpen();
      const p = this.partition[internal];
      const existing = p.dictId(name);
      if (existing !== undefined) return existing;
      const id = p.allocateDictionary(name);
      p.store().createDictionary(id, name);
      this.log(ChangeOp.CreateDictionary, id, name, null);
      return id;
    },
    log: (op: ChangeOp, dict: number, key: string | null, value: string | Uint8Array | null): void => this.log(op, dict, key, value),
    end: (): { changes: number; bytes: number } => {
      this.open = false;
      return { changes: this.seq, bytes: this.bytes };
    },
  };
}

interface StateFile {
  generation: number;
  epoch: Epoch;
}

function lastBackupOf(m: MetaRow): LastBackup | undefined {
  if (m.last_backup_id === null || m.last_backup_chain_id === null || m.last_backup_lsn === null || m.last_backup_dlv === null || m.last_backup_cv === null) return undefined;
  return {
    backupId: m.last_backup_id,
    backupChainId: m.last_backup_chain_id,
    epoch: { dataLossVersion: m.last_backup_dlv, configurationVersion: m.last_backup_cv },
    lastLsn: m.last_backup_lsn,
    chainLogBytes: Number(m.chain_log_bytes ?? 0n),
  };
}

/** The file is there but is not a readable database of this partition (other errors are not data loss). */
function isUnreadableDatabase(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_ERROR');
}

export class Partition {
  readonly serviceName: string;
  readonly id: string;
  readonly info: PartitionInfo;
  readonly dir: string;
  private readonly durability: Durability;
  private readonly maxChainLogBytes: number;
  private readonly onDataLoss: DataLossHandler | undefined;
  private readonly now: () => number;

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
    this.now = o.now ?? Date.now;
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
      const refusal = incrementalRefusal({
        lastBackup: parent,
        currentEpoch: this.currentEpoch,
        logTruncatedThrough: this.logTruncatedThrough,
        logBytesSinceBackup: this.logBytesSinceBackup,
        maxChainLogBytes: this.maxChainLogBytes,
      });
      if (refusal !== undefined) throw new LifeboatError('FABRIC_E_MISSING_FULL_BACKUP', `An incremental backup of partition ${this.id} cannot be taken: ${refusal}. Take a full backup.`);
    }
    invalidArgUnless(options.writer === undefined || options.folder === undefined, 'Give a backup folder or a writer, not both.');
    const epoch = this.currentEpoch;
    const backupId = randomUUID();
    const takenAtUtc = new Date(this.now()).toISOString();
    const common = { backupId, epoch, serviceName: this.serviceName, partitionId: this.id, partitionInfo: this.info, takenAtUtc };
    let info: BackupInfo;
    if (options.writer) {
      info = await this.streamBackup(option, common, parent, options.writer);
    } else {
      const folder = options.folder ?? join(this.dir, 'backup');
      await recreateDir(folder);
      if (option === 'Full') {
        info = await this.withSnapshot(async (snap) => {
          const copy = await copyFileHashed(snap.file, join(folder, FULL_DATA_FILE), snap.bytes);
          return { ...fullInfo(common, snap.lastLsn, { name: FULL_DATA_FILE, ...copy }), directory: folder };
        });
      } else {
        const base = parent as LastBackup;
        info = await this.withChangeLog(base.lastLsn, async (log) => {
          const target = join(folder, INCREMENTAL_DATA_FILE);
          const hashing = new HashingStream();
          await pipeline(log.source, hashing, createWriteStream(target, { flags: 'wx', mode: PRIVATE_FILE }));
          await fsyncPath(target);
          const file = { name: INCREMENTAL_DATA_FILE, bytes: hashing.bytes, sha256: hashing.hash.digest('hex') };
          return { ...incrementalInfo(common, base, log.lastLsn, log.counts(), file), directory: folder };
        });
      }
      await writeBackupMetadata(folder, info);
      await fsyncPath(folder);
    }

    let accepted: boolean;
    try {
      accepted = (await (options.callback ?? (() => true))(info)) === true;
    } catch (err) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CALLBACK_FAILED', `The backup callback of partition ${this.id} threw: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    if (!accepted) throw new LifeboatError('LIFEBOAT_E_BACKUP_CALLBACK_FAILED', `The backup callback of partition ${this.id} returned false; backup ${backupId} does not count.`);
    // A backup of an older epoch (data loss or restore meanwhile) cannot start a chain here.
    if (this.currentStatus !== 'Closed' && epochsEqual(epoch, this.currentEpoch)) this.recordBackup(info);
    return info;
  }

  /**
   * Hands the backup's files to `writer` while the snapshot they come from is held: the data file
   * (the pinned database file itself, or the change log as it is read), then `backup.metadata`
   * made from the digest the writer computed of it.
   */
  private async streamBackup(option: BackupOption, common: BackupCommon, parent: LastBackup | undefined, writer: BackupWriter): Promise<BackupInfo> {
    let made: Omit<BackupInfo, 'directory'> | undefined;
    const metadata = (name: string, bytes: number | undefined, build: (file: BackupFile) => Omit<BackupInfo, 'directory'>): BackupFileSource => ({
      name: METADATA_FILE,
      content: (before) => {
        const file = before.find((f) => f.name === name);
        if (!file || (bytes !== undefined && file.bytes !== bytes)) {
          throw new LifeboatError('E_FAIL', `The backup writer of partition ${this.id} read ${file ? `${file.bytes} bytes of ${name}, not ${bytes}` : `no ${name}`} before ${METADATA_FILE}.`);
        }
        made = build({ name: file.name, bytes: file.bytes, sha256: file.sha256 });
        return Buffer.from(backupMetadataText(made));
      },
    });
    const written = async (stream: BackupStream): Promise<BackupInfo> => {
      const directory = await writer(stream);
      if (!made) throw new LifeboatError('E_FAIL', `The backup writer of partition ${this.id} did not write ${METADATA_FILE}.`);
      return { ...made, directory };
    };
    const head = { backupId: common.backupId, option, epoch: common.epoch, takenAtUtc: common.takenAtUtc };
    if (option === 'Full') {
      return this.withSnapshot((snap) => written({
        ...head, parentBackupId: common.backupId, backupChainId: common.backupId, firstLsn: 1n, lastLsn: snap.lastLsn,
        files: [
          { name: FULL_DATA_FILE, path: snap.file, bytes: snap.bytes },
          metadata(FULL_DATA_FILE, snap.bytes, (file) => fullInfo(common, snap.lastLsn, file)),
        ],
      }));
    }
    const base = parent as LastBackup;
    return this.withChangeLog(base.lastLsn, (log) => written({
      ...head, parentBackupId: base.backupId, backupChainId: base.backupChainId, firstLsn: base.lastLsn + 1n, lastLsn: log.lastLsn,
      files: [
        { name: INCREMENTAL_DATA_FILE, stream: log.source },
        metadata(INCREMENTAL_DATA_FILE, undefined, (file) => incrementalInfo(common, base, log.lastLsn, log.counts(), file)),
      ],
    }));
  }

  /**
   * Runs `fn` with a consistent snapshot of the database: the first `bytes` bytes of `file`, which
   * do not change until `fn` settles, and the LSN they hold. Writers go on meanwhile (in the WAL).
   */
  private async withSnapshot<T>(fn: (snap: { file: string; bytes: number; lastLsn: bigint }) => Promise<T>): Promise<T> {
    const file = join(this.dir, dataFileName(this.generation));
    // Move every committed page into the database file and empty the WAL. A read transaction
    // begun now reads the file alone, and SQLite's checkpointer cannot write into the file while
    // such a reader lives: the file's pages stay exactly this snapshot while writers go on in the WAL.
    const [ck] = this.store.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: bigint }>;
    if (!ck || ck.busy !== 0n) throw new LifeboatError('FABRIC_E_NOT_READY', `Partition ${this.id} could not checkpoint for a backup; try again.`);
    const reader = openDatabase(file, { readonly: true });
    const db = this.store.db;
    const autocheckpoint = db.pragma('wal_autocheckpoint', { simple: true });
    try {
      reader.exec('BEGIN');
      const snap = new Store(reader);
      const lastLsn = snap.lastLsn();
      const pageSize = reader.pragma('page_size', { simple: true }) as bigint;
      const pageCount = reader.pragma('page_count', { simple: true }) as bigint;
      // Checkpoints cannot succeed while the reader pins the file; without this every commit
      // past the threshold would try one and fail, costing each commit far more than it does.
      db.pragma('wal_autocheckpoint = 0');
      return await fn({ file, bytes: Number(pageSize * pageCount), lastLsn });
    } finally {
      reader.close();
      if (db.open) db.pragma(`wal_autocheckpoint = ${Number(autocheckpoint)}`);
    }
  }

  /**
   * Runs `fn` with the change log after `afterLsn` as a stream (changes.log, changelog-codec.ts),
   * read from one consistent snapshot that is held until `fn` settles; `counts()` is final once
   * the stream has ended.
   */
  private async withChangeLog<T>(afterLsn: bigint, fn: (log: { lastLsn: bigint; source: Readable; counts(): { records: number; logBytes: number } }) => Promise<T>): Promise<T> {
    const reader = openDatabase(join(this.dir, dataFileName(this.generation)), { readonly: true });
    let records: Generator<Buffer> | undefined;
    try {
      reader.exec('BEGIN');
      const snap = new Store(reader);
      const meta = snap.meta();
      if (meta.log_truncated_through > afterLsn) {
        throw new LifeboatError('FABRIC_E_MISSING_FULL_BACKUP', `An incremental backup of partition ${this.id} cannot be taken: the change log after LSN ${afterLsn} was truncated. Take a full backup.`);
      }
      const lastLsn = snap.lastLsn(meta);
      const select = reader.prepare('SELECT lsn, seq, op, dict, key, value FROM changes WHERE lsn > ? ORDER BY lsn, seq');
      let count = 0;
      let logBytes = 0;
      let ended = false;
      records = (function* () {
        const rows = select.iterate(afterLsn) as IterableIterator<{
          lsn: bigint; seq: bigint; op: bigint; dict: bigint; key: string | null; value: string | Buffer | null;
        }>;
        yield encodeHeader();
        let batch: Buffer[] = [];
        let size = 0;
        for (const r of rows) {
          const buf = encodeRecord({ lsn: r.lsn, seq: Number(r.seq), op: Number(r.op) as ChangeOp, dict: Number(r.dict), key: r.key, value: r.value });
          count++;
          logBytes += changeLogBytes(r.key, r.value);
          batch.push(buf);
          size += buf.length;
          if (size >= 256 * 1024) {
            yield Buffer.concat(batch);
            batch = [];
            size = 0;
          }
        }
        batch.push(encodeTrailer(count));
        ended = true;
        yield Buffer.concat(batch);
      })();
      const counts = (): { records: number; logBytes: number } => {
        if (!ended) throw new LifeboatError('E_FAIL', `The change log of partition ${this.id} was not read to its end.`);
        return { records: count, logBytes };
      };
      return await fn({ lastLsn, source: Readable.from(records), counts });
    } finally {
      // A log not read to its end still holds its statement: end it (synchronously) before the connection closes.
      records?.return(undefined);
      reader.close();
    }
  }

  private recordBackup(info: BackupInfo): void {
    const last: LastBackup = { backupId: info.backupId, backupChainId: info.backupChainId, epoch: info.epoch, lastLsn: info.lastLsn, chainLogBytes: info.chainLogBytes };
    this.store.db.prepare(`UPDATE partition_meta SET last_backup_id = ?, last_backup_chain_id = ?, last_backup_dlv = ?, last_backup_cv = ?,
        last_backup_lsn = ?, chain_log_bytes = ? WHERE singleton = 1`)
      .run(last.backupId, last.backupChainId, last.epoch.dataLossVersion, last.epoch.configurationVersion, last.lastLsn, BigInt(last.chainLogBytes));
    this.lastBackup = last;
    this.logBytesSinceBackup = this.store.logBytesAfter(last.lastLsn);
    // Only changes after this backup can be needed by the next incremental.
    this.truncateLog(last.lastLsn);
  }

  // ---- change-log truncation ----------------------------------------------------------------

  /** Whether the next incremental could use the log: otherwise it need not be kept. */
  private logIsUseful(): boolean {
    return incrementalRefusal({
      lastBackup: this.lastBackup,
      currentEpoch: this.currentEpoch,
      logTruncatedThrough: this.logTruncatedThrough,
      logBytesSinceBackup: this.logBytesSinceBackup,
      maxChainLogBytes: this.maxChainLogBytes,
    }) === undefined;
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
    const list = typeof sources === 'string' ? [sources] : [...sources];
    invalidArgUnless(list.length > 0 && list.every((s, i) => (typeof s === 'string' && s.length > 0) || isPromiseLike(s) || (i === 0 && isStreamedFull(s))),
      'Give at least one backup folder to restore from (a streamed full backup only as the first).');
    // A later source may fail while an earlier one is applied: that failure is reported when its turn comes.
    for (const s of list) if (typeof s !== 'string') Promise.resolve(isStreamedFull(s) ? s.metadata : s).catch(() => undefined);
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
    let links: ChainSource;
    let dropped: RestoreResult['dropped'] = [];
    if (sources.every((s): s is string => typeof s === 'string')) {
      const folders = await findBackupFolders(sources);
      const plan = planRestoreChain(await Promise.all(folders.map((f) => readBackupMetadata(f))));
      refuseUnlessSafe(plan.chain[plan.chain.length - 1] as BackupInfo);
      links = { next: async (i) => plan.chain[i], staged: false };
      dropped = plan.dropped.map((d) => ({ backupId: d.backup.backupId, reason: d.reason }));
    } else {
      const first = sources[0];
      links = { next: stagedChain(sources), staged: true, streamedFull: isStreamedFull(first) ? first : undefined };
    }
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
      await this.removeGenerationFiles((g) => g === gen);
      built = await this.buildRestoredGeneration(file, links, epochFor);
      // A staged chain's target is known only now; Safe still decides before the commit.
      if (links.staged) refuseUnlessSafe(built.chain[built.chain.length - 1] as BackupInfo);
      // The commit point: from here the partition is the restored one, even after a crash.
      await this.writeState({ generation: gen, epoch: built.epoch });
    } catch (err) {
      const committed = (await this.readState().catch(() => undefined))?.generation === gen;
      if (!committed) {
        this.currentStatus = previousStatus;
        await this.removeGenerationFiles((g) => g === gen).catch(() => undefined);
        throw err;
      }
    }
    const { chain, epoch: newEpoch } = built as { chain: BackupInfo[]; epoch: Epoch };
    const target = chain[chain.length - 1] as BackupInfo;
    const old = this.store;
    this.generation = gen;
    this.attach(openDatabase(file, { durability: this.durability }));
    old.db.close();
    await this.removeGenerationFiles((g) => g !== gen);
    this.currentStatus = previousStatus === 'Restoring' ? 'Ready' : previousStatus;
    return {
      restoredEpoch: newEpoch,
      restoredLsn: target.lastLsn,
      chain: chain.map((b) => b.backupId),
      dropped,
    };
  }

  /**
   * Writes the restored database into `file`: the full backup's copy, then each incremental
   * replayed, taking the links one by one from `links`; returns the chain and the new epoch.
   */
  private async buildRestoredGeneration(file: string, links: ChainSource, epochFor: (target: BackupInfo) => Epoch): Promise<{ chain: BackupInfo[]; epoch: Epoch }> {
    let full: BackupInfo;
    let copy: CopiedFile;
    if (links.streamedFull) {
      // Written as it arrives; its metadata (known once all of it was read and checked) follows.
      const { data, dataSha256, directWrite } = links.streamedFull;
      const direct = { direct: directWrite ?? true };
      copy = dataSha256 ? { bytes: await writeNewFile(file, data, undefined, direct), sha256: await dataSha256 } : await writeStreamHashed(data, file, direct);
      full = await links.next(0) as BackupInfo;
    } else {
      const info = await links.next(0) as BackupInfo;
      full = info;
      copy = await copyFileHashed(join(info.directory, FULL_DATA_FILE), file).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Full backup ${info.backupId} in ${info.directory} has no ${FULL_DATA_FILE}.`);
        throw err;
      });
    }
    const chain: BackupInfo[] = [full];
    const expected = fileOf(full, FULL_DATA_FILE);
    if (copy.bytes !== expected.bytes || copy.sha256 !== expected.sha256) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Full backup ${full.backupId} in ${full.directory}: ${FULL_DATA_FILE} does not match its checksum.`);
    }
    let db: Database.Database;
    let store: Store;
    try {
      db = openDatabase(file, { durability: this.durability });
      store = new Store(db);
      const lsn = store.lastLsn();
      if (lsn !== full.lastLsn) throw new Error(`it holds LSN ${lsn}, its metadata says ${full.lastLsn}`);
    } catch (err) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Full backup ${full.backupId} in ${full.directory} is not a readable partition database: ${(err as Error).message}.`, { cause: err });
    }
    let epoch: Epoch;
    try {
      for (let i = 1; ; i++) {
        const inc = await links.next(i);
        if (!inc) break;
        chain.push(inc);
        await this.replay(store, inc);
      }
      const target = chain[chain.length - 1] as BackupInfo;
      epoch = epochFor(target);
      db.transaction(() => {
        db.exec('DELETE FROM changes');
        db.prepare(`UPDATE partition_meta SET partition_id = ?, data_loss_version = ?, configuration_version = ?, write_dlv = ?, write_cv = ?,
            base_lsn = ?, log_truncated_through = ?, last_backup_id = NULL, last_backup_chain_id = NULL, last_backup_dlv = NULL,
            last_backup_cv = NULL, last_backup_lsn = NULL, chain_log_bytes = NULL WHERE singleton = 1`)
          .run(this.id, epoch.dataLossVersion, epoch.configurationVersion, epoch.dataLossVersion, epoch.configurationVersion, target.lastLsn, target.lastLsn);
      })();
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
    }
    await fsyncPath(file);
    await fsyncPath(this.dir);
    return { chain, epoch };
  }

  /** Replays one incremental's changes, checking its checksum and LSN range. */
  private async replay(store: Store, inc: BackupInfo): Promise<void> {
    const expected = fileOf(inc, INCREMENTAL_DATA_FILE);
    const path = join(inc.directory, INCREMENTAL_DATA_FILE);
    const hashing = new HashingStream();
    const source = createReadStream(path);
    source.on('error', (err) => hashing.destroy(err));
    const chunks = source.pipe(hashing);
    const apply = store.db.transaction((batch: ChangeRecord[]) => {
      for (const r of batch) store.apply(r);
    });
    try {
      for await (const batch of decodeChangeLog(chunks as AsyncIterable<Buffer>, { file: path, firstLsn: inc.firstLsn, lastLsn: inc.lastLsn })) {
        for (let i = 0; i < batch.length; i += APPLY_BATCH_RECORDS) apply(batch.slice(i, i + APPLY_BATCH_RECORDS));
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Incremental backup ${inc.backupId} in ${inc.directory} has no ${INCREMENTAL_DATA_FILE}.`);
      if (isLifeboatError(err)) throw err;
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Incremental backup ${inc.backupId} in ${inc.directory} cannot be applied: ${(err as Error).message}.`, { cause: err });
    }
    if (hashing.bytes !== expected.bytes || hashing.hash.digest('hex') !== expected.sha256) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Incremental backup ${inc.backupId} in ${inc.directory}: ${INCREMENTAL_DATA_FILE} does not match its checksum.`);
    }
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
    await this.writeState({ generation: this.generation, epoch });
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
    await mkdirPrivate(this.dir);
    const state = await this.readState();
    let generation = state?.generation ?? 1;
    let epoch = state?.epoch ?? INITIAL_EPOCH;
    let lost = existed && state === undefined;
    let db: Database.Database | undefined;
    if (state && !existsSync(join(this.dir, dataFileName(generation)))) lost = true;
    else if (state) {
      const file = join(this.dir, dataFileName(generation));
      try {
        db = openDatabase(file, { durability: this.durability });
        const meta = new Store(db).meta();
        if (!meta || meta.partition_id !== this.id) throw Object.assign(new Error('not this partition\'s database'), { code: 'SQLITE_ERROR' });
      } catch (err) {
        db?.close();
        db = undefined;
        if (!isUnreadableDatabase(err)) throw err;
        lost = true;
        await rename(file, `${file}.damaged-${this.now()}`).catch(() => undefined);
      }
    }
    if (lost) {
      epoch = { dataLossVersion: epoch.dataLossVersion + 1n, configurationVersion: epoch.configurationVersion };
      generation = state ? generation + 1 : 1;
    }
    this.generation = generation;
    await this.removeGenerationFiles((g) => g !== generation || db === undefined);
    if (!db) {
      db = openDatabase(join(this.dir, dataFileName(generation)), { durability: this.durability, create: true });
      initSchema(db, this.id, epoch);
    }
    if (!state || lost) await this.writeState({ generation, epoch });
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

  private async readState(): Promise<StateFile | undefined> {
    const raw = (await readJsonIfExists(join(this.dir, STATE_FILE))) as Record<string, unknown> | undefined;
    if (raw === undefined) return undefined;
    const e = raw.epoch as Record<string, string>;
    return { generation: Number(raw.generation), epoch: { dataLossVersion: BigInt(e.dataLossVersion ?? '1'), configurationVersion: BigInt(e.configurationVersion ?? '1') } };
  }

  private async writeState(s: StateFile): Promise<void> {
    await writeFileAtomic(join(this.dir, STATE_FILE), `${JSON.stringify({
      format: 1,
      partitionId: this.id,
      generation: s.generation,
      epoch: { dataLossVersion: s.epoch.dataLossVersion.toString(), configurationVersion: s.epoch.configurationVersion.toString() },
    })}\n`);
  }

  private async removeGenerationFiles(which: (generation: number) => boolean): Promise<void> {
    for (const name of await readdir(this.dir)) {
      const m = DATA_FILE.exec(name);
      // Temporary files of an atomic write cut off by a crash go too.
      if ((m && which(Number(m[1]))) || /\.tmp-\d+$/.test(name)) await rm(join(this.dir, name), { force: true });
    }
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

/**
 * A host: serves partitions of stateful services and carries out the service's orders. It
 * registers what it serves, asks for orders (long poll), and reports progress. Backup data goes
 * from the host to storage directly; the service only sees orders and reports.
 *
 * Backups are written as `.lbk` version 2 (zstd; encrypted when the host has a keyring), their
 * blocks worked on by one pool of worker threads per host; a backup streams from the partition's
 * pinned snapshot into the upload, with nothing written locally. A restore reads each backup's
 * `.bkmetadata` itself (its wrapped data key, size and SHA-256), streams the full backup into the
 * partition's next generation as it decodes it, and downloads the incrementals meanwhile, handing
 * them over in order as they arrive.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { backupDataKey, metadataKeyOf } from '../core/backup-layout.ts';
import { LifeboatError, isLifeboatError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { DataLossDecision, HostChannel, Order, PartitionState, RegisteredService, Report } from '../core/host-protocol.ts';
import { applicationOf } from '../core/ids.ts';
import { partitionInfoToJson, schemeToJson } from '../core/partitioning.ts';
import type { StorageDescription } from '../core/storage-description.ts';
import { type StoredBackupMetadata, dataObjectCheck, decodeBkMetadata, encodeBkMetadata } from '../format/bkmetadata.ts';
import {
  type ArchiveInput, type ArchiveSink, type ArchiveSummary, type BlockRunner, type Compression, type Keyring, archiveVersion, createBlockPool, decodeFiles, decodeToFolder, defaultWorkers, encodeFiles,
} from '../format/lbk2/index.ts';
import { Handoff, readAll } from '../fs/streams.ts';
import {
  type BackupInfo, type DataLossHandler, type Partition, type RestoreContext, type RestoreResult, type RestoreSource, type StatefulService,
  type StreamedFullBackup, FULL_DATA_FILE, METADATA_FILE, parseBackupMetadata,
} from '../state/index.ts';
import type { BlobStore } from '../storage/port.ts';

/** Backups of a chain downloaded at once during a restore. */
const PARALLEL_DOWNLOADS = 3;

export interface HostOptions {
  readonly id: string;
  readonly channel: HostChannel;
  /** Scratch space for backup folders and downloads. */
  readonly workDir: string;
  readonly openStorage: (d: StorageDescription) => BlobStore;
  readonly now?: () => Date;
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
  private readonly now: () => Date;
  private blocks: BlockRunner | undefined;

  constructor(o: HostOptions) {
    this.id = o.id;
    this.o = o;
    this.now = o.now ?? (() => new Date());
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
    await this.o.channel.register(this.id, { Services: this.registration() });
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
        await this.o.channel.register(this.id, { Services: this.registration() }).catch(() => undefined);
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
        if (isLifeboatError(err) || attempt >= 5) {
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
      if (this.now() > new Date(order.DeadlineUtc)) {
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

  private async backup(order: Extract<Order, { Kind: 'Backup' }>): Promise<void> {
    const { service, partition } = this.partition(order.PartitionId);
    const store = this.o.openStorage(order.Storage);
    const deadline = new Date(order.DeadlineUtc);
    let location = '';
    const option = order.Option ?? 'Full';
    const parentId = option === 'Incremental' ? order.ParentBackupId ?? '' : '';
    const parentLocation = option === 'Incremental' ? order.ParentBackupLocation ?? '' : '';
    let uploaded: { bytes: number; framesSha256: string; encryption?: StoredBackupMetadata['Encryption'] } | undefined;
    const info = await partition.backup({
      option,
      // The replica's files go straight into the archive being uploaded: read once, never copied locally.
      writer: async (b) => {
        // An incremental must continue the backup the service named (an on-demand or direct backup
        // in between moved the replica's chain on): otherwise it is refused, and a full follows (§2.7).
        if (option === 'Incremental' && b.parentBackupId !== parentId) {
          throw new LifeboatError('FABRIC_E_MISSING_FULL_BACKUP',
            `An incremental backup of partition ${partition.id} cannot continue backup ${parentId}: the replica's last backup is another one. Take a full backup.`);
        }
        if (this.now() > deadline) throw new LifeboatError('FABRIC_E_TIMEOUT', 'The request of backup has timed out.');
        // One-second names: a second backup in the same second takes the next free second.
        let at = new Date(b.takenAtUtc);
        for (let tries = 0; ; tries++) {
          location = backupDataKey(service.name, partition.id, at);
          if (!(await store.head(location)) && !(await store.head(metadataKeyOf(location)))) break;
          if (tries > 60) throw new LifeboatError('LIFEBOAT_E_STORAGE_OBJECT_EXISTS', `No free backup name near ${b.takenAtUtc}.`);
          at = new Date(at.getTime() + 1000);
        }
        uploaded = await this.upload(store, location, b.files);
        return `${store.description}/${location}`;
      },
      callback: async (b) => {
        if (!uploaded) return false;
        // Last: the metadata is the commit point of the backup.
        await store.put(metadataKeyOf(location), encodeBkMetadata({
          BackupId: b.backupId, BackupChainId: b.backupChainId, ParentBackupId: parentId, ParentBackupLocation: parentLocation, BackupLocation: location,
          BackupType: option, ApplicationName: applicationOf(service.name), ServiceName: service.name, PartitionId: partition.id,
          PartitionInformation: partition.info,
          EpochOfLastBackupRecord: { DataLossVersion: b.epoch.dataLossVersion.toString(), ConfigurationVersion: b.epoch.configurationVersion.toString() },
          LsnOfLastBackupRecord: b.lastLsn.toString(), FirstLsn: b.firstLsn.toString(), CreationTimeUtc: b.takenAtUtc, ServiceManifestVersion: '1.0.0',
          DataSize: uploaded.bytes, DataFramesSha256: uploaded.framesSha256, ...(uploaded.encryption ? { Encryption: uploaded.encryption } : {}),
        }));
        return true;
      },
    }).catch((err: unknown) => {
      // What the callback met (a storage failure, mostly) is the failure to report, with its own code.
      if (isLifeboatError(err, 'LIFEBOAT_E_BACKUP_CALLBACK_FAILED') && isLifeboatError(err.cause)) throw err.cause;
      throw err;
    });
    await this.send({
      OperationId: order.OperationId, State: 'Success', Partition: stateOf(partition),
      Backup: {
        BackupId: info.backupId, BackupChainId: info.backupChainId, ParentBackupId: parentId, BackupLocation: location, BackupType: option,
        EpochOfLastBackupRecord: { DataLossVersion: info.epoch.dataLossVersion.toString(), ConfigurationVersion: info.epoch.configurationVersion.toString() },
        LsnOfLastBackupRecord: info.lastLsn.toString(), CreationTimeUtc: info.takenAtUtc,
      },
    });
  }

  /** Streams the backup's files to storage as `.lbk` version 2; the encoder gives its size, frames digest and wrapped data key. */
  private async upload(store: BlobStore, key: string, files: readonly ArchiveInput[]): Promise<{ bytes: number; framesSha256: string; encryption?: StoredBackupMetadata['Encryption'] }> {
    const encoded = await encodeFiles(files, {
      workers: this.pool(), compression: this.o.compression ?? 'zstd', ...(this.o.keyring ? { keyring: this.o.keyring } : {}), ...(this.o.directIo === undefined ? {} : { directRead: this.o.directIo }),
    });
    try {
      // A read error ends the stream with it, so the put fails too (and says why, after its clean-up).
      await store.put(key, encoded.stream);
    } catch (err) {
      encoded.stream.destroy();
      throw err;
    }
    const r = await encoded.result;
    // directBytes: whether reading past the page cache is in effect here (0 where refused or off).
    this.o.log?.info({ object: key, plainBytes: r.plainBytes, storedBytes: r.bytes, directBytes: r.directBytes }, 'backup data uploaded');
    return { bytes: r.bytes, framesSha256: r.framesSha256, ...(r.encryption ? { encryption: r.encryption } : {}) };
  }

  /**
   * Downloads one backup of a chain into `folder`: its `.bkmetadata` (for the wrapped data key,
   * size and SHA-256), then its data, decoded (version 1 or 2) and checked block by block and
   * against the metadata. Any damage is LIFEBOAT_E_BACKUP_CORRUPT naming the object and where.
   */
  private async download(store: BlobStore, location: string, folder: string, signal: AbortSignal): Promise<string> {
    const where = `${store.description}/${location}`;
    const meta = await this.storedMetadata(store, location);
    if (signal.aborted) throw new LifeboatError('E_ABORT', 'The restore ended before this backup was downloaded.');
    const source = await store.get(location);
    const stop = (): void => { source.destroy(new LifeboatError('E_ABORT', 'The restore ended before this backup was downloaded.')); };
    signal.addEventListener('abort', stop, { once: true });
    // The whole object is read (the decoder checks nothing follows the end), then compared with the metadata.
    const check = dataObjectCheck(meta, source);
    let summary: ArchiveSummary;
    try {
      await mkdir(folder);
      summary = await decodeToFolder(check.stream, folder, where, { encryption: meta.Encryption, keyring: this.o.keyring, workers: this.pool() });
    } finally {
      signal.removeEventListener('abort', stop);
      source.destroy(); // read to the end already, unless the decoder stopped early
    }
    this.checkObject(check.mismatch(summary), store, location);
    return folder;
  }

  /** The backup's `.bkmetadata`, checked to be readable with this host's keys. */
  private async storedMetadata(store: BlobStore, location: string): Promise<StoredBackupMetadata> {
    const metaKey = metadataKeyOf(location);
    const meta = decodeBkMetadata(await readAll(await store.get(metaKey)), `${store.description}/${metaKey}`);
    if (meta.Encryption && !this.o.keyring) {
      throw new LifeboatError('LIFEBOAT_E_ENCRYPTION_KEY_MISSING',
        `Backup data ${store.description}/${location} is encrypted with key '${meta.Encryption.KeyId}', and host ${this.id} has no encryption keyring (--encryption-keys).`);
    }
    return meta;
  }

  /**
   * The chain's full backup, for the partition to write straight into its new generation as it is
   * downloaded and decoded. Resolves once what can be checked cheaply was (its `.bkmetadata`, the
   * key, the object's size and format), before the partition is touched; every block, the files' digests
   * and the object's SHA-256 are checked as it streams, and its `metadata` resolves only after all
   * of them. A version 1 archive is downloaded into `folder` instead (resolves to the folder).
   */
  private async openFullBackup(store: BlobStore, location: string, folder: string, signal: AbortSignal): Promise<string | StreamedFullBackup> {
    const meta = await this.storedMetadata(store, location);
    const where = `${store.description}/${location}`;
    const object = await store.head(location);
    if (!object) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is missing; its metadata is there.`);
    if (object.size !== meta.DataSize) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is damaged: it is ${object.size} bytes, its metadata records ${meta.DataSize}.`);
    }
    const version = archiveVersion(await readAll(await store.get(location, { start: 0, end: Math.min(5, object.size) })));
    if (version !== 2) return this.download(store, location, folder, signal);

    const data = new Handoff();
    // The decoder hashes data.sqlite to check it against the archive's trailer: the partition takes that digest.
    let digested!: { resolve: (sha256: string) => void; reject: (err: unknown) => void };
    const dataSha256 = new Promise<string>((resolve, reject) => { digested = { resolve, reject }; });
    dataSha256.catch(() => undefined);
    const aborted = (): LifeboatError => new LifeboatError('E_ABORT', 'The restore ended before this backup was downloaded.');
    const metadata = (async (): Promise<BackupInfo> => {
      if (signal.aborted) throw aborted();
      const source = await store.get(location);
      const stop = (): void => {
        source.destroy(aborted());
        data.fail(aborted());
      };
      signal.addEventListener('abort', stop, { once: true });
      const check = dataObjectCheck(meta, source);
      const metadataText: Buffer[] = [];
      const seen = new Set<string>();
      let current: string | undefined;
      const sink: ArchiveSink = {
        open: async (name) => {
          if (name !== FULL_DATA_FILE && name !== METADATA_FILE) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} holds ${name}: it is not a full backup.`);
          current = name;
          seen.add(name);
        },
        // The decoder reuses its buffers: the data goes to the partition one chunk at a time, the metadata is copied.
        write: (chunk) => (current === FULL_DATA_FILE ? data.push(chunk) : (metadataText.push(Buffer.from(chunk)), Promise.resolve())),
        close: async (file) => {
          if (current === FULL_DATA_FILE) {
            digested.resolve(file.sha256);
            data.end();
          }
          current = undefined;
        },
      };
      try {
        const summary = await decodeFiles(check.stream, where, sink, { encryption: meta.Encryption, keyring: this.o.keyring, workers: this.pool() });
        this.checkObject(check.mismatch(summary), store, location);
        for (const name of [FULL_DATA_FILE, METADATA_FILE]) {
          if (!seen.has(name)) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} has no ${name}: it is not a full backup.`);
        }
        return parseBackupMetadata(Buffer.concat(metadataText).toString('utf8'), where);
      } catch (err) {
        data.fail(err);
        digested.reject(err);
        throw err;
      } finally {
        data.end();
        signal.removeEventListener('abort', stop);
        source.destroy(); // read to the end already, unless the decoder stopped early
      }
    })();
    metadata.catch(() => undefined); // the partition reads it in its turn (or the first failure ends the restore)
    const streamed: StreamedFullBackup = { data, dataSha256, metadata, ...(this.o.directIo === undefined ? {} : { directWrite: this.o.directIo }) };
    return streamed;
  }

  /** Fails with what does not match between the data object as read and its `.bkmetadata` (dataObjectCheck). */
  private checkObject(mismatch: string | undefined, store: BlobStore, location: string): void {
    if (mismatch !== undefined) {
      throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${store.description}/${location} is damaged: ${mismatch}; the metadata is ${store.description}/${metadataKeyOf(location)}.`);
    }
  }

  /**
   * Starts reading the chain: the full backup streamed (openFullBackup), the incrementals
   * downloaded into folders, PARALLEL_DOWNLOADS at a time, in chain order; one promise per backup.
   */
  private downloadChain(store: BlobStore, chain: readonly string[], scratch: string, signal: AbortSignal): { full: Promise<string | StreamedFullBackup>; incrementals: Array<Promise<string>> } {
    let free = PARALLEL_DOWNLOADS - 1; // one reads the full backup
    const queue: Array<() => void> = [];
    const slot = (): Promise<void> => (free > 0 ? (free--, Promise.resolve()) : new Promise((resolve) => queue.push(resolve)));
    const release = (): void => {
      const next = queue.shift();
      if (next) next();
      else free++;
    };
    const folder = (i: number): string => join(scratch, `${i}-${randomUUID()}`);
    const full = this.openFullBackup(store, chain[0] as string, folder(0), signal);
    const incrementals = chain.slice(1).map(async (location, i): Promise<string> => {
      await slot();
      try {
        return await this.download(store, location, folder(i + 1), signal);
      } finally {
        release();
      }
    });
    for (const d of [full, ...incrementals]) d.catch(() => undefined); // each is read in its turn (or the first failure ends the restore)
    return { full, incrementals };
  }

  private async restore(order: Extract<Order, { Kind: 'Restore' }>, scratch: string): Promise<void> {
    const { partition } = this.partition(order.PartitionId);
    const store = this.o.openStorage(order.Storage);
    const ended = new AbortController();
    let result: RestoreResult | undefined;
    const { full, incrementals } = this.downloadChain(store, order.Chain, scratch, ended.signal);
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
    await this.send({
      OperationId: order.OperationId, State: 'Success', Partition: stateOf(partition),
      Restored: { Epoch: { DataLossVersion: r.restoredEpoch.dataLossVersion.toString(), ConfigurationVersion: r.restoredEpoch.configurationVersion.toString() }, Lsn: r.restoredLsn.toString() },
    });
  }
}

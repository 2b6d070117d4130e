/**
 * A stateful service: a name like `fabric:/App/Service`, a partitioning scheme, and one
 * `Partition` per partition, each with a stable GUID kept in the data directory.
 *
 * On disk (`dataDir`):
 *   service.json               name, scheme, partition ids — written once, when the service is
 *                              created (after its partitions), and checked on every open
 *   partitions/<partitionId>/  one partition (see partition.ts)
 */
import { randomUUID } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { parseServiceName } from '../core/names.ts';
import {
  type PartitionInfo, type PartitionKey, type PartitionScheme, partitionIndexForKey, partitionInfoFromJson, partitionInfoToJson,
  partitionsOfScheme, samePartitionInfo, sameScheme, schemeFromJson, schemeToJson,
} from '../core/partitioning.ts';
import { mkdirPrivate, readJsonIfExists, writeFileAtomic } from './files.ts';
import { type DataLossHandler, Partition, type PartitionOpenOptions } from './partition.ts';
import type { Durability } from './store.ts';

const MANIFEST = 'service.json';

export interface ServiceOptions {
  /** `fabric:/App/Service`. */
  readonly name: string;
  readonly partitioning: PartitionScheme;
  readonly dataDir: string;
  /** `full` (default) fsyncs every commit; `normal` survives a process crash but not a power loss. */
  readonly durability?: Durability;
  /** Refuse incrementals once the chain's change log would reach this many bytes (default 800 MiB). */
  readonly maxChainLogBytes?: number;
  /** Runs when a partition's data is lost, before it accepts writes; may restore. */
  readonly onDataLoss?: DataLossHandler;
  /**
   * Data loss found at open is handled later, by `handlePendingDataLoss()`, instead of before open
   * returns: a handler that waits for a restore needs the rest of the process up (Lifeboat's host).
   * The partitions concerned refuse writes until then.
   */
  readonly deferDataLoss?: boolean;
  /** What backups are dated by (default the system's clock). */
  readonly clock?: Clock;
}

interface Manifest {
  name: string;
  scheme: PartitionScheme;
  partitions: Array<{ id: string; info: PartitionInfo }>;
}

export class StatefulService {
  readonly name: string;
  readonly scheme: PartitionScheme;
  readonly dataDir: string;
  private readonly byId: Map<string, Partition>;
  private closed = false;

  private constructor(name: string, scheme: PartitionScheme, dataDir: string, partitions: Partition[]) {
    this.name = name;
    this.scheme = scheme;
    this.dataDir = dataDir;
    this.partitionList = partitions;
    this.byId = new Map(partitions.map((p) => [p.id, p]));
  }

  /** Runs the data-loss handler of every partition whose data loss is pending, concurrently. */
  async handlePendingDataLoss(): Promise<void> {
    const results = await Promise.allSettled(this.partitionList.map((p) => p.handlePendingDataLoss()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Partitions in scheme order. */
  readonly partitionList: readonly Partition[];

  /**
   * Opens the service in `dataDir`, creating it when the directory holds none. Refuses a
   * directory holding another service or partitioning (LIFEBOAT_E_DATA_DIR_MISMATCH). Partitions
   * whose data was lost get a new DataLossVersion and their `onDataLoss` handler runs before
   * this resolves.
   */
  static async open(o: ServiceOptions): Promise<StatefulService> {
    parseServiceName(o.name);
    const infos = partitionsOfScheme(o.partitioning);
    invalidArgUnless(typeof o.dataDir === 'string' && o.dataDir.length > 0, 'dataDir must be a path.');
    await mkdirPrivate(join(o.dataDir, 'partitions'));
    const manifest = await readManifest(o.dataDir);
    let existed = true;
    let entries: Manifest['partitions'];
    if (manifest) {
      if (manifest.name !== o.name || !sameScheme(manifest.scheme, o.partitioning)) {
        throw new LifeboatError('LIFEBOAT_E_DATA_DIR_MISMATCH',
          `${o.dataDir} holds service ${manifest.name} (${JSON.stringify(schemeToJson(manifest.scheme))}), not ${o.name} (${JSON.stringify(schemeToJson(o.partitioning))}).`);
      }
      entries = manifest.partitions;
      if (entries.length !== infos.length || entries.some((e, i) => !samePartitionInfo(e.info, infos[i] as PartitionInfo))) {
        throw new LifeboatError('LIFEBOAT_E_DATA_DIR_MISMATCH', `${MANIFEST} in ${o.dataDir} does not match the partitioning.`);
      }
    } else {
      // A service being created: anything left from an unfinished creation is discarded.
      existed = false;
      await rm(join(o.dataDir, 'partitions'), { recursive: true, force: true });
      await mkdirPrivate(join(o.dataDir, 'partitions'));
      entries = infos.map((info) => ({ id: randomUUID(), info }));
    }
    const partitions: Partition[] = [];
    try {
      for (const e of entries) {
        const opts: PartitionOpenOptions = {
          serviceName: o.name, id: e.id, info: e.info, dir: join(o.dataDir, 'partitions', e.id), existed,
          ...(o.durability ? { durability: o.durability } : {}),
          ...(o.maxChainLogBytes !== undefined ? { maxChainLogBytes: o.maxChainLogBytes } : {}),
          ...(o.onDataLoss ? { onDataLoss: o.onDataLoss } : {}),
          ...(o.clock ? { clock: o.clock } : {}),
        };
        partitions.push(await Partition.open(opts));
      }
      if (!manifest) await writeManifest(o.dataDir, { name: o.name, scheme: o.partitioning, partitions: entries });
      const service = new StatefulService(o.name, o.partitioning, o.dataDir, partitions);
      if (!o.deferDataLoss) for (const p of partitions) await p.handlePendingDataLoss();
      await service.removeUnknownPartitionDirs();
      return service;
    } catch (err) {
      await Promise.allSettled(partitions.map((p) => p.close()));
      throw err;
    }
  }

  partition(id: string): Partition {
    this.assertOpen();
    const p = this.byId.get(id);
    if (!p) throw new LifeboatError('FABRIC_E_PARTITION_NOT_FOUND', `Service ${this.name} has no partition ${id}.`);
    return p;
  }

  /** The partition serving `key`: Int64 keys by range, strings hashed into the range, Named by name. */
  partitionForKey(key: PartitionKey): Partition {
    this.assertOpen();
    const infos = this.partitionList.map((p) => p.info);
    return this.partitionList[partitionIndexForKey(this.scheme, infos, key)] as Partition;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.partitionList.map((p) => p.close()));
  }

  private assertOpen(): void {
    if (this.closed) throw new LifeboatError('FABRIC_E_OBJECT_CLOSED', `Service ${this.name} is closed.`);
  }

  private async removeUnknownPartitionDirs(): Promise<void> {
    for (const name of await readdir(join(this.dataDir, 'partitions'))) {
      if (!this.byId.has(name)) await rm(join(this.dataDir, 'partitions', name), { recursive: true, force: true });
    }
  }
}

async function readManifest(dataDir: string): Promise<Manifest | undefined> {
  const raw = (await readJsonIfExists(join(dataDir, MANIFEST))) as Record<string, unknown> | undefined;
  if (raw === undefined) return undefined;
  try {
    return {
      name: String(raw.name),
      scheme: schemeFromJson(raw.scheme),
      partitions: (raw.partitions as Array<Record<string, unknown>>).map((p) => ({ id: String(p.id), info: partitionInfoFromJson(p.info) })),
    };
  } catch (err) {
    throw new LifeboatError('LIFEBOAT_E_DATA_DIR_MISMATCH', `${MANIFEST} in ${dataDir} is not readable: ${(err as Error).message}`, { cause: err });
  }
}

async function writeManifest(dataDir: string, m: Manifest): Promise<void> {
  await writeFileAtomic(join(dataDir, MANIFEST), `${JSON.stringify({
    format: 1,
    name: m.name,
    scheme: schemeToJson(m.scheme),
    partitions: m.partitions.map((p) => ({ id: p.id, info: partitionInfoToJson(p.info) })),
  }, null, 2)}\n`);
}

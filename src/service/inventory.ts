/**
 * What the catalog holds, counted: each partition of a stateful service with its protection and
 * its newest backup, the operations under way, the backup index's size. The metrics read it at
 * scrape time (src/api/metrics.ts), so the figures are right after a restart and the same from
 * every service instance over one catalog. No secret is in it.
 *
 * Cost per read: the protection state, the services and their partitions, the active operations,
 * and the backup index whole (one row per backup) — the newest backup of each partition comes
 * from it. A catalog with a grouped query for that (newest per partition, a count) would make
 * the read cheaper; the figures would not change.
 */
import { applicationOf } from '../core/ids.ts';
import type { OperationKind, OperationState } from '../core/operation.ts';
import { periodicBackupPolicy } from '../core/protection.ts';
import type { ServicePorts } from './ports.ts';

/** protected: an effective policy applies and is not suspended; suspended: one applies, suspended; unprotected: none applies. */
export type PartitionProtection = 'protected' | 'unprotected' | 'suspended';

export interface InventorySnapshot {
  /** Partitions of services with persisted state (those Lifeboat can back up), by service then scheme order. */
  readonly partitions: ReadonlyArray<{
    readonly serviceName: string;
    readonly partitionId: string;
    readonly protection: PartitionProtection;
    /** CreationTimeUtc of its newest backup in the index; absent when it has none. */
    readonly lastBackupUtc?: string;
  }>;
  /** Operations under way (Accepted or in progress). */
  readonly activeOperations: ReadonlyArray<{ readonly kind: OperationKind; readonly state: OperationState; readonly autoRestore: boolean }>;
  /** Rows of the backup index. */
  readonly backupsIndexed: number;
}

/** An id no operation has: reading it checks the catalog answers, and reads one index entry at most. */
const PROBE_ID = '00000000-0000-0000-0000-000000000000';

export class Inventory {
  constructor(private readonly p: ServicePorts) {}

  /** Throws when the catalog does not answer (readiness: /readyz). */
  async probe(): Promise<void> {
    await this.p.catalog.operations.get(PROBE_ID);
  }

  async snapshot(): Promise<InventorySnapshot> {
    const { catalog } = this.p;
    const protection = await catalog.policies.getProtection();
    // The newest backup of each partition, worked out by the catalog: a scrape never reads the whole index.
    const newest = new Map((await catalog.backups.page({}, { limit: 0, latest: true })).map((b) => [b.partitionId, b.creationTimeUtc]));
    const partitions: Array<InventorySnapshot['partitions'][number]> = [];
    for (const svc of await catalog.hierarchy.listServices()) {
      if (!svc.hasPersistedState) continue;
      for (const p of await catalog.hierarchy.listPartitions(svc.name)) {
        const run = periodicBackupPolicy(protection, { applicationName: applicationOf(svc.name), serviceName: svc.name, partitionId: p.id });
        const last = newest.get(p.id);
        partitions.push({
          serviceName: svc.name, partitionId: p.id, protection: run.run ? 'protected' : run.why === 'Suspended' ? 'suspended' : 'unprotected',
          ...(last !== undefined ? { lastBackupUtc: last } : {}),
        });
      }
    }
    const activeOperations = (await catalog.operations.active()).map((o) => ({ kind: o.kind, state: o.state, autoRestore: o.request.auto === true }));
    return { partitions, activeOperations, backupsIndexed: await catalog.backups.count() };
  }
}

/**
 * Listing backups: as the backup index knows them (Get{Application,Service,Partition}BackupList)
 * and as a storage holds them, read from its metadata objects (GetBackupsFromBackupLocation).
 */
import type { StoredBackupScope } from '../core/backup-layout.ts';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { parseServiceName } from '../core/names.ts';
import { parseStorageDescription } from '../core/storage-description.ts';
import type { BackupFilter, BackupKey, BackupRecord } from '../catalog/port.ts';
import type { StoredBackupMetadata } from '../format/bkmetadata.ts';
import type { Hierarchy } from './hierarchy.ts';
import type { ServicePorts } from './ports.ts';
import type { BackupScope } from './protection.ts';
import { type BackupInfoWire, partitionInformationWire, wireTime } from '../wire/index.ts';

export interface ListFilter {
  readonly latest: boolean;
  readonly start?: Date;
  readonly end?: Date;
}

export type { BackupKey } from '../catalog/port.ts';

/** One page of backups from the index, and the key to go on after (undefined: the last page). */
export interface BackupPage {
  readonly items: BackupInfoWire[];
  readonly next: BackupKey | undefined;
}

export class BackupListing {
  constructor(private readonly p: ServicePorts, private readonly hierarchy: Hierarchy) {}

  /**
   * Backups recorded for an application, service or partition, filtered by time and Latest, in
   * the index's order: at most `maxResults` (0: all) after `after`. The index pages by key, so a
   * page costs the same however many backups come before it.
   */
  async pageBackups(scope: BackupScope, f: ListFilter, paging: { after?: BackupKey | undefined; maxResults: number }): Promise<BackupPage> {
    const filter: BackupFilter = {
      ...(f.start ? { startUtc: f.start.toISOString() } : {}),
      ...(f.end ? { endUtc: f.end.toISOString() } : {}),
    };
    let scoped: BackupFilter;
    if (scope.kind === 'Application') {
      await this.hierarchy.getApplication(scope.name);
      scoped = { applicationName: scope.name, ...filter };
    } else if (scope.kind === 'Service') {
      await this.hierarchy.getService(scope.name);
      scoped = { serviceName: scope.name, ...filter };
    } else {
      // With its service: the index in the listing's order then serves the page, no sort.
      const partition = await this.hierarchy.getPartition(scope.id);
      scoped = { serviceName: partition.serviceName, partitionId: scope.id, ...filter };
    }
    // One more than asked for: whether another page follows.
    const rows = await this.p.catalog.backups.page(scoped, { after: paging.after, limit: paging.maxResults > 0 ? paging.maxResults + 1 : 0, latest: f.latest });
    const more = paging.maxResults > 0 && rows.length > paging.maxResults;
    const kept = more ? rows.slice(0, paging.maxResults) : rows;
    const last = kept[kept.length - 1];
    return { items: kept.map(backupToWire), next: more && last ? [last.serviceName, last.partitionId, last.creationTimeUtc, last.backupId] : undefined };
  }

  /** Backups found in a storage by reading its metadata objects (GetBackupsFromBackupLocation). */
  async backupsInStorage(storageValue: unknown, entity: unknown, f: ListFilter): Promise<BackupInfoWire[]> {
    invalidArgUnless(storageValue !== undefined && storageValue !== null, 'Storage is required.');
    const repo = this.p.repositoryFor(parseStorageDescription(storageValue));
    invalidArgUnless(entity !== null && typeof entity === 'object', 'BackupEntity is required.');
    const e = entity as Record<string, unknown>;
    let scope: StoredBackupScope;
    if (e.EntityKind === 'Application') {
      invalidArgUnless(typeof e.ApplicationName === 'string', 'ApplicationName is required for EntityKind Application.');
      const app = e.ApplicationName.startsWith('fabric:/') ? e.ApplicationName : `fabric:/${e.ApplicationName}`;
      invalidArgUnless(/^fabric:\/[^/]+$/.test(app), `ApplicationName '${e.ApplicationName}' is not an application name.`);
      scope = { kind: 'Application', applicationName: app };
    } else if (e.EntityKind === 'Service' || e.EntityKind === 'Partition') {
      invalidArgUnless(typeof e.ServiceName === 'string', `ServiceName is required for EntityKind ${e.EntityKind}.`);
      const name = parseServiceName(e.ServiceName.startsWith('fabric:/') ? e.ServiceName : `fabric:/${e.ServiceName}`);
      if (e.EntityKind === 'Partition') {
        invalidArgUnless(typeof e.PartitionId === 'string' && /^[0-9a-f-]{36}$/i.test(e.PartitionId), 'PartitionId must be a GUID.');
        scope = { kind: 'Partition', serviceName: name.uri, partitionId: e.PartitionId.toLowerCase() };
      } else {
        scope = { kind: 'Service', serviceName: name.uri };
      }
    } else {
      throw new LifeboatError('E_INVALIDARG', `Invalid EntityKind ${JSON.stringify(e.EntityKind)}: use Application, Service or Partition.`);
    }
    const items: BackupInfoWire[] = [];
    const stored = await repo.list(scope, (key, err) => this.p.log.warn({ key, err: String(err) }, 'skipping unreadable backup metadata'));
    for (const { metadata: m } of stored) {
      const created = new Date(m.CreationTimeUtc);
      if (f.start && created < f.start) continue;
      if (f.end && created > f.end) continue;
      items.push(metadataToWire(m));
    }
    items.sort((a, b) => (a.ServiceName + (a.PartitionInformation.Id ?? '') + a.CreationTimeUtc).localeCompare(b.ServiceName + (b.PartitionInformation.Id ?? '') + b.CreationTimeUtc));
    return f.latest ? newestPerPartition(items) : items;
  }
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

/** Listing backups: of a partition, a service or an application (from the index), of a storage, and retention's plan. */
import type { StorageDescription } from '../core/storage-description.ts';
import type { BackupInfoWire, RetentionPlanWire } from '../wire/backups.ts';
import type { Page, PageQuery } from '../wire/paging.ts';
import type { BackupEntityWire } from '../wire/protection.ts';
import { ROUTES, pathOf } from '../wire/routes.ts';
import { type Caller, type Query, dateQuery, pageQuery } from './caller.ts';

export interface ListBackupsOptions extends PageQuery {
  /** Only the newest backup of each partition (within the time range). */
  readonly latest?: boolean;
  /** Backups created at or after this time (a string is sent as is). */
  readonly start?: Date | string;
  /** Backups created at or before this time. */
  readonly end?: Date | string;
}

function listQuery(o: ListBackupsOptions): Query {
  return { Latest: o.latest, StartDateTimeFilter: dateQuery(o.start), EndDateTimeFilter: dateQuery(o.end), ...pageQuery(o) };
}

export class ListingClient {
  constructor(private readonly c: Caller) {}

  partitionBackups(partitionId: string, o: ListBackupsOptions = {}): Promise<Page<BackupInfoWire>> {
    return this.c.call('GET', pathOf(ROUTES.partitionBackups, { partitionId }), { version: 'backup', query: listQuery(o) });
  }

  serviceBackups(serviceId: string, o: ListBackupsOptions = {}): Promise<Page<BackupInfoWire>> {
    return this.c.call('GET', pathOf(ROUTES.serviceBackups, { serviceId }), { version: 'backup', query: listQuery(o) });
  }

  applicationBackups(applicationId: string, o: ListBackupsOptions = {}): Promise<Page<BackupInfoWire>> {
    return this.c.call('GET', pathOf(ROUTES.applicationBackups, { applicationId }), { version: 'backup', query: listQuery(o) });
  }

  /** GetBackupsFromBackupLocation: the backups of `entity` a storage holds, read from the storage itself. */
  backupsInStorage(storage: StorageDescription, entity: BackupEntityWire, o: ListBackupsOptions = {}): Promise<Page<BackupInfoWire>> {
    const start = dateQuery(o.start);
    const end = dateQuery(o.end);
    return this.c.call('POST', ROUTES.backupsInStorage, {
      version: 'backup', query: pageQuery(o),
      body: {
        Storage: storage, BackupEntity: entity, ...(o.latest !== undefined ? { Latest: o.latest } : {}),
        ...(start !== undefined ? { StartDateTimeFilter: start } : {}), ...(end !== undefined ? { EndDateTimeFilter: end } : {}),
      },
    });
  }

  /** GetRetentionPlan (Lifeboat's): what retention would keep and delete now, and why. */
  retentionPlan(partitionId: string): Promise<RetentionPlanWire> {
    return this.c.call('GET', pathOf(ROUTES.retentionPlan, { partitionId }), { version: 'backup' });
  }
}

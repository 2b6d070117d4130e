/** The hierarchy queries: applications, services, partitions and partition health. */
import type { PartitionHealthWire } from '../wire/health.ts';
import type { ApplicationWire, PartitionWire, ServiceWire } from '../wire/hierarchy.ts';
import type { Page, PageQuery } from '../wire/paging.ts';
import { ROUTES, pathOf } from '../wire/routes.ts';
import { type Caller, pageQuery } from './caller.ts';

export class HierarchyClient {
  constructor(private readonly c: Caller) {}

  listApplications(page?: PageQuery): Promise<Page<ApplicationWire>> {
    return this.c.call('GET', ROUTES.applications, { version: 'query', query: pageQuery(page) });
  }

  /** `applicationId`: the name without `fabric:/`, `/` written `~` (core/ids.ts nameToId). */
  getApplication(applicationId: string): Promise<ApplicationWire> {
    return this.c.call('GET', pathOf(ROUTES.application, { applicationId }), { version: 'query' });
  }

  listServices(applicationId: string, page?: PageQuery): Promise<Page<ServiceWire>> {
    return this.c.call('GET', pathOf(ROUTES.services, { applicationId }), { version: 'query', query: pageQuery(page) });
  }

  listPartitions(serviceId: string, page?: PageQuery): Promise<Page<PartitionWire>> {
    return this.c.call('GET', pathOf(ROUTES.partitions, { serviceId }), { version: 'query', query: pageQuery(page) });
  }

  getPartition(partitionId: string): Promise<PartitionWire> {
    return this.c.call('GET', pathOf(ROUTES.partition, { partitionId }), { version: 'query' });
  }

  /** GetPartitionHealth; `eventsHealthStateFilter` is Service Fabric's mask (0: all events). */
  partitionHealth(partitionId: string, o: { readonly eventsHealthStateFilter?: number } = {}): Promise<PartitionHealthWire> {
    return this.c.call('GET', pathOf(ROUTES.partitionHealth, { partitionId }), { version: 'query', query: { EventsHealthStateFilter: o.eventsHealthStateFilter } });
  }
}

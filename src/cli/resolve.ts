/**
 * Entity names (entities.ts) resolved against a running service, through the typed client: the
 * application, service or partition they name, with the names and ids the REST routes take.
 */
import { type LifeboatClient, allPages } from '../client/lifeboat-client.ts';
import { LifeboatError } from '../core/errors.ts';
import { nameToId } from '../core/ids.ts';
import type { ApplicationWire, PartitionWire, ServiceWire } from '../wire/hierarchy.ts';
import { type EntityName, parseEntityName, partitionForKey } from './entities.ts';

export interface ResolvedPartition {
  readonly kind: 'Partition';
  readonly partitionId: string;
  readonly serviceName: string;
  readonly applicationName: string;
  readonly partition: PartitionWire;
}
export interface ResolvedService {
  readonly kind: 'Service';
  readonly serviceName: string;
  readonly applicationName: string;
  readonly service: ServiceWire;
}
export interface ResolvedApplication {
  readonly kind: 'Application';
  readonly applicationName: string;
  readonly application: ApplicationWire;
}
export type ResolvedEntity = ResolvedApplication | ResolvedService | ResolvedPartition;

export interface ServiceTree {
  readonly service: ServiceWire;
  readonly partitions: PartitionWire[];
}
export interface ApplicationTree {
  readonly application: ApplicationWire;
  readonly services: ServiceTree[];
}

export const applicationsOf = (lb: LifeboatClient): Promise<ApplicationWire[]> => allPages((t) => lb.hierarchy.listApplications(t ? { continuationToken: t } : {}));
export const servicesOf = (lb: LifeboatClient, applicationName: string): Promise<ServiceWire[]> =>
  allPages((t) => lb.hierarchy.listServices(nameToId(applicationName), t ? { continuationToken: t } : {}));
export const partitionsOf = (lb: LifeboatClient, serviceName: string): Promise<PartitionWire[]> =>
  allPages((t) => lb.hierarchy.listPartitions(nameToId(serviceName), t ? { continuationToken: t } : {}));

/** The hierarchy (or the part of it under `only`), applications, their services, their partitions. */
export async function hierarchyOf(lb: LifeboatClient, only?: ResolvedEntity): Promise<ApplicationTree[]> {
  const apps = only ? [only.kind === 'Application' ? only.application : await lb.hierarchy.getApplication(nameToId(only.applicationName))] : await applicationsOf(lb);
  const trees: ApplicationTree[] = [];
  for (const application of apps) {
    const services = only && only.kind !== 'Application'
      ? [only.kind === 'Service' ? only.service : (await servicesOf(lb, application.Name)).find((s) => s.Name === only.serviceName)!]
      : await servicesOf(lb, application.Name);
    const serviceTrees: ServiceTree[] = [];
    for (const service of services) {
      const partitions = only?.kind === 'Partition' ? [only.partition] : await partitionsOf(lb, service.Name);
      serviceTrees.push({ service, partitions });
    }
    trees.push({ application, services: serviceTrees });
  }
  return trees;
}

async function findPartition(lb: LifeboatClient, partitionId: string): Promise<ResolvedPartition> {
  // GET /Partitions/{id} checks it exists (404 otherwise); the walk finds its service.
  await lb.hierarchy.getPartition(partitionId);
  for (const tree of await hierarchyOf(lb)) {
    for (const s of tree.services) {
      const partition = s.partitions.find((p) => p.PartitionInformation.Id.toLowerCase() === partitionId);
      if (partition) return { kind: 'Partition', partitionId: partition.PartitionInformation.Id, serviceName: s.service.Name, applicationName: tree.application.Name, partition };
    }
  }
  throw new LifeboatError('FABRIC_E_PARTITION_NOT_FOUND', `No partition ${partitionId} is known to the service.`, { details: { status: 404 } });
}

/** What `name` names on the service; the service's 404 (a LifeboatError) when it has no such entity. */
export async function resolveEntity(lb: LifeboatClient, name: EntityName): Promise<ResolvedEntity> {
  switch (name.kind) {
    case 'Application':
      return { kind: 'Application', applicationName: name.applicationName, application: await lb.hierarchy.getApplication(nameToId(name.applicationName)) };
    case 'Service': {
      const applicationName = `fabric:/${name.serviceName.slice('fabric:/'.length).split('/')[0] ?? ''}`;
      const service = (await servicesOf(lb, applicationName)).find((s) => s.Name === name.serviceName);
      if (!service) throw new LifeboatError('FABRIC_E_SERVICE_DOES_NOT_EXIST', `The application ${applicationName} has no service ${name.serviceName}.`, { details: { status: 404 } });
      return { kind: 'Service', serviceName: name.serviceName, applicationName, service };
    }
    case 'PartitionByKey': {
      const service = await resolveEntity(lb, { kind: 'Service', serviceName: name.serviceName }) as ResolvedService;
      const partitions = await partitionsOf(lb, name.serviceName);
      const partition = partitions[partitionForKey(partitions.map((p) => p.PartitionInformation), name.key)]!;
      return { kind: 'Partition', partitionId: partition.PartitionInformation.Id, serviceName: name.serviceName, applicationName: service.applicationName, partition };
    }
    case 'Partition':
      return findPartition(lb, name.partitionId);
  }
}

/** parseEntityName then resolveEntity. */
export function resolveEntityText(lb: LifeboatClient, text: string, partitionKey?: string): Promise<ResolvedEntity> {
  return resolveEntity(lb, parseEntityName(text, partitionKey));
}

/** The partitions an entity stands for, in hierarchy order: itself, or every partition below it. */
export async function partitionsUnder(lb: LifeboatClient, e: ResolvedEntity): Promise<ResolvedPartition[]> {
  if (e.kind === 'Partition') return [e];
  const out: ResolvedPartition[] = [];
  for (const tree of await hierarchyOf(lb, e)) {
    for (const s of tree.services) {
      for (const partition of s.partitions) {
        out.push({ kind: 'Partition', partitionId: partition.PartitionInformation.Id, serviceName: s.service.Name, applicationName: tree.application.Name, partition });
      }
    }
  }
  return out;
}

/** The REST reference of an entity (protection routes). */
export function entityRef(e: ResolvedEntity): { kind: 'Application' | 'Service' | 'Partition'; id: string } {
  return e.kind === 'Partition' ? { kind: 'Partition', id: e.partitionId }
    : e.kind === 'Service' ? { kind: 'Service', id: nameToId(e.serviceName) } : { kind: 'Application', id: nameToId(e.applicationName) };
}

/** The display name of an entity. */
export function entityLabel(e: ResolvedEntity): string {
  return e.kind === 'Partition' ? `${e.serviceName} partition ${e.partitionId}` : e.kind === 'Service' ? e.serviceName : e.applicationName;
}

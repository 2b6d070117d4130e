/** The hierarchy as the service knows it (applications → services → partitions), read through the typed client. */
import type { LifeboatClient } from '../client/lifeboat-client.ts';
import type { ApplicationWire, PartitionWire, ServiceWire } from '../wire/hierarchy.ts';
import { allPages } from '../client/lifeboat-client.ts';

export interface ServiceNode {
  readonly service: ServiceWire;
  readonly partitions: readonly PartitionWire[];
}

export interface ApplicationNode {
  readonly application: ApplicationWire;
  readonly services: readonly ServiceNode[];
}

export async function loadTree(client: LifeboatClient): Promise<ApplicationNode[]> {
  const apps = await allPages((t) => client.hierarchy.listApplications(t === undefined ? {} : { continuationToken: t }));
  return Promise.all(apps.map(async (application) => {
    const services = await allPages((t) => client.hierarchy.listServices(application.Id, t === undefined ? {} : { continuationToken: t }));
    return {
      application,
      services: await Promise.all(services.map(async (service) => ({
        service,
        partitions: await allPages((t) => client.hierarchy.listPartitions(service.Id, t === undefined ? {} : { continuationToken: t })),
      }))),
    };
  }));
}

/** Every partition of the tree, with the name of its service. */
export function partitionsOf(tree: readonly ApplicationNode[]): Array<{ readonly serviceName: string; readonly partition: PartitionWire }> {
  return tree.flatMap((a) => a.services.flatMap((s) => s.partitions.map((partition) => ({ serviceName: s.service.Name, partition }))));
}

/** `a..b` of an Int64Range partition, the name of a Named one, `Singleton`. */
export function keyRangeText(p: PartitionWire): string {
  const i = p.PartitionInformation;
  if (i.ServicePartitionKind === 'Int64Range') return `${i.LowKey ?? ''} … ${i.HighKey ?? ''}`;
  if (i.ServicePartitionKind === 'Named') return `Named ${i.Name ?? ''}`;
  return 'Singleton';
}

/** Runs `fn` over `items`, at most `limit` at a time (a big service must not open hundreds of calls at once). */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Entities as operators name them, turned into what the REST API takes: `fabric:/App` (an
 * application), `fabric:/App/Svc` (a service), a partition GUID, or a service with a partition key
 * (the partition whose range holds the key; for Named partitions the key is the name). Pure: the
 * look-ups against a running service are in resolve.ts.
 */
import { LifeboatError } from '../core/errors.ts';
import { idToName, isGuid } from '../core/ids.ts';
import { hashStringKey } from '../core/partitioning.ts';
import type { PartitionInformationWire } from '../wire/hierarchy.ts';

export type EntityName =
  | { readonly kind: 'Application'; readonly applicationName: string }
  | { readonly kind: 'Service'; readonly serviceName: string }
  | { readonly kind: 'Partition'; readonly partitionId: string }
  | { readonly kind: 'PartitionByKey'; readonly serviceName: string; readonly key: string };

/**
 * What `text` (with `--partition-key`, when given) names. Application and service names may also
 * be written as REST ids (`SampleApp`, `SampleApp~MyStatefulService`). E_INVALIDARG for anything
 * else, and for a partition key given with an application or a partition.
 */
export function parseEntityName(text: string, partitionKey?: string): EntityName {
  const t = text.trim();
  if (isGuid(t)) {
    if (partitionKey !== undefined) throw new LifeboatError('E_INVALIDARG', `--partition-key picks a partition of a service; ${t} is a partition already.`);
    return { kind: 'Partition', partitionId: t.toLowerCase() };
  }
  let name: string;
  try {
    name = idToName(t);
  } catch {
    throw new LifeboatError('E_INVALIDARG', `'${text}' names no entity: use fabric:/App, fabric:/App/Service, a partition id, or fabric:/App/Service --partition-key <key>.`);
  }
  const segments = name.slice('fabric:/'.length).split('/');
  if (segments.length === 1) {
    if (partitionKey !== undefined) throw new LifeboatError('E_INVALIDARG', `--partition-key picks a partition of a service; ${name} is an application.`);
    return { kind: 'Application', applicationName: name };
  }
  return partitionKey === undefined ? { kind: 'Service', serviceName: name } : { kind: 'PartitionByKey', serviceName: name, key: partitionKey };
}

/** A partition of a service as the hierarchy lists it: its GUID and what part of the key space it holds. */
export type PartitionInfoLike = Pick<PartitionInformationWire, 'ServicePartitionKind' | 'Id'> & Readonly<Record<string, string>>;

/**
 * The index in `partitions` (one service's) of the partition that holds `key`. Int64Range: a whole number is
 * looked up by range; any other text is hashed as the state library hashes a string key
 * (core/partitioning.ts), over the service's whole range, so `--partition-key hello` finds the
 * partition of the sample application's `/kv/hello`. Named: the partition with that name.
 * Singleton: the one. FABRIC_E_INVALID_PARTITION_KEY when no partition holds it.
 */
export function partitionForKey(partitions: readonly PartitionInfoLike[], key: string): number {
  const first = partitions[0];
  if (first === undefined) throw new LifeboatError('FABRIC_E_INVALID_PARTITION_KEY', 'The service has no partitions.');
  switch (first.ServicePartitionKind) {
    case 'Singleton':
      return 0;
    case 'Named': {
      const p = partitions.findIndex((x) => x.Name === key);
      if (p < 0) throw new LifeboatError('FABRIC_E_INVALID_PARTITION_KEY', `No partition is named '${key}' (the partitions: ${partitions.map((x) => x.Name).join(', ')}).`);
      return p;
    }
    case 'Int64Range': {
      const ranges = partitions.map((p, i) => ({ i, low: BigInt(p.LowKey ?? '0'), high: BigInt(p.HighKey ?? '0') })).sort((a, b) => (a.low < b.low ? -1 : a.low > b.low ? 1 : 0));
      const low = ranges[0]!.low;
      const high = ranges[ranges.length - 1]!.high;
      let k: bigint;
      if (/^-?\d+$/.test(key.trim())) {
        k = BigInt(key.trim());
      } else {
        const h = BigInt.asUintN(64, hashStringKey(key));
        k = low + (h % (high - low + 1n));
      }
      const hit = ranges.find((r) => k >= r.low && k <= r.high);
      if (!hit) throw new LifeboatError('FABRIC_E_INVALID_PARTITION_KEY', `Key ${k} is outside the service's range [${low}, ${high}].`);
      return hit.i;
    }
  }
}

/** How a partition's part of the key space reads in a table: `[low, high]`, its name, or `singleton`. */
export function rangeText(info: PartitionInfoLike): string {
  switch (info.ServicePartitionKind) {
    case 'Singleton': return 'singleton';
    case 'Named': return `name ${info.Name ?? ''}`;
    case 'Int64Range': return `[${info.LowKey ?? ''}, ${info.HighKey ?? ''}]`;
  }
}

/**
 * Partitioning schemes of a stateful service, and which partition serves a key. Mirrors Service
 * Fabric: a scheme is Singleton, Named (a list of names) or UniformInt64Range (count, low key,
 * high key, both inclusive); a partition is Singleton, Named (one name) or Int64Range.
 */
import { LifeboatError, invalidArgUnless } from './errors.ts';

export type PartitionScheme =
  | { readonly kind: 'Singleton' }
  | { readonly kind: 'Named'; readonly names: readonly string[] }
  | { readonly kind: 'UniformInt64Range'; readonly count: number; readonly lowKey: bigint; readonly highKey: bigint };

export type PartitionInfo =
  | { readonly kind: 'Singleton' }
  | { readonly kind: 'Named'; readonly name: string }
  | { readonly kind: 'Int64Range'; readonly lowKey: bigint; readonly highKey: bigint };

export type PartitionKey = bigint | number | string;

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** Validates a scheme and returns its partitions' information, in scheme order. */
export function partitionsOfScheme(scheme: PartitionScheme): PartitionInfo[] {
  switch (scheme.kind) {
    case 'Singleton':
      return [{ kind: 'Singleton' }];
    case 'Named': {
      invalidArgUnless(Array.isArray(scheme.names) && scheme.names.length > 0, 'A Named scheme needs at least one name.');
      const seen = new Set<string>();
      for (const name of scheme.names) {
        invalidArgUnless(typeof name === 'string' && name.length > 0, 'Partition names must be non-empty strings.');
        invalidArgUnless(!seen.has(name), `Partition name '${name}' appears twice.`);
        seen.add(name);
      }
      return scheme.names.map((name) => ({ kind: 'Named', name }));
    }
    case 'UniformInt64Range': {
      const { count, lowKey, highKey } = scheme;
      invalidArgUnless(Number.isSafeInteger(count) && count >= 1, 'PartitionCount must be a whole number ≥ 1.');
      invalidArgUnless(typeof lowKey === 'bigint' && typeof highKey === 'bigint', 'LowKey and HighKey must be bigints.');
      invalidArgUnless(lowKey >= INT64_MIN && highKey <= INT64_MAX, 'LowKey and HighKey must be Int64 values.');
      invalidArgUnless(lowKey <= highKey, 'LowKey must not be greater than HighKey.');
      const total = highKey - lowKey + 1n;
      const n = BigInt(count);
      invalidArgUnless(total >= n, 'The key range is smaller than the partition count.');
      // Like Service Fabric: equal ranges, the first (total mod count) ranges one key larger.
      const size = total / n;
      const extra = total % n;
      const out: PartitionInfo[] = [];
      let low = lowKey;
      for (let i = 0n; i < n; i++) {
        const high = low + size - 1n + (i < extra ? 1n : 0n);
        out.push({ kind: 'Int64Range', lowKey: low, highKey: high });
        low = high + 1n;
      }
      return out;
    }
    default:
      throw new LifeboatError('E_INVALIDARG', `Unknown partition scheme '${(scheme as { kind: unknown }).kind as string}'.`);
  }
}

/**
 * 64-bit FNV-1a of the key's UTF-8 bytes, finished with MurmurHash3's fmix64 so the high bits
 * (which pick the range) depend on every byte, as a signed Int64. It decides where string keys
 * live, so it must never change.
 */
export function hashStringKey(key: string): bigint {
  const M = 0xffffffffffffffffn;
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(key)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & M;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & M;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & M;
  h ^= h >> 33n;
  return BigInt.asIntN(64, h);
}

/**
 * The index (in scheme order) of the partition serving `key`. Int64 keys are looked up by range;
 * string keys of a ranged scheme are hashed into the scheme's range; Named schemes take the name.
 */
export function partitionIndexForKey(scheme: PartitionScheme, partitions: readonly PartitionInfo[], key: PartitionKey): number {
  switch (scheme.kind) {
    case 'Singleton':
      return 0;
    case 'Named': {
      const index = typeof key === 'string' ? scheme.names.indexOf(key) : -1;
      if (index < 0) throw new LifeboatError('FABRIC_E_INVALID_PARTITION_KEY', `No partition is named '${String(key)}'.`);
      return index;
    }
    case 'UniformInt64Range': {
      let k: bigint;
      if (typeof key === 'string') {
        const span = scheme.highKey - scheme.lowKey + 1n;
        const h = BigInt.asUintN(64, hashStringKey(key));
        k = scheme.lowKey + (h % span);
      } else if (typeof key === 'number') {
        if (!Number.isSafeInteger(key)) throw new LifeboatError('FABRIC_E_INVALID_PARTITION_KEY', `Partition key ${key} is not a whole number.`);
        k = BigInt(key);
      } else {
        k = key;
      }
      // Ranges are sorted and contiguous: binary search.
      let lo = 0;
      let hi = partitions.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const p = partitions[mid];
        if (p?.kind !== 'Int64Range') break;
        if (k < p.lowKey) hi = mid - 1;
        else if (k > p.highKey) lo = mid + 1;
        else return mid;
      }
      throw new LifeboatError('FABRIC_E_INVALID_PARTITION_KEY', `Key ${k} is outside the service's range [${scheme.lowKey}, ${scheme.highKey}].`);
    }
  }
}

export function samePartitionInfo(a: PartitionInfo, b: PartitionInfo): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'Named' && b.kind === 'Named') return a.name === b.name;
  if (a.kind === 'Int64Range' && b.kind === 'Int64Range') return a.lowKey === b.lowKey && a.highKey === b.highKey;
  return true;
}

/** JSON-safe form of partition info (bigints as decimal strings), for manifests and metadata. */
export function partitionInfoToJson(p: PartitionInfo): Record<string, string> {
  switch (p.kind) {
    case 'Singleton':
      return { kind: 'Singleton' };
    case 'Named':
      return { kind: 'Named', name: p.name };
    case 'Int64Range':
      return { kind: 'Int64Range', lowKey: p.lowKey.toString(), highKey: p.highKey.toString() };
  }
}

export function partitionInfoFromJson(j: unknown): PartitionInfo {
  const o = j as Record<string, unknown> | null;
  invalidArgUnless(o !== null && typeof o === 'object', 'Partition information must be an object.');
  if (o.kind === 'Singleton') return { kind: 'Singleton' };
  if (o.kind === 'Named' && typeof o.name === 'string') return { kind: 'Named', name: o.name };
  if (o.kind === 'Int64Range' && typeof o.lowKey === 'string' && typeof o.highKey === 'string') {
    return { kind: 'Int64Range', lowKey: BigInt(o.lowKey), highKey: BigInt(o.highKey) };
  }
  throw new LifeboatError('E_INVALIDARG', `Partition information is not valid: ${JSON.stringify(j)}.`);
}

export function schemeToJson(s: PartitionScheme): Record<string, unknown> {
  switch (s.kind) {
    case 'Singleton':
      return { kind: 'Singleton' };
    case 'Named':
      return { kind: 'Named', names: [...s.names] };
    case 'UniformInt64Range':
      return { kind: 'UniformInt64Range', count: s.count, lowKey: s.lowKey.toString(), highKey: s.highKey.toString() };
  }
}

export function schemeFromJson(j: unknown): PartitionScheme {
  const o = j as Record<string, unknown> | null;
  invalidArgUnless(o !== null && typeof o === 'object', 'A partition scheme must be an object.');
  if (o.kind === 'Singleton') return { kind: 'Singleton' };
  if (o.kind === 'Named' && Array.isArray(o.names)) return { kind: 'Named', names: o.names.map(String) };
  if (o.kind === 'UniformInt64Range' && typeof o.count === 'number' && typeof o.lowKey === 'string' && typeof o.highKey === 'string') {
    return { kind: 'UniformInt64Range', count: o.count, lowKey: BigInt(o.lowKey), highKey: BigInt(o.highKey) };
  }
  throw new LifeboatError('E_INVALIDARG', `Partition scheme is not valid: ${JSON.stringify(j)}.`);
}

export function sameScheme(a: PartitionScheme, b: PartitionScheme): boolean {
  return JSON.stringify(schemeToJson(a)) === JSON.stringify(schemeToJson(b));
}

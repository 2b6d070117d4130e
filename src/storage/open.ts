/**
 * Builds the BlobStore a storage description names, applying what this installation allows.
 *
 * - Every kind: FileShare (inside the allowed roots), AzureBlobStore (connection string),
 *   ManagedIdentityAzureBlobStore (the machine's managed identity), S3. No network here: a store
 *   that cannot be reached fails on first use (or in `validate()` for ValidateConnection).
 * - Every store comes wrapped in a RetryingStore, so transient failures (marked by the adapters)
 *   are retried with back-off and jitter; permanent ones fail at once.
 * - The service and the hosts call this per request. A cloud store is built once per description
 *   and kept (up to MAX_CACHED, least recently used first out): a fresh S3 client per call would
 *   open new connections (and TLS sessions) every time and leave the old pools behind, and a fresh
 *   managed-identity credential would fetch a new token per call. The cache key is the storage's
 *   secret-free identity plus a SHA-256 of the whole description, so a changed key or connection
 *   string gets its own store and no secret is kept as a key. FileShare stores are cheap and
 *   policy-checked per call, so they are not cached.
 */
import { createHash } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { LifeboatError } from '../core/errors.ts';
import { type StorageDescription, storageIdentity } from '../core/storage-description.ts';
import { azureBlobStoreFor } from './azure-blob.ts';
import { FileShareStore, insideRoots } from './fileshare.ts';
import type { BlobStore } from './port.ts';
import { type RetryOptions, RetryingStore } from './retry.ts';
import { S3Store } from './s3.ts';

export interface StoragePolicy {
  /** Absolute folders FileShare paths must be inside. */
  readonly fileShareRoots: readonly string[];
  /** How transient failures are retried; RetryingStore's defaults (5 attempts, 200 ms doubling to 10 s) when absent. */
  readonly retry?: RetryOptions;
}

/** Cloud stores kept; a deployment names a handful of storages, so this is never reached in practice. */
const MAX_CACHED = 64;
const cached = new Map<string, BlobStore>();

/** The store for `d`, retrying transient failures. */
export function openStorage(d: StorageDescription, policy: StoragePolicy): BlobStore {
  return new RetryingStore(openAdapter(d, policy), policy.retry);
}

/** The adapter for `d` without the retrying wrapper (cloud ones shared between calls). */
export function openAdapter(d: StorageDescription, policy: StoragePolicy): BlobStore {
  switch (d.StorageKind) {
    case 'FileShare': {
      if (!isAbsolute(d.Path)) throw new LifeboatError('E_INVALIDARG', `FileShare Path '${d.Path}' must be an absolute path.`);
      const path = resolve(d.Path);
      if (!insideRoots(path, policy.fileShareRoots.map((r) => resolve(r)))) {
        throw new LifeboatError('E_INVALIDARG', `FileShare Path '${d.Path}' is outside the folders this Lifeboat may write to (${policy.fileShareRoots.join(', ')}); set --fileshare-roots / LIFEBOAT_FILESHARE_ROOTS to allow it.`);
      }
      return new FileShareStore(path);
    }
    case 'AzureBlobStore':
    case 'ManagedIdentityAzureBlobStore':
      return reuse(d, () => azureBlobStoreFor(d));
    case 'S3':
      return reuse(d, () => new S3Store({
        bucket: d.Bucket, region: d.Region, endpoint: d.Endpoint, accessKeyId: d.AccessKeyId, secretAccessKey: d.SecretAccessKey, forcePathStyle: d.ForcePathStyle,
      }));
    default:
      throw new LifeboatError('E_INVALIDARG', `StorageKind ${(d as { StorageKind: string }).StorageKind} is not supported.`);
  }
}

function reuse(d: StorageDescription, build: () => BlobStore): BlobStore {
  // FriendlyName is a label: two descriptions that differ only there name the same store.
  const fields = Object.entries(d).filter(([k]) => k !== 'FriendlyName').sort(([a], [b]) => (a < b ? -1 : 1));
  const key = `${storageIdentity(d)} ${createHash('sha256').update(JSON.stringify(fields)).digest('hex')}`;
  let store = cached.get(key);
  if (store) {
    cached.delete(key); // re-inserted below: the Map's order is the LRU order
  } else {
    store = build();
    // An evicted store is not closed: a backup may still be using it. Its idle keep-alive sockets
    // do not hold the process open and are closed by the server's idle timeout.
    if (cached.size >= MAX_CACHED) cached.delete(cached.keys().next().value as string);
  }
  cached.set(key, store);
  return store;
}

/**
 * Builds the BlobStore a storage description names, applying what this installation allows.
 *
 * - Every kind: FileShare (inside the allowed roots), AzureBlobStore (connection string),
 *   ManagedIdentityAzureBlobStore (the machine's managed identity), S3. No network here: a store
 *   that cannot be reached fails on first use (or in `validate()` for ValidateConnection).
 * - Every store comes wrapped in a RetryingStore, so transient failures (marked by the adapters)
 *   are retried with back-off and jitter; permanent ones fail at once.
 * - With a meter in the policy, a MeteredStore sits between the two: every request the adapter
 *   makes (each attempt) and every retry is counted by backend (metered.ts; the metrics).
 * - Long-lived processes open stores through a StorageRegistry, which keeps cloud stores between
 *   calls and closes them (see its comment); `openStorage` builds an uncached one for one-off uses.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { LifeboatError } from '../core/errors.ts';
import { type StorageDescription, storageIdentity } from '../core/storage-description.ts';
import { azureBlobStoreFor } from './azure-blob.ts';
import { type EndpointRules, azureBlobEndpointOf, checkAmbientCredentials, checkEndpoint, endpointUrl } from './endpoints.ts';
import { FileShareStore, insideRoots } from './fileshare.ts';
import { MeteredStore, type StorageMeter } from './metered.ts';
import type { BlobStore } from './port.ts';
import { type RetryOptions, RetryingStore } from './retry.ts';
import { S3Store } from './s3.ts';

export interface StoragePolicy {
  /** Absolute folders FileShare paths must be inside (checked after resolving symlinks). */
  readonly fileShareRoots: readonly string[];
  /**
   * Which endpoints a description may name, and which may get the machine's own credentials
   * (src/storage/endpoints.ts). The service and hosts always pass them; without them (a storage
   * the operator named on the command line, tests of the adapters) no endpoint is refused.
   */
  readonly endpoints?: EndpointRules;
  /** How transient failures are retried; RetryingStore's defaults (5 attempts, 200 ms doubling to 10 s) when absent. */
  readonly retry?: RetryOptions;
  /** Counts every adapter call and every retry, by backend (StorageKind); none when absent. */
  readonly meter?: StorageMeter;
}

/** Cloud stores a registry keeps by default; a deployment names a handful of storages, so this is never reached in practice. */
const MAX_CACHED = 64;
/** How long an evicted store stays open by default, for operations that still hold it. */
const EVICTED_CLOSE_AFTER_MS = 10 * 60_000;

export interface StorageRegistryOptions {
  /** Cloud stores kept at most (default 64); the least recently used goes first. */
  readonly maxCached?: number;
  /** How long an evicted store stays open for operations that still hold it (default 10 minutes). */
  readonly evictedCloseAfterMs?: number;
}

/**
 * The stores of one long-lived process (Lifeboat's service and its in-process host, or a
 * `lifeboat host`), built from descriptions under one StoragePolicy. The service and the hosts open
 * a store per request, so a cloud store is built once per description and kept (up to `maxCached`,
 * least recently used first out): a fresh S3 client per call would open new connections (and TLS
 * sessions) every time and leave the old pools behind, and a fresh managed-identity credential
 * would fetch a new token per call. The cache key is the storage's secret-free identity plus a
 * SHA-256 of the whole description, so a changed key or connection string gets its own store and
 * no secret is kept as a key. FileShare stores are cheap and policy-checked per call, so they are
 * not cached.
 *
 * An evicted store is closed, so a flood of distinct descriptions cannot pile up clients and their
 * sockets; but after a grace (`evictedCloseAfterMs`, on an unref'd timer), as a backup or restore
 * that opened it may still be using it. `close()` closes every store kept and every evicted one
 * still in its grace; the owner calls it at shutdown, once nothing uses storage any more. After
 * that the registry opens nothing.
 */
export class StorageRegistry {
  readonly #policy: StoragePolicy;
  readonly #maxCached: number;
  readonly #evictedCloseAfterMs: number;
  /** Kept stores by key; the Map's order is the LRU order (oldest first). */
  readonly #cached = new Map<string, BlobStore>();
  /** Evicted stores waiting out their grace, with the timer that closes them. */
  readonly #evicted = new Map<BlobStore, NodeJS.Timeout>();
  #closed = false;

  constructor(policy: StoragePolicy, options: StorageRegistryOptions = {}) {
    this.#policy = policy;
    this.#maxCached = Math.max(1, options.maxCached ?? MAX_CACHED);
    this.#evictedCloseAfterMs = options.evictedCloseAfterMs ?? EVICTED_CLOSE_AFTER_MS;
  }

  /** The store for `d`, retrying transient failures (each call its own wrapper around the shared adapter). */
  open(d: StorageDescription): BlobStore {
    return retrying(this.openAdapter(d), d, this.#policy);
  }

  /** The adapter for `d` without the retrying wrapper; cloud ones are shared between calls. */
  openAdapter(d: StorageDescription): BlobStore {
    if (this.#closed) throw new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', 'Storage is closed: this process is shutting down.');
    return buildAdapter(d, this.#policy, (build) => this.#reuse(d, build));
  }

  /** How many cloud stores are kept (evicted ones in their grace not counted). */
  get size(): number {
    return this.#cached.size;
  }

  /** Closes every store kept and every evicted one still in its grace; the registry opens nothing after. */
  async close(): Promise<void> {
    this.#closed = true;
    const stores = [...this.#cached.values(), ...this.#evicted.keys()];
    for (const timer of this.#evicted.values()) clearTimeout(timer);
    this.#cached.clear();
    this.#evicted.clear();
    await Promise.allSettled(stores.map(async (s) => s.close?.()));
  }

  #reuse(d: StorageDescription, build: () => BlobStore): BlobStore {
    // FriendlyName is a label: two descriptions that differ only there name the same store.
    const fields = Object.entries(d).filter(([k]) => k !== 'FriendlyName').sort(([a], [b]) => (a < b ? -1 : 1));
    const key = `${storageIdentity(d)} ${createHash('sha256').update(JSON.stringify(fields)).digest('hex')}`;
    let store = this.#cached.get(key);
    if (store) {
      this.#cached.delete(key); // re-inserted below: the Map's order is the LRU order
    } else {
      store = build();
      while (this.#cached.size >= this.#maxCached) {
        const [oldest, evicted] = this.#cached.entries().next().value as [string, BlobStore];
        this.#cached.delete(oldest);
        this.#closeAfterGrace(evicted);
      }
    }
    this.#cached.set(key, store);
    return store;
  }

  #closeAfterGrace(store: BlobStore): void {
    if (!store.close) return;
    const timer = setTimeout(() => {
      this.#evicted.delete(store);
      store.close?.().catch(() => undefined);
    }, this.#evictedCloseAfterMs);
    timer.unref();
    this.#evicted.set(store, timer);
  }
}

/**
 * A store for `d` that nothing else shares, retrying transient failures: for one-off uses (a
 * command that runs once, a bench, tests). It is not cached, so its clients are never reused and
 * it cannot be closed through the wrapper; nothing long-lived may use it (the service and the hosts
 * open storage through a StorageRegistry).
 */
export function openStorage(d: StorageDescription, policy: StoragePolicy): BlobStore {
  return retrying(buildAdapter(d, policy, (build) => build()), d, policy);
}

/** `adapter` in a RetryingStore, metered in between when the policy has a meter. */
function retrying(adapter: BlobStore, d: StorageDescription, policy: StoragePolicy): BlobStore {
  const meter = policy.meter;
  if (!meter) return new RetryingStore(adapter, policy.retry);
  const backend = d.StorageKind;
  const onRetry = policy.retry?.onRetry;
  return new RetryingStore(new MeteredStore(adapter, backend, meter), {
    ...policy.retry,
    onRetry: (info) => {
      try {
        meter.retry(backend, info.operation);
      } catch {
        // Metering never fails a storage call.
      }
      onRetry?.(info);
    },
  });
}

/** The adapter for `d` after the policy's checks; `reuse` decides whether a cloud store is built anew. */
function buildAdapter(d: StorageDescription, policy: StoragePolicy, reuse: (build: () => BlobStore) => BlobStore): BlobStore {
  switch (d.StorageKind) {
    case 'FileShare':
      return new FileShareStore(allowedFileSharePath(d.Path, policy.fileShareRoots));
    case 'AzureBlobStore':
      if (policy.endpoints) checkEndpoint(azureBlobEndpointOf(d.ConnectionString), policy.endpoints, 'Azure Blob');
      return reuse(() => azureBlobStoreFor(d));
    case 'ManagedIdentityAzureBlobStore':
      if (policy.endpoints) {
        const url = endpointUrl(d.BlobServiceUri, 'BlobServiceUri');
        checkEndpoint(url, policy.endpoints, 'Azure Blob');
        checkAmbientCredentials(url, policy.endpoints, 'ManagedIdentityAzureBlobStore');
      }
      return reuse(() => azureBlobStoreFor(d));
    case 'S3':
      if (policy.endpoints) {
        const url = d.Endpoint !== undefined ? endpointUrl(d.Endpoint, 'S3 Endpoint') : new URL(`https://s3.${d.Region ?? 'us-east-1'}.amazonaws.com`);
        checkEndpoint(url, policy.endpoints, 'S3');
        if (d.AccessKeyId === undefined && d.SecretAccessKey === undefined) checkAmbientCredentials(url, policy.endpoints, 'An S3 storage without AccessKeyId', d.Bucket);
      }
      return reuse(() => new S3Store({
        bucket: d.Bucket, region: d.Region, endpoint: d.Endpoint, accessKeyId: d.AccessKeyId, secretAccessKey: d.SecretAccessKey, forcePathStyle: d.ForcePathStyle,
      }));
    default:
      throw new LifeboatError('E_INVALIDARG', `StorageKind ${(d as { StorageKind: string }).StorageKind} is not supported.`);
  }
}

/**
 * `given` if it is inside one of the roots once symlinks are resolved: a symlink in a root that
 * points outside is refused. A path that does not exist yet is judged by its nearest existing
 * folder. The refusal names the path as given and the roots, never where a link leads.
 */
export function allowedFileSharePath(given: string, roots: readonly string[]): string {
  if (!isAbsolute(given)) throw new LifeboatError('E_INVALIDARG', `FileShare Path '${given}' must be an absolute path.`);
  if (given.split(/[\\/]/).includes('..')) throw new LifeboatError('E_INVALIDARG', `FileShare Path '${given}' must not contain '..'.`);
  const path = resolve(given);
  const real = realPathOf(path);
  const realRoots = roots.map((r) => realPathOf(resolve(r)));
  if (!insideRoots(real, realRoots)) {
    throw new LifeboatError('E_INVALIDARG', `FileShare Path '${given}' is outside the folders this Lifeboat may write to (${roots.join(', ')}); set --fileshare-roots / LIFEBOAT_FILESHARE_ROOTS to allow it.`);
  }
  return path;
}

/** The real path of `path`: its nearest existing ancestor resolved, the rest appended. */
function realPathOf(path: string): string {
  const rest: string[] = [];
  let at = path;
  for (;;) {
    try {
      return join(realpathSync(at), ...rest.reverse());
    } catch {
      const up = dirname(at);
      if (up === at) return path;
      rest.push(basename(at));
      at = up;
    }
  }
}

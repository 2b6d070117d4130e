/**
 * MeteredStore: a BlobStore that wraps an adapter and tells a StorageMeter the outcome of every
 * call, by backend and operation. `open.ts` puts it between the RetryingStore and the adapter when
 * the policy has a meter, so each attempt the backend sees is one request (a call retried three
 * times is three requests), and the retries themselves are told by the RetryingStore's onRetry.
 * The meter is a port: the metrics library stays above (src/api/metrics.ts implements it).
 *
 * - `put`, `head`, `delete`, `validate`: counted when the call settles.
 * - `get`: a failure to open is counted at once; an opened object when its stream ends — failed if
 *   it errored, succeeded if it ended or the reader stopped early (the reader's choice is not a
 *   backend failure). The stream lends its chunks when the adapter's does (src/fs/lending.ts).
 * - `list`: counted when the listing ends, fails, or the caller stops early.
 * - Outcomes: `success`; `not_found` (LIFEBOAT_E_STORAGE_NOT_FOUND) and `exists`
 *   (LIFEBOAT_E_STORAGE_OBJECT_EXISTS), answers about objects rather than backend failures;
 *   `transient` (a failure the adapter marked worth retrying); `error` (any other failure: access
 *   denied, a missing container, a corrupt object, a refused key).
 * - A meter that throws is ignored: metering never fails a storage call.
 * - It has no `close`: the adapter it wraps is the registry's to close (a shared cloud client).
 */
import type { Readable } from 'node:stream';
import { isLifeboatError } from '../core/errors.ts';
import { lendingStream } from '../fs/lending.ts';
import { type BlobStore, type ObjectInfo, type PutOptions, isTransient, lendsChunks } from './port.ts';

export type StorageOperation = 'put' | 'get' | 'head' | 'list' | 'delete' | 'validate';
export type StorageOutcome = 'success' | 'not_found' | 'exists' | 'transient' | 'error';

export const STORAGE_OPERATIONS: readonly StorageOperation[] = ['put', 'get', 'head', 'list', 'delete', 'validate'];
export const STORAGE_OUTCOMES: readonly StorageOutcome[] = ['success', 'not_found', 'exists', 'transient', 'error'];

export interface StorageMeter {
  /** One call of the adapter ended with `outcome`. `backend` is the StorageKind (FileShare, AzureBlobStore, …). */
  request(backend: string, operation: StorageOperation, outcome: StorageOutcome): void;
  /** The retrying wrapper tries `operation` again after a transient failure. */
  retry(backend: string, operation: StorageOperation): void;
}

/** The outcome label of a call that ended with `err` (undefined: it succeeded). */
export function outcomeOf(err?: unknown): StorageOutcome {
  if (err === undefined) return 'success';
  if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) return 'not_found';
  if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS')) return 'exists';
  return isTransient(err) ? 'transient' : 'error';
}

export class MeteredStore implements BlobStore {
  readonly description: string;

  constructor(private readonly inner: BlobStore, private readonly backend: string, private readonly meter: StorageMeter) {
    this.description = inner.description;
  }

  private tell(operation: StorageOperation, err?: unknown): void {
    try {
      this.meter.request(this.backend, operation, outcomeOf(err));
    } catch {
      // Metering never fails a storage call.
    }
  }

  private async counted<T>(operation: StorageOperation, fn: () => Promise<T>): Promise<T> {
    try {
      const v = await fn();
      this.tell(operation);
      return v;
    } catch (err) {
      this.tell(operation, err);
      throw err;
    }
  }

  put(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<void> {
    return this.counted('put', () => this.inner.put(key, body, options));
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    let source: Readable;
    try {
      source = await this.inner.get(key, range);
    } catch (err) {
      this.tell('get', err);
      throw err;
    }
    let told = false;
    const settle = (err?: unknown): void => {
      if (told) return;
      told = true;
      this.tell('get', err);
    };
    return lendingStream(async function* (lend) {
      let ended = false;
      try {
        for await (const chunk of lend && lendsChunks(source) ? source.borrowChunks() : source) yield chunk as Uint8Array;
        ended = true;
        settle();
      } catch (err) {
        settle(err);
        throw err;
      } finally {
        if (!ended) {
          settle();
          source.destroy();
        }
      }
    }, { objectMode: false }, () => {
      settle();
      source.destroy();
    });
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.counted('head', () => this.inner.head(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let failed = false;
    try {
      for await (const info of this.inner.list(prefix)) yield info;
    } catch (err) {
      failed = true;
      this.tell('list', err);
      throw err;
    } finally {
      // Ended, or the caller stopped early (its choice, not the backend's failure).
      if (!failed) this.tell('list');
    }
  }

  delete(key: string): Promise<void> {
    return this.counted('delete', () => this.inner.delete(key));
  }

  validate(): Promise<void> {
    return this.counted('validate', () => this.inner.validate());
  }
}

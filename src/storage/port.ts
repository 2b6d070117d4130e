/**
 * The storage port: a dumb object store addressed by keys like `App/Svc/<partition>/<name>`.
 *
 * Contract every adapter keeps (the contract suite in test/storage checks it):
 * - Keys are `/`-separated, relative, with no empty, `.` or `..` segment; adapters refuse others
 *   with E_INVALIDARG.
 * - `put` streams the body and commits it atomically: until it resolves, no reader, `head` or
 *   `list` sees the key; if it fails, nothing is left visible. It never replaces a committed
 *   object: a put to an existing key fails with LIFEBOAT_E_STORAGE_OBJECT_EXISTS.
 * - `put(key, body, { overwrite: true })` is the one exception: it atomically replaces the object
 *   if it exists (readers see the old bytes or the new, never a mix) and creates it otherwise. Only
 *   small documents that are rewritten whole use it (a `.bkmetadata` whose data key is re-wrapped
 *   on key rotation); backup data is never overwritten.
 * - `get` returns the object's bytes (or `[start, end)` of them); a missing key fails with
 *   LIFEBOAT_E_STORAGE_NOT_FOUND.
 * - `head` returns size and modification time, or undefined for a missing key.
 * - `list(prefix)` yields every committed key starting with `prefix`, each once, in ascending
 *   byte order of the key.
 * - `delete` removes the key; deleting a missing key is not an error.
 * - A Readable body may also lend its chunks (`LendingReadable`, src/fs/lending.ts): an adapter
 *   that writes each chunk before it asks for the next may iterate `borrowChunks()` instead of
 *   reading the stream, and so take the producer's buffers without a copy. Any other adapter reads
 *   the stream as usual. Likewise `get` may return a LendingReadable (FileShare does): a reader
 *   done with each chunk before the next may borrow, others read the stream.
 * - Failures of the backend itself (unreachable, access denied) are LIFEBOAT_E_STORAGE_UNAVAILABLE
 *   with the backend's reason in the message; secrets never appear in messages.
 */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly modifiedUtc: Date;
}

export interface PutOptions {
  /** Atomically replace an existing object instead of failing with OBJECT_EXISTS. */
  readonly overwrite?: boolean;
}

export { type LendingReadable, lendsChunks } from '../fs/lending.ts';

export interface BlobStore {
  /** A name for messages and logs; never contains secrets. */
  readonly description: string;
  put(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<void>;
  get(key: string, range?: { start: number; end?: number }): Promise<Readable>;
  head(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  delete(key: string): Promise<void>;
  /** Checks the store can be reached and written (ValidateConnection). */
  validate(): Promise<void>;
  /** Releases the store's clients and sockets; the store is not used after. Optional: stores that hold nothing have none. */
  close?(): Promise<void>;
}

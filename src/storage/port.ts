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
import { LifeboatError, isLifeboatError } from '../core/errors.ts';

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

// ---- what every adapter shares: valid keys, and how failures are marked for retry.ts ----

/**
 * Marks names that are never keys: checkKey refuses any key containing it, so temporary files and
 * the probes of validate() (here and in the other adapters) never meet an object, and listings skip them.
 */
export const TEMP_MARK = '.lifeboat-tmp-';

/** Refuses keys no adapter stores: empty, absolute, with `.`/`..`/empty segments, backslashes, NUL, or the temporary mark. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.startsWith('/') || key.includes('\\') || key.includes('\0')
    || key.split('/').some((s) => s === '' || s === '.' || s === '..') || key.includes(TEMP_MARK)) {
    throw new LifeboatError('E_INVALIDARG', `'${String(key)}' is not a valid storage key.`);
  }
}

/** A storage failure that may pass if tried again (network reset, timeout, 5xx, throttling). */
export function transientStorageError(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', message, { ...options, details: { ...options?.details, transient: true } });
}

/** Whether `err` is a storage failure marked transient by its adapter. */
export function isTransient(err: unknown): err is LifeboatError {
  return isLifeboatError(err, 'LIFEBOAT_E_STORAGE_UNAVAILABLE') && err.details?.transient === true;
}

// HTTP answers that mean "not now": request timeout, throttling, server errors.
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
// Connection-level failures. ECONNREFUSED is left out: it is more often a wrong endpoint than a
// passing fault, and retrying it only delays the message the operator needs.
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'ENETDOWN', 'EHOSTUNREACH',
  'EAGAIN', 'EBUSY', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
]);

/**
 * For adapters: whether a backend's own error looks transient — a node/undici error `code` above,
 * or an HTTP status 408, 429 or 5xx in `statusCode` (Azure RestError), `status`, or
 * `$metadata.httpStatusCode` (AWS SDK v3). Adapters may know better and decide themselves.
 */
export function isTransientCause(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; statusCode?: unknown; status?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  const status = e.statusCode ?? e.status ?? e.$metadata?.httpStatusCode;
  return typeof status === 'number' && TRANSIENT_STATUS.has(status);
}

/**
 * RetryingStore: a BlobStore that wraps another and tries again when a failure is transient.
 *
 * Contract:
 * - Transient means LIFEBOAT_E_STORAGE_UNAVAILABLE marked `details.transient === true` (build it
 *   with `transientStorageError`, test it with `isTransient`). Everything else — NOT_FOUND,
 *   OBJECT_EXISTS, E_INVALIDARG, BACKUP_CORRUPT, unmarked UNAVAILABLE (auth, missing container or
 *   bucket) — is thrown at once.
 * - Back-off is exponential with full jitter: before attempt n+1 it waits
 *   `floor(random() * min(maxDelayMs, baseDelayMs * 2^(n-1)))`. After `maxAttempts` consecutive
 *   failures it gives up with UNAVAILABLE whose message ends "Gave up after N attempts.", whose
 *   cause is the last failure and whose details add `attempts: N` (another RetryingStore does not
 *   retry such an error again, so stacked wrappers do not multiply attempts).
 * - `head`, `delete`, `validate` are retried whole. `list` restarts after a failure and skips keys
 *   up to the last one it yielded (keys come in ascending byte order), so nothing is repeated or
 *   missed. `get` retries opening, and a transient error in the middle of the stream re-opens the
 *   object at the next byte not yet delivered. For `list` and `get` the limit counts consecutive
 *   failures without progress: a long read that hiccups now and then is not cut off.
 * - `put` retries only a body it can send again: a Uint8Array, or a factory `() => Readable` that
 *   gives the same bytes on every call. A Readable body is tried once.
 * - A retried put without `overwrite` that meets OBJECT_EXISTS may be meeting its own earlier
 *   attempt, which committed before its answer was lost. It counts as success only if the stored
 *   object holds exactly the body's bytes (size and SHA-256 compared); otherwise OBJECT_EXISTS is
 *   thrown. A first attempt that meets OBJECT_EXISTS always throws, as the port says.
 * - Resuming a read assumes the object did not change meanwhile: true of backup data, which is
 *   never overwritten; an overwritten `.bkmetadata` is small and read in one go.
 * - It logs nothing; `onRetry` hears of every retry (it must not throw).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { invalidArgUnless, isLifeboatError, LifeboatError } from '../core/errors.ts';
import { lendingStream, lendsChunks } from '../fs/lending.ts';
import { type BlobStore, type ObjectInfo, type PutOptions, isTransient } from './port.ts';
/** The failure marking is the port's (adapters mark, retry.ts reads); kept here for importers. */
export { isTransient, isTransientCause, transientStorageError } from './port.ts';

export type RetryOperation = 'put' | 'get' | 'head' | 'list' | 'delete' | 'validate';

export interface RetryInfo {
  readonly operation: RetryOperation;
  /** The key; for `list` the prefix, for `validate` ''. */
  readonly key: string;
  /** The attempt that failed, from 1 (for `get` and `list`: counted since the last progress). */
  readonly attempt: number;
  /** How long it waits before the next attempt. */
  readonly delayMs: number;
  /** The failure's message. */
  readonly reason: string;
  readonly error: unknown;
  /** `get`: the object offset the next attempt reads from. */
  readonly offset?: number;
  /** `list`: the last key already yielded; the next attempt goes on after it. */
  readonly afterKey?: string;
}

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  readonly maxAttempts?: number;
  /** Ceiling of the first wait (default 200 ms); it doubles with each attempt. */
  readonly baseDelayMs?: number;
  /** Largest ceiling of a wait (default 10 s). */
  readonly maxDelayMs?: number;
  /** Waits `ms`; tests pass one that does not. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1); the jitter. */
  readonly random?: () => number;
  readonly onRetry?: (info: RetryInfo) => void;
}

/** A put body: bytes or a factory can be sent again, a Readable cannot. */
export type PutBody = Readable | Uint8Array | (() => Readable);

/** The wait before attempt `failed + 1`, full jitter: uniform in [0, min(max, base * 2^(failed-1))). */
export function backoffDelay(failed: number, baseDelayMs: number, maxDelayMs: number, random: () => number): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (failed - 1));
  return Math.floor(random() * ceiling);
}

function exhausted(err: unknown): boolean {
  return isLifeboatError(err) && err.details?.attempts !== undefined;
}

function gaveUp(err: LifeboatError, attempts: number): LifeboatError {
  const stop = /[.!?]$/.test(err.message) ? '' : '.';
  return new LifeboatError(err.code, `${err.message}${stop} Gave up after ${attempts} attempts.`, { cause: err, details: { ...err.details, attempts } });
}

async function digest(chunks: AsyncIterable<unknown> | Iterable<unknown>): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of chunks) {
    const b = c as Uint8Array;
    hash.update(b);
    size += b.byteLength;
  }
  return { size, sha256: hash.digest('hex') };
}

export class RetryingStore implements BlobStore {
  readonly description: string;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly onRetry: ((info: RetryInfo) => void) | undefined;

  constructor(private readonly inner: BlobStore, options: RetryOptions = {}) {
    this.description = inner.description;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    invalidArgUnless(Number.isInteger(this.maxAttempts) && this.maxAttempts >= 1, `maxAttempts must be an integer of at least 1, not ${this.maxAttempts}.`);
    invalidArgUnless(this.baseDelayMs >= 0 && this.maxDelayMs >= this.baseDelayMs, `Back-off delays must satisfy 0 <= baseDelayMs <= maxDelayMs (${this.baseDelayMs}, ${this.maxDelayMs}).`);
    this.sleep = options.sleep ?? ((ms) => delay(ms));
    this.random = options.random ?? Math.random;
    this.onRetry = options.onRetry;
  }

  /** Returns after waiting if `err` is worth another attempt; otherwise throws what the caller should see. */
  private async backOff(operation: RetryOperation, key: string, failed: number, err: unknown, at: { offset?: number; afterKey?: string } = {}): Promise<void> {
    if (!isTransient(err) || exhausted(err)) throw err;
    if (failed >= this.maxAttempts) throw gaveUp(err, failed);
    const delayMs = backoffDelay(failed, this.baseDelayMs, this.maxDelayMs, this.random);
    this.onRetry?.({ operation, key, attempt: failed, delayMs, reason: err.message, error: err, ...at });
    await this.sleep(delayMs);
  }

  private async retry<T>(operation: RetryOperation, key: string, fn: () => Promise<T>): Promise<T> {
    for (let failed = 1; ; failed++) {
      try {
        return await fn();
      } catch (err) {
        await this.backOff(operation, key, failed, err);
      }
    }
  }

  async put(key: string, body: PutBody, options?: PutOptions): Promise<void> {
    if (body instanceof Readable) return this.inner.put(key, body, options);
    // Set once an attempt failed in a way that may still have committed it.
    let maybeCommitted = false;
    for (let failed = 1; ; failed++) {
      const sent = typeof body === 'function' ? body() : body;
      try {
        await this.inner.put(key, sent, options);
        return;
      } catch (err) {
        if (sent instanceof Readable) sent.destroy();
        if (maybeCommitted && isLifeboatError(err, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS') && await this.holds(key, body)) return;
        await this.backOff('put', key, failed, err);
        maybeCommitted = true;
      }
    }
  }

  /** Whether the stored object has exactly the bytes of `body`. */
  private async holds(key: string, body: Uint8Array | (() => Readable)): Promise<boolean> {
    const stored = await this.head(key);
    if (!stored || (body instanceof Uint8Array && stored.size !== body.byteLength)) return false;
    const [want, have] = await Promise.all([
      digest(body instanceof Uint8Array ? [body] : body()),
      this.get(key).then((s) => digest(s)),
    ]);
    return want.size === have.size && want.sha256 === have.sha256;
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    // Consecutive failures since the last byte delivered; opening and reading share the count.
    const failures = { n: 0 };
    const first = await this.open(key, range, range?.start ?? 0, failures);
    // Lends when asked to, borrowing from the inner streams that lend (and reading the others).
    return lendingStream((lend) => this.resuming(key, range, first, failures, lend), { objectMode: false }, () => first.destroy());
  }

  private async open(key: string, range: { start: number; end?: number } | undefined, offset: number, failures: { n: number }): Promise<Readable> {
    const end = range?.end;
    for (;;) {
      try {
        return await this.inner.get(key, offset === (range?.start ?? 0) ? range : { start: offset, ...(end !== undefined ? { end } : {}) });
      } catch (err) {
        failures.n++;
        await this.backOff('get', key, failures.n, err, { offset });
      }
    }
  }

  private async *resuming(key: string, range: { start: number; end?: number } | undefined, first: Readable, failures: { n: number }, lend: boolean): AsyncGenerator<Uint8Array> {
    const start = range?.start ?? 0;
    const end = range?.end;
    let source = first;
    let delivered = 0;
    for (;;) {
      const before = delivered;
      try {
        for await (const chunk of lend && lendsChunks(source) ? source.borrowChunks() : source) {
          delivered += (chunk as Uint8Array).byteLength;
          yield chunk as Uint8Array;
        }
        return;
      } catch (err) {
        source.destroy();
        if (delivered > before) failures.n = 0;
        failures.n++;
        await this.backOff('get', key, failures.n, err, { offset: start + delivered });
        if (end !== undefined && start + delivered >= end) return;
        source = await this.open(key, range, start + delivered, failures);
      }
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return this.retry('head', key, () => this.inner.head(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let last: Buffer | undefined;
    let lastKey: string | undefined;
    let failed = 0;
    for (;;) {
      let progressed = false;
      try {
        for await (const info of this.inner.list(prefix)) {
          const k = Buffer.from(info.key);
          // A restarted listing repeats what was already yielded: skip up to the last key.
          if (last && Buffer.compare(k, last) <= 0) continue;
          last = k;
          lastKey = info.key;
          progressed = true;
          yield info;
        }
        return;
      } catch (err) {
        failed = progressed ? 1 : failed + 1;
        await this.backOff('list', prefix, failed, err, lastKey === undefined ? {} : { afterKey: lastKey });
      }
    }
  }

  async delete(key: string): Promise<void> {
    return this.retry('delete', key, () => this.inner.delete(key));
  }

  async validate(): Promise<void> {
    return this.retry('validate', '', () => this.inner.validate());
  }
}

/**
 * Reading stored objects: whole (small ones, such as a `.bkmetadata`), or through a reader that
 * hashes what passes, to check a data object against the size and SHA-256 its `.bkmetadata`
 * records while a decoder or verifier pulls it (errors of the source reach the reader, unlike
 * with `.pipe()`).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { LifeboatError } from '../core/errors.ts';

export interface HashingReader {
  readonly stream: Readable;
  /** Bytes read so far and their SHA-256 (hex); call once, after the stream was read. */
  digest(): { bytes: number; sha256: string };
}

export function hashingReader(source: AsyncIterable<unknown>): HashingReader {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = Readable.from((async function* () {
    for await (const chunk of source) {
      const b = chunk as Buffer;
      hash.update(b);
      bytes += b.length;
      yield b;
    }
  })(), { objectMode: false });
  return { stream, digest: () => ({ bytes, sha256: hash.digest('hex') }) };
}

/** The most readAll takes by default: a `.bkmetadata` is a few KB; a hostile store may serve gigabytes under its name. */
export const MAX_SMALL_OBJECT_BYTES = 1024 * 1024;

/**
 * The whole stream in one buffer: only for small objects. More than `maxBytes` is refused
 * (LIFEBOAT_E_BACKUP_CORRUPT) as soon as it arrives, and the stream is closed: memory stays
 * bounded whatever the storage sends.
 */
export async function readAll(s: AsyncIterable<unknown>, maxBytes = MAX_SMALL_OBJECT_BYTES, what = 'the object'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of s) {
    size += (c as Buffer).length;
    if (size > maxBytes) throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `${what} is larger than ${maxBytes} bytes: not a Lifeboat metadata object.`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * A one-chunk channel from a producer that reuses its buffers (a decoder's sink) to a consumer
 * that pulls (`for await`): `push` resolves once the consumer asks for the next chunk, that is,
 * once it is done with this one, so nothing is copied and at most one chunk waits. `fail` ends
 * the consumer's loop with the error; a consumer that stops early makes later pushes fail.
 */
export class Handoff implements AsyncIterable<Buffer> {
  private slot: Buffer | undefined;
  private release: (() => void) | undefined;
  private refuse: ((err: unknown) => void) | undefined;
  private wakeConsumer: (() => void) | undefined;
  private ended = false;
  private failure: { readonly err: unknown } | undefined;
  private abandoned = false;

  push(chunk: Buffer): Promise<void> {
    if (this.abandoned) return Promise.reject(new Error('the reader stopped reading'));
    if (this.ended || this.failure) return Promise.reject(new Error('push after the end'));
    return new Promise<void>((resolve, reject) => {
      this.slot = chunk;
      this.release = resolve;
      this.refuse = reject;
      this.wake();
    });
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Ends the consumer's loop with `err`; a push waiting for the consumer fails with it too. */
  fail(err: unknown): void {
    this.failure ??= { err };
    const refuse = this.refuse;
    this.release = undefined;
    this.refuse = undefined;
    refuse?.(err);
    this.wake();
  }

  private wake(): void {
    const wake = this.wakeConsumer;
    this.wakeConsumer = undefined;
    wake?.();
  }

  private releaseProducer(): void {
    const release = this.release;
    this.release = undefined;
    this.refuse = undefined;
    release?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        while (this.slot === undefined && !this.ended && !this.failure) await new Promise<void>((resolve) => { this.wakeConsumer = resolve; });
        if (this.failure) throw this.failure.err;
        const chunk = this.slot;
        if (chunk === undefined) return;
        this.slot = undefined;
        yield chunk;
        this.releaseProducer();
      }
    } finally {
      this.abandoned = true;
      this.releaseProducer();
    }
  }
}

/**
 * An ordered queue between one producer and one consumer holding at most `capacity` items, so
 * each side waits only for the other, not for the other's I/O: `push` waits for room, `shift` for
 * an item. The producer ends it with `end()` or `fail(err)`: the consumer gets every item pushed
 * before, then undefined or the error. A consumer that stops calls `close()`: a waiting and every
 * later `push` resolves false, and `drain()` hands back what was never shifted.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private ending: { readonly failed: boolean; readonly err?: unknown } | undefined;
  private closed = false;
  private wakeProducer: (() => void) | undefined;
  private wakeConsumer: (() => void) | undefined;

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity ${capacity} is not a positive integer`);
  }

  async push(item: T): Promise<boolean> {
    while (this.items.length >= this.capacity && !this.closed) await new Promise<void>((resolve) => { this.wakeProducer = resolve; });
    if (this.closed || this.ending) return false;
    this.items.push(item);
    BoundedQueue.wake(this, 'wakeConsumer');
    return true;
  }

  end(): void {
    this.ending ??= { failed: false };
    BoundedQueue.wake(this, 'wakeConsumer');
  }

  fail(err: unknown): void {
    this.ending ??= { failed: true, err };
    BoundedQueue.wake(this, 'wakeConsumer');
  }

  async shift(): Promise<T | undefined> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift() as T;
        BoundedQueue.wake(this, 'wakeProducer');
        return item;
      }
      if (this.ending) {
        if (this.ending.failed) throw this.ending.err;
        return undefined;
      }
      await new Promise<void>((resolve) => { this.wakeConsumer = resolve; });
    }
  }

  close(): void {
    this.closed = true;
    BoundedQueue.wake(this, 'wakeProducer');
  }

  drain(): T[] {
    return this.items.splice(0);
  }

  private static wake(q: BoundedQueue<unknown>, side: 'wakeProducer' | 'wakeConsumer'): void {
    const wake = q[side];
    q[side] = undefined;
    wake?.();
  }
}

/**
 * Lending streams: a stream that can instead hand over its chunks as they are, for a consumer that
 * is done with each chunk before it asks for the next (writes it, hashes it, copies it). The
 * producer may then reuse a chunk's memory for the next one, so a gigabyte passes through a few
 * buffers instead of a new one per chunk (each new buffer is external memory that the main
 * thread's garbage collector must find dead: at a chunk per millisecond that set off a full
 * collection every 64 MB). Used between the backup encoder and a put, and a get and the decoder.
 */
import { Readable, type ReadableOptions } from 'node:stream';

/** Read the stream, or call `borrowChunks()` once: not both. */
export interface LendingReadable extends Readable {
  /** The chunks themselves: each is valid until the next is asked for. */
  borrowChunks(): AsyncIterable<Uint8Array>;
}

export function lendsChunks(body: unknown): body is LendingReadable {
  return typeof (body as Partial<LendingReadable> | null)?.borrowChunks === 'function';
}

/**
 * A stream of `chunks(false)` that can lend instead: `borrowChunks()` is `chunks(true)`, whose
 * chunks the producer may reuse once the next one is asked for. Whichever is asked for first is
 * the only one: the other fails. Destroying the stream stops a borrower too (at its next chunk).
 * `unused` runs if the stream is destroyed before either started (to close what `chunks` would).
 */
export function lendingStream(chunks: (lend: boolean) => AsyncGenerator<Uint8Array>, options: ReadableOptions, unused?: () => void): LendingReadable {
  let taken = false;
  const take = (lend: boolean): AsyncGenerator<Uint8Array> => {
    if (taken) throw new Error('the chunks of this stream were already taken');
    taken = true;
    return chunks(lend);
  };
  // Started only when first read: a stream that is borrowed from, or destroyed unread, never starts it.
  const stream = Readable.from((async function* () { yield* take(false); })(), options);
  if (unused) stream.once('close', () => { if (!taken) unused(); });
  const borrowChunks = (): AsyncIterable<Uint8Array> => {
    const lent = take(true);
    return (async function* () {
      for await (const c of lent) {
        if (stream.destroyed) throw stream.errored ?? new Error('the stream was destroyed');
        yield c;
      }
    })();
  };
  return Object.assign(stream, { borrowChunks });
}

/**
 * Durable writes of large files without a long wait at the end. The kernel starts writing dirty
 * pages back only past `dirty_background_ratio` of memory (gigabytes on a large machine), so a
 * file written in one go sits in the page cache and its final fsync waits for all of it: a second
 * or more per GiB, with the disk idle until then. `SyncBehind` flushes what was written so far in
 * the background every `every` bytes (one fdatasync at a time, never awaited by the writer), so
 * the disk works while the file is still being produced and the final fsync finds little left.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { type AppendWriter, openAppendWriter } from './direct-io.ts';

/** As the state library's copy worker does: few enough flushes not to slow the writing, often enough to keep the end short. */
export const SYNC_BEHIND_BYTES = 64 * 1024 * 1024;

export class SyncBehind {
  private unflushed = 0;
  private flushing: Promise<void> | undefined;
  private failure: { readonly err: unknown } | undefined;

  constructor(private readonly fh: FileHandle, private readonly every = SYNC_BEHIND_BYTES) {}

  /** Counts `bytes` just written; starts a background flush once enough are unflushed and none runs. */
  wrote(bytes: number): void {
    this.unflushed += bytes;
    if (this.unflushed < this.every || this.flushing || this.failure) return;
    this.unflushed = 0;
    this.flushing = this.fh.datasync().then(
      () => { this.flushing = undefined; },
      (err: unknown) => { this.failure ??= { err }; this.flushing = undefined; },
    );
  }

  /** fsyncs the file (after any background flush); throws what a background flush met. */
  async sync(): Promise<void> {
    await this.settled();
    if (this.failure) throw this.failure.err;
    await this.fh.sync();
  }

  /** Waits for a background flush to end, whatever it met: call it before closing the handle. */
  async settled(): Promise<void> {
    await this.flushing;
  }
}

/**
 * Writes `source` into a new file `path` (refused if it exists) and fsyncs it, flushing behind
 * as it goes; resolves to the bytes written. Each chunk is written before the next is asked for,
 * so a source may reuse its buffers. `onChunk` sees each chunk first (to hash it, say).
 * `direct`: chunks that are views on an aligned region (src/fs/direct-io.ts) go to the disk with
 * O_DIRECT, past the page cache, where the file system takes it; the rest through the cache.
 */
export async function writeNewFile(
  path: string, source: AsyncIterable<unknown> | Iterable<unknown>, onChunk?: (chunk: Uint8Array) => void, options: { direct?: boolean } = {},
): Promise<number> {
  const fh = await open(path, 'wx');
  const behind = new SyncBehind(fh);
  let writer: AppendWriter | undefined;
  try {
    const w = await openAppendWriter(path, fh, { direct: options.direct ?? false });
    writer = w;
    for await (const c of source) {
      const chunk = c as Uint8Array;
      onChunk?.(chunk);
      const direct = w.directBytes;
      await w.write(chunk);
      // What went direct is on its way to the disk already: only the cached bytes need flushing.
      behind.wrote(chunk.byteLength - (w.directBytes - direct));
    }
    await behind.sync();
    return w.bytes;
  } finally {
    await behind.settled();
    await writer?.close();
    await fh.close();
  }
}

/**
 * Direct I/O (O_DIRECT) for the bytes a backup or restore moves once: reading a partition's
 * database file for a backup, writing the restored one. The page cache is passed by.
 *
 * Why: through the cache every byte is copied twice, and each page of the cache is taken from
 * memory that may have been handed back (a VM's free page reporting: the next touch faults in the
 * host). Reading 1.1 GiB after the cache was dropped took 2.2 s of kernel CPU that way on our
 * 2-core machine, and 0.1 s direct (docs/performance.md). And a file read or written once does
 * not push the service's working set out of the cache.
 *
 * A direct transfer needs its buffer, length and file offset aligned (DIRECT_ALIGN covers every
 * device we know of). Buffers can be: `alignedRegion` makes memory that starts on a page boundary
 * and `isAligned` tells views on it that start on a DIRECT_ALIGN boundary. Everything else, and
 * everything after O_DIRECT was refused (not Linux, a file system without it), goes through the
 * cache: the same bytes, only slower. Linux keeps direct and cached I/O of one file coherent
 * (cached dirty pages are written back before a direct read of them, and dropped after a direct
 * write over them).
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

/** Alignment of a direct transfer's buffer, length and offset. */
export const DIRECT_ALIGN = 4096;

export const alignUp = (n: number, to = DIRECT_ALIGN): number => Math.ceil(n / to) * to;

const O_DIRECT = (constants as { O_DIRECT?: number }).O_DIRECT;

const WASM_PAGE = 65536;

/** The one part of WebAssembly used here (lib "dom" is not in this project's types). */
type SharedMemory = new (d: { initial: number; maximum: number; shared: true }) => { readonly buffer: SharedArrayBuffer };
const WasmMemory = (globalThis as { WebAssembly?: { Memory: SharedMemory } }).WebAssembly?.Memory;

/** Regions made by alignedRegion that do start on a page boundary. */
const aligned = new WeakSet<ArrayBufferLike>();

/**
 * A SharedArrayBuffer of at least `bytes` that starts on a page boundary: the memory of a shared
 * WebAssembly.Memory, which V8 maps as whole pages (a plain SharedArrayBuffer or Buffer comes from
 * malloc, 16 bytes past a page here, and no direct transfer takes it). Where WebAssembly is not
 * available (--jitless) it is a plain one, which `isAligned` never vouches for.
 */
export function alignedRegion(bytes: number): SharedArrayBuffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  try {
    if (WasmMemory) {
      const region = new WasmMemory({ initial: pages, maximum: pages, shared: true }).buffer;
      aligned.add(region);
      return region;
    }
  } catch {
    // no WebAssembly memory here (or too large for one): a plain region
  }
  return new SharedArrayBuffer(bytes);
}

/** Aligned buffers handed back, by size, for `takeAlignedBuffer` to hand out again. */
const kept = new Map<number, Buffer[]>();
const KEEP_PER_SIZE = 4;

/**
 * A Buffer of `bytes` on an aligned region of its own, one handed back if any: each region keeps
 * about 10 GiB of address space reserved (V8's guard regions for WebAssembly memory, not memory
 * used), so callers that need one per operation reuse them instead of making more.
 */
export function takeAlignedBuffer(bytes: number): Buffer {
  return kept.get(bytes)?.pop() ?? Buffer.from(alignedRegion(bytes), 0, bytes);
}

/** Hands back a buffer from `takeAlignedBuffer` that nothing uses any more (a few per size are kept). */
export function giveAlignedBuffer(buf: Buffer): void {
  const list = kept.get(buf.length) ?? [];
  kept.set(buf.length, list);
  if (list.length < KEEP_PER_SIZE && !list.includes(buf)) list.push(buf);
}

/** `u8` is a view on an `alignedRegion` that starts on a DIRECT_ALIGN boundary. */
export function isAligned(u8: Uint8Array): boolean {
  return aligned.has(u8.buffer) && u8.byteOffset % DIRECT_ALIGN === 0;
}

/** Refusals of O_DIRECT (open, read or write): the file system or the buffer does not take it. */
const REFUSED = new Set(['EINVAL', 'EOPNOTSUPP', 'ENOTSUP']);
const refused = (err: unknown): boolean => REFUSED.has((err as NodeJS.ErrnoException).code ?? '');

/** A second handle on `path` with O_DIRECT, or undefined where it is refused. */
async function openDirect(path: string, flags: number): Promise<FileHandle | undefined> {
  if (O_DIRECT === undefined) return undefined;
  try {
    return await open(path, flags | O_DIRECT);
  } catch (err) {
    if (refused(err)) return undefined;
    throw err;
  }
}

const directable = (u8: Uint8Array, position: number): boolean =>
  u8.byteLength > 0 && u8.byteLength % DIRECT_ALIGN === 0 && position % DIRECT_ALIGN === 0 && isAligned(u8);

export interface SequentialReader {
  /** Fills `into` from the file's `position` up to its end; returns the bytes read (fewer at the end of the file). */
  read(into: Buffer, position: number): Promise<number>;
  /** Bytes read with O_DIRECT so far. */
  readonly directBytes: number;
  close(): Promise<void>;
}

/**
 * Opens `path` for reading, direct where a read's buffer allows; `direct: false` never is.
 * `cached`: a handle on it opened already, for the cached reads (closed with the reader); a file
 * gone since then is read through it only.
 */
export async function openSequentialReader(path: string, options: { direct?: boolean; cached?: FileHandle } = {}): Promise<SequentialReader> {
  const cached = options.cached ?? await open(path, 'r');
  let direct: FileHandle | undefined;
  try {
    if (options.direct ?? true) direct = await openDirect(path, constants.O_RDONLY);
  } catch (err) {
    if (options.cached && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      direct = undefined; // deleted after it was opened: the open handle still reads it
    } else {
      await cached.close();
      throw err;
    }
  }
  let directBytes = 0;
  const stopDirect = async (): Promise<void> => {
    const d = direct;
    direct = undefined;
    await d?.close();
  };
  return {
    get directBytes() {
      return directBytes;
    },
    async read(into, position) {
      if (direct && directable(into, position)) {
        try {
          let have = 0;
          while (have < into.length) {
            const { bytesRead } = await direct.read(into, have, into.length - have, position + have);
            have += bytesRead;
            // A direct read returns whole aligned units until the end of the file.
            if (bytesRead === 0 || bytesRead % DIRECT_ALIGN !== 0) break;
          }
          directBytes += have;
          return have;
        } catch (err) {
          if (!refused(err)) throw err;
          await stopDirect(); // refused once, refused always: the rest goes through the cache
        }
      }
      let have = 0;
      while (have < into.length) {
        const { bytesRead } = await cached.read(into, have, into.length - have, position + have);
        if (bytesRead === 0) break;
        have += bytesRead;
      }
      return have;
    },
    async close() {
      await stopDirect();
      await cached.close();
    },
  };
}

export interface AppendWriter {
  /** Appends all of `chunk`, direct when it allows (see isAligned) and all before it went direct too. */
  write(chunk: Uint8Array): Promise<void>;
  /** Bytes written so far, and of those with O_DIRECT. */
  readonly bytes: number;
  readonly directBytes: number;
  /** The handle of the cached writes (to fsync, and to close last). */
  readonly cached: FileHandle;
  close(): Promise<void>;
}

/**
 * Opens `path` for appending from its start, beside `cached`, the handle of the file just created
 * (`wx`): whole aligned chunks at aligned offsets go direct, the rest (a tail, a buffer of its
 * own) through `cached`. Fsync and close `cached` as usual; `close` closes the direct handle only.
 */
export async function openAppendWriter(path: string, cached: FileHandle, options: { direct?: boolean } = {}): Promise<AppendWriter> {
  let direct = options.direct ?? true ? await openDirect(path, constants.O_WRONLY) : undefined;
  let bytes = 0;
  let directBytes = 0;
  const stopDirect = async (): Promise<void> => {
    const d = direct;
    direct = undefined;
    await d?.close();
  };
  const put = async (fh: FileHandle, chunk: Uint8Array, position: number): Promise<void> => {
    for (let at = 0; at < chunk.byteLength;) at += (await fh.write(chunk, at, chunk.byteLength - at, position + at)).bytesWritten;
  };
  return {
    cached,
    get bytes() {
      return bytes;
    },
    get directBytes() {
      return directBytes;
    },
    async write(chunk) {
      const position = bytes;
      let done = false;
      if (direct && directable(chunk, position)) {
        try {
          await put(direct, chunk, position);
          directBytes += chunk.byteLength;
          done = true;
        } catch (err) {
          if (!refused(err)) throw err;
          await stopDirect();
        }
      }
      if (!done) await put(cached, chunk, position);
      bytes += chunk.byteLength;
    },
    close: stopDirect,
  };
}

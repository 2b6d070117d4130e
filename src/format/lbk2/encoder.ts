/**
 * The writing side of `.lbk` version 2 (a backup): `encodeFolder` and `encodeFiles` stream files
 * into an archive. The stream is pulled by the upload, so memory stays flat (a bounded number of
 * blocks in flight, the output's backpressure). Layout: docs/backup-format.md; bytes: layout.ts;
 * per-block work on worker threads: pool.ts.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LifeboatError, invalidArgUnless } from '../../core/errors.ts';
import { type SequentialReader, openSequentialReader } from '../../fs/direct-io.ts';
import { type LendingReadable, lendingStream } from '../../fs/lending.ts';
import { BoundedQueue } from '../../fs/streams.ts';
import { CODEC_ZSTD, type SealResult, TAG_BYTES, loadZstd, nonceFor } from './codec.mjs';
import { BlockBuffers, READ_AHEAD, noop, runnerOf, slotsFor, view } from './common.ts';
import { type ArchiveKeys, type Keyring, type WrappedDataKey, deriveArchiveKeys, wrapDataKey } from './keys.ts';
import {
  CIPHER_AES256GCM, CIPHER_NONE, COMPRESSION_CODE, type Compression, DEFAULT_BLOCK, MAX_BLOCK, MAX_FILES, MIN_BLOCK, SHA_BYTES,
  type TrailerFile, encodeFooter, encodeHeader, encodeTrailerIndex, safeName, sha256,
} from './layout.ts';
import type { BlockRunner } from './pool.ts';

export interface EncodeOptions {
  /** Plaintext bytes per block: 16 B to 64 MiB; default 1 MiB. */
  readonly blockSize?: number;
  /** Default 'zstd'; 'zstd' falls back to 'gzip' when the zstd package cannot be loaded. */
  readonly compression?: Compression;
  /** Encrypt, with a fresh data key wrapped under `keyring.current`. */
  readonly keyring?: Keyring;
  /** Worker threads (default min(4, cores); 0 works on the calling thread), or a pool to share. */
  readonly workers?: number | BlockRunner;
  /** Where the zstd binding is loaded from (zstd-napi's low-level API); tests point it at nothing. */
  readonly zstdModule?: string;
  /**
   * Read files on disk with O_DIRECT where the system allows (default true): no page cache, so no
   * second copy and the service's cached pages stay (src/fs/direct-io.ts). false: through the cache.
   */
  readonly directRead?: boolean;
  /**
   * Told, as each block goes out, the plaintext bytes read so far and the archive's bytes so far
   * (a backup's progress). Called on the encoding path: it must be cheap and must not throw.
   */
  readonly onProgress?: (p: { readonly plainBytes: number; readonly storedBytes: number }) => void;
}

export interface EncodeResult {
  /** Bytes of the archive object. */
  readonly bytes: number;
  /** The archive's frames digest (hex), for `.bkmetadata` DataFramesSha256: see `ArchiveSummary.framesSha256`. */
  readonly framesSha256: string;
  /** The compression the header records: 'gzip' when 'zstd' was asked for and not available. */
  readonly compression: Compression;
  /** The wrapped data key, for `.bkmetadata` Body.Encryption; absent when not encrypted. */
  readonly encryption?: WrappedDataKey;
  readonly files: number;
  readonly blocks: number;
  /** Plaintext bytes of all files. */
  readonly plainBytes: number;
  /** Of those, the bytes read from disk with O_DIRECT (EncodeOptions.directRead). */
  readonly directBytes: number;
  /** Each file's size and SHA-256, in archive order. */
  readonly archived: readonly ArchivedFile[];
}

export interface EncodedArchive {
  /**
   * The archive; pull it (upload it) to completion. Errors end it with the error. It also lends
   * its chunks (`borrowChunks()`, the storage port's LendingReadable): those are the encoder's
   * own buffers, reused once the next chunk is asked for, where the stream's are copies.
   */
  readonly stream: LendingReadable;
  /** The wrapped data key (also in the result), known before any data: a reader can start at once. */
  readonly encryption?: WrappedDataKey;
  /** Settles once the stream has ended (or failed, or was closed early). */
  readonly result: Promise<EncodeResult>;
}

function closedEarly(cause?: unknown): LifeboatError {
  return new LifeboatError('E_ABORT', 'The backup archive stream was closed before it ended.', cause === undefined ? undefined : { cause });
}

/**
 * Reads up to `size` bytes at `position` into a buffer the pool can transfer (`spare`, or a new
 * one); a slot of the shared region is read direct (src/fs/direct-io.ts). A short read comes back
 * in a buffer of its own, and `spare` is then unused.
 */
async function readBlock(reader: SequentialReader, position: number, size: number, spare: Buffer | undefined): Promise<Buffer> {
  const buf = spare ?? Buffer.allocUnsafeSlow(size);
  const have = await reader.read(buf.subarray(0, size), position);
  if (have === size) return buf;
  // A short last block gets its own small buffer: a view would carry the whole one along.
  const last = Buffer.allocUnsafeSlow(have);
  buf.copy(last, 0, 0, have);
  return last;
}

function sealDigests(digests: Buffer, index: Buffer, headerSha: Buffer, keys: ArchiveKeys | undefined): Buffer {
  if (!keys) return digests;
  const cipher = createCipheriv('aes-256-gcm', keys.blockKey, nonceFor(0, 0, 1));
  cipher.setAAD(Buffer.concat([headerSha, index]));
  return Buffer.concat([cipher.update(digests), cipher.final(), cipher.getAuthTag()]);
}

/** A file for `encodeFiles`: the bytes of a file on disk, a stream, or content made when its turn comes. */
export type ArchiveInput =
  /** The first `bytes` bytes of the file at `path` (all of it when absent); a file shorter than `bytes` fails the archive. */
  | { readonly name: string; readonly path: string; readonly bytes?: number }
  | { readonly name: string; readonly stream: AsyncIterable<Uint8Array> }
  /** Made once the files before it are in the archive, from their sizes and digests (e.g. a manifest of them). */
  | { readonly name: string; readonly content: (before: readonly ArchivedFile[]) => Uint8Array | Promise<Uint8Array> };

/** A file as it went into an archive. */
export interface ArchivedFile {
  readonly name: string;
  readonly bytes: number;
  /** SHA-256 of the file's plaintext (hex), as the trailer records it. */
  readonly sha256: string;
}

/** Reads a file's plaintext block by block into buffers the pool can transfer. */
type BlockSource = (spare: Buffer | undefined) => Promise<Buffer>;

/** Copies `src` into a buffer the pool can transfer: a whole ArrayBuffer of its own. */
function ownedCopy(src: Buffer, spare: Buffer | undefined): Buffer {
  const out = spare && spare.length === src.length ? spare : Buffer.allocUnsafeSlow(src.length);
  src.copy(out);
  return out;
}

interface FileBlocks {
  readonly next: BlockSource;
  /** Bytes read with O_DIRECT (src/fs/direct-io.ts). */
  readonly directBytes: () => number;
  close(): Promise<void>;
}

/**
 * A file's blocks. Calls may overlap: each takes the next `blockSize` bytes when it is made.
 * `unused(b)`: a spare that the block did not go into (the end of the file).
 */
async function fileBlocks(path: string, bytes: number | undefined, blockSize: number, direct: boolean, unused: (b: Buffer) => void): Promise<FileBlocks> {
  const reader = await openSequentialReader(path, { direct });
  let position = 0;
  let left = bytes ?? Number.POSITIVE_INFINITY;
  return {
    next: async (spare) => {
      const want = Math.min(blockSize, left);
      const at = position;
      position += want;
      left -= want;
      const into = want === blockSize ? spare : undefined;
      const block = await readBlock(reader, at, want, into);
      if (spare && block !== spare) unused(spare);
      if (block.length < want && bytes !== undefined) {
        throw new LifeboatError('E_FAIL', `${path} ended ${bytes - at - block.length} bytes before the ${bytes} to archive.`);
      }
      return block;
    },
    directBytes: () => reader.directBytes,
    close: () => reader.close(),
  };
}

function streamBlocks(stream: AsyncIterable<Uint8Array>, blockSize: number): BlockSource {
  const it = stream[Symbol.asyncIterator]();
  let pending: Buffer | undefined;
  let ended = false;
  return async (spare) => {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < blockSize && !ended) {
      if (!pending || pending.length === 0) {
        const r = await it.next();
        if (r.done) {
          ended = true;
          break;
        }
        pending = view(r.value);
        continue;
      }
      const take = pending.subarray(0, blockSize - have);
      parts.push(take);
      have += take.length;
      pending = pending.subarray(take.length);
    }
    const out = have === blockSize && spare ? spare : Buffer.allocUnsafeSlow(have);
    let at = 0;
    for (const p of parts) at += p.copy(out, at);
    return out;
  };
}

function bufferBlocks(content: Buffer, blockSize: number): BlockSource {
  let at = 0;
  return async (spare) => {
    const piece = content.subarray(at, at + blockSize);
    at += piece.length;
    return ownedCopy(piece, piece.length === blockSize ? spare : undefined);
  };
}

/**
 * Streams the files of `folder` (flat: regular files only, sorted by name) as a version 2 archive.
 * The folder is listed now; the files are read as the stream is pulled.
 */
export async function encodeFolder(folder: string, options: EncodeOptions = {}): Promise<EncodedArchive> {
  const names = (await readdir(folder, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  for (const name of names) invalidArgUnless(safeName(name), `File name '${name}' in ${folder} cannot go in a backup archive (A-Z a-z 0-9 . _ -, up to 255).`);
  invalidArgUnless(names.length <= MAX_FILES, `${folder} has more than ${MAX_FILES} files.`);
  return encodeFiles(names.map((name) => ({ name, path: join(folder, name) })), options);
}

/**
 * Streams `files`, in the order given, as a version 2 archive. Nothing is read until the stream
 * is pulled: a file on disk is read block by block, a stream as it comes, and content is made when
 * its turn comes (so a manifest last can carry the digests of the files before it).
 */
export async function encodeFiles(files: readonly ArchiveInput[], options: EncodeOptions = {}): Promise<EncodedArchive> {
  const blockSize = options.blockSize ?? DEFAULT_BLOCK;
  invalidArgUnless(Number.isInteger(blockSize) && blockSize >= MIN_BLOCK && blockSize <= MAX_BLOCK, `blockSize ${blockSize} is not an integer from ${MIN_BLOCK} to ${MAX_BLOCK}.`);
  let compression: Compression = options.compression ?? 'zstd';
  invalidArgUnless(Object.hasOwn(COMPRESSION_CODE, compression), `compression '${String(compression)}' is not zstd, gzip or none.`);
  if (compression === 'zstd' && !loadZstd(options.zstdModule)) compression = 'gzip';
  const codec = COMPRESSION_CODE[compression];
  const names = files.map((f) => f.name);
  for (const name of names) invalidArgUnless(safeName(name), `File name '${name}' cannot go in a backup archive (A-Z a-z 0-9 . _ -, up to 255).`);
  invalidArgUnless(new Set(names).size === names.length, `File names of an archive must be distinct: ${names.join(', ')}.`);
  invalidArgUnless(names.length <= MAX_FILES, `An archive holds at most ${MAX_FILES} files.`);

  const archiveId = randomBytes(16);
  let keys: ArchiveKeys | undefined;
  let encryption: WrappedDataKey | undefined;
  if (options.keyring) {
    const dataKey = randomBytes(32);
    encryption = wrapDataKey(dataKey, options.keyring);
    keys = deriveArchiveKeys(dataKey, archiveId);
    dataKey.fill(0);
  }
  const header = encodeHeader({
    compression: codec, cipher: keys ? CIPHER_AES256GCM : CIPHER_NONE, blockSize, archiveId, keyCheck: keys?.keyCheck ?? Buffer.alloc(16), names,
  });
  const headerSha = header.subarray(header.length - SHA_BYTES);

  let settle!: { resolve: (r: EncodeResult) => void; reject: (e: unknown) => void };
  const result = new Promise<EncodeResult>((resolve, reject) => {
    settle = { resolve, reject };
  });
  result.catch(noop); // the stream carries the same error; a caller that never awaits this must not crash

  // lend: yield the stored bytes where the workers put them (slots of the shared region) and take
  // the slots back once the next chunk is asked for; otherwise the stream gets copies of them.
  async function* frames(lend: boolean): AsyncGenerator<Buffer> {
    let settled = false;
    let pool: { runner: BlockRunner; own: boolean } | undefined;
    interface Sealing { readonly fileIndex: number; readonly job: Promise<SealResult> }
    let queue: BoundedQueue<Sealing> | undefined;
    let producing: Promise<void> | undefined;
    let buffers: BlockBuffers | undefined; // to read the next blocks into, and to compress them into
    const framesHash = createHash('sha256'); // header, frame headers, trailer, footer
    let offset = 0;
    const counts: Array<{ bytes: number; blocks: number; storedBytes: number }> = [];
    const archived: ArchivedFile[] = [];
    const digests: Buffer[] = [];
    let blocks = 0;
    let directBytes = 0;
    const emit = (b: Buffer, structure = true): Buffer => {
      if (structure) framesHash.update(b);
      offset += b.length;
      return b;
    };
    // The frame's chunks, and the slots they are views on (lent: to take back after them).
    const sealed = async ({ fileIndex, job }: Sealing): Promise<{ chunks: Buffer[]; lent: Buffer[] }> => {
      const { parts, spare } = await job;
      for (const b of spare ?? []) buffers?.give(b);
      const file = counts[fileIndex] as { storedBytes: number };
      const lent: Buffer[] = [];
      // parts[0] is the frame header (with the payload's SHA-256), the rest the payload, which may
      // be in a slot (compressed into one, or stored as it was read) that later blocks reuse.
      const chunks = parts.map((p, i) => {
        file.storedBytes += p.length;
        if (!buffers?.slotOf(p)) return emit(view(p), i === 0);
        if (lend) {
          lent.push(view(p));
          return emit(view(p), i === 0);
        }
        const copy = Buffer.from(p);
        buffers.give(p);
        return emit(copy, i === 0);
      });
      if (options.onProgress) {
        let plainBytes = 0;
        for (const c of counts) plainBytes += c.bytes;
        options.onProgress({ plainBytes, storedBytes: offset });
      }
      return { chunks, lent };
    };
    // Reads, hashes and hands blocks to the pool while the frames before them are sealed and
    // written: the reading never waits for the upload's writes, only for room in the queue.
    const produce = async (runner: BlockRunner, q: BoundedQueue<Sealing>): Promise<void> => {
      for (const [fileIndex, input] of files.entries()) {
        const file = { bytes: 0, blocks: 0, storedBytes: 0 };
        counts.push(file);
        const fileHash = createHash('sha256');
        let close = async (): Promise<void> => undefined;
        let read: BlockSource;
        if ('path' in input) {
          const f = await fileBlocks(input.path, input.bytes, blockSize, options.directRead ?? true, (b) => buffers?.give(b));
          read = f.next;
          close = async () => {
            directBytes += f.directBytes();
            await f.close();
          };
        } else if ('stream' in input) {
          read = streamBlocks(input.stream, blockSize);
        } else {
          read = bufferBlocks(view(await input.content(archived.slice())), blockSize);
        }
        // Reads in flight ahead of the block being hashed: a file's reads know their offsets, so
        // READ_AHEAD of them go at once (direct reads have no kernel read-ahead); others one by one.
        const depth = 'path' in input ? READ_AHEAD : 1;
        const ahead: Array<Promise<Buffer>> = [];
        const readNext = (): Promise<Buffer> => {
          const p = read(buffers?.take());
          p.catch(noop); // awaited in turn, or settled before the file is closed
          return p;
        };
        try {
          let block = await readNext();
          for (let blockIndex = 0; ; blockIndex++) {
            // A full block is the last only if nothing follows: a file of whole blocks ends on a full one.
            if (block.length === blockSize) while (ahead.length < depth) ahead.push(readNext());
            fileHash.update(block); // before the block moves to a worker
            const following = block.length === blockSize ? await ahead.shift() : undefined;
            const final = !following || following.length === 0;
            file.bytes += block.length;
            file.blocks++;
            blocks++;
            const out = codec === CODEC_ZSTD ? buffers?.take() : undefined;
            const job = runner.seal(
              { fileIndex, blockIndex, final, plain: block, ...(out ? { out } : {}), compression: codec, zstdModule: options.zstdModule, key: keys?.blockKey, headerSha },
              out ? [block.buffer as ArrayBuffer, out.buffer as ArrayBuffer] : [block.buffer as ArrayBuffer],
            );
            job.catch(noop);
            if (!(await q.push({ fileIndex, job }))) {
              await job.then(noop, noop); // the reader stopped: nothing will take this frame
              return;
            }
            if (final) break;
            block = following as Buffer;
          }
        } finally {
          // Reads past the end (or after a failure) land in slots that are free again once they settle.
          for (const r of await Promise.allSettled(ahead.splice(0))) if (r.status === 'fulfilled') buffers?.give(r.value);
          await close();
        }
        const d = fileHash.digest();
        digests.push(d);
        archived.push({ name: input.name, bytes: file.bytes, sha256: d.toString('hex') });
      }
    };
    try {
      pool = runnerOf(options.workers);
      const window = Math.max(4, pool.runner.size * 3);
      // Plaintext is read, and compressed, into the decoder's layout of slots (BlockBuffers): a
      // full queue's worth of each, the two blocks the reading holds and the frame being written.
      buffers = new BlockBuffers(pool.runner, slotsFor(window), blockSize + TAG_BYTES, blockSize);
      const q = new BoundedQueue<Sealing>(window);
      queue = q;
      producing = produce(pool.runner, q).then(() => q.end(), (err: unknown) => q.fail(err));
      yield emit(header);
      for (let next = await q.shift(); next; next = await q.shift()) {
        const { chunks, lent } = await sealed(next);
        yield* chunks;
        // The next chunk is asked for: the reader is done with these.
        for (const b of lent) buffers.give(b);
      }
      const index = encodeTrailerIndex(counts satisfies TrailerFile[]);
      const body = Buffer.concat([index, sealDigests(Buffer.concat(digests), index, headerSha, keys)]);
      const trailer = Buffer.concat([body, sha256(body)]);
      const trailerOffset = offset;
      yield emit(trailer);
      yield emit(encodeFooter(trailerOffset, trailer.length));
      settled = true;
      settle.resolve({
        bytes: offset, framesSha256: framesHash.digest('hex'), compression, ...(encryption ? { encryption } : {}),
        files: names.length, blocks, plainBytes: counts.reduce((n, f) => n + f.bytes, 0), directBytes, archived,
      });
    } catch (err) {
      settled = true;
      // A destroyed stream throws AbortError into the generator: to the caller that is an early close.
      settle.reject((err as Error).name === 'AbortError' ? closedEarly(err) : err);
      throw err;
    } finally {
      if (!settled) settle.reject(closedEarly());
      queue?.close();
      await producing;
      await Promise.allSettled((queue?.drain() ?? []).map((f) => f.job));
      buffers?.release();
      if (pool?.own) await pool.runner.close();
      keys?.blockKey.fill(0);
    }
  }

  return { stream: lendingStream(frames, { objectMode: false, highWaterMark: 1 << 20 }), ...(encryption ? { encryption } : {}), result };
}

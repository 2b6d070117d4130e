/**
 * The backup data object (`.lbk`), version 2: the files of a replica backup folder in blocks, each
 * compressed (zstd, or gzip where zstd cannot be loaded), checksummed (SHA-256) and, with a
 * keyring, encrypted (AES-256-GCM under a per-backup data key whose wrapped form the caller keeps
 * in `.bkmetadata`). Layout: docs/backup-format.md; bytes: lbk2-layout.ts; per-block work on
 * worker threads: lbk2-pool.ts.
 *
 * - `encodeFolder` streams a folder into an archive: the stream is pulled by the upload, so memory
 *   stays flat (a bounded number of blocks in flight, the output's backpressure).
 * - `decodeToFolder` writes an archive's files into an empty folder, checking everything, and
 *   reads version 1 archives too (archive.ts).
 * - `verifyArchive` checks an archive without writing anything; without the key it checks the
 *   stored bytes and the structure only, and says so.
 * Damage is LIFEBOAT_E_BACKUP_CORRUPT with where and what: the file, the block, the byte offset.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { type FileHandle, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { unpackArchive } from './archive.ts';
import { type SequentialReader, alignUp, openSequentialReader } from '../fs/direct-io.ts';
import { type LendingReadable, lendingStream, lendsChunks } from '../fs/lending.ts';
import { BoundedQueue } from './streams.ts';
import { CODEC_ZSTD, FRAME_HEADER, type OpenErrorKind, type OpenResult, type SealResult, TAG_BYTES, loadZstd, nonceFor } from './lbk2-codec.mjs';
import {
  type ArchiveKeys, type Keyring, type WrappedDataKey, checkWrappedDataKey, deriveArchiveKeys, keyCheckMatches, unwrapDataKey, wrapDataKey,
} from './lbk2-keys.ts';
import {
  CIPHER_AES256GCM, CIPHER_NONE, COMPRESSION_CODE, type Compression, DEFAULT_BLOCK, FOOTER_BYTES, HEADER_FIXED, MAGIC,
  MAX_BLOCK, MAX_FILES, MIN_BLOCK, SHA_BYTES, TRAILER_FIXED, TRAILER_ENTRY, type TrailerFile, VERSION, encodeFooter, encodeHeader,
  encodeTrailerIndex, footerProblem, frameProblem, parseHeaderFixed, parseTrailerIndex, readFrameFields, safeName, sha256, trailerLength,
} from './lbk2-layout.ts';
import { type BlockRunner, type SharedRegion, createBlockPool, defaultWorkers } from './lbk2-pool.ts';

export type { Compression } from './lbk2-layout.ts';
export type { Keyring, WrappedDataKey } from './lbk2-keys.ts';
export { checkWrappedDataKey, makeKeyring, parseKeyring, rewrapDataKey } from './lbk2-keys.ts';
export { type BlockRunner, createBlockPool, defaultWorkers } from './lbk2-pool.ts';

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

export interface ReadOptions {
  /** The backup's wrapped data key (`.bkmetadata` Body.Encryption); needed to read an encrypted archive. */
  readonly encryption?: WrappedDataKey | undefined;
  /** Keys to unwrap it with (any key of the ring, by the record's KeyId). */
  readonly keyring?: Keyring | undefined;
  readonly workers?: number | BlockRunner;
  readonly zstdModule?: string;
}

export interface ArchiveSummary {
  readonly version: 1 | 2;
  readonly files: number;
  /** Blocks of version 2 (0 for version 1). */
  readonly blocks: number;
  /** Plaintext bytes of all files (from the frames' lengths when the contents were not read). */
  readonly bytes: number;
  /** Bytes of the archive object. */
  readonly storedBytes: number;
  readonly encrypted: boolean;
  /** Every file was decrypted, decompressed and compared with its SHA-256. */
  readonly contentsChecked: boolean;
  /** Every block and the trailer's digests passed AES-GCM authentication under the data key. */
  readonly authenticated: boolean;
  /**
   * Version 2: SHA-256 over the header, every frame's 52-byte header, the trailer and the footer,
   * in object order. Each frame header carries the SHA-256 of its stored bytes, so this commits
   * to every byte of the object, as a SHA-256 of all of it would, without hashing the payloads twice.
   */
  readonly framesSha256?: string;
}

const noop = (): void => undefined;

/** A Buffer over the same memory (Buffer.from(Uint8Array) would copy). */
function view(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

function chunkOf(v: unknown): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : view(v as Uint8Array);
}

function corrupt(where: string, what: string): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is damaged: ${what}.`);
}

function closedEarly(cause?: unknown): LifeboatError {
  return new LifeboatError('E_ABORT', 'The backup archive stream was closed before it ended.', cause === undefined ? undefined : { cause });
}

function runnerOf(workers: number | BlockRunner | undefined): { runner: BlockRunner; own: boolean } {
  if (typeof workers === 'object') return { runner: workers, own: false };
  return { runner: createBlockPool(workers ?? defaultWorkers()), own: true };
}

/** At most this much of a region shared with the workers per archive; past it, blocks get buffers of their own. */
const SHARED_BYTES = 64 * 1024 * 1024;

/**
 * The free block buffers of one encode or decode: slots of a region shared with the pool
 * (lbk2-pool.ts `share`), `stride` apart and `size` long, and past them buffers of their own that
 * came back from the workers. The encoder and the decoder ask for the same region (slots of a
 * block and its tag, as many as a decode needs) so that one region, kept by the pool, serves
 * backups and restores in turn; slots are handed out latest freed first, so pages no block
 * needed are never touched and cost no memory.
 */
class BlockBuffers {
  private readonly free: Buffer[] = [];
  private readonly region: SharedRegion | undefined;

  private readonly stride: number;

  /** Slots of `size` bytes, at least `room` apart (rounded up to DIRECT_ALIGN, so that each slot can take a direct read). */
  constructor(runner: BlockRunner, private readonly wanted: number, room: number, private readonly size = room) {
    const stride = alignUp(room);
    this.stride = stride;
    const count = Math.min(wanted, Math.floor(SHARED_BYTES / stride));
    if (count < 1) return;
    this.region = runner.share(count * stride);
    for (let i = count - 1; i >= 0; i--) this.free.push(this.slot(i));
  }

  private slot(i: number): Buffer {
    return (this.region as SharedRegion).buffer.subarray(i * this.stride, i * this.stride + this.size);
  }

  /** The whole slot `u8` lies in, when it is a view on the shared region. */
  slotOf(u8: Uint8Array): Buffer | undefined {
    const r = this.region?.buffer;
    return r && u8.buffer === r.buffer ? this.slot(Math.floor((u8.byteOffset - r.byteOffset) / this.stride)) : undefined;
  }

  /** A free buffer of `size` bytes, if any. */
  take(): Buffer | undefined {
    return this.free.pop();
  }

  /** `u8` is free again: its slot, or its whole buffer when that is `size` long (a few are kept). */
  give(u8: Uint8Array): void {
    const slot = this.slotOf(u8);
    if (slot) this.free.push(slot);
    else if (u8.buffer.byteLength === this.size && this.free.length < this.wanted) this.free.push(Buffer.from(u8.buffer as ArrayBuffer));
  }

  /** Call once no job on the region is in flight. */
  release(): void {
    this.region?.release();
  }
}

/** Blocks of a file on disk read ahead of the one being hashed (see `encodeFiles`). */
const READ_AHEAD = 2;

/**
 * Slots for a queue of `window` blocks, the same for the encoder and the decoder (so one region
 * serves both in turn): two per queued block (plaintext and stored bytes), those of the block
 * waiting for room in the queue, of the one being hashed and of the reads ahead of it, and the
 * one being written.
 * Short of slots, blocks get buffers of their own, which is slower.
 */
const slotsFor = (window: number): number => window * 2 + 5 + READ_AHEAD;

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

/**
 * Pulls exact byte counts out of a stream of chunks, counting the offset in the object. From a
 * lending source (src/fs/lending.ts) it borrows: before it asks for the next chunk it moves what
 * it still holds of the last one into a buffer of its own (two, in turn), and what it hands out is
 * always copied, so a borrowed chunk is never used past its turn.
 */
class ByteReader {
  offset = 0;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private readonly it: AsyncIterator<unknown>;
  private readonly lent: boolean;
  private carries: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];
  private carry = 0;

  constructor(source: AsyncIterable<unknown>) {
    const borrowed = lendsChunks(source) ? source.borrowChunks() : undefined;
    this.lent = borrowed !== undefined;
    this.it = (borrowed ?? source)[Symbol.asyncIterator]();
  }

  /** Copies what is held into the carry not in use (the held views may be on the other). */
  private keepHeld(): void {
    if (this.buffered === 0) {
      this.chunks.length = 0;
      return;
    }
    this.carry ^= 1;
    let into = this.carries[this.carry] as Buffer;
    if (into.length < this.buffered) {
      into = Buffer.allocUnsafeSlow(Math.max(this.buffered, 2 * into.length));
      this.carries[this.carry] = into;
    }
    let pos = 0;
    for (const c of this.chunks) pos += c.copy(into, pos);
    this.chunks.length = 0;
    this.chunks.push(into.subarray(0, pos));
  }

  /** Where the object ends when it ended early (all of it has been buffered). */
  get end(): number {
    return this.offset + this.buffered;
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.ended) {
      if (this.lent) this.keepHeld();
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const b = chunkOf(r.value);
      if (b.length) {
        this.chunks.push(b);
        this.buffered += b.length;
      }
    }
    return this.buffered >= n;
  }

  /** Exactly `n` bytes, at the start of `into` or in a buffer of their own; undefined when the object ends first. */
  async take(n: number, into?: Buffer): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const out = into ? into.subarray(0, n) : Buffer.allocUnsafeSlow(n);
    let pos = 0;
    while (pos < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, n - pos);
      c.copy(out, pos, 0, k);
      pos += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    this.offset += n;
    return out;
  }

  /** Up to `max` bytes without copying, or undefined at the end. */
  async some(max: number): Promise<Buffer | undefined> {
    if (!(await this.fill(1))) return undefined;
    const c = this.chunks[0] as Buffer;
    const out = c.subarray(0, max);
    if (out.length === c.length) this.chunks.shift();
    else this.chunks[0] = c.subarray(out.length);
    this.buffered -= out.length;
    this.offset += out.length;
    return this.lent ? Buffer.from(out) : out;
  }

  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** What is left: the buffered bytes, then the rest of the source. */
  async *rest(): AsyncGenerator<Buffer> {
    while (this.chunks.length) {
      const c = this.chunks.shift() as Buffer;
      this.buffered -= c.length;
      this.offset += c.length;
      yield this.lent ? Buffer.from(c) : c;
    }
    for (let r = await this.it.next(); !r.done; r = await this.it.next()) yield this.lent ? Buffer.from(chunkOf(r.value)) : chunkOf(r.value);
  }

  /** Stops reading the source (it is destroyed). */
  async close(): Promise<void> {
    if (!this.ended) await this.it.return?.();
  }
}

/**
 * Where decoded files go (verify has none): each file is opened, written in order and closed
 * before the next. A buffer given to `write` is reused once its promise resolves: copy what is kept.
 */
export interface ArchiveSink {
  open(name: string): Promise<void>;
  write(data: Buffer): Promise<void>;
  /**
   * The file is complete: `file` is its size and the SHA-256 of exactly the bytes written, which
   * the decode compares with the archive's trailer before it resolves (so a sink that trusts the
   * digest need not hash the file again, but must not commit before the decode resolves).
   */
  close(file: ArchivedFile): Promise<void>;
}

const OPEN_ERRORS: Readonly<Record<OpenErrorKind, string>> = {
  checksum: 'checksum mismatch (SHA-256 of the stored bytes)',
  auth: 'authentication failed (AES-GCM): the block was altered or moved',
  codec: 'compressed with zstd, which this installation cannot load',
  decompress: 'does not decompress to its recorded length',
};

interface ReadMode {
  /** Decrypt and decompress (needs the key when encrypted); false checks stored bytes and structure only. */
  readonly requireContents: boolean;
  readonly sink?: ArchiveSink;
}

/** Reads a version 2 archive after its first 5 bytes were peeked. */
async function readV2(reader: ByteReader, where: string, options: ReadOptions, mode: ReadMode): Promise<ArchiveSummary> {
  const bad = (what: string): LifeboatError => corrupt(where, what);
  const need = async (n: number, inside: string): Promise<Buffer> => {
    const b = await reader.take(n);
    if (!b) throw bad(`truncated: the object ends at byte ${reader.end}, inside ${inside}`);
    return b;
  };

  // Header.
  const framesHash = createHash('sha256'); // see ArchiveSummary.framesSha256
  const fixedBytes = await need(HEADER_FIXED, 'the header');
  const fixed = parseHeaderFixed(fixedBytes);
  if (typeof fixed === 'string') throw bad(`header: ${fixed}`);
  const names: string[] = [];
  const seen = new Set<string>();
  const nameBytes: Buffer[] = [];
  for (let i = 0; i < fixed.fileCount; i++) {
    const len = await need(1, 'the header');
    const name = await need(len[0] as number, 'the header');
    const text = name.toString('latin1');
    if (!safeName(text)) throw bad(`header: file name ${i} is not a valid name`);
    if (seen.has(text)) throw bad(`header: file name ${i} repeats an earlier one`);
    seen.add(text);
    names.push(text);
    nameBytes.push(len, name);
  }
  const headerSha = await need(SHA_BYTES, 'the header');
  if (!sha256(fixedBytes, ...nameBytes).equals(headerSha)) throw bad('header: checksum mismatch');
  for (const part of [fixedBytes, ...nameBytes, headerSha]) framesHash.update(part);
  const encrypted = fixed.cipher === CIPHER_AES256GCM;

  // Keys.
  let keys: ArchiveKeys | undefined;
  if (!encrypted && options.encryption) throw bad('its metadata names a wrapped data key, but the archive is not encrypted');
  if (encrypted && options.encryption && options.keyring) {
    const dataKey = unwrapDataKey(checkWrappedDataKey(options.encryption, `Backup data ${where}`), options.keyring, `Backup data ${where}`);
    keys = deriveArchiveKeys(dataKey, fixed.archiveId);
    dataKey.fill(0);
    if (!keyCheckMatches(keys.keyCheck, fixed.keyCheck)) {
      keys.blockKey.fill(0);
      throw new LifeboatError('LIFEBOAT_E_ENCRYPTION_KEY_MISMATCH',
        `Backup data ${where}: the data key in its metadata is not this archive's (key check differs); the metadata belongs to another backup, or is damaged.`);
    }
  } else if (encrypted && mode.requireContents) {
    throw new LifeboatError('LIFEBOAT_E_ENCRYPTION_KEY_MISSING', options.encryption
      ? `Backup data ${where} is encrypted and no keyring was given to unwrap its data key.`
      : `Backup data ${where} is encrypted and its wrapped data key (Body.Encryption of its .bkmetadata) was not given.`);
  }
  const contents = !encrypted || keys !== undefined;
  if (contents && fixed.compression === CODEC_ZSTD && !loadZstd(options.zstdModule)) {
    keys?.blockKey.fill(0);
    throw new LifeboatError('LIFEBOAT_E_CODEC_UNAVAILABLE', `Backup data ${where} is compressed with zstd, and the zstd package cannot be loaded here.`);
  }

  try {
    // Frames, through the pool in order: a reading loop queues jobs (a bounded queue), a consuming
    // loop takes their results oldest first, so neither waits for the other's I/O. Buffers (stored
    // bytes in, plaintext out) come back from the workers and the sink, and are reused.
    const { runner, own } = runnerOf(options.workers);
    const window = Math.max(4, runner.size * 3);
    const room = fixed.blockSize + TAG_BYTES;
    // Stored bytes and plaintext in slots shared with the workers: enough for a full queue (two
    // each), the block being read, hashed and written; past that, buffers of their own.
    const buffers = new BlockBuffers(runner, slotsFor(window), room);
    const buffer = (): Buffer => buffers.take() ?? Buffer.allocUnsafeSlow(room);
    const release = (u8: Uint8Array | undefined): void => {
      if (u8) buffers.give(u8);
    };
    interface Queued { readonly job: Promise<OpenResult>; readonly at: number; readonly fileIndex: number; readonly blockIndex: number; readonly final: boolean }
    const queue = new BoundedQueue<Queued>(window);
    const counted = names.map(() => ({ bytes: 0, storedBytes: 0, blocks: 0 }));
    const digests: Buffer[] = [];
    let fileHash = createHash('sha256');
    let blocks = 0;
    const where2 = (fileIndex: number, blockIndex: number, at: number): string => `${names[fileIndex]} block ${blockIndex} (frame at byte ${at})`;

    const readFrames = async (): Promise<void> => {
      for (let fileIndex = 0; fileIndex < names.length; fileIndex++) {
        for (let blockIndex = 0; ; blockIndex++) {
          const at = reader.offset;
          const head = await need(FRAME_HEADER, where2(fileIndex, blockIndex, at));
          framesHash.update(head);
          const problem = frameProblem(head, fixed, fileIndex, blockIndex);
          if (problem) throw bad(`${where2(fileIndex, blockIndex, at)}: ${problem}`);
          const f = readFrameFields(head);
          const into = buffer();
          const payload = await reader.take(f.storedLength, into);
          if (!payload) throw bad(`truncated: the object ends at byte ${reader.end}, inside ${where2(fileIndex, blockIndex, at)}`);
          const c = counted[fileIndex] as { bytes: number; storedBytes: number; blocks: number };
          c.bytes += f.plainLength;
          c.storedBytes += FRAME_HEADER + f.storedLength;
          c.blocks++;
          blocks++;
          const out = contents ? buffer() : undefined;
          const job = runner.open(
            { header: head, payload, out, key: keys?.blockKey, headerSha, zstdModule: options.zstdModule, contents },
            (out ? [into.buffer, out.buffer] : [into.buffer]) as ArrayBuffer[],
          );
          job.catch(noop);
          if (!(await queue.push({ job, at, fileIndex, blockIndex, final: f.final }))) {
            await job.then(noop, noop); // the consumer stopped: nothing will take this block
            return;
          }
          if (f.final) break;
        }
      }
    };

    // One write to the sink at a time, left running while the next block is hashed.
    let writing: { readonly done: Promise<void>; readonly buffer: Buffer } | undefined;
    const written = async (): Promise<void> => {
      const w = writing;
      if (!w) return;
      writing = undefined;
      await w.done;
      release(w.buffer);
    };
    const consume = async (q: Queued): Promise<void> => {
      const r = await q.job;
      if (r.error) throw bad(`${where2(q.fileIndex, q.blockIndex, q.at)}: ${OPEN_ERRORS[r.error.kind]}`);
      r.spare?.forEach(release);
      if (!contents) return;
      const plain = view(r.plain as Uint8Array);
      if (q.blockIndex === 0) {
        fileHash = createHash('sha256');
        await mode.sink?.open(names[q.fileIndex] as string);
      }
      fileHash.update(plain);
      await written();
      if (mode.sink) {
        const done = mode.sink.write(plain);
        done.catch(noop); // awaited by the next written()
        writing = { done, buffer: plain };
      } else {
        release(plain);
      }
      if (q.final) {
        await written();
        const d = fileHash.digest();
        digests.push(d);
        await mode.sink?.close({ name: names[q.fileIndex] as string, bytes: (counted[q.fileIndex] as { bytes: number }).bytes, sha256: d.toString('hex') });
      }
    };

    // A problem the reading loop finds is reported after any in an earlier block still queued.
    const reading = readFrames().then(() => queue.end(), (err: unknown) => queue.fail(err));
    try {
      for (let q = await queue.shift(); q; q = await queue.shift()) await consume(q);
    } finally {
      queue.close();
      await reading;
      await writing?.done.catch(noop);
      await Promise.allSettled(queue.drain().map((q) => q.job));
      buffers.release();
      if (own) await runner.close();
    }

    // Trailer.
    const trailerAt = reader.offset;
    const tLen = trailerLength(names.length, fixed.cipher);
    const inTrailer = `the trailer (at byte ${trailerAt})`;
    const trailer = await need(tLen, inTrailer);
    framesHash.update(trailer);
    if (!sha256(trailer.subarray(0, tLen - SHA_BYTES)).equals(trailer.subarray(tLen - SHA_BYTES))) throw bad(`${inTrailer}: checksum mismatch`);
    const indexEnd = TRAILER_FIXED + TRAILER_ENTRY * names.length;
    const index = parseTrailerIndex(trailer.subarray(0, indexEnd), names.length);
    if (typeof index === 'string') throw bad(`${inTrailer}: ${index}`);
    index.forEach((t, i) => {
      const c = counted[i] as TrailerFile;
      if (t.blocks !== c.blocks || t.storedBytes !== c.storedBytes || t.bytes !== c.bytes) {
        throw bad(`${inTrailer}: ${names[i]} has ${c.blocks} blocks, ${c.bytes} bytes, ${c.storedBytes} stored; the trailer says ${t.blocks}, ${t.bytes}, ${t.storedBytes}`);
      }
    });
    let sealed = trailer.subarray(indexEnd, tLen - SHA_BYTES);
    if (keys) {
      const decipher = createDecipheriv('aes-256-gcm', keys.blockKey, nonceFor(0, 0, 1));
      decipher.setAAD(Buffer.concat([headerSha, trailer.subarray(0, indexEnd)]));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      try {
        sealed = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw bad(`${inTrailer}: authentication failed (AES-GCM) of the files' digests`);
      }
    }
    if (contents) {
      digests.forEach((d, i) => {
        if (!d.equals(sealed.subarray(i * SHA_BYTES, (i + 1) * SHA_BYTES))) throw bad(`${names[i]} does not match its SHA-256 in the trailer`);
      });
    }

    // Footer, then nothing.
    const footerAt = reader.offset;
    const footer = await need(FOOTER_BYTES, `the footer (at byte ${footerAt})`);
    framesHash.update(footer);
    const fp = footerProblem(footer, trailerAt, tLen);
    if (fp) throw bad(`the footer (at byte ${footerAt}): ${fp}`);
    if (!(await reader.atEnd())) throw bad(`bytes after the end (at byte ${reader.offset})`);
    return {
      version: 2, files: names.length, blocks, bytes: counted.reduce((n, c) => n + c.bytes, 0), storedBytes: reader.offset, framesSha256: framesHash.digest('hex'),
      encrypted, contentsChecked: contents, authenticated: keys !== undefined,
    };
  } finally {
    keys?.blockKey.fill(0);
  }
}

/** The first bytes: which version, or damage. */
async function versionOf(reader: ByteReader, where: string): Promise<1 | 2> {
  const head = await reader.peek(5);
  if (head.length < 5) throw corrupt(where, `truncated: the object ends at byte ${head.length}, inside the header`);
  if (!head.subarray(0, 4).equals(MAGIC)) throw corrupt(where, 'header: not a Lifeboat backup archive (no LBKA magic)');
  if (head[4] === 1) return 1;
  if (head[4] === VERSION) return 2;
  throw corrupt(where, `header: version ${head[4]} is not one this Lifeboat reads`);
}

/**
 * Writes the files of an archive (version 1 or 2) into `folder`, which must exist and be empty,
 * checking every block and every file. On any failure the files it wrote are removed again.
 * `where` names the object in messages (e.g. `<storage>/<key>`).
 */
export async function decodeToFolder(source: Readable, folder: string, where: string, options: ReadOptions = {}): Promise<ArchiveSummary> {
  invalidArgUnless((await readdir(folder)).length === 0, `The folder to decode ${where} into is not empty: ${folder}.`);
  const reader = new ByteReader(source);
  try {
    if ((await versionOf(reader, where)) === 1) {
      if (options.encryption) throw corrupt(where, 'its metadata names a wrapped data key, but the archive is version 1 (never encrypted)');
      let storedBytes = 0;
      await unpackArchive(Readable.from((async function* () {
        for await (const chunk of reader.rest()) {
          storedBytes += chunk.length;
          yield chunk;
        }
      })()), folder, where);
      let bytes = 0;
      const files = await readdir(folder);
      for (const name of files) bytes += (await stat(join(folder, name))).size;
      return { version: 1, files: files.length, blocks: 0, bytes, storedBytes, encrypted: false, contentsChecked: true, authenticated: false };
    }
    let fh: FileHandle | undefined;
    const sink: ArchiveSink = {
      open: async (name) => {
        fh = await open(join(folder, name), 'wx');
      },
      write: async (data) => {
        for (let at = 0; at < data.length;) at += (await (fh as FileHandle).write(data, at, data.length - at, null)).bytesWritten;
      },
      close: async () => {
        await fh?.close();
        fh = undefined;
      },
    };
    try {
      return await readV2(reader, where, options, { requireContents: true, sink });
    } finally {
      await fh?.close();
    }
  } catch (err) {
    // The folder was empty: whatever is in it now is ours.
    for (const name of await readdir(folder).catch(() => [])) await rm(join(folder, name), { force: true });
    throw err;
  } finally {
    await reader.close();
  }
}

/**
 * Decodes a version 2 archive into `sink`, checking every block, every file and the trailer as
 * decodeToFolder does; resolves only once all of it has been checked. Version 1 archives are
 * refused with E_INVALIDARG (decodeToFolder reads them): callers fall back to it.
 */
export async function decodeFiles(source: Readable, where: string, sink: ArchiveSink, options: ReadOptions = {}): Promise<ArchiveSummary> {
  const reader = new ByteReader(source);
  try {
    if ((await versionOf(reader, where)) === 1) throw new LifeboatError('E_INVALIDARG', `Backup data ${where} is a version 1 archive; decode it into a folder.`);
    return await readV2(reader, where, options, { requireContents: true, sink });
  } finally {
    await reader.close();
  }
}

/** The archive version from an object's first bytes (at least 5), or undefined when they are not an archive's. */
export function archiveVersion(head: Uint8Array): 1 | 2 | undefined {
  if (head.length < 5 || !view(head).subarray(0, 4).equals(MAGIC)) return undefined;
  return head[4] === 1 ? 1 : head[4] === VERSION ? 2 : undefined;
}

/**
 * Checks an archive (version 1 or 2) without writing anything: every block's SHA-256 and the
 * structure always; with the wrapped data key and a keyring also every block's authentication,
 * decompression and each file's SHA-256 (an unencrypted archive's contents are always checked).
 * Throws the first problem, as decodeToFolder does.
 */
export async function verifyArchive(source: Readable, where: string, options: ReadOptions = {}): Promise<ArchiveSummary> {
  const reader = new ByteReader(source);
  try {
    if ((await versionOf(reader, where)) === 1) {
      if (options.encryption) throw corrupt(where, 'its metadata names a wrapped data key, but the archive is version 1 (never encrypted)');
      return await verifyV1(reader, where);
    }
    return await readV2(reader, where, options, { requireContents: false });
  } finally {
    await reader.close();
  }
}

/** Version 1 (archive.ts): magic, manifest, each file's bytes against its length and SHA-256. */
async function verifyV1(reader: ByteReader, where: string): Promise<ArchiveSummary> {
  const bad = (what: string): LifeboatError => corrupt(where, what);
  const head = await reader.take(12);
  if (!head) throw bad('truncated before the manifest');
  if (!head.subarray(4, 8).equals(Buffer.from([1, 0, 0, 0]))) throw bad('not a Lifeboat backup archive, or another version');
  const len = head.readUInt32LE(8);
  if (len > 16 * 1024 * 1024) throw bad('manifest too large');
  const text = await reader.take(len);
  if (!text) throw bad('truncated before the manifest');
  let files: Array<{ name: string; bytes: number; sha256: string }>;
  try {
    files = (JSON.parse(text.toString('utf8')) as { files: typeof files }).files;
    if (!Array.isArray(files)) throw new Error('files');
  } catch {
    throw bad('unreadable manifest');
  }
  let bytes = 0;
  for (const f of files) {
    const h = createHash('sha256');
    for (let left = Number(f.bytes); left > 0;) {
      const c = await reader.some(Math.min(left, 1 << 20));
      if (!c) throw bad(`truncated in ${f.name}`);
      h.update(c);
      left -= c.length;
    }
    if (h.digest('hex') !== f.sha256) throw bad(`${f.name} does not match its checksum`);
    bytes += Number(f.bytes);
  }
  if (!(await reader.atEnd())) throw bad('bytes after the last file');
  return { version: 1, files: files.length, blocks: 0, bytes, storedBytes: reader.offset, encrypted: false, contentsChecked: true, authenticated: false };
}

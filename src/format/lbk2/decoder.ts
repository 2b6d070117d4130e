/**
 * The reading side of `.lbk` version 2 (a restore): `decodeToFolder` writes an archive's files
 * into an empty folder, checking everything, and reads version 1 archives too (archive.ts);
 * `decodeFiles` decodes into a sink. Damage is LIFEBOAT_E_BACKUP_CORRUPT with where and what: the
 * file, the block, the byte offset. Checking without writing: verify.ts.
 */
import { createDecipheriv, createHash } from 'node:crypto';
import { type FileHandle, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LifeboatError, invalidArgUnless } from '../../core/errors.ts';
import { BoundedQueue } from '../../fs/streams.ts';
import { unpackArchive } from '../archive.ts';
import { ByteReader } from './byte-reader.ts';
import { CODEC_ZSTD, FRAME_HEADER, type OpenErrorKind, type OpenResult, TAG_BYTES, loadZstd, nonceFor } from './codec.mjs';
import { BlockBuffers, corrupt, noop, runnerOf, slotsFor, view } from './common.ts';
import type { ArchivedFile } from './encoder.ts';
import { type ArchiveKeys, type Keyring, type WrappedDataKey, checkWrappedDataKey, deriveArchiveKeys, keyCheckMatches, unwrapDataKey } from './keys.ts';
import {
  CIPHER_AES256GCM, FOOTER_BYTES, HEADER_FIXED, MAGIC, SHA_BYTES, TRAILER_FIXED, TRAILER_ENTRY, type TrailerFile, VERSION,
  footerProblem, frameProblem, parseHeaderFixed, parseTrailerIndex, readFrameFields, safeName, sha256, trailerLength,
} from './layout.ts';
import type { BlockRunner } from './pool.ts';

export interface ReadOptions {
  /** The backup's wrapped data key (`.bkmetadata` Body.Encryption); needed to read an encrypted archive. */
  readonly encryption?: WrappedDataKey | undefined;
  /** Keys to unwrap it with (any key of the ring, by the record's KeyId). */
  readonly keyring?: Keyring | undefined;
  readonly workers?: number | BlockRunner;
  readonly zstdModule?: string;
  /** Told the size of each chunk read from `source` as it arrives (a restore's progress). */
  readonly onStoredBytes?: (bytes: number) => void;
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
export async function readV2(reader: ByteReader, where: string, options: ReadOptions, mode: ReadMode): Promise<ArchiveSummary> {
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
export async function versionOf(reader: ByteReader, where: string): Promise<1 | 2> {
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
  const reader = new ByteReader(source, options.onStoredBytes);
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
  const reader = new ByteReader(source, options.onStoredBytes);
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

/** Small file-system helpers with the durability the state library relies on. */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** fsyncs a file or directory by path. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content: write a
 * temporary file beside it, fsync it, rename it over, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncPath(dirname(path));
}

export async function readJsonIfExists(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function recreateDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
  await mkdir(path, { recursive: true });
}

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

export interface CopiedFile {
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * Streams `length` bytes (or all) of `from` into a new file `to`, hashing on the way, and fsyncs
 * it. Memory stays flat whatever the size.
 */
export async function copyFileHashed(from: string, to: string, length?: number): Promise<CopiedFile> {
  const hashing = new HashingStream();
  const source = length === undefined ? createReadStream(from) : createReadStream(from, { start: 0, end: length - 1 });
  await pipeline(source, hashing, createWriteStream(to, { flags: 'wx' }));
  if (length !== undefined && hashing.bytes !== length) {
    throw new Error(`copied ${hashing.bytes} bytes of ${from}, expected ${length}`);
  }
  await fsyncPath(to);
  return { bytes: hashing.bytes, sha256: hashing.hash.digest('hex') };
}

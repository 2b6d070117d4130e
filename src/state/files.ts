/**
 * Small file-system helpers with the durability the state library relies on. What they create is
 * private to the user Lifeboat runs as: folders 0700, files 0600 (PRIVATE_DIR, PRIVATE_FILE).
 */
import { createHash, type Hash } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { writeNewFile } from '../fs/sync-behind.ts';

/** The mode of folders the state library creates: its data and backups are the owner's only. */
export const PRIVATE_DIR = 0o700;
/** The mode of files the state library creates. */
export const PRIVATE_FILE = 0o600;

/** Creates `path` (and missing parents) 0700, and makes it 0700 if it existed (a folder of an older version). */
export async function mkdirPrivate(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR });
  await chmod(path, PRIVATE_DIR);
}

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
  const fh = await open(tmp, 'w', PRIVATE_FILE);
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
  await mkdirPrivate(path);
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
 * Copies `length` bytes (or all) of `from` into a new file `to`, hashing on the way, and fsyncs
 * it. Runs on a worker thread: hashing a large file on the event loop would slow every writer of
 * the partition for the length of the copy. Memory stays flat (one 1 MiB buffer).
 */
export async function copyFileHashed(from: string, to: string, length?: number): Promise<CopiedFile> {
  const worker = new Worker(new URL('./copy-worker.mjs', import.meta.url), { workerData: { from, to, length } });
  const result = await new Promise<{ bytes?: number; sha256?: string; error?: { message: string; code?: string } }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`copy worker exited with ${code}`)));
  }).finally(() => void worker.terminate());
  if (result.error) throw Object.assign(new Error(`copying ${from} to ${to}: ${result.error.message}`), { code: result.error.code });
  if (length !== undefined && result.bytes !== length) throw new Error(`copied ${result.bytes ?? 0} bytes of ${from}, expected ${length}`);
  return { bytes: result.bytes ?? 0, sha256: result.sha256 ?? '' };
}

/** Writes `source` into a new file `to`, flushing as it goes, and fsyncs it (writeNewFile), hashing on the way. */
export async function writeStreamHashed(source: AsyncIterable<Uint8Array>, to: string, options: { direct?: boolean } = {}): Promise<CopiedFile> {
  const hash = createHash('sha256');
  const bytes = await writeNewFile(to, source, (chunk) => hash.update(chunk), options);
  // writeNewFile (src/fs) creates with the default mode; the file holds partition data.
  await chmod(to, PRIVATE_FILE);
  return { bytes, sha256: hash.digest('hex') };
}

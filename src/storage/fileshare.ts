/**
 * FileShare storage: a local or mounted folder. Objects are files under the root; a put writes a
 * temporary file beside the target, fsyncs it, and links it into place (link fails if the
 * target exists, so a committed object is never replaced), then fsyncs the folder. An overwrite
 * renames the temporary file over the target instead, which is atomic.
 *
 * Failures of the file system that may pass (EAGAIN, EBUSY, ETIMEDOUT and the connection errors
 * of a network mount) are marked transient for RetryingStore (src/storage/retry.ts); the rest
 * (EACCES, ENOSPC, EROFS, …) are permanent.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { LifeboatError } from '../core/errors.ts';
import { type SequentialReader, giveAlignedBuffer, openSequentialReader, takeAlignedBuffer } from '../fs/direct-io.ts';
import { lendingStream } from '../fs/lending.ts';
import { writeNewFile } from '../fs/sync-behind.ts';
import { type BlobStore, type ObjectInfo, type PutOptions, TEMP_MARK, checkKey, isTransientCause, lendsChunks } from './port.ts';
/** Where they were first defined; they are the port's now. */
export { TEMP_MARK, checkKey } from './port.ts';

const READ_CHUNK = 1024 * 1024;

async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function unavailable(root: string, err: unknown): LifeboatError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  // The code only: the system's text names paths and says more than a caller needs (the cause keeps it for the log).
  return new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', `File share ${root} cannot be used: ${code}.`, {
    cause: err, ...(isTransientCause(err) ? { details: { transient: true } } : {}),
  });
}

function missing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class FileShareStore implements BlobStore {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `FileShare ${root}`;
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<void> {
    const target = this.path(key);
    const tmp = join(dirname(target), `${TEMP_MARK}${randomUUID()}`);
    try {
      await mkdir(dirname(target), { recursive: true });
      // Flushed as it is written: the fsync before the link then has little left to wait for. Each
      // chunk is written before the next is asked for, so a lending body's own buffers will do.
      await writeNewFile(tmp, body instanceof Uint8Array ? [body] : lendsChunks(body) ? body.borrowChunks() : body);
      // link refuses an existing target (never overwrite); rename replaces it atomically.
      if (options?.overwrite) await rename(tmp, target);
      else await link(tmp, target);
      await fsyncDir(dirname(target));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new LifeboatError('LIFEBOAT_E_STORAGE_OBJECT_EXISTS', `${key} already exists in ${this.description}.`);
      if (err instanceof LifeboatError) throw err;
      if ((err as NodeJS.ErrnoException).code) throw unavailable(this.root, err);
      throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    const path = this.path(key);
    // Open, then read from the handle: a key deleted after a separate existence check would
    // otherwise fail mid-stream instead of NOT_FOUND.
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (missing(err)) throw this.notFound(key);
      throw unavailable(this.root, err);
    }
    try {
      if (!(await fh.stat()).isFile()) throw this.notFound(key);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err instanceof LifeboatError ? err : unavailable(this.root, err);
    }
    if (range && range.end !== undefined && range.end <= range.start) {
      await fh.close();
      return Readable.from([]);
    }
    // 1 MiB reads: a backup's blocks are about that size, and 64 KiB ones cost 16 times the calls and chunks.
    const start = range?.start ?? 0;
    const end = range?.end;
    const root = this.root;
    const handle = fh;
    // Lent, every read goes into one buffer, aligned so that whole chunks are read with O_DIRECT
    // where the file system takes it (an object is read once: src/fs/direct-io.ts); streamed, each
    // read goes into a new buffer, through the page cache.
    const chunks = async function* (lend: boolean): AsyncGenerator<Uint8Array> {
      let reader: SequentialReader | undefined;
      try {
        reader = await openSequentialReader(path, { cached: handle, direct: lend });
      } catch (err) {
        throw unavailable(root, err);
      }
      const reused = lend ? takeAlignedBuffer(READ_CHUNK) : undefined;
      try {
        for (let at = start; end === undefined || at < end;) {
          const want = end === undefined ? READ_CHUNK : Math.min(READ_CHUNK, end - at);
          const buf = reused ?? Buffer.allocUnsafeSlow(want);
          let bytesRead: number;
          try {
            bytesRead = await reader.read(buf.subarray(0, want), at);
          } catch (err) {
            // A read error (EIO, a network mount timing out) reaches the reader as a LifeboatError too.
            throw unavailable(root, err);
          }
          if (bytesRead === 0) return;
          at += bytesRead;
          yield lend || bytesRead === buf.length ? buf.subarray(0, bytesRead) : Buffer.from(buf.subarray(0, bytesRead));
          if (bytesRead < want) return; // the end of the file
        }
      } finally {
        await reader.close().catch(() => undefined);
        if (reused) giveAlignedBuffer(reused); // the last chunk lent is done with: the borrower asked for more, or stopped
      }
    };
    return lendingStream(chunks, { objectMode: false, highWaterMark: READ_CHUNK }, () => { void handle.close().catch(() => undefined); });
  }

  private notFound(key: string): LifeboatError {
    return new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `${key} does not exist in ${this.description}.`);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { key, size: s.size, modifiedUtc: s.mtime } : undefined;
    } catch (err) {
      if (missing(err)) return undefined;
      if (err instanceof LifeboatError) throw err;
      throw unavailable(this.root, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the folders the prefix can reach, in byte order of the keys.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash);
    if (dirKey) checkKey(dirKey);
    const walk = async function* (this: FileShareStore, key: string): AsyncGenerator<ObjectInfo> {
      let entries;
      try {
        entries = await readdir(key ? join(this.root, ...key.split('/')) : this.root, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw unavailable(this.root, err);
      }
      const names = entries.filter((e) => !e.name.startsWith(TEMP_MARK)).map((e) => ({ name: e.name, dir: e.isDirectory() }));
      // A folder `a` holds keys `a/…`, which sort after a file `a` and before `a0`: compare `a/`.
      names.sort((x, y) => Buffer.compare(Buffer.from(x.dir ? `${x.name}/` : x.name), Buffer.from(y.dir ? `${y.name}/` : y.name)));
      for (const e of names) {
        const child = key ? `${key}/${e.name}` : e.name;
        if (e.dir) {
          if (prefix.startsWith(`${child}/`) || `${child}/`.startsWith(prefix)) yield* walk.call(this, child);
        } else if (child.startsWith(prefix)) {
          const info = await this.head(child);
          if (info) yield info;
        }
      }
    };
    yield* walk.call(this, dirKey);
  }

  async delete(key: string): Promise<void> {
    try {
      await rm(this.path(key), { force: true });
    } catch (err) {
      throw unavailable(this.root, err);
    }
  }

  async validate(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      const probe = join(this.root, `${TEMP_MARK}probe-${randomUUID()}`);
      const fh = await open(probe, 'wx');
      await fh.close();
      await rm(probe, { force: true });
    } catch (err) {
      throw unavailable(this.root, err);
    }
  }
}

/** Whether `path` is inside one of `roots` (after resolving `..`). */
export function insideRoots(path: string, roots: readonly string[]): boolean {
  return roots.some((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
}

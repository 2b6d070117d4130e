/**
 * The backup data object (`.lbk`), version 1: the files of a replica backup folder in one stream.
 *
 *   "LBKA" u8 version=1, 3 zero bytes, u32 manifestLength (LE), manifest JSON
 *   {"files":[{"name","bytes","sha256"}]}, then each file's bytes in manifest order.
 *
 * Packing streams the files (memory stays flat); unpacking checks every file's length and SHA-256.
 * Lifeboat now writes version 2 (lbk2/); version 1 backups are still read (lbk2/decoder.ts dispatches
 * here), and packing stays for compatibility tests.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LifeboatError } from '../core/errors.ts';

const MAGIC = Buffer.from([0x4c, 0x42, 0x4b, 0x41, 1, 0, 0, 0]); // "LBKA", version 1
const SAFE_NAME = /^[A-Za-z0-9._-]+$/;

interface ManifestFile { name: string; bytes: number; sha256: string }

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A stream of the archive of every file in `folder` (flat; sub-folders are not part of a replica backup). */
export async function packFolder(folder: string): Promise<Readable> {
  const names = (await readdir(folder, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  const files: ManifestFile[] = [];
  for (const name of names) files.push({ name, bytes: (await stat(join(folder, name))).size, sha256: await sha256File(join(folder, name)) });
  const manifest = Buffer.from(JSON.stringify({ files }));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(manifest.length);
  return Readable.from((async function* () {
    yield Buffer.concat([MAGIC, head, manifest]);
    for (const f of files) yield* createReadStream(join(folder, f.name), { highWaterMark: 1 << 20 });
  })());
}

/** Writes the archive's files into `folder` (which must exist and be empty), checking each. */
export async function unpackArchive(source: Readable, folder: string, where: string): Promise<void> {
  const corrupt = (why: string): LifeboatError => new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is damaged: ${why}.`);
  let buffered = Buffer.alloc(0);
  let manifest: ManifestFile[] | undefined;
  let index = 0;
  let out: Writable | undefined;
  let remaining = 0;
  let hash = createHash('sha256');
  let failed: Error | undefined;
  const openNext = (): void => {
    const f = manifest?.[index];
    if (!f) return;
    if (!SAFE_NAME.test(f.name)) throw corrupt(`file name '${f.name}'`);
    out = createWriteStream(join(folder, f.name), { flags: 'wx' });
    out.on('error', (err) => { failed = err; });
    remaining = f.bytes;
    hash = createHash('sha256');
  };
  const finishFile = async (): Promise<void> => {
    const f = manifest?.[index] as ManifestFile;
    const stream = out as Writable;
    await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (failed) throw failed;
    if (hash.digest('hex') !== f.sha256) throw corrupt(`${f.name} does not match its checksum`);
    index++;
    out = undefined;
    if (manifest && index < manifest.length) openNext();
  };
  const write = async (chunk: Buffer): Promise<void> => {
    const stream = out as Writable;
    if (failed) throw failed;
    hash.update(chunk);
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          stream.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          stream.off('drain', onDrain);
          reject(err);
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
    }
  };
  await pipeline(source, async function (chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      let data: Buffer = chunk;
      if (!manifest) {
        buffered = Buffer.concat([buffered, data]);
        if (buffered.length < 12) continue;
        if (!buffered.subarray(0, 8).equals(MAGIC)) throw corrupt('not a Lifeboat backup archive, or another version');
        const len = buffered.readUInt32LE(8);
        if (len > 16 * 1024 * 1024) throw corrupt('manifest too large');
        if (buffered.length < 12 + len) continue;
        try {
          manifest = (JSON.parse(buffered.subarray(12, 12 + len).toString('utf8')) as { files: ManifestFile[] }).files;
          if (!Array.isArray(manifest)) throw new Error('files');
        } catch {
          throw corrupt('unreadable manifest');
        }
        data = buffered.subarray(12 + len);
        buffered = Buffer.alloc(0);
        openNext();
        while (manifest && index < manifest.length && remaining === 0) await finishFile();
      }
      while (data.length > 0) {
        if (!manifest || index >= manifest.length) throw corrupt('bytes after the last file');
        const take = Math.min(remaining, data.length);
        await write(data.subarray(0, take));
        remaining -= take;
        data = data.subarray(take);
        while (manifest && index < manifest.length && remaining === 0) await finishFile();
      }
    }
    if (!manifest) throw corrupt('truncated before the manifest');
    if (index < manifest.length) throw corrupt(`truncated in ${manifest[index]?.name ?? 'a file'}`);
  });
}

/** Checking an archive (version 1 or 2) without writing anything: `verifyArchive`. */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { LifeboatError } from '../../core/errors.ts';
import { ByteReader } from './byte-reader.ts';
import { corrupt } from './common.ts';
import { type ArchiveSummary, type ReadOptions, readV2, versionOf } from './decoder.ts';

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

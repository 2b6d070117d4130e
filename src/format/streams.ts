/**
 * Reading stored objects: whole (small ones, such as a `.bkmetadata`), or through a reader that
 * hashes what passes, to check a data object against the size and SHA-256 its `.bkmetadata`
 * records while a decoder or verifier pulls it (errors of the source reach the reader, unlike
 * with `.pipe()`).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

export interface HashingReader {
  readonly stream: Readable;
  /** Bytes read so far and their SHA-256 (hex); call once, after the stream was read. */
  digest(): { bytes: number; sha256: string };
}

export function hashingReader(source: AsyncIterable<unknown>): HashingReader {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = Readable.from((async function* () {
    for await (const chunk of source) {
      const b = chunk as Buffer;
      hash.update(b);
      bytes += b.length;
      yield b;
    }
  })(), { objectMode: false });
  return { stream, digest: () => ({ bytes, sha256: hash.digest('hex') }) };
}

/** The whole stream in one buffer: only for small objects. */
export async function readAll(s: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reading an archive object as a stream of exact byte counts (the decoder's input). */
import { lendsChunks } from '../../fs/lending.ts';
import { view } from './common.ts';

function chunkOf(v: unknown): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : view(v as Uint8Array);
}

/**
 * Pulls exact byte counts out of a stream of chunks, counting the offset in the object. From a
 * lending source (src/fs/lending.ts) it borrows: before it asks for the next chunk it moves what
 * it still holds of the last one into a buffer of its own (two, in turn), and what it hands out is
 * always copied, so a borrowed chunk is never used past its turn.
 */
export class ByteReader {
  offset = 0;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private readonly it: AsyncIterator<unknown>;
  private readonly lent: boolean;
  private carries: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];
  private carry = 0;

  /** `onRead`: told each chunk's size as it arrives from the source (progress of a download). */
  constructor(source: AsyncIterable<unknown>, private readonly onRead?: (bytes: number) => void) {
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
        this.onRead?.(b.length);
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
    for (let r = await this.it.next(); !r.done; r = await this.it.next()) {
      const c = chunkOf(r.value);
      this.onRead?.(c.length);
      yield this.lent ? Buffer.from(c) : c;
    }
  }

  /** Stops reading the source (it is destroyed). */
  async close(): Promise<void> {
    if (!this.ended) await this.it.return?.();
  }
}

/** Test helper for lending streams (src/fs/lending.ts). */
import type { LendingReadable } from '../../src/fs/lending.ts';

/** Borrows every chunk, copying each before asking for the next (as a borrower must): the bytes, and how many distinct buffers the chunks were views on. */
export async function borrowAll(s: LendingReadable): Promise<{ bytes: Buffer; buffers: number }> {
  const buffers = new Set<ArrayBufferLike>();
  const copies: Buffer[] = [];
  for await (const c of s.borrowChunks()) {
    buffers.add(c.buffer);
    copies.push(Buffer.from(c));
  }
  return { bytes: Buffer.concat(copies), buffers: buffers.size };
}

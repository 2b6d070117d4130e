import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { DIRECT_ALIGN, alignedRegion, isAligned, openAppendWriter, openSequentialReader } from './direct-io.ts';
import { writeNewFile } from './sync-behind.ts';

const MiB = 1024 * 1024;

function folder(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'direct-read-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Whether this file system takes O_DIRECT at all, asked without the code under test. */
function takesDirect(path: string): boolean {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (flag === undefined) return false;
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | flag);
    readSync(fd, Buffer.from(alignedRegion(DIRECT_ALIGN), 0, DIRECT_ALIGN), 0, DIRECT_ALIGN, 0);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Reads the whole file in `block`-sized reads into places of `region`, as the encoder does. */
async function readAll(path: string, region: Buffer, block: number, options: { direct?: boolean } = {}): Promise<{ bytes: Buffer; directBytes: number }> {
  const reader = await openSequentialReader(path, options);
  const parts: Buffer[] = [];
  try {
    for (let at = 0, i = 0; ; at += block, i++) {
      const into = region.subarray((i % 2) * block, (i % 2) * block + block);
      const n = await reader.read(into, at);
      parts.push(Buffer.from(into.subarray(0, n)));
      if (n < block) break;
    }
    return { bytes: Buffer.concat(parts), directBytes: reader.directBytes };
  } finally {
    await reader.close();
  }
}

it('reads a file front to back into a page-aligned region, with O_DIRECT where the file system takes it', async (t) => {
  const path = join(folder(t), 'data');
  const data = randomBytes(3 * MiB + 1234); // a tail that is not a whole unit
  writeFileSync(path, data);
  const region = Buffer.from(alignedRegion(2 * MiB), 0, 2 * MiB);
  const { bytes, directBytes } = await readAll(path, region, MiB);
  assert.ok(bytes.equals(data));
  if (takesDirect(path)) assert.equal(directBytes, data.length, 'every block, the short tail too, read direct');
  else assert.equal(directBytes, 0, 'this file system refuses O_DIRECT: all of it through the cache');
});

it('only views on an aligned region that start on a boundary are aligned', () => {
  const region = alignedRegion(3 * DIRECT_ALIGN);
  assert.ok(region.byteLength >= 3 * DIRECT_ALIGN);
  assert.equal(isAligned(Buffer.from(region, DIRECT_ALIGN, DIRECT_ALIGN)), true);
  assert.equal(isAligned(Buffer.from(region, 16, DIRECT_ALIGN)), false);
  assert.equal(isAligned(Buffer.allocUnsafeSlow(DIRECT_ALIGN)), false, 'malloc memory is never vouched for');
  assert.equal(isAligned(Buffer.from(new SharedArrayBuffer(DIRECT_ALIGN))), false);
});

it('direct: false, or buffers that are not aligned, go through the page cache', async (t) => {
  const path = join(folder(t), 'data');
  const data = randomBytes(2 * MiB + 5);
  writeFileSync(path, data);
  const off = await readAll(path, Buffer.from(alignedRegion(2 * MiB), 0, 2 * MiB), MiB, { direct: false });
  assert.ok(off.bytes.equals(data));
  assert.equal(off.directBytes, 0);
  const plain = await readAll(path, Buffer.allocUnsafeSlow(2 * MiB), MiB);
  assert.ok(plain.bytes.equals(data));
  assert.equal(plain.directBytes, 0);
  // A region's view one unit in, and one 512 bytes past that: the first is aligned, the second not.
  const region = Buffer.from(alignedRegion(3 * MiB), 0, 3 * MiB);
  const shifted = await readAll(path, region.subarray(DIRECT_ALIGN + 512), MiB);
  assert.ok(shifted.bytes.equals(data));
  assert.equal(shifted.directBytes, 0);
});

it('a direct read sees what was written through the cache and not yet flushed', async (t) => {
  const path = join(folder(t), 'data');
  writeFileSync(path, Buffer.alloc(2 * MiB, 1));
  const fh = await open(path, 'r+');
  const fresh = randomBytes(MiB);
  try {
    await fh.write(fresh, 0, MiB, MiB); // dirty pages in the cache, no fsync
  } finally {
    await fh.close();
  }
  const { bytes, directBytes } = await readAll(path, Buffer.from(alignedRegion(2 * MiB), 0, 2 * MiB), MiB);
  assert.ok(bytes.subarray(0, MiB).equals(Buffer.alloc(MiB, 1)));
  assert.ok(bytes.subarray(MiB).equals(fresh), 'the new second half, not what the disk held before');
  if (takesDirect(path)) assert.equal(directBytes, 2 * MiB);
});

it('writeNewFile with direct writes aligned chunks past the cache and the rest through it, and the file is whole', async (t) => {
  const dir = folder(t);
  const region = Buffer.from(alignedRegion(2 * MiB), 0, 2 * MiB);
  const data = randomBytes(4 * MiB + 333);
  // As the restore's decoder hands them: whole blocks in two reused slots, then a short tail of its own.
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let at = 0, i = 0; at < data.length; at += MiB, i++) {
      const piece = data.subarray(at, at + MiB);
      if (piece.length < MiB) {
        yield Buffer.from(piece);
        continue;
      }
      const slot = region.subarray((i % 2) * MiB, (i % 2) * MiB + MiB);
      piece.copy(slot);
      yield slot;
    }
  }
  const path = join(dir, 'restored');
  assert.equal(await writeNewFile(path, chunks(), undefined, { direct: true }), data.length);
  assert.ok(readFileSync(path).equals(data));
  // Not the default: a chunk from the region at an odd file offset goes through the cache too.
  const mixed = join(dir, 'mixed');
  const tail = Buffer.from(region.subarray(0, 100));
  async function* odd(): AsyncGenerator<Uint8Array> {
    yield Buffer.from('x');
    yield region.subarray(0, MiB);
  }
  assert.equal(await writeNewFile(mixed, odd(), undefined, { direct: true }), MiB + 1);
  assert.ok(readFileSync(mixed).subarray(1, 101).equals(tail));
  await assert.rejects(writeNewFile(path, chunks(), undefined, { direct: true }), { code: 'EEXIST' });
});

it('an append writer counts what went direct: aligned chunks at aligned offsets where the file system takes it, nothing with direct: false', async (t) => {
  const dir = folder(t);
  const region = Buffer.from(alignedRegion(MiB), 0, MiB);
  region.fill(7);
  for (const direct of [true, false]) {
    const path = join(dir, `w-${direct}`);
    const fh = await open(path, 'wx');
    const w = await openAppendWriter(path, fh, { direct });
    try {
      await w.write(region); // aligned: direct
      await w.write(region.subarray(0, 3 * DIRECT_ALIGN)); // aligned too
      await w.write(Buffer.from('tail')); // its own buffer: cached, and the offset is odd from here on
      await w.write(region); // aligned buffer, odd offset: cached
      await fh.sync();
    } finally {
      await w.close();
      await fh.close();
    }
    assert.equal(w.bytes, 2 * MiB + 3 * DIRECT_ALIGN + 4);
    assert.equal(w.directBytes, direct && takesDirect(path) ? MiB + 3 * DIRECT_ALIGN : 0);
    const back = readFileSync(path);
    assert.equal(back.length, w.bytes);
    assert.ok(back.subarray(MiB + 3 * DIRECT_ALIGN, MiB + 3 * DIRECT_ALIGN + 4).equals(Buffer.from('tail')));
    assert.ok(back.subarray(0, MiB).equals(region) && back.subarray(-MiB).equals(region));
  }
});

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { SyncBehind } from './sync-behind.ts';

/** A real file handle whose datasync calls are counted (and can be made to fail or wait). */
async function countedHandle(t: { after(fn: () => void): void }, datasync?: (real: () => Promise<void>) => Promise<void>): Promise<{ fh: FileHandle; path: string; flushes: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sync-behind-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'f');
  const fh = await open(path, 'wx');
  let flushes = 0;
  const real = fh.datasync.bind(fh);
  fh.datasync = () => {
    flushes++;
    return datasync ? datasync(real) : real();
  };
  return { fh, path, flushes: () => flushes };
}

it('flushes in the background every so many bytes, one flush at a time, and syncs at the end', async (t) => {
  const { fh, path, flushes } = await countedHandle(t);
  const behind = new SyncBehind(fh, 1000);
  const piece = Buffer.alloc(400, 7);
  for (let i = 0; i < 10; i++) {
    await fh.write(piece);
    behind.wrote(piece.length);
    await behind.settled(); // let each flush finish, so the next threshold starts one
  }
  assert.equal(flushes(), 3, '4000 bytes in 400-byte writes: a flush after each 1000 or more, counting from the last');
  await behind.sync();
  await fh.close();
  assert.equal(readFileSync(path).length, 4000);
});

it('never starts a second flush while one runs, and sync waits for it', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  const { fh, flushes } = await countedHandle(t, async (real) => { await held; await real(); });
  const behind = new SyncBehind(fh, 10);
  await fh.write(Buffer.alloc(100));
  behind.wrote(100);
  await fh.write(Buffer.alloc(100));
  behind.wrote(100);
  assert.equal(flushes(), 1);
  let synced = false;
  const syncing = behind.sync().then(() => { synced = true; });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(synced, false, 'sync waits for the flush under way');
  release();
  await syncing;
  await fh.close();
});

it('a flush that failed fails sync, and starts no more flushes', async (t) => {
  const { fh, flushes } = await countedHandle(t, async () => { throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }); });
  const behind = new SyncBehind(fh, 10);
  behind.wrote(20);
  await behind.settled();
  behind.wrote(20);
  assert.equal(flushes(), 1);
  await assert.rejects(behind.sync(), /EIO/);
  await fh.close();
});

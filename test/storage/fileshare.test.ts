/**
 * FileShare: the storage contract on a temporary folder, openStorage's root check, and clear,
 * permanent failures for a share that cannot be written.
 */
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { isLifeboatError } from '../../src/core/errors.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import { lendsChunks } from '../../src/storage/port.ts';
import { openStorage } from '../../src/storage/open.ts';
import { isTransient } from '../../src/storage/retry.ts';
import { runStorageContract } from '../contract/storage.contract.ts';
import { borrowAll } from '../support/lending.ts';
import { fileShareUnderAFile } from '../support/permanent-failures.ts';
import { tempDir } from '../support/tmp.ts';

runStorageContract({ name: 'FileShare', create: async (t) => new FileShareStore(join(tempDir(t), 'share')), permanentFailures: async (t) => fileShareUnderAFile(t) });

it('FileShare paths must be absolute and inside the allowed roots', (t) => {
  const root = tempDir(t);
  const policy = { fileShareRoots: [join(root, 'allowed')] };
  assert.ok(openStorage({ StorageKind: 'FileShare', Path: join(root, 'allowed', 'team-a') }, policy));
  for (const Path of ['relative/path', join(root, 'other'), join(root, 'allowed', '..', 'escape'), `${join(root, 'allowed')}-sibling`, '/etc']) {
    assert.throws(() => openStorage({ StorageKind: 'FileShare', Path }, policy), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'), Path);
  }
});

it('a share that cannot be written fails validation with a clear error', async (t) => {
  if (process.getuid?.() === 0) t.diagnostic('running as root: permission bits do not stop root, so this checks a path under a file instead');
  const root = tempDir(t);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(root, 'a-file'), 'x');
  const store = new FileShareStore(join(root, 'a-file', 'share'));
  // A path under a file (ENOTDIR) will not heal by itself: permanent, so a RetryingStore does not wait on it.
  await assert.rejects(store.validate(), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_UNAVAILABLE') && /a-file/.test((e as Error).message) && !isTransient(e));
});

it('FileShare borrows a lending body: the stream itself is never read', async (t) => {
  const store = new FileShareStore(join(tempDir(t), 'share'));
  const { Readable } = await import('node:stream');
  const body = Object.assign(
    Readable.from((async function* () { yield Buffer.from('read from the stream'); })()),
    { borrowChunks: () => (async function* () { yield Buffer.from('lent, '); yield Buffer.from('not copied'); })() },
  );
  await store.put('lent/obj', body);
  const chunks: Buffer[] = [];
  for await (const c of await store.get('lent/obj')) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'lent, not copied');
});

it('FileShare get lends: borrowed chunks come from one reused buffer, the stream gives buffers of their own; an unread stream closes its file', async (t) => {
  const root = tempDir(t);
  const store = new FileShareStore(join(root, 'share'));
  const data = Buffer.alloc(5 * 1024 * 1024 + 1, 'abc');
  await store.put('big', data);
  const lent = await store.get('big');
  assert.ok(lendsChunks(lent));
  const borrowed = await borrowAll(lent);
  assert.equal(borrowed.buffers, 1, 'one buffer for every chunk');
  assert.ok(borrowed.bytes.equals(data));
  const streamed: Buffer[] = [];
  for await (const c of await store.get('big')) streamed.push(c as Buffer);
  assert.ok(new Set(streamed.map((c) => c.buffer)).size > 1);
  assert.ok(Buffer.concat(streamed).equals(data));
  // Destroyed before reading: the file's handle is closed (no descriptor of this process points at it any more).
  const file = join(root, 'share', 'big');
  const openOnIt = (): number => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`) === file; } catch { return false; } }).length;
  const unread = await store.get('big');
  assert.equal(openOnIt(), 1, 'get opened the file');
  const closed = new Promise((r) => unread.once('close', r));
  unread.destroy();
  await closed;
  for (let i = 0; i < 50 && openOnIt() > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(openOnIt(), 0, 'the unread stream closed its file');
  await store.delete('big');
  assert.equal(await store.head('big'), undefined);
});

/**
 * Files the state library writes are the owner's only: under a service's data directory (service
 * manifest, partition folders, state.json, database generations with their -wal and -shm) and in
 * local backup folders (data.sqlite, changes.log, backup.metadata), folders 0700 and files 0600,
 * also after a restore switched generations, and whatever the umask.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openSingleton } from '../support/state.ts';
import { tempDir } from '../support/tmp.ts';

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? [p, ...walk(p)] : [p];
  });
}

function assertPrivate(paths: readonly string[]): void {
  for (const p of paths) {
    const st = statSync(p);
    assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, `${p} has mode ${(st.mode & 0o777).toString(8)}`);
  }
}

describe('state library file modes', { skip: process.platform === 'win32' && 'file modes are POSIX' }, () => {
  it('keeps partition folders 0700 and their files 0600, through backups and a restore', async (t) => {
    const previous = process.umask(0o022); // the usual umask, which would leave files 0644
    t.after(() => process.umask(previous));
    const root = tempDir(t);
    const dataDir = join(root, 'data');
    const { service, partition } = await openSingleton(dataDir);
    t.after(() => service.close());
    partition.transact((tx) => tx.dictionary('d').set('a', 1));
    const full = join(root, 'backups', 'full');
    const incremental = join(root, 'backups', 'inc');
    await partition.backup({ option: 'Full', folder: full });
    partition.transact((tx) => tx.dictionary('d').set('b', 2));
    await partition.backup({ option: 'Incremental', folder: incremental });
    partition.transact((tx) => tx.dictionary('d').set('c', 3));
    await partition.restore([full, incremental], { policy: 'Force' });
    partition.transact((tx) => tx.dictionary('d').set('d', 4));

    const files = walk(join(dataDir, 'partitions'));
    assert.ok(files.some((f) => /data-\d+\.sqlite-wal$/.test(f)), files.join('\n'));
    assert.ok(files.some((f) => f.endsWith('state.json')), files.join('\n'));
    assertPrivate([join(dataDir, 'partitions'), ...files, join(dataDir, 'service.json')]);
    const backupFiles = [...walk(full), ...walk(incremental)];
    assert.deepEqual(backupFiles.map((f) => f.slice(root.length)).sort(),
      ['/backups/full/backup.metadata', '/backups/full/data.sqlite', '/backups/inc/backup.metadata', '/backups/inc/changes.log']);
    assertPrivate([full, incremental, ...backupFiles]);
  });

  it('makes the folders and database of an older, world-readable data directory private when it opens', async (t) => {
    const previous = process.umask(0o022);
    t.after(() => process.umask(previous));
    const dataDir = join(tempDir(t), 'data');
    mkdirSync(dataDir);
    const first = await openSingleton(dataDir);
    first.partition.transact((tx) => tx.dictionary('d').set('a', 1));
    await first.service.close();
    const partitionDir = join(dataDir, 'partitions', first.partition.id);
    for (const p of walk(join(dataDir, 'partitions'))) chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
    chmodSync(join(dataDir, 'partitions'), 0o755);

    const { service } = await openSingleton(dataDir);
    t.after(() => service.close());
    assertPrivate([join(dataDir, 'partitions'), partitionDir, ...walk(partitionDir).filter((f) => /\.sqlite(-wal|-shm)?$/.test(f))]);
  });
});

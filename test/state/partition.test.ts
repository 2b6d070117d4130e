import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLifeboatError } from '../../src/state/index.ts';
import { dump, openSingleton } from '../support/state.ts';
import { tempDir } from '../support/tmp.ts';

const rejectsCode = async (p: Promise<unknown>, code: string): Promise<void> => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLifeboatError(err), `expected a LifeboatError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
};
const throwsCode = (fn: () => unknown, code: string): void => {
  assert.throws(fn, (err: unknown) => isLifeboatError(err) && err.code === code);
};

describe('transactions and dictionaries', () => {
  it('numbers every commit with the next LSN, and keeps data and LSN across reopen', async (t) => {
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir);
    assert.equal(p.lastLsn, 0n);
    assert.equal(p.transact((tx) => tx.dictionary('a').set('x', 1)).lsn, 1n);
    assert.equal(p.transact((tx) => { tx.dictionary('a').set('y', { deep: [1, 'two', null] }); tx.dictionary('b').set('z', new Uint8Array([0, 255])); }).lsn, 2n);
    assert.equal(p.transact(() => 'nothing changed').lsn, undefined);
    assert.equal(p.transact((tx) => tx.dictionary('a').delete('missing')).value, false);
    assert.equal(p.lastLsn, 2n);
    const id = p.id;
    await service.close();

    const again = await openSingleton(dir);
    assert.equal(again.partition.id, id, 'the partition GUID is stable');
    assert.equal(again.partition.lastLsn, 2n);
    assert.deepEqual(dump(again.partition), { a: { x: 1, y: { deep: [1, 'two', null] } }, b: { z: 'hex:00ff' } });
    assert.equal(again.partition.transact((tx) => tx.dictionary('a').set('w', true)).lsn, 3n);
    await again.service.close();
  });

  it('rolls back everything a throwing transaction did, including new dictionaries', async (t) => {
    const { service, partition: p } = await openSingleton(tempDir(t));
    p.transact((tx) => tx.dictionary('a').set('keep', 1));
    assert.throws(() => p.transact((tx) => {
      tx.dictionary('a').set('keep', 2);
      tx.dictionary('fresh').set('k', 1);
      tx.removeDictionary('a');
      throw new Error('boom');
    }), /boom/);
    assert.deepEqual(dump(p), { a: { keep: 1 } });
    assert.equal(p.lastLsn, 1n);
    assert.equal(p.transact((tx) => tx.dictionary('fresh').set('k', 2)).lsn, 2n);
    assert.deepEqual(dump(p), { a: { keep: 1 }, fresh: { k: 2 } });
    await service.close();
  });

  it('enumerates in key order by prefix, range, page and direction', async (t) => {
    const { service, partition: p } = await openSingleton(tempDir(t));
    const keys = ['a', 'ab', 'abc', 'abd', 'b', 'ba', '\u{1F600}', '\uFFFF'];
    p.transact((tx) => { for (const k of keys) tx.dictionary('d').set(k, k.length); });
    const d = p.dictionary('d');
    const list = (o: Parameters<typeof d.enumerate>[0]): string[] => d.enumerate(o).map((e) => e.key);
    // UTF-8 byte order: U+FFFF sorts before U+1F600.
    assert.deepEqual(list({}), ['a', 'ab', 'abc', 'abd', 'b', 'ba', '\uFFFF', '\u{1F600}']);
    assert.deepEqual(list({ prefix: 'ab' }), ['ab', 'abc', 'abd']);
    assert.deepEqual(list({ from: 'abc', to: 'ba' }), ['abc', 'abd', 'b']);
    assert.deepEqual(list({ after: 'abc', limit: 2 }), ['abd', 'b']);
    assert.deepEqual(list({ prefix: 'a', reverse: true, limit: 2 }), ['abd', 'abc']);
    assert.equal(d.count(), keys.length);
    assert.equal(d.has('ba'), true);
    assert.equal(p.dictionary('none').count(), 0);
    assert.deepEqual(p.dictionary('none').enumerate(), []);
    await service.close();
  });

  it('refuses bad arguments with E_INVALIDARG and changes nothing', async (t) => {
    const { service, partition: p } = await openSingleton(tempDir(t));
    const bad: Array<() => unknown> = [
      () => p.transact((tx) => tx.dictionary('d').set('k', undefined as never)),
      () => p.transact((tx) => tx.dictionary('d').set('k', (() => 1) as never)),
      () => p.transact((tx) => tx.dictionary('d').set('k', 10n as never)),
      () => p.transact((tx) => tx.dictionary('d').set(42 as never, 1)),
      () => p.transact((tx) => tx.dictionary('d').set('x'.repeat(70_000), 1)),
      () => p.transact((tx) => tx.dictionary('').set('k', 1)),
      () => p.transact(() => p.transact(() => 1)),
      () => p.transact(async () => 1),
      () => p.dictionary('d').enumerate({ limit: -1 }),
    ];
    for (const fn of bad) throwsCode(fn, 'E_INVALIDARG');
    assert.equal(p.lastLsn, 0n);
    assert.deepEqual(dump(p), {});
    // A transaction object used after its function returned is refused.
    let leaked: Parameters<Parameters<typeof p.transact>[0]>[0] | undefined;
    p.transact((tx) => { leaked = tx; });
    throwsCode(() => leaked?.dictionary('d').set('k', 1), 'E_INVALIDARG');
    await service.close();
    throwsCode(() => p.transact((tx) => tx.dictionary('d').set('k', 1)), 'FABRIC_E_OBJECT_CLOSED');
  });
});

describe('replica backup', () => {
  it('takes a full backup, then incrementals that follow it', async (t) => {
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir, { clock: { now: () => new Date(Date.UTC(2026, 0, 2, 3, 4, 5)) } });
    for (let i = 0; i < 5; i++) p.transact((tx) => tx.dictionary('d').set(`k${i}`, i));
    const seen: string[] = [];
    const full = await p.backup({ option: 'Full', folder: `${dir}/b0`, callback: (info) => { seen.push(info.backupId); return true; } });
    assert.deepEqual(seen, [full.backupId]);
    assert.equal(full.option, 'Full');
    assert.equal(full.parentBackupId, full.backupId);
    assert.equal(full.backupChainId, full.backupId);
    assert.equal(full.lastLsn, 5n);
    assert.equal(full.takenAtUtc, '2026-01-02T03:04:05.000Z');
    assert.equal(full.partitionId, p.id);
    p.transact((tx) => tx.dictionary('d').set('k9', 9));
    const i1 = await p.backup({ option: 'Incremental', folder: `${dir}/b1` });
    assert.deepEqual([i1.parentBackupId, i1.backupChainId, i1.firstLsn, i1.lastLsn, i1.recordCount], [full.backupId, full.backupId, 6n, 6n, 1]);
    const i2 = await p.backup({ option: 'Incremental', folder: `${dir}/b2` });
    assert.deepEqual([i2.parentBackupId, i2.firstLsn, i2.lastLsn, i2.recordCount], [i1.backupId, 7n, 6n, 0], 'an incremental with nothing new is empty');
    assert.equal(p.lastCompletedBackup?.backupId, i2.backupId);
    await service.close();
  });

  it('refuses an incremental without a completed backup, after an epoch change, and when the chain log is too large', async (t) => {
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir, { maxChainLogBytes: 2000 });
    p.transact((tx) => tx.dictionary('d').set('a', 1));
    await rejectsCode(p.backup({ option: 'Incremental', folder: `${dir}/x` }), 'FABRIC_E_MISSING_FULL_BACKUP');
    await p.backup({ folder: `${dir}/f1` });
    await p.advanceConfiguration();
    await rejectsCode(p.backup({ option: 'Incremental', folder: `${dir}/x` }), 'FABRIC_E_MISSING_FULL_BACKUP');
    await p.backup({ folder: `${dir}/f2` });
    p.transact((tx) => tx.dictionary('d').set('big', 'x'.repeat(3000)));
    await rejectsCode(p.backup({ option: 'Incremental', folder: `${dir}/x` }), 'FABRIC_E_MISSING_FULL_BACKUP');
    await p.backup({ folder: `${dir}/f3` });
    p.transact((tx) => tx.dictionary('d').set('small', 1));
    await p.backup({ option: 'Incremental', folder: `${dir}/i3` });
    await service.close();
  });

  it('counts a backup only when the callback resolves true', async (t) => {
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir);
    p.transact((tx) => tx.dictionary('d').set('a', 1));
    await rejectsCode(p.backup({ folder: `${dir}/f`, callback: () => false }), 'LIFEBOAT_E_BACKUP_CALLBACK_FAILED');
    await rejectsCode(p.backup({ folder: `${dir}/f`, callback: () => Promise.reject(new Error('upload failed')) }), 'LIFEBOAT_E_BACKUP_CALLBACK_FAILED');
    assert.equal(p.lastCompletedBackup === undefined, true, 'no backup counts yet');
    await rejectsCode(p.backup({ option: 'Incremental', folder: `${dir}/i` }), 'FABRIC_E_MISSING_FULL_BACKUP');
    const full = await p.backup({ folder: `${dir}/f` });
    await rejectsCode(p.backup({ option: 'Incremental', folder: `${dir}/i`, callback: () => false }), 'LIFEBOAT_E_BACKUP_CALLBACK_FAILED');
    assert.equal(p.lastCompletedBackup?.backupId, full.backupId, 'a refused incremental leaves the chain where it was');
    await service.close();
  });

  it('runs one backup at a time, refusing a second at once', async (t) => {
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir);
    p.transact((tx) => tx.dictionary('d').set('a', 1));
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const first = p.backup({ folder: `${dir}/one`, callback: async () => { await gate; return true; } });
    await new Promise((r) => setTimeout(r, 50));
    await rejectsCode(p.backup({ folder: `${dir}/two` }), 'FABRIC_E_BACKUP_IN_PROGRESS');
    await rejectsCode(p.restore(`${dir}/one`, { policy: 'Force' }), 'FABRIC_E_BACKUP_IN_PROGRESS');
    // Writes go on while a backup is in flight.
    assert.equal(p.transact((tx) => tx.dictionary('d').set('b', 2)).lsn, 2n);
    release();
    const info = await first;
    assert.equal(info.lastLsn, 1n, 'the full backup holds the state when it started');
    await service.close();
  });

  it('truncates change-log records no later incremental needs', async (t) => {
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir);
    for (let i = 0; i < 50; i++) p.transact((tx) => tx.dictionary('d').set(`k${i}`, i));
    await p.backup({ folder: `${dir}/f` });
    p.transact((tx) => tx.dictionary('d').set('after', 1));
    await new Promise((r) => setTimeout(r, 20));
    const inc = await p.backup({ option: 'Incremental', folder: `${dir}/i` });
    assert.equal(inc.recordCount, 1, 'only the change after the full backup');
    await service.close();
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(`${dir}/partitions/${p.id}/data-1.sqlite`, { readonly: true });
    const { n } = db.prepare('SELECT count(*) AS n FROM changes').get() as { n: number };
    db.close();
    assert.equal(n, 0, 'records up to the last backup are truncated');
  });
});

describe('restore', () => {
  async function withChain(t: Parameters<typeof tempDir>[0]) {
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir);
    for (let i = 0; i < 20; i++) p.transact((tx) => tx.dictionary('d').set(`k${i}`, { i }));
    const full = await p.backup({ folder: `${dir}/chain/0-full` });
    p.transact((tx) => { tx.dictionary('d').delete('k3'); tx.dictionary('e').set('bytes', new Uint8Array([1, 2, 3])); });
    const i1 = await p.backup({ option: 'Incremental', folder: `${dir}/chain/1-inc` });
    p.transact((tx) => tx.removeDictionary('e'));
    p.transact((tx) => tx.dictionary('d').set('k4', 'four'));
    const i2 = await p.backup({ option: 'Incremental', folder: `${dir}/chain/2-inc` });
    const expected = dump(p);
    p.transact((tx) => tx.dictionary('d').set('later', 'not in any backup'));
    return { dir, service, p, full, i1, i2, expected };
  }

  it('restores a chain with Force: state of the newest backup, LSN continues from it, DataLossVersion advances, next backup Full', async (t) => {
    const { dir, service, p, i2, expected } = await withChain(t);
    const before = p.epoch;
    const r = await p.restore([`${dir}/chain`], { policy: 'Force' });
    assert.equal(r.chain.length, 3);
    assert.equal(r.restoredLsn, i2.lastLsn);
    assert.deepEqual(dump(p), expected);
    assert.equal(p.lastLsn, i2.lastLsn);
    assert.equal(p.epoch.dataLossVersion, before.dataLossVersion + 1n);
    assert.deepEqual(r.restoredEpoch, p.epoch);
    await rejectsCode(p.backup({ option: 'Incremental', folder: `${dir}/x` }), 'FABRIC_E_MISSING_FULL_BACKUP');
    assert.equal(p.transact((tx) => tx.dictionary('d').set('new', 1)).lsn, i2.lastLsn + 1n);
    await service.close();
    const again = await openSingleton(dir);
    assert.deepEqual(again.partition.epoch, r.restoredEpoch);
    assert.equal(again.partition.dictionary('d').get('new'), 1);
    await again.service.close();
  });

  it('Safe refuses a backup that is not newer than the current state', async (t) => {
    const { dir, service, p } = await withChain(t);
    await rejectsCode(p.restore([`${dir}/chain`]), 'FABRIC_E_RESTORE_SAFE_CHECK_FAILED');
    // An empty partition accepts it with Safe.
    const other = await openSingleton(`${dir}/other`);
    await other.partition.restore([`${dir}/chain`], { policy: 'Safe' });
    assert.equal(other.partition.dictionary('d').get('k4'), 'four');
    await other.service.close();
    await service.close();
  });

  it('validates the chain before changing anything', async (t) => {
    const { dir, service, p } = await withChain(t);
    const before = dump(p);
    const lsn = p.lastLsn;
    await rejectsCode(p.restore([`${dir}/chain/1-inc`, `${dir}/chain/2-inc`], { policy: 'Force' }), 'FABRIC_E_MISSING_FULL_BACKUP');
    await rejectsCode(p.restore([`${dir}/chain/0-full`, `${dir}/chain/2-inc`], { policy: 'Force' }), 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN');
    await rejectsCode(p.restore([`${dir}/nowhere`], { policy: 'Force' }), 'E_INVALIDARG');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(`${dir}/chain/3-interrupted`);
    await rejectsCode(p.restore([`${dir}/chain/0-full`, `${dir}/chain/3-interrupted`], { policy: 'Force' }), 'E_INVALIDARG');
    await rejectsCode(p.restore([], { policy: 'Force' }), 'E_INVALIDARG');
    await rejectsCode(p.restore(`${dir}/chain`, { policy: 'Maybe' as never }), 'E_INVALIDARG');
    assert.deepEqual(dump(p), before);
    assert.equal(p.lastLsn, lsn);
    await service.close();
  });

  it('catches a flipped byte in any backup file, leaves the partition as it was, and can be retried', async (t) => {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const { dir, service, p, expected } = await withChain(t);
    const before = dump(p);
    const epoch = p.epoch;
    for (const file of ['0-full/data.sqlite', '1-inc/changes.log', '2-inc/changes.log', '1-inc/backup.metadata']) {
      const path = `${dir}/chain/${file}`;
      const original = readFileSync(path);
      const damaged = Buffer.from(original);
      const at = Math.floor(damaged.length / 2);
      damaged[at] = (damaged[at] ?? 0) ^ 0x01;
      writeFileSync(path, damaged);
      await rejectsCode(p.restore(`${dir}/chain`, { policy: 'Force' }), 'LIFEBOAT_E_BACKUP_CORRUPT');
      assert.deepEqual(dump(p), before, `state unchanged after a damaged ${file}`);
      assert.deepEqual(p.epoch, epoch);
      writeFileSync(path, original);
    }
    await p.restore(`${dir}/chain`, { policy: 'Force' });
    assert.deepEqual(dump(p), expected);
    await service.close();
  });

  it('refuses writes while restoring, and a second restore at once', async (t) => {
    const { dir, service, p } = await withChain(t);
    const running = p.restore(`${dir}/chain`, { policy: 'Force' });
    await rejectsCode(p.restore(`${dir}/chain`, { policy: 'Force' }), 'FABRIC_E_RESTORE_IN_PROGRESS');
    await rejectsCode(p.backup({ folder: `${dir}/x` }), 'FABRIC_E_RESTORE_IN_PROGRESS');
    await new Promise((r) => setImmediate(r));
    if (p.status === 'Restoring') throwsCode(() => p.transact((tx) => tx.dictionary('d').set('x', 1)), 'FABRIC_E_NOT_READY');
    await running;
    assert.equal(p.status, 'Ready');
    await service.close();
  });
});

describe('data loss', () => {
  it('gives a partition whose data file is removed a new DataLossVersion and runs onDataLoss, which can restore', async (t) => {
    const { rmSync } = await import('node:fs');
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir);
    for (let i = 0; i < 10; i++) p.transact((tx) => tx.dictionary('d').set(`k${i}`, i));
    await p.backup({ folder: `${dir}/full` });
    const expected = dump(p);
    const epoch = p.epoch;
    await service.close();
    rmSync(`${dir}/partitions/${p.id}/data-1.sqlite`);

    const calls: string[] = [];
    const again = await openSingleton(dir, {
      onDataLoss: async (ctx) => {
        calls.push(ctx.partition.status);
        assert.throws(() => ctx.partition.transact((tx) => tx.dictionary('d').set('x', 1)), (e: unknown) => isLifeboatError(e, 'FABRIC_E_NOT_READY'));
        await ctx.restore(`${dir}/full`, { policy: 'Safe' });
        return true;
      },
    });
    const q = again.partition;
    assert.deepEqual(calls, ['DataLoss']);
    assert.equal(q.id, p.id);
    assert.equal(q.status, 'Ready');
    assert.deepEqual(dump(q), expected);
    assert.equal(q.lastLsn, 10n);
    assert.ok(q.epoch.dataLossVersion > epoch.dataLossVersion);
    await again.service.close();
  });

  it('treats an unreadable data file as data loss and keeps it aside', async (t) => {
    const { writeFileSync, readdirSync } = await import('node:fs');
    const dir = tempDir(t);
    const { service, partition: p } = await openSingleton(dir);
    p.transact((tx) => tx.dictionary('d').set('a', 1));
    await service.close();
    writeFileSync(`${dir}/partitions/${p.id}/data-1.sqlite`, 'this is not a database, it is garbage'.repeat(200));
    let called = 0;
    const again = await openSingleton(dir, { onDataLoss: () => { called++; return false; } });
    assert.equal(called, 1);
    assert.equal(again.partition.lastLsn, 0n);
    assert.equal(again.partition.epoch.dataLossVersion, 2n);
    assert.ok(readdirSync(`${dir}/partitions/${p.id}`).some((f) => f.includes('.damaged-')));
    assert.equal(again.partition.transact((tx) => tx.dictionary('d').set('b', 1)).lsn, 1n);
    await again.service.close();
  });

  it('startDataLoss advances the DataLossVersion, keeps state, and breaks the incremental chain', async (t) => {
    const dir = tempDir(t);
    let handled = 0;
    const { service, partition: p } = await openSingleton(dir, { onDataLoss: () => { handled++; return false; } });
    p.transact((tx) => tx.dictionary('d').set('a', 1));
    await p.backup({ folder: `${dir}/f` });
    const dlv = p.epoch.dataLossVersion;
    assert.equal(await p.startDataLoss(), false);
    assert.equal(handled, 1);
    assert.equal(p.epoch.dataLossVersion, dlv + 1n);
    assert.equal(p.dictionary('d').get('a'), 1);
    await rejectsCode(p.backup({ option: 'Incremental', folder: `${dir}/i` }), 'FABRIC_E_MISSING_FULL_BACKUP');
    await service.close();
  });
});

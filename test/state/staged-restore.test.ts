/**
 * Restore from a chain whose folders arrive while it runs (promises, as a host downloading the
 * chain hands them over): each is awaited in its turn, links are checked as they arrive, Safe is
 * decided before the commit, and a source that fails, a link out of place or a Safe refusal leave
 * the partition exactly as it was and still writable.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { LifeboatError, type Partition, isLifeboatError } from '../../src/state/index.ts';
import { waitFor } from '../support/lifeboat.ts';
import { dump, openSingleton } from '../support/state.ts';
import { tempDir } from '../support/tmp.ts';

/** A full backup and two incrementals of a partition, with the data as each left it. */
async function chainOf(p: Partition, dir: string): Promise<{ folders: string[]; states: Array<ReturnType<typeof dump>> }> {
  const folders: string[] = [];
  const states: Array<ReturnType<typeof dump>> = [];
  for (const [i, option] of (['Full', 'Incremental', 'Incremental'] as const).entries()) {
    p.transact((tx) => { tx.dictionary('d').set(`k${i}`, i); tx.dictionary('d').delete(`k${i - 1}`); });
    const folder = join(dir, `b${i}`);
    await p.backup({ option, folder });
    folders.push(folder);
    states.push(dump(p));
  }
  return { folders, states };
}

/** A promise resolved by hand, to hand a folder over later. */
function later<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

const rejectsCode = async (p: Promise<unknown>, code: string, message?: RegExp): Promise<void> => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLifeboatError(err), `expected a LifeboatError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
};

it('applies a chain whose folders arrive one by one, awaiting each only in its turn', async (t) => {
  const dir = tempDir(t);
  const { service, partition: p } = await openSingleton(join(dir, 'data'));
  t.after(() => service.close());
  const { folders, states } = await chainOf(p, dir);
  p.transact((tx) => tx.dictionary('d').set('after', true));

  const second = later<string>();
  const third = later<string>();
  const restoring = p.restore([folders[0] as string, second.promise, third.promise], { policy: 'Force' });
  assert.equal(p.status, 'Restoring');
  // The full backup is applied (the next generation's database appears) while the rest are still "downloading".
  const partitionDir = join(dir, 'data', 'partitions', p.id);
  await waitFor(async () => readdirSync(partitionDir).filter((f) => /^data-\d+\.sqlite$/.test(f)).length, (n) => n >= 2, 30_000, 'the next generation');
  second.resolve(folders[1] as string);
  third.resolve(folders[2] as string);
  const r = await restoring;
  assert.equal(r.chain.length, 3);
  assert.equal(r.restoredLsn, 3n);
  assert.deepEqual(dump(p), states[2]);
  assert.equal(p.status, 'Ready');
});

it('a source that fails, a link out of place, or Safe refusing the target leaves the partition as it was', async (t) => {
  const dir = tempDir(t);
  const { service, partition: p } = await openSingleton(join(dir, 'data'));
  t.after(() => service.close());
  const { folders } = await chainOf(p, dir);
  p.transact((tx) => tx.dictionary('d').set('after', true));
  const before = { data: dump(p), lsn: p.lastLsn, epoch: p.epoch };
  const unchanged = (what: string): void => {
    assert.deepEqual(dump(p), before.data, what);
    assert.equal(p.lastLsn, before.lsn, what);
    assert.equal(p.status, 'Ready', what);
  };

  // The last download fails (damage found while the full is applied): its error is the restore's.
  const damaged = new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', 'Backup data x/y.lbk is damaged: changes.log block 0 (frame at byte 99): checksum mismatch.');
  await rejectsCode(p.restore([folders[0] as string, Promise.resolve(folders[1] as string), Promise.reject(damaged)], { policy: 'Force' }), 'LIFEBOAT_E_BACKUP_CORRUPT', /frame at byte 99/);
  unchanged('after a failed source');

  // The second incremental given before the first: refused as it arrives.
  await rejectsCode(p.restore([folders[0] as string, Promise.resolve(folders[2] as string), Promise.resolve(folders[1] as string)], { policy: 'Force' }), 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN');
  unchanged('after a chain out of order');

  // Safe: the partition is ahead of the chain's target, which is known only once the last arrives.
  await rejectsCode(p.restore([folders[0] as string, Promise.resolve(folders[1] as string)], { policy: 'Safe' }), 'FABRIC_E_RESTORE_SAFE_CHECK_FAILED');
  unchanged('after a Safe refusal');

  // Still writable, and a restore from the same sources then works.
  p.transact((tx) => tx.dictionary('d').set('still', 'writable'));
  const r = await p.restore([folders[0] as string, Promise.resolve(folders[1] as string)], { policy: 'Force' });
  assert.equal(r.restoredLsn, 2n);
});

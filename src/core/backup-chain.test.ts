import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChainLink, incrementalRefusal, planRestoreChain, safeRestoreRefusal } from './backup-chain.ts';
import type { Epoch } from './epoch.ts';
import { isLifeboatError } from './errors.ts';

const E = (dlv: bigint, cv = 1n): Epoch => ({ dataLossVersion: dlv, configurationVersion: cv });
const full = (id: string, lastLsn: bigint, epoch = E(1n)): ChainLink => ({ backupId: id, parentBackupId: id, backupChainId: id, option: 'Full', epoch, firstLsn: 1n, lastLsn });
const inc = (id: string, parent: ChainLink, lastLsn: bigint, epoch = parent.epoch): ChainLink => ({
  backupId: id, parentBackupId: parent.backupId, backupChainId: parent.backupChainId, option: 'Incremental', epoch, firstLsn: parent.lastLsn + 1n, lastLsn,
});
const ids = (links: readonly ChainLink[]): string[] => links.map((l) => l.backupId);
const throwsCode = (fn: () => unknown, code: string): void => {
  assert.throws(fn, (err: unknown) => isLifeboatError(err) && err.code === code);
};

describe('planRestoreChain', () => {
  const f = full('F', 10n);
  const i1 = inc('I1', f, 20n);
  const i2 = inc('I2', i1, 30n);
  const i3 = inc('I3', i2, 40n);

  it('orders the full backup and its incrementals, whatever order they are given in', () => {
    assert.deepEqual(ids(planRestoreChain([i3, f, i2, i1]).chain), ['F', 'I1', 'I2', 'I3']);
    assert.deepEqual(ids(planRestoreChain([f]).chain), ['F']);
  });

  it('needs exactly one full backup', () => {
    throwsCode(() => planRestoreChain([i1, i2]), 'FABRIC_E_MISSING_FULL_BACKUP');
    throwsCode(() => planRestoreChain([f, full('G', 5n)]), 'FABRIC_E_MISSING_FULL_BACKUP');
    throwsCode(() => planRestoreChain([]), 'FABRIC_E_MISSING_FULL_BACKUP');
  });

  it('refuses a gap in the incrementals (full, 1st, 3rd)', () => {
    throwsCode(() => planRestoreChain([f, i1, i3]), 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN');
  });

  it('drops a divergent duplicate that is not on the path to the newest backup', () => {
    const stray = inc('STRAY', i1, 25n);
    const plan = planRestoreChain([f, i1, stray, i2]);
    assert.deepEqual(ids(plan.chain), ['F', 'I1', 'I2']);
    assert.deepEqual(plan.dropped.map((d) => d.backup.backupId), ['STRAY']);
  });

  it('refuses links of another DataLossVersion or chain, and LSNs that do not continue', () => {
    throwsCode(() => planRestoreChain([f, { ...i1, epoch: E(2n) }]), 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN');
    throwsCode(() => planRestoreChain([f, { ...i1, backupChainId: 'OTHER' }]), 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN');
    throwsCode(() => planRestoreChain([f, { ...i1, firstLsn: 12n }]), 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN');
    throwsCode(() => planRestoreChain([f, { ...i1, lastLsn: 5n, firstLsn: 11n }]), 'LIFEBOAT_E_BACKUP_CORRUPT');
  });

  it('accepts an empty incremental (no change since its parent)', () => {
    const empty = inc('EMPTY', f, 10n);
    assert.deepEqual(ids(planRestoreChain([f, empty]).chain), ['F', 'EMPTY']);
  });

  it('refuses a full backup that names another parent, and a backup given twice', () => {
    throwsCode(() => planRestoreChain([{ ...f, parentBackupId: 'X' }]), 'LIFEBOAT_E_BACKUP_CORRUPT');
    throwsCode(() => planRestoreChain([f, i1, i1]), 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN');
  });
});

describe('safeRestoreRefusal', () => {
  it('allows only a backup strictly ahead on LSN and not behind on epoch', () => {
    assert.equal(safeRestoreRefusal({ epoch: E(0n, 0n), lsn: 0n }, { epoch: E(1n), lsn: 5n }), undefined);
    assert.equal(safeRestoreRefusal({ epoch: E(1n), lsn: 4n }, { epoch: E(1n), lsn: 5n }), undefined);
    assert.match(safeRestoreRefusal({ epoch: E(1n), lsn: 5n }, { epoch: E(1n), lsn: 5n }) ?? '', /LSN 5/);
    assert.match(safeRestoreRefusal({ epoch: E(2n), lsn: 1n }, { epoch: E(1n), lsn: 5n }) ?? '', /epoch/);
    assert.match(safeRestoreRefusal({ epoch: E(1n, 2n), lsn: 1n }, { epoch: E(1n, 1n), lsn: 5n }) ?? '', /epoch/);
  });
});

describe('incrementalRefusal', () => {
  const last = { backupId: 'F', backupChainId: 'F', epoch: E(1n), lastLsn: 10n, chainLogBytes: 100 };
  const ok = { lastBackup: last, currentEpoch: E(1n), logTruncatedThrough: 10n, logBytesSinceBackup: 50, maxChainLogBytes: 1000 };
  it('allows an incremental in the same epoch with the log intact and under the limit', () => {
    assert.equal(incrementalRefusal(ok), undefined);
  });
  it('refuses without a completed backup, after an epoch change, after truncation, and over the size limit', () => {
    assert.match(incrementalRefusal({ ...ok, lastBackup: undefined }) ?? '', /no backup/);
    assert.match(incrementalRefusal({ ...ok, currentEpoch: E(1n, 2n) }) ?? '', /epoch changed/);
    assert.match(incrementalRefusal({ ...ok, currentEpoch: E(2n) }) ?? '', /epoch changed/);
    assert.match(incrementalRefusal({ ...ok, logTruncatedThrough: 11n }) ?? '', /truncated/);
    assert.match(incrementalRefusal({ ...ok, logBytesSinceBackup: 900 }) ?? '', /limit/);
  });
});

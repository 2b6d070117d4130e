import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLifeboatError } from '../core/errors.ts';
import type { BackupInfoWire } from '../wire/backups.ts';
import { pickBackup } from './operations.ts';
import { policyFromFlags } from './policy.ts';
import { UsageError } from './output.ts';

function b(id: string, chain: string, type: 'Full' | 'Incremental', at: string): BackupInfoWire {
  return {
    BackupId: id, BackupChainId: chain, ApplicationName: 'fabric:/A', ServiceName: 'fabric:/A/S', PartitionInformation: { ServicePartitionKind: 'Singleton', Id: 'p' },
    BackupLocation: `A/S/p/${id}.lbk`, BackupType: type, EpochOfLastBackupRecord: { DataLossVersion: '1', ConfigurationVersion: '1' }, LsnOfLastBackupRecord: '1',
    CreationTimeUtc: at, ServiceManifestVersion: '1.0.0', FailureError: null,
  };
}

describe('pickBackup', () => {
  // Oldest first, as candidatesOf sorts them: chain c1 (full, inc, inc), then chain c2 (full, inc).
  const all = [
    b('f1', 'c1', 'Full', '2026-12-07T01:00:00Z'), b('i1', 'c1', 'Incremental', '2026-12-07T02:00:00Z'), b('i2', 'c1', 'Incremental', '2026-12-07T03:00:00Z'),
    b('f2', 'c2', 'Full', '2026-12-07T04:00:00Z'), b('i3', 'c2', 'Incremental', '2026-12-07T05:00:00Z'),
  ];
  const ids = (x: BackupInfoWire[]): string[] => x.map((y) => y.BackupId);

  it('the newest, with its chain from the full backup', () => {
    const { target, chain } = pickBackup(all, {}, 'p');
    assert.equal(target.BackupId, 'i3');
    assert.deepEqual(ids(chain), ['f2', 'i3']);
  });
  it('a backup by id (any case), its chain not going past it', () => {
    const { target, chain } = pickBackup(all, { backupId: 'I1' }, 'p');
    assert.equal(target.BackupId, 'i1');
    assert.deepEqual(ids(chain), ['f1', 'i1']);
  });
  it('a point in time: the newest at or before it', () => {
    assert.equal(pickBackup(all, { time: '2026-12-07T03:30:00Z' }, 'p').target.BackupId, 'i2');
    assert.equal(pickBackup(all, { time: '2026-12-07T04:00:00Z' }, 'p').target.BackupId, 'f2');
  });
  it('nothing to pick is not found (404)', () => {
    for (const pick of [{ time: '2026-12-06T00:00:00Z' }, { backupId: 'nope' }]) {
      assert.throws(() => pickBackup(all, pick, 'p'), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_NOT_FOUND') && e.details?.status === 404);
    }
    assert.throws(() => pickBackup([], {}, 'p'), (e: unknown) => isLifeboatError(e));
  });
});

describe('policyFromFlags', () => {
  it('builds a BackupPolicyDescription from flags', () => {
    assert.deepEqual(policyFromFlags('p', { storage: 'fileshare:/b', daily: '9:00,21:30', maxIncrementals: '4', autoRestore: true, retention: 'P7D' }), {
      Name: 'p', AutoRestoreOnDataLoss: true, MaxIncrementalBackups: 4,
      Schedule: { ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Daily', RunTimes: ['0001-01-01T09:00:00Z', '0001-01-01T21:30:00Z'] },
      Storage: { StorageKind: 'FileShare', Path: '/b' }, RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: 'P7D', MinimumNumberOfBackups: 0 },
    });
  });
  it('an update changes only the parts given', () => {
    const base = policyFromFlags('p', { storage: 'fileshare:/b', interval: 'PT1H', retention: 'P1D', minBackups: '3' });
    const changed = policyFromFlags('p', { maxIncrementals: '2' }, base);
    assert.deepEqual(changed, { ...base, MaxIncrementalBackups: 2 });
  });
  it('refuses what cannot make a policy', () => {
    for (const f of [{ storage: 'fileshare:/b' }, { interval: 'PT1H' }, { storage: 'fileshare:/b', interval: 'PT1H', daily: '09:00' }, { storage: 'fileshare:/b', daily: 'nine' },
      { storage: 'fileshare:/b', interval: 'PT1H', minBackups: '2' }, { storage: 'fileshare:/b', interval: 'PT1H', maxIncrementals: '-1' }]) {
      assert.throws(() => policyFromFlags('p', f), (e: unknown) => e instanceof UsageError, JSON.stringify(f));
    }
  });
});

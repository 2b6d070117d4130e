/**
 * GetBackupProgress and GetRestoreProgress carry Lifeboat's byte counts (BytesTransferred,
 * TotalBytes) from the host's reports; a report with malformed counts is refused.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseReport } from '../../src/core/host-protocol.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';

it('the progress answers show the bytes a backup read and a restore read', async (t) => {
  const lb = await startTestLifeboat(t);
  const pid = (lb.sample?.service.partitionList[0] as { id: string }).id;
  lb.sample?.service.partitionList[0]?.transact((tx) => tx.dictionary('kv').set('k', 'v'.repeat(100_000)));
  const before = await lb.client.operations.backupProgress(pid);
  assert.equal(before.BytesTransferred, undefined, 'no counts before any backup');
  await lb.client.operations.backupPartition(pid, { storage: lb.storage });
  const b = await lb.client.operations.waitForBackup(pid);
  assert.equal(b.BackupState, 'Success');
  assert.ok(typeof b.TotalBytes === 'number' && b.TotalBytes > 100_000 && b.BytesTransferred === b.TotalBytes, `backup counts: ${JSON.stringify(b)}`);
  await lb.client.operations.restorePartition(pid, { backupId: b.BackupId, backupLocation: b.BackupLocation, storage: lb.storage });
  const r = await lb.client.operations.waitForRestore(pid);
  assert.equal(r.RestoreState, 'Success');
  assert.ok(typeof r.TotalBytes === 'number' && r.TotalBytes > 0 && r.BytesTransferred === r.TotalBytes, `restore counts: ${JSON.stringify(r)}`);
});

it('a report\'s byte counts must be whole numbers of bytes', () => {
  assert.deepEqual(parseReport({ OperationId: 'o', State: 'InProgress', Progress: { BytesTransferred: 5, TotalBytes: 9 } }),
    { OperationId: 'o', State: 'InProgress', Progress: { BytesTransferred: 5, TotalBytes: 9 } });
  for (const bad of [{ BytesTransferred: -1 }, { BytesTransferred: 1.5 }, { BytesTransferred: '3' }, { BytesTransferred: 1, TotalBytes: Number.MAX_SAFE_INTEGER + 2 }, 7]) {
    assert.throws(() => parseReport({ OperationId: 'o', State: 'InProgress', Progress: bad }), TypeError, JSON.stringify(bad));
  }
});

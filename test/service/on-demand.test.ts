import { lbFetch } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { startTestLifeboat, waitFor } from '../support/lifeboat.ts';

const V = 'api-version=6.4';

it('backs a sample partition up on demand and restores it through the REST API', async (t) => {
  const lb = await startTestLifeboat(t);
  const sample = lb.sample;
  assert.ok(sample);
  for (let i = 0; i < 50; i++) await fetch(`${sample.url}/kv/key${i}`, { method: 'PUT', body: `value${i}` });
  const partitions = (await (await lbFetch(`${lb.url}/Services/SampleApp~MyStatefulService/$/GetPartitions?api-version=6.0`)).json()) as { Items: Array<{ PartitionInformation: { Id: string } }> };
  assert.equal(partitions.Items.length, 4);
  const pid = partitions.Items[0]?.PartitionInformation.Id as string;
  const p = sample.service.partition(pid);
  const before = p.dictionary('kv').enumerate();
  assert.ok(before.length > 0);

  const res = await lbFetch(`${lb.url}/Partitions/${pid}/$/Backup?${V}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ BackupStorage: lb.storage }) });
  assert.equal(res.status, 202);
  const done = await waitFor(async () => (await (await lbFetch(`${lb.url}/Partitions/${pid}/$/GetBackupProgress?${V}`)).json()) as Record<string, unknown>,
    (v) => v.BackupState !== 'Accepted' && v.BackupState !== 'BackupInProgress', 30_000, 'backup');
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
  assert.equal(done.LsnOfLastBackupRecord, p.lastLsn.toString());

  const list = (await (await lbFetch(`${lb.url}/Partitions/${pid}/$/GetBackups?${V}`)).json()) as { Items: Array<Record<string, string>> };
  assert.equal(list.Items.length, 1);
  const backup = list.Items[0] as Record<string, string>;
  assert.equal(backup.BackupId, done.BackupId);
  assert.equal(backup.BackupType, 'Full');

  // Change the partition, then restore the backup over it.
  p.transact((tx) => { for (const { key } of before) tx.dictionary('kv').delete(key); tx.dictionary('kv').set('after', 'x'); });
  const r = await lbFetch(`${lb.url}/Partitions/${pid}/$/Restore?${V}`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ BackupId: backup.BackupId, BackupLocation: backup.BackupLocation, BackupStorage: lb.storage }),
  });
  assert.equal(r.status, 202, await r.text());
  const restored = await waitFor(async () => (await (await lbFetch(`${lb.url}/Partitions/${pid}/$/GetRestoreProgress?${V}`)).json()) as Record<string, unknown>,
    (v) => v.RestoreState !== 'Accepted' && v.RestoreState !== 'RestoreInProgress', 30_000, 'restore');
  assert.equal(restored.RestoreState, 'Success', JSON.stringify(restored));
  assert.equal(restored.RestoredLsn, done.LsnOfLastBackupRecord);
  assert.deepEqual(p.dictionary('kv').enumerate(), before);
  // The sample app serves the restored data.
  const first = before[0] as { key: string; value: unknown };
  assert.equal(await (await fetch(`${sample.url}/kv/${first.key}`)).text(), first.value);
});

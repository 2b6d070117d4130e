/**
 * Data loss of a protected partition (sf-behaviour.md §2.12): auto-restore of the newest backup
 * with Safe, waiting for a user's restore when the policy does not auto-restore, SkipAutoRestore,
 * and unprotected partitions left to their own handler.
 */
import { lbFetch } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import type { Partition } from '../../src/state/index.ts';
import { type TestLifeboat, startTestLifeboat, waitFor } from '../support/lifeboat.ts';

const V = 'api-version=6.4';

async function createPolicy(lb: TestLifeboat, autoRestore: boolean): Promise<void> {
  await lb.service.policies.createPolicy({
    Name: 'p', AutoRestoreOnDataLoss: autoRestore, MaxIncrementalBackups: 0,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' }, Storage: lb.storage,
  }, false);
}

async function backUp(lb: TestLifeboat, pid: string): Promise<void> {
  const r = await lbFetch(`${lb.url}/Partitions/${pid}/$/Backup?${V}`, { method: 'POST' });
  assert.equal(r.status, 202, await r.text());
  const done = await waitFor(() => lb.service.backups.backupProgress(pid), (v) => v.BackupState === 'Success' || v.BackupState === 'Failure', 30_000, 'backup');
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
}

const restoreState = async (lb: TestLifeboat, pid: string): Promise<string> => (await lb.service.restores.restoreProgress(pid)).RestoreState;

function put(p: Partition, key: string, value: string): void {
  p.transact((tx) => tx.dictionary('kv').set(key, value));
}

it('auto-restores the newest backup with Safe when a protected partition loses its data at startup', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lifeboat-'));
  const first = await startTestLifeboat(t, { scheduler: { manual: true, jitterMs: 0 } }, dataDir);
  assert.ok(first.sample);
  const p0 = first.sample.service.partitionList[0] as Partition;
  await createPolicy(first, true);
  await first.service.protection.enableBackup({ kind: 'Application', name: 'fabric:/SampleApp' }, { BackupPolicyName: 'p' });
  put(p0, 'a', '1');
  put(p0, 'b', '2');
  await backUp(first, p0.id);
  const expected = p0.dictionary('kv').enumerate();
  await first.close();

  // The disk lost the partition's database.
  const dir = join(dataDir, 'hosts', 'local', 'SampleApp', 'MyStatefulService', 'partitions', p0.id);
  for (const f of readdirSync(dir)) if (f.startsWith('data-')) rmSync(join(dir, f));

  const second = await startTestLifeboat(t, { scheduler: { manual: true, jitterMs: 0 }, dataLossRetryMs: 100 }, dataDir);
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  assert.ok(second.sample);
  const again = second.sample.service.partition(p0.id);
  await waitFor(async () => again.status, (s) => s === 'Ready', 30_000, 'the partition to leave data loss');
  assert.deepEqual(again.dictionary('kv').enumerate(), expected);
  assert.equal(await restoreState(second, p0.id), 'Success');
  // The other partitions lost nothing and were not restored.
  for (const p of second.sample.service.partitionList.filter((x) => x.id !== p0.id)) assert.equal(await restoreState(second, p.id), 'Invalid');
});

it('an auto-restore that Safe refuses fails and retries; SkipAutoRestore lets the partition keep its state', async (t) => {
  const lb = await startTestLifeboat(t, { scheduler: { manual: true, jitterMs: 0 }, dataLossRetryMs: 100 });
  assert.ok(lb.sample);
  const p0 = lb.sample.service.partitionList[0] as Partition;
  await createPolicy(lb, true);
  await lb.service.protection.enableBackup({ kind: 'Partition', id: p0.id }, { BackupPolicyName: 'p' });
  put(p0, 'a', '1');
  await backUp(lb, p0.id);
  put(p0, 'a', 'newer than the backup');

  const loss = p0.startDataLoss();
  // The replica is ahead of the backup: Safe refuses, the restore fails, and the partition waits.
  const failed = await waitFor(() => lb.service.restores.restoreProgress(p0.id), (v) => v.RestoreState === 'Failure', 30_000, 'the refused auto-restore');
  assert.equal(failed.FailureError?.Code, 'FABRIC_E_RESTORE_SAFE_CHECK_FAILED', JSON.stringify(failed));
  assert.equal(p0.status, 'DataLoss');

  // SkipAutoRestore is a 9.1 operation.
  const old = await lbFetch(`${lb.url}/Partitions/${p0.id}/$/SkipAutoRestore?${V}`, { method: 'POST' });
  assert.equal(old.status, 400);
  const skip = await lbFetch(`${lb.url}/Partitions/${p0.id}/$/SkipAutoRestore?api-version=9.1`, { method: 'POST' });
  assert.equal(skip.status, 202, await skip.text());
  assert.equal(await loss, false);
  assert.equal(p0.status, 'Ready');
  assert.equal(p0.dictionary('kv').get('a'), 'newer than the backup');
  p0.transact((tx) => tx.dictionary('kv').set('after', 'writes work'));
});

it('without AutoRestoreOnDataLoss the partition waits for a user restore (Latest), which it gets with Force', async (t) => {
  const lb = await startTestLifeboat(t, { scheduler: { manual: true, jitterMs: 0 }, dataLossRetryMs: 100 });
  assert.ok(lb.sample);
  const [p0, p1] = lb.sample.service.partitionList as [Partition, Partition];
  await createPolicy(lb, false);
  await lb.service.protection.enableBackup({ kind: 'Partition', id: p0.id }, { BackupPolicyName: 'p' });
  put(p0, 'a', 'old');
  await backUp(lb, p0.id);
  put(p0, 'a', 'older backup is not the newest');
  await backUp(lb, p0.id);
  const expected = p0.dictionary('kv').enumerate();
  put(p0, 'a', 'lost');

  const loss = p0.startDataLoss();
  await new Promise((r) => setTimeout(r, 500)); // several asks: it keeps waiting
  assert.equal(p0.status, 'DataLoss');
  assert.equal(await restoreState(lb, p0.id), 'Invalid', 'no restore was started for it');
  assert.throws(() => put(p0, 'x', 'y'), /data loss|DataLoss|not accepting|NOT_READY/i);

  const r = await lbFetch(`${lb.url}/Partitions/${p0.id}/$/Restore?api-version=9.1&Latest=true`, { method: 'POST' });
  assert.equal(r.status, 202, await r.text());
  assert.equal(await loss, true);
  // The partition is restored; the host's Success report reaches the service just after.
  assert.equal((await lb.client.operations.waitForRestore(p0.id)).RestoreState, 'Success');
  assert.deepEqual(p0.dictionary('kv').enumerate(), expected);

  // An unprotected partition is left to the application's handler (none here: state unchanged).
  put(p1, 'k', 'v');
  assert.equal(await p1.startDataLoss(), false);
  assert.equal(p1.dictionary('kv').get('k'), 'v');
});

/**
 * End to end, in real time, through the official client: a one-minute FrequencyBased policy
 * enabled on fabric:/SampleApp takes a backup of each of its 4 partitions within 70 s, and the
 * next round is incremental. Takes about two and a half minutes.
 */
import { officialRequestOptions } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { it } from 'node:test';
import sf from 'azure-servicefabric';
import type * as models from 'azure-servicefabric/lib/models/index.js';
import moment from 'moment';
import { startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { APP_ID, SERVICE_ID } from '../support/sample.ts';

const ServiceFabricClient = sf.default;

it('a 1-minute policy on fabric:/SampleApp backs up all 4 partitions within 70 s, then incrementally', { timeout: 240_000 }, async (t) => {
  const lb = await startTestLifeboat(t); // the real clock, the scheduler's own loop, default jitter
  assert.ok(lb.sample);
  const client = new ServiceFabricClient(lb.url, { noRetryPolicy: true, requestOptions: officialRequestOptions() });
  for (let i = 0; i < 40; i++) await fetch(`${lb.sample.url}/kv/k${i}`, { method: 'PUT', body: `v${i}` });
  const pids = ((await client.getPartitionInfoList(SERVICE_ID)).items ?? []).map((p) => p.partitionInformation?.id ?? '');
  assert.equal(pids.length, 4);

  const storage: models.FileShareBackupStorageDescription = { storageKind: 'FileShare', path: lb.storage.Path };
  const schedule: models.FrequencyBasedBackupScheduleDescription = { scheduleKind: 'FrequencyBased', interval: moment.duration('PT1M') };
  await client.createBackupPolicy({ name: 'every-minute', autoRestoreOnDataLoss: false, maxIncrementalBackups: 5, schedule, storage });
  const enabledAt = Date.now();
  await client.enableApplicationBackup(APP_ID, { backupPolicyName: 'every-minute' });

  const backupsOf = async (pid: string): Promise<models.BackupInfo[]> => (await client.getPartitionBackupList(pid)).items ?? [];
  const all = async (): Promise<models.BackupInfo[][]> => Promise.all(pids.map(backupsOf));
  const first = await waitFor(all, (lists) => lists.every((l) => l.length >= 1), 75_000, 'a backup of every partition');
  const firstDoneMs = Date.now() - enabledAt;
  t.diagnostic(`first round: all 4 partitions backed up ${firstDoneMs} ms after EnableBackup`);
  assert.ok(firstDoneMs <= 70_000, `all 4 partitions were backed up ${firstDoneMs} ms after EnableBackup; the policy's interval is 60 s`);
  for (const l of first) assert.equal(l[0]?.backupType, 'Full');

  // Something to back up in the next round, then the second round: incremental, same chain.
  for (let i = 0; i < 40; i++) await fetch(`${lb.sample.url}/kv/k${i}`, { method: 'PUT', body: `w${i}` });
  const second = await waitFor(all, (lists) => lists.every((l) => l.length >= 2), 90_000, 'a second backup of every partition');
  for (const l of second) {
    const sorted = [...l].sort((a, b) => (a.creationTimeUtc?.getTime() ?? 0) - (b.creationTimeUtc?.getTime() ?? 0));
    assert.deepEqual(sorted.slice(0, 2).map((b) => b.backupType), ['Full', 'Incremental']);
    assert.equal(sorted[1]?.backupChainId, sorted[0]?.backupId);
  }
  t.diagnostic(`scheduler lag (real time): ${JSON.stringify(lb.scheduler.lagStats())}`);
});

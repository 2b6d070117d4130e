/**
 * Retention through the running service: periodic backups on a fake clock, the plan with reasons
 * (GetRetentionPlan, deleting nothing), a sweep that deletes metadata before data and finishes an
 * interrupted deletion first, and a policy update that applies at once.
 */
import { lbFetch } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { dataKeyOfMetadata, metadataKeyOf } from '../../src/core/backup-layout.ts';
import { LifeboatError } from '../../src/core/errors.ts';
import type { Partition } from '../../src/state/index.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { HOUR, MINUTE, fakeClock, step, write } from '../support/periodic.ts';

const V = 'api-version=6.4';
const SERVICE = 'fabric:/SampleApp/MyStatefulService';

interface Decision { BackupId: string; BackupType: string; BackupLocation: string; CreationTimeUtc: string; Reason: string }
interface Plan { PolicyName: string; CutoffUtc: string; NextRunUtc: string; LastRunUtc: string | null; Keep: Decision[]; Delete: Decision[] }

/** Delete calls fail for keys `failDelete` accepts (a crash between a backup's two deletions). */
function faultyDeletes(failDelete: { test: (key: string) => boolean }): (s: BlobStore) => BlobStore {
  return (s) => Object.assign(Object.create(s) as BlobStore, {
    delete: async (key: string) => {
      if (failDelete.test(key)) throw new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', `injected: cannot delete ${key}`);
      return s.delete(key);
    },
  });
}

it('keeps what restores need, deletes the rest metadata first, resumes after an interruption and applies a policy update', async (t) => {
  const clock = fakeClock();
  let failing: string | undefined;
  const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 }, wrapStorage: faultyDeletes({ test: (k) => k === failing }) });
  assert.ok(lb.sample);
  const p0 = lb.sample.service.partitionList[0] as Partition;
  const policy = (retention: string) => ({
    Name: 'hourly', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 2,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' }, Storage: lb.storage,
    RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: retention, MinimumNumberOfBackups: 2 },
  });
  await lb.service.policies.createPolicy(policy('PT3H'), false);
  await lb.service.protection.enableBackup({ kind: 'Partition', id: p0.id }, { BackupPolicyName: 'hourly' });
  await lb.scheduler.tick();

  // Eight hourly backups: F I I F I I F I (t1 … t8).
  for (let i = 1; i <= 8; i++) {
    write([p0], String(i));
    const r = await step(lb, clock, HOUR);
    assert.equal(r.started.length, 1, `hour ${i}`);
  }
  const backups = ((await (await lbFetch(`${lb.url}/Partitions/${p0.id}/$/GetBackups?${V}`)).json()) as { Items: Decision[] }).Items;
  assert.deepEqual(backups.map((b) => b.BackupType), ['Full', 'Incremental', 'Incremental', 'Full', 'Incremental', 'Incremental', 'Full', 'Incremental']);
  const id = (i: number): string => (backups[i - 1] as Decision).BackupId;

  // The plan, deleting nothing: older than 3 h are t1–t4; t4 is the newest full among them (the
  // base of the retention window), so t3, t2, t1 go, newest first.
  const planRes = await lbFetch(`${lb.url}/Partitions/${p0.id}/$/GetRetentionPlan?${V}`);
  assert.equal(planRes.status, 200);
  const plan = (await planRes.json()) as Plan;
  assert.equal(plan.PolicyName, 'hourly');
  assert.equal(plan.CutoffUtc, new Date(clock.now().getTime() - 3 * HOUR).toISOString());
  assert.deepEqual(plan.Delete.map((d) => d.BackupId), [id(3), id(2), id(1)]);
  assert.deepEqual(plan.Keep.map((d) => d.BackupId), [id(8), id(7), id(6), id(5), id(4)]);
  assert.match(plan.Keep.find((d) => d.BackupId === id(4))?.Reason ?? '', /^kept: newest full backup older than 3 h /);
  for (const d of plan.Delete) assert.match(d.Reason, /^deleted: older than 3 h /);
  for (const b of backups) assert.ok(existsSync(join(lb.share, metadataKeyOf(b.BackupLocation))), 'the plan deleted nothing');

  // A sweep interrupted after t2's metadata is gone but before its data is.
  failing = dataKeyOfMetadata(metadataKeyOf((backups[1] as Decision).BackupLocation));
  const first = await lb.retention.runDue();
  assert.deepEqual(first.results.map((r) => [r.partitionId, r.deleted]), [[p0.id, [id(3)]]]);
  assert.match(first.results[0]?.error ?? '', /injected/);
  assert.equal(existsSync(join(lb.share, metadataKeyOf((backups[1] as Decision).BackupLocation))), false, 't2 metadata deleted first');
  assert.equal(existsSync(join(lb.share, failing)), true, 't2 data still there');
  const listed = ((await (await lbFetch(`${lb.url}/Partitions/${p0.id}/$/GetBackups?${V}`)).json()) as { Items: Decision[] }).Items.map((b) => b.BackupId);
  assert.deepEqual(listed, [id(1), id(4), id(5), id(6), id(7), id(8)], 'a half-deleted backup is not listed');

  // Not due again until the retry a minute later; then it finishes t2 first and goes on.
  failing = undefined;
  assert.deepEqual((await lb.retention.runDue()).results, []);
  clock.advance(MINUTE);
  const second = await lb.retention.runDue();
  assert.deepEqual(second.results.map((r) => [r.deleted, r.error]), [[[id(2), id(1)], undefined]]);
  for (const i of [1, 2, 3]) {
    const loc = (backups[i - 1] as Decision).BackupLocation;
    assert.equal(existsSync(join(lb.share, loc)), false, `t${i} data`);
    assert.equal(existsSync(join(lb.share, metadataKeyOf(loc))), false, `t${i} metadata`);
  }
  // Hourly cadence (RetentionDuration under a day).
  const after = (await (await lbFetch(`${lb.url}/Partitions/${p0.id}/$/GetRetentionPlan?${V}`)).json()) as Plan;
  assert.equal(after.LastRunUtc, clock.now().toISOString());
  assert.equal(after.NextRunUtc, new Date(clock.now().getTime() + HOUR).toISOString());
  assert.deepEqual(after.Delete, []);

  // A policy update applies at the next run, at once: with 1 h, t7 is the window's base.
  clock.advance(30 * MINUTE);
  await lb.service.policies.updatePolicy('hourly', policy('PT1H'), false);
  const third = await lb.retention.runDue();
  assert.deepEqual(third.results.map((r) => r.deleted), [[id(6), id(5), id(4)]]);
  const left = ((await (await lbFetch(`${lb.url}/Partitions/${p0.id}/$/GetBackups?${V}`)).json()) as { Items: Decision[] }).Items.map((b) => b.BackupId);
  assert.deepEqual(left, [id(7), id(8)]);

  // Never below the minimum: nothing more goes, however old.
  clock.advance(48 * HOUR);
  assert.deepEqual((await lb.retention.runDue()).results.map((r) => r.deleted), [[]]);
  assert.equal(((await lb.service.listing.pageBackups({ kind: 'Service', name: SERVICE }, { latest: false }, { maxResults: 0 })).items).length, 2);
});

it('GetRetentionPlan says clearly why there is no plan', async (t) => {
  const lb = await startTestLifeboat(t, { scheduler: { manual: true, jitterMs: 0 } });
  assert.ok(lb.sample);
  const pid = (lb.sample.service.partitionList[0] as Partition).id;
  const get = async (p: string): Promise<{ status: number; body: { Error: { Code: string; Message: string } } }> => {
    const r = await lbFetch(`${lb.url}/Partitions/${p}/$/GetRetentionPlan?${V}`);
    return { status: r.status, body: (await r.json()) as { Error: { Code: string; Message: string } } };
  };
  const notEnabled = await get(pid);
  assert.equal(notEnabled.status, 404);
  assert.equal(notEnabled.body.Error.Code, 'FABRIC_E_BACKUP_NOT_ENABLED');
  await lb.service.policies.createPolicy({
    Name: 'no-retention', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 0,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' }, Storage: lb.storage,
  }, false);
  await lb.service.protection.enableBackup({ kind: 'Partition', id: pid }, { BackupPolicyName: 'no-retention' });
  const none = await get(pid);
  assert.equal(none.status, 400);
  assert.match(none.body.Error.Message, /has no retention policy/);
  const missing = await get('00000000-0000-4000-8000-000000000000');
  assert.equal(missing.body.Error.Code, 'FABRIC_E_PARTITION_NOT_FOUND');
  assert.equal((await get('not-a-guid')).body.Error.Code, 'E_INVALIDARG');
});

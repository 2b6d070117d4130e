/**
 * Partition health from System.BackupRestoreManager, read with the official client: Backup Ok
 * after a periodic backup, Warning after a failed one, gone when backup is disabled; Restore Ok
 * for two hours after a user's restore.
 */
import { officialRequestOptions } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { it } from 'node:test';
import sf from 'azure-servicefabric';
import { LifeboatError } from '../../src/core/errors.ts';
import type { Partition } from '../../src/state/index.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { HOUR, MINUTE, fakeClock, step, write } from '../support/periodic.ts';

const ServiceFabricClient = sf.default;

it('reports Backup and Restore health as Service Fabric does, through the official client', async (t) => {
  const clock = fakeClock();
  let failPuts = false;
  const wrapStorage = (s: BlobStore): BlobStore => Object.assign(Object.create(s) as BlobStore, {
    put: async (...args: Parameters<BlobStore['put']>) => {
      if (failPuts) throw new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', 'injected: the share is full');
      return s.put(...args);
    },
  });
  const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 }, wrapStorage });
  assert.ok(lb.sample);
  const p0 = lb.sample.service.partitionList[0] as Partition;
  const client = new ServiceFabricClient(lb.url, { noRetryPolicy: true, requestOptions: officialRequestOptions() });
  const health = () => client.getPartitionHealth(p0.id);

  const none = await health();
  assert.equal(none.aggregatedHealthState, 'Ok');
  assert.deepEqual(none.healthEvents, []);
  assert.equal(none.partitionId, p0.id);

  await lb.service.policies.createPolicy({
    Name: 'hourly', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 3,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' }, Storage: lb.storage,
  }, false);
  await lb.service.protection.enableBackup({ kind: 'Partition', id: p0.id }, { BackupPolicyName: 'hourly' });
  await lb.scheduler.tick();
  write([p0], 'a');
  await step(lb, clock, HOUR);
  const ok = await health();
  assert.equal(ok.aggregatedHealthState, 'Ok');
  assert.deepEqual(ok.healthEvents?.map((e) => [e.sourceId, e.property, e.healthState]), [['System.BackupRestoreManager', 'Backup', 'Ok']]);

  failPuts = true;
  write([p0], 'b');
  await step(lb, clock, HOUR);
  const warning = await health();
  assert.equal(warning.aggregatedHealthState, 'Warning');
  const event = warning.healthEvents?.[0];
  assert.equal(event?.property, 'Backup');
  assert.equal(event?.healthState, 'Warning');
  assert.match(event?.description ?? '', /the share is full/);
  assert.equal(warning.unhealthyEvaluations?.length, 1);
  assert.equal(warning.unhealthyEvaluations?.[0]?.healthEvaluation?.kind, 'Event');
  // The filter: Error only (8) hides the Warning event but not the aggregated state.
  const filtered = await client.getPartitionHealth(p0.id, { eventsHealthStateFilter: 8 });
  assert.deepEqual(filtered.healthEvents, []);
  assert.equal(filtered.aggregatedHealthState, 'Warning');

  // A retry that succeeds brings it back to Ok.
  failPuts = false;
  await waitFor(async () => {
    clock.advance(MINUTE);
    await lb.scheduler.tick();
    await waitFor(() => lb.scheduler.activePeriodicOperations(), (n) => n === 0, 30_000, 'periodic backups');
    return (await health()).aggregatedHealthState;
  }, (s) => s === 'Ok', 30_000, 'a successful retry');

  // A user's restore: Restore Ok, for two hours.
  const backups = (await lb.service.listing.pageBackups({ kind: 'Partition', id: p0.id }, { latest: true }, { maxResults: 0 })).items;
  const newest = backups[0];
  assert.ok(newest);
  await lb.service.restores.restorePartition(p0.id, { BackupId: newest.BackupId, BackupLocation: newest.BackupLocation });
  await waitFor(() => lb.service.restores.restoreProgress(p0.id), (v) => v.RestoreState === 'Success', 30_000, 'restore');
  const restored = await health();
  assert.deepEqual(restored.healthEvents?.map((e) => [e.property, e.healthState]), [['Backup', 'Ok'], ['Restore', 'Ok']]);
  clock.advance(2 * HOUR + MINUTE);
  assert.deepEqual((await health()).healthEvents?.map((e) => e.property), ['Backup']);

  // Disabling backup clears the Backup property.
  await lb.service.protection.disableBackup({ kind: 'Partition', id: p0.id }, undefined);
  assert.deepEqual((await health()).healthEvents, []);

  const missing = await client.getPartitionHealth('00000000-0000-4000-8000-000000000000').then(() => undefined, (e: { statusCode?: number; body?: { error?: { code?: string } } }) => e);
  assert.equal(missing?.statusCode, 404);
  assert.equal(missing?.body?.error?.code, 'FABRIC_E_PARTITION_NOT_FOUND');
});

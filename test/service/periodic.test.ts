import { lbFetch } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { metadataKeyOf } from '../../src/core/backup-layout.ts';
import type { Registration } from '../../src/core/host-protocol.ts';
import { decodeBkMetadata } from '../../src/format/bkmetadata.ts';
import type { Partition } from '../../src/state/index.ts';
import { type TestLifeboat, startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { type FakeClock, MINUTE, fakeClock, step, write } from '../support/periodic.ts';
import { tempDir } from '../support/tmp.ts';

const V = 'api-version=6.4';
const APP = 'fabric:/SampleApp';

const policyBody = (lb: TestLifeboat, maxIncrementalBackups = 2): Record<string, unknown> => ({
  Name: 'every-minute', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: maxIncrementalBackups,
  Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1M' }, Storage: lb.storage,
});

async function setUp(t: Parameters<typeof startTestLifeboat>[0]): Promise<{ lb: TestLifeboat; clock: FakeClock; partitions: readonly Partition[] }> {
  const clock = fakeClock();
  const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 } });
  assert.ok(lb.sample);
  await lb.service.policies.createPolicy(policyBody(lb), false);
  await lb.service.protection.enableBackup({ kind: 'Application', name: APP }, { BackupPolicyName: 'every-minute' });
  const first = await lb.scheduler.tick(); // the schedule starts now: nothing due yet
  assert.equal(first.started.length, 0);
  return { lb, clock, partitions: lb.sample.service.partitionList };
}

async function backupsOf(lb: TestLifeboat, pid: string): Promise<Array<Record<string, string>>> {
  const res = await lbFetch(`${lb.url}/Partitions/${pid}/$/GetBackups?${V}`);
  assert.equal(res.status, 200);
  // In the order taken (the fake clock does not drive the replicas, so several share a CreationTimeUtc second).
  return ((await res.json()) as { Items: Array<Record<string, string>> }).Items
    .sort((a, b) => Number(BigInt(a.LsnOfLastBackupRecord as string) - BigInt(b.LsnOfLastBackupRecord as string)));
}

async function restore(lb: TestLifeboat, pid: string, b: Record<string, string>): Promise<void> {
  const r = await lbFetch(`${lb.url}/Partitions/${pid}/$/Restore?${V}`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ BackupId: b.BackupId, BackupLocation: b.BackupLocation, BackupStorage: lb.storage }),
  });
  assert.equal(r.status, 202, await r.text());
  const done = await waitFor(async () => (await (await lbFetch(`${lb.url}/Partitions/${pid}/$/GetRestoreProgress?${V}`)).json()) as Record<string, unknown>,
    (v) => v.RestoreState !== 'Accepted' && v.RestoreState !== 'RestoreInProgress', 30_000, 'restore');
  assert.equal(done.RestoreState, 'Success', JSON.stringify(done));
}

it('takes Full, Incremental, Incremental, Full, … minute by minute, with chains and parent links a restore follows', async (t) => {
  const { lb, clock, partitions } = await setUp(t);
  const expected = ['Full', 'Incremental', 'Incremental', 'Full', 'Incremental'];
  const snapshots: Array<ReturnType<Partition['dictionary']>['enumerate'] extends () => infer R ? R : never> = [];
  const p0 = partitions[0] as Partition;
  for (const [i, option] of expected.entries()) {
    write(partitions, String(i));
    const r = await step(lb, clock);
    assert.equal(r.started.length, partitions.length, JSON.stringify(r));
    assert.deepEqual(r.started.map((s) => s.option), partitions.map(() => option), `step ${i}`);
    snapshots.push(p0.dictionary('kv').enumerate());
  }
  // Between due moments nothing runs.
  const quiet = await step(lb, clock, MINUTE / 2);
  assert.equal(quiet.started.length, 0);

  for (const p of partitions) {
    const list = await backupsOf(lb, p.id);
    assert.deepEqual(list.map((b) => b.BackupType), expected);
    const ids = list.map((b) => b.BackupId);
    assert.deepEqual(list.map((b) => b.BackupChainId), [ids[0], ids[0], ids[0], ids[3], ids[3]]);
    // Parent links, as the .bkmetadata in the storage has them.
    const meta = await Promise.all(list.map(async (b) => decodeBkMetadata(await readFile(join(lb.share, metadataKeyOf(b.BackupLocation as string))), b.BackupLocation as string)));
    assert.deepEqual(meta.map((m) => m.ParentBackupId), ['', ids[0], ids[1], '', ids[3]]);
    assert.deepEqual(meta.map((m) => m.ParentBackupLocation), ['', list[0]?.BackupLocation, list[1]?.BackupLocation, '', list[3]?.BackupLocation]);
    assert.deepEqual(meta.map((m) => m.BackupChainId), list.map((b) => b.BackupChainId));
  }

  // Restoring an incremental restores the data exactly as it was when it was taken.
  const list0 = await backupsOf(lb, p0.id);
  write([p0], 'after');
  await restore(lb, p0.id, list0[4] as Record<string, string>);
  assert.deepEqual(p0.dictionary('kv').enumerate(), snapshots[4]);
  await restore(lb, p0.id, list0[2] as Record<string, string>);
  assert.deepEqual(p0.dictionary('kv').enumerate(), snapshots[2]);

  // After a restore the next periodic backup of that partition is full; the others continue their chain.
  const next = await step(lb, clock, MINUTE / 2);
  assert.equal(next.started.find((s) => s.partitionId === p0.id)?.option, 'Full');
  assert.deepEqual(next.started.filter((s) => s.partitionId !== p0.id).map((s) => s.option), partitions.slice(1).map(() => 'Incremental'));

  // Periodic backups do not show in GetPartitionBackupProgress (that is the latest on-demand request).
  const progress = (await (await lbFetch(`${lb.url}/Partitions/${p0.id}/$/GetBackupProgress?${V}`)).json()) as Record<string, unknown>;
  assert.equal(progress.BackupState, 'Invalid');

  const lag = lb.scheduler.lagStats();
  assert.equal(lag.count, 6 * partitions.length);
  t.diagnostic(`scheduler lag (fake clock): ${JSON.stringify(lag)}`);
});

it('forces a full after an on-demand backup and a policy update; suspend stops periodic backups and resume restarts them', async (t) => {
  const { lb, clock, partitions } = await setUp(t);
  const p0 = partitions[0] as Partition;
  const options = (r: Awaited<ReturnType<typeof step>>, pid = p0.id): string | undefined => r.started.find((s) => s.partitionId === pid)?.option;

  write(partitions, 'a');
  assert.equal(options(await step(lb, clock)), 'Full');
  write(partitions, 'b');
  assert.equal(options(await step(lb, clock)), 'Incremental');

  // An on-demand backup in between: the next periodic one is full (for that partition only).
  await lb.service.backups.backupPartition(p0.id, { BackupStorage: lb.storage });
  await waitFor(() => lb.service.backups.backupProgress(p0.id), (v) => v.BackupState === 'Success' || v.BackupState === 'Failure', 30_000, 'on-demand backup');
  write(partitions, 'c');
  const afterOnDemand = await step(lb, clock);
  assert.equal(options(afterOnDemand), 'Full');
  assert.equal(options(afterOnDemand, (partitions[1] as Partition).id), 'Incremental');
  assert.equal((await lb.service.backups.backupProgress(p0.id)).BackupState, 'Success'); // still the on-demand one

  // While an on-demand backup is active, the periodic one waits: never two at once.
  clock.advance(MINUTE);
  await lb.service.backups.backupPartition(p0.id, { BackupStorage: lb.storage });
  const busyTick = await lb.scheduler.tick();
  assert.ok(busyTick.busy.includes(p0.id) || busyTick.started.some((s) => s.partitionId === p0.id) === false);
  await waitFor(() => lb.service.backups.backupProgress(p0.id), (v) => v.BackupState === 'Success', 30_000, 'on-demand backup');
  await waitFor(() => lb.scheduler.activePeriodicOperations(), (n) => n === 0, 30_000, 'periodic backups');
  const retried = await step(lb, clock, 0);
  assert.equal(options(retried), 'Full'); // the on-demand one succeeded meanwhile

  // Suspend: nothing runs; resume: it runs again, from a new chain.
  await lb.service.protection.suspendBackup({ kind: 'Application', name: APP });
  for (let i = 0; i < 3; i++) assert.equal((await step(lb, clock)).started.length, 0);
  await lb.service.protection.resumeBackup({ kind: 'Application', name: APP });
  assert.equal((await step(lb, clock, 0)).started.length, 0); // the schedule starts again at resume
  const resumed = await step(lb, clock);
  assert.deepEqual(resumed.started.map((s) => s.option), partitions.map(() => 'Full'));
  write(partitions, 'd');
  assert.deepEqual((await step(lb, clock)).started.map((s) => s.option), partitions.map(() => 'Incremental'));

  // A policy update forces a full.
  await lb.service.policies.updatePolicy('every-minute', policyBody(lb, 5), false);
  assert.equal((await step(lb, clock, 0)).started.length, 0);
  assert.deepEqual((await step(lb, clock)).started.map((s) => s.option), partitions.map(() => 'Full'));
  t.diagnostic(`scheduler lag (fake clock): ${JSON.stringify(lb.scheduler.lagStats())}`);
});

it('takes a full at once when the replica refuses the incremental (FABRIC_E_MISSING_FULL_BACKUP)', async (t) => {
  const { lb, clock, partitions } = await setUp(t);
  const p0 = partitions[0] as Partition;
  write(partitions, 'a');
  assert.equal((await step(lb, clock)).started.find((s) => s.partitionId === p0.id)?.option, 'Full');
  // A backup taken behind the service's back: the replica's chain no longer ends in the periodic one.
  await p0.backup({ option: 'Full' });
  write(partitions, 'b');
  const r = await step(lb, clock);
  assert.equal(r.started.find((s) => s.partitionId === p0.id)?.option, 'Incremental');
  // The host reported the refusal; the full is due now, not at the next slot.
  const again = await step(lb, clock, 0);
  assert.deepEqual(again.started.map((s) => [s.partitionId, s.option]), [[p0.id, 'Full']]);
  const list = await backupsOf(lb, p0.id);
  assert.deepEqual(list.map((b) => b.BackupType), ['Full', 'Full']);
});

it('spreads the partitions of one schedule over the jitter window around the due moment', async (t) => {
  const clock = fakeClock();
  const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 10_000 } });
  assert.ok(lb.sample);
  await lb.service.policies.createPolicy(policyBody(lb), false);
  await lb.service.protection.enableBackup({ kind: 'Application', name: APP }, { BackupPolicyName: 'every-minute' });
  const applied = clock.now().getTime();
  await lb.scheduler.tick();
  // Walk from 10 s before the due moment to 10 s after it, 100 ms at a time. The walk ends at +10 s
  // itself: an offset in (9.9 s, 10 s) starts at the step that reaches +10 s.
  clock.advance(MINUTE - 10_000 - 100);
  const startedAt = new Map<string, number>();
  for (let i = 0; i <= 200; i++) {
    const r = await step(lb, clock, 100);
    for (const s of r.started) startedAt.set(s.partitionId, clock.now().getTime() - (applied + MINUTE));
  }
  assert.equal(startedAt.size, lb.sample.service.partitionList.length, 'every partition started within the window');
  for (const offset of startedAt.values()) assert.ok(offset >= -10_000 && offset <= 10_000, `offset ${offset} ms`);
  assert.ok(new Set(startedAt.values()).size > 1, `not all at once: ${JSON.stringify([...startedAt.values()])}`);
  t.diagnostic(`start offsets around the due moment (ms): ${JSON.stringify([...startedAt.values()].sort((a, b) => a - b))}`);
});

it('partitions that appear later (a new host registers) pick up the effective policy', async (t) => {
  const clock = fakeClock();
  const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 }, sample: false });
  const registration = (service: string, pid: string): Registration => ({
    Services: [{
      Name: service, Scheme: { kind: 'Singleton' }, HasPersistedState: true,
      Partitions: [{ Id: pid, Info: { kind: 'Singleton' }, Epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, Lsn: '1' }],
    }],
  });
  const first = randomUUID();
  await lb.service.hosts.register('host-a', registration('fabric:/Later/First', first));
  await lb.service.policies.createPolicy({ ...policyBody(lb), Storage: lb.storage }, false);
  await lb.service.protection.enableBackup({ kind: 'Application', name: 'fabric:/Later' }, { BackupPolicyName: 'every-minute' });
  await lb.scheduler.tick();

  // A second host brings a new service of the same application, after the policy was enabled.
  const second = randomUUID();
  await lb.service.hosts.register('host-b', registration('fabric:/Later/Second', second));
  const config = await lb.service.protection.backupConfiguration({ kind: 'Partition', id: second });
  assert.equal(config[0]?.PolicyName, 'every-minute');
  assert.equal(config[0]?.PolicyInheritedFrom, 'Application');
  await lb.scheduler.tick(); // its schedule starts when the scheduler first sees it
  clock.advance(MINUTE);
  const r = await lb.scheduler.tick();
  assert.deepEqual(r.started.map((s) => s.partitionId).sort(), [first, second].sort());
  const orders = await lb.service.hosts.pollOrders('host-b', 0);
  assert.deepEqual(orders.map((o) => [o.Kind, o.PartitionId]), [['Backup', second]]);
});

it('a policy whose storage can no longer be used holds back only its own partitions\' backups, not the rest of the pass', async (t) => {
  const clock = fakeClock();
  const dir = tempDir(t);
  const first = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 } }, dir);
  assert.ok(first.sample);
  const [p0, p1, ...rest] = first.sample.service.partitionList as [Partition, Partition, ...Partition[]];
  const other = join(dir, 'backups', 'other');
  await first.service.policies.createPolicy(policyBody(first), false);
  await first.service.policies.createPolicy({ ...policyBody(first), Name: 'elsewhere', Storage: { StorageKind: 'FileShare', Path: other } }, false);
  await first.service.protection.enableBackup({ kind: 'Application', name: APP }, { BackupPolicyName: 'every-minute' });
  await first.service.protection.enableBackup({ kind: 'Partition', id: p1.id }, { BackupPolicyName: 'elsewhere' });
  assert.equal((await first.scheduler.tick()).started.length, 0);
  await first.close();
  // Started again with the file shares narrowed: 'elsewhere' is outside them now.
  const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 }, fileShareRoots: [join(dir, 'backups', 'share')] }, dir);
  const r = await step(lb, clock);
  assert.deepEqual(r.started.map((s) => s.partitionId).sort(), [p0.id, ...rest.map((p) => p.id)].sort(), JSON.stringify(r));
  assert.equal(await lb.scheduler.activePeriodicOperations(), 0);
  assert.equal((await lb.scheduler.scheduleOf(p1.id))?.pending, undefined, 'nothing left pending for the partition that could not start');
});

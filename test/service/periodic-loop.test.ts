/**
 * The scheduler's own loop, on real timers: it sleeps until a backup is due, takes it, and stops
 * cleanly. (The schedule rules themselves are tested on a fake clock in periodic.test.ts.)
 */
import { lbFetch } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Partition } from '../../src/state/index.ts';
import { startTestLifeboat, waitFor } from '../support/lifeboat.ts';

const V = 'api-version=6.4';
const APP = 'fabric:/SampleApp';
const MINUTE = 60_000;

it('runs on its own with real timers: sleeps until the backup is due, takes it and measures its lag', async (t) => {
  let offset = 0;
  const clock = { now: () => new Date(Date.now() + offset) };
  const lb = await startTestLifeboat(t, { clock, scheduler: { idleTickMs: 100, jitterMs: 0 } });
  assert.ok(lb.sample);
  await lb.service.policies.createPolicy({
    Name: 'every-minute', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 2,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1M' }, Storage: lb.storage,
  }, false);
  await lb.service.protection.enableBackup({ kind: 'Application', name: APP }, { BackupPolicyName: 'every-minute' });
  const pid = (lb.sample.service.partitionList[0] as Partition).id;
  const backups = async (): Promise<number> => {
    const res = await lbFetch(`${lb.url}/Partitions/${pid}/$/GetBackups?${V}`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    return ((await res.json()) as { Items: unknown[] }).Items.length;
  };
  // Let the loop see the policy (its schedule starts then); nothing is due for a minute.
  await waitFor(async () => (await lb.service.protection.backupConfiguration({ kind: 'Partition', id: pid }))[0]?.PolicyName, (v) => v === 'every-minute', 5000, 'policy');
  await waitFor(() => lb.scheduler.scheduleOf(pid), (s) => s !== undefined, 5000, 'the schedule to start');
  assert.equal(await backups(), 0);
  // Jump to a second before it is due: the loop, asleep for at most idleTickMs, wakes and takes it.
  offset += MINUTE - 1000;
  await waitFor(backups, (n) => n === 1, 30_000, 'first periodic backup');
  const lag = lb.scheduler.lagStats();
  assert.ok(lag.count >= 1, JSON.stringify(lag));
  t.diagnostic(`scheduler lag (real timers): ${JSON.stringify(lag)}`);
});

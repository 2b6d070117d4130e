/**
 * The scheduler's own loop, on real timers: it sleeps until a backup is due, takes it, and stops
 * cleanly. (The schedule rules themselves are tested on a fake clock in periodic.test.ts.)
 */
import { lbFetch } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { type TestContext, it } from 'node:test';
import type { Partition } from '../../src/state/index.ts';
import { startTestLifeboat, waitFor } from '../support/lifeboat.ts';

const V = 'api-version=6.4';
const APP = 'fabric:/SampleApp';
const MINUTE = 60_000;

/** A timer the test fires: each fire runs what is armed (the loop's next step) at once. */
function firedTimer() {
  const pending = new Map<number, () => void>();
  let n = 0;
  return {
    setTimeout: (fn: () => void) => { pending.set(++n, fn); return n; },
    clearTimeout: (h: unknown) => { pending.delete(h as number); },
    fire: (): void => {
      const due = [...pending.values()];
      pending.clear();
      for (const fn of due) fn();
    },
  };
}

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

it('between full passes, starts the backups that come due from the last pass\'s plan, without listing every partition again', async (t) => {
  let offset = 0;
  const clock = { now: () => new Date(Date.now() + offset) };
  const timer = firedTimer();
  const { fire } = timer;
  const lb = await startTestLifeboat(t, { clock, scheduler: { idleTickMs: 10_000, jitterMs: 0, timer } });
  assert.ok(lb.sample);
  const partitions = lb.sample.service.partitionList.map((p) => p.id);
  // Full passes counted where they start (the retention sweeper, on the same timer, lists partitions too).
  const scheduler = lb.scheduler as unknown as { tickNow: () => Promise<unknown>; chain: Promise<unknown> };
  const tickNow = scheduler.tickNow.bind(lb.scheduler);
  let fullPasses = 0;
  scheduler.tickNow = () => {
    fullPasses++;
    return tickNow();
  };
  await lb.service.policies.createPolicy({
    Name: 'every-minute', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 2,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1M' }, Storage: lb.storage,
  }, false);
  await lb.service.protection.enableBackup({ kind: 'Application', name: APP }, { BackupPolicyName: 'every-minute' });
  const step = async (what: string, done: () => Promise<boolean>): Promise<void> => {
    await waitFor(async () => { fire(); return done(); }, (v) => v, 10_000, what);
  };
  // The protection changed: a full pass starts every schedule (nothing due for a minute).
  await step('the schedules to start', async () => (await Promise.all(partitions.map((p) => lb.scheduler.scheduleOf(p)))).every((s) => s !== undefined));
  // 55 s on, past the full-pass period: a full pass plans the backups due at 60 s.
  offset = 55_000;
  const before = fullPasses;
  await step('a full pass', async () => fullPasses > before);
  // The step under way ends (the last fire may have queued one) and the loop arms its timer.
  await scheduler.chain;
  await new Promise((r) => setImmediate(r));
  // At 60.5 s: the loop's next step starts them from that plan, with no listing.
  offset = 60_500;
  const planned = fullPasses;
  fire(); // one step only: the backups' ends would call for a full pass (to settle them) after it
  await waitFor(async () => lb.scheduler.lagStats().count, (c) => c >= partitions.length, 10_000, 'every partition started');
  assert.equal(fullPasses, planned, 'started without a full pass');
  // Within the full-pass period of the plan, a full pass runs again (policy and hierarchy changes are seen).
  offset = 66_000;
  await step('the next full pass', async () => fullPasses > planned);
});

/** A Lifeboat whose scheduler loop runs on a timer the test fires, each full pass taking 2 s on its clock. */
async function slowPasses(t: TestContext, idleTickMs: number) {
  let offset = 0;
  const clock = { now: () => new Date(Date.now() + offset) };
  const timer = firedTimer();
  const lb = await startTestLifeboat(t, { clock, scheduler: { idleTickMs, jitterMs: 0, timer } });
  const scheduler = lb.scheduler as unknown as { tickNow: () => Promise<unknown>; chain: Promise<unknown> };
  const tickNow = scheduler.tickNow.bind(lb.scheduler);
  const w = { lb, fullPasses: 0, passEndedAt: 0, passMs: 0 };
  scheduler.tickNow = async () => {
    w.fullPasses++;
    const startedAt = clock.now().getTime();
    const pass = tickNow(); // it reads the clock at its start, before its first catalog call
    offset += 2_000;
    const r = await pass;
    w.passEndedAt = clock.now().getTime();
    w.passMs = w.passEndedAt - startedAt; // 2 s, and the real time it took on a loaded machine
    return r;
  };
  /** Fires the armed steps and waits for them. */
  const settle = async (): Promise<void> => {
    timer.fire();
    await scheduler.chain;
    await new Promise((r) => setImmediate(r));
  };
  /** Sets the clock to `ms` after the last full pass ended. */
  const at = (ms: number): void => { offset += w.passEndedAt + ms - clock.now().getTime(); };
  await lb.service.policies.createPolicy({
    Name: 'hourly', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 2,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' }, Storage: lb.storage,
  }, false);
  await lb.service.protection.enableBackup({ kind: 'Application', name: APP }, { BackupPolicyName: 'hourly' });
  await waitFor(async () => { await settle(); return w.fullPasses; }, (c) => c >= 1, 10_000, 'a full pass');
  await settle();
  return { w, settle, at };
}

it('after an operation ends, runs the settling full pass no sooner than a second after the last pass, nor than four times its length', async (t) => {
  const { w, settle, at } = await slowPasses(t, 60_000);
  const passes = w.fullPasses;
  at(2_000);
  w.lb.service.orders.events.emit('ended', 'some-operation');
  await settle();
  assert.equal(w.fullPasses, passes, '2 s after a 2 s pass: not yet');
  at(7_000);
  await settle();
  assert.equal(w.fullPasses, passes, '7 s after: not yet');
  at(4 * w.passMs + 100);
  await settle();
  assert.equal(w.fullPasses, passes + 1, '8 s after (four times the pass): the settling pass');
  at(1_200);
  await settle();
  assert.equal(w.fullPasses, passes + 1, 'no end since: no settling pass');
});

it('counts the idle tick between full passes from the end of the last one, however long it took', async (t) => {
  const { w, settle, at } = await slowPasses(t, 3_000);
  const passes = w.fullPasses;
  at(2_000);
  await settle();
  assert.equal(w.fullPasses, passes, '2 s after a 2 s pass, with a 3 s idle tick: steps, not a pass');
  at(3_100);
  await settle();
  assert.equal(w.fullPasses, passes + 1);
});

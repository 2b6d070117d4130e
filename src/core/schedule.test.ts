import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE } from './duration.ts';
import { DAYS_OF_WEEK, parseSchedule, type BackupSchedule, type TimeBasedSchedule } from './policy.ts';
import {
  afterBackupFailure, decideBackupOption, jitteredFireTime, MAX_TIMER_DELAY_MS, nextBackupDue, nextRunTime, retryAfterFailure,
  timerDelayMs, type ScheduleState,
} from './schedule.ts';

const at = (iso: string): Date => new Date(iso);
const iso = (d: Date): string => d.toISOString().replace('.000Z', 'Z');

// 2024-01-01 is a Monday.
const MONDAY = at('2024-01-01T00:00:00Z');

const daily = parseSchedule({ ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Daily', RunTimes: ['0001-01-01T21:00:00Z', '0001-01-01T09:00:00Z'] });
const weekly = parseSchedule({ ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Weekly', RunTimes: ['0001-01-01T03:30:00Z'], RunDays: ['Thursday', 'Monday'] });
const hourly = parseSchedule({ ScheduleKind: 'FrequencyBased', Interval: 'PT1H' });

interface Simulation {
  readonly runs: string[];
  readonly missed: string[];
}

/**
 * Drives a schedule on a fake clock: asks when the next backup is due, jumps the clock there, takes
 * the backup (recording its scheduled moment) and asks again — until `until`. While the service is
 * down (`down` windows) nothing runs; at the end of a window it starts again and asks.
 */
function simulate(schedule: BackupSchedule, start: Date, until: Date, down: Array<[string, string]> = []): Simulation {
  let state: ScheduleState = { policyAppliedUtc: start };
  let now = start;
  const runs: string[] = [];
  const missed: string[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    const next = nextBackupDue(schedule, state, now);
    assert.ok(next.dueUtc.getTime() >= now.getTime(), 'never due in the past');
    if (next.dueUtc > until) return { runs, missed };
    const outage = down.find(([from, to]) => next.dueUtc >= at(from) && next.dueUtc < at(to));
    if (outage) {
      now = at(outage[1]); // the service was down; it starts again at the end of the window
      continue;
    }
    now = next.dueUtc;
    runs.push(iso(now));
    if (next.missed) missed.push(iso(now));
    state = { ...state, lastBackupUtc: now };
  }
  throw new Error('runaway simulation');
}

describe('nextBackupDue on a fake clock: a week of schedules', () => {
  it('Daily at 09:00 and 21:00 UTC: fourteen backups, on the dot', () => {
    const { runs, missed } = simulate(daily, MONDAY, at('2024-01-07T23:59:59Z'));
    assert.deepEqual(runs, [
      '2024-01-01T09:00:00Z', '2024-01-01T21:00:00Z', '2024-01-02T09:00:00Z', '2024-01-02T21:00:00Z',
      '2024-01-03T09:00:00Z', '2024-01-03T21:00:00Z', '2024-01-04T09:00:00Z', '2024-01-04T21:00:00Z',
      '2024-01-05T09:00:00Z', '2024-01-05T21:00:00Z', '2024-01-06T09:00:00Z', '2024-01-06T21:00:00Z',
      '2024-01-07T09:00:00Z', '2024-01-07T21:00:00Z',
    ]);
    assert.deepEqual(missed, []);
  });

  it('Weekly on Monday and Thursday at 03:30 UTC: two weeks', () => {
    const { runs } = simulate(weekly, MONDAY, at('2024-01-14T23:59:59Z'));
    assert.deepEqual(runs, ['2024-01-01T03:30:00Z', '2024-01-04T03:30:00Z', '2024-01-08T03:30:00Z', '2024-01-11T03:30:00Z']);
  });

  it('Weekly, policy applied on a Thursday after the run time: next Monday', () => {
    const { runs } = simulate(weekly, at('2024-01-04T04:00:00Z'), at('2024-01-12T00:00:00Z'));
    assert.deepEqual(runs, ['2024-01-08T03:30:00Z', '2024-01-11T03:30:00Z']);
  });

  it('FrequencyBased PT1H: every hour, counted from when the policy was applied', () => {
    const { runs } = simulate(hourly, at('2024-01-01T00:10:00Z'), at('2024-01-01T05:59:00Z'));
    assert.deepEqual(runs, ['2024-01-01T01:10:00Z', '2024-01-01T02:10:00Z', '2024-01-01T03:10:00Z', '2024-01-01T04:10:00Z', '2024-01-01T05:10:00Z']);
  });

  it('a week of PT1H is 168 backups, an hour apart', () => {
    const { runs } = simulate(hourly, MONDAY, at('2024-01-08T00:00:00Z'));
    assert.equal(runs.length, 168);
    assert.equal(runs.at(-1), '2024-01-08T00:00:00Z');
    for (let i = 1; i < runs.length; i++) assert.equal(at(runs[i] as string).getTime() - at(runs[i - 1] as string).getTime(), MS_PER_HOUR);
  });

  it('Daily with downtime: the missed runs happen once, at once, then the schedule resumes', () => {
    // Down from Monday 10:00 to Wednesday 15:00: four run times pass (Mon 21:00 … Wed 09:00).
    const { runs, missed } = simulate(daily, MONDAY, at('2024-01-04T09:00:00Z'), [['2024-01-01T10:00:00Z', '2024-01-03T15:00:00Z']]);
    assert.deepEqual(runs, ['2024-01-01T09:00:00Z', '2024-01-03T15:00:00Z', '2024-01-03T21:00:00Z', '2024-01-04T09:00:00Z']);
    assert.deepEqual(missed, ['2024-01-03T15:00:00Z']);
  });

  it('Weekly with downtime over a run day: one catch-up backup', () => {
    const { runs, missed } = simulate(weekly, MONDAY, at('2024-01-12T00:00:00Z'), [['2024-01-03T00:00:00Z', '2024-01-05T12:00:00Z']]);
    assert.deepEqual(runs, ['2024-01-01T03:30:00Z', '2024-01-05T12:00:00Z', '2024-01-08T03:30:00Z', '2024-01-11T03:30:00Z']);
    assert.deepEqual(missed, ['2024-01-05T12:00:00Z']);
  });

  it('FrequencyBased with downtime: one catch-up backup, then an interval after it', () => {
    const { runs, missed } = simulate(hourly, MONDAY, at('2024-01-01T08:00:00Z'), [['2024-01-01T02:30:00Z', '2024-01-01T05:45:00Z']]);
    assert.deepEqual(runs, ['2024-01-01T01:00:00Z', '2024-01-01T02:00:00Z', '2024-01-01T05:45:00Z', '2024-01-01T06:45:00Z', '2024-01-01T07:45:00Z']);
    assert.deepEqual(missed, ['2024-01-01T05:45:00Z']);
  });
});

describe('nextBackupDue: single decisions', () => {
  it('before the first backup, counts from the policy, and a restart later does not postpone it', () => {
    const state = { policyAppliedUtc: at('2024-01-01T00:00:00Z') };
    assert.deepEqual(nextBackupDue(hourly, state, at('2024-01-01T00:30:00Z')), { dueUtc: at('2024-01-01T01:00:00Z'), missed: false });
    assert.deepEqual(nextBackupDue(hourly, state, at('2024-01-01T01:00:00Z')), { dueUtc: at('2024-01-01T01:00:00Z'), missed: false });
    assert.deepEqual(nextBackupDue(hourly, state, at('2024-01-01T03:00:00Z')), { dueUtc: at('2024-01-01T03:00:00Z'), missed: true });
  });

  it('a policy applied after the last backup starts a new schedule', () => {
    const state = { lastBackupUtc: at('2024-01-01T09:00:00Z'), policyAppliedUtc: at('2024-01-01T09:20:00Z') };
    assert.deepEqual(nextBackupDue(hourly, state, at('2024-01-01T09:20:00Z')), { dueUtc: at('2024-01-01T10:20:00Z'), missed: false });
  });

  it('a run time exactly when the policy arrives is still to run; one exactly at the last backup is done', () => {
    assert.deepEqual(nextBackupDue(daily, { policyAppliedUtc: at('2024-01-01T09:00:00Z') }, at('2024-01-01T09:00:00Z')), { dueUtc: at('2024-01-01T09:00:00Z'), missed: false });
    const after = { policyAppliedUtc: MONDAY, lastBackupUtc: at('2024-01-01T09:00:00Z') };
    assert.deepEqual(nextBackupDue(daily, after, at('2024-01-01T09:00:00Z')), { dueUtc: at('2024-01-01T21:00:00Z'), missed: false });
  });

  it('a backup that finished late is not taken again', () => {
    const state = { policyAppliedUtc: MONDAY, lastBackupUtc: at('2024-01-01T09:00:04Z') };
    assert.deepEqual(nextBackupDue(daily, state, at('2024-01-01T09:02:00Z')), { dueUtc: at('2024-01-01T21:00:00Z'), missed: false });
  });

  it('after giving up on retries, the schedule counts from the give-up, not from the last backup', () => {
    const state = { policyAppliedUtc: MONDAY, lastBackupUtc: at('2024-01-01T09:00:00Z'), gaveUpUtc: at('2024-01-01T10:05:00Z') };
    assert.deepEqual(nextBackupDue(hourly, state, at('2024-01-01T10:05:00Z')), { dueUtc: at('2024-01-01T11:05:00Z'), missed: false });
    assert.deepEqual(nextBackupDue(daily, state, at('2024-01-01T10:05:00Z')), { dueUtc: at('2024-01-01T21:00:00Z'), missed: false });
  });

  it('picks the next run time on the run days only (property, against a brute-force list of run times)', () => {
    const schedules = fc.record({
      frequency: fc.constantFrom<'Daily' | 'Weekly'>('Daily', 'Weekly'),
      runTimesMs: fc.uniqueArray(fc.integer({ min: 0, max: MS_PER_DAY - 1 }), { minLength: 1, maxLength: 4 }).map((a) => a.sort((x, y) => x - y)),
      runDays: fc.subarray([...DAYS_OF_WEEK], { minLength: 1 }),
    }).map((s): TimeBasedSchedule => ({ kind: 'TimeBased', ...s }));
    const instant = fc.integer({ min: Date.UTC(2023, 0, 1), max: Date.UTC(2026, 0, 1) });
    fc.assert(fc.property(schedules, instant, fc.boolean(), (schedule, after, inclusive) => {
      const day0 = Math.floor(after / MS_PER_DAY) * MS_PER_DAY;
      const all: number[] = [];
      for (let d = -1; d <= 9; d++) {
        const day = day0 + d * MS_PER_DAY;
        const name = DAYS_OF_WEEK[new Date(day).getUTCDay()] as (typeof DAYS_OF_WEEK)[number];
        if (schedule.frequency === 'Daily' || schedule.runDays.includes(name)) for (const t of schedule.runTimesMs) all.push(day + t);
      }
      const expected = all.sort((a, b) => a - b).find((t) => t > after || (inclusive && t === after));
      assert.equal(nextRunTime(schedule, after, inclusive), expected);
    }));
  });
});

describe('nextRunTime: a schedule that never runs', () => {
  it('is refused rather than looped over', () => {
    assert.throws(() => nextRunTime({ kind: 'TimeBased', frequency: 'Weekly', runTimesMs: [0], runDays: [] }, MONDAY.getTime(), false), /at least one run day/);
    assert.throws(() => nextRunTime({ kind: 'TimeBased', frequency: 'Daily', runTimesMs: [], runDays: [] }, MONDAY.getTime(), false), /at least one run time/);
  });
});

describe('timerDelayMs and jitteredFireTime', () => {
  it('caps a delay at 2^31 − 1 ms and never goes below 0', () => {
    const now = MONDAY;
    assert.equal(timerDelayMs(new Date(now.getTime() + 40 * MS_PER_DAY), now), MAX_TIMER_DELAY_MS);
    assert.equal(timerDelayMs(new Date(now.getTime() - 5), now), 0);
    assert.equal(timerDelayMs(new Date(now.getTime() + 5), now), 5);
  });

  it('reaches a due time 40 days ahead in chunks, exactly', () => {
    const due = new Date(MONDAY.getTime() + 40 * MS_PER_DAY);
    let now = MONDAY;
    let arms = 0;
    while (now < due) {
      const delay = timerDelayMs(due, now);
      assert.ok(delay > 0 && delay <= MAX_TIMER_DELAY_MS);
      now = new Date(now.getTime() + delay);
      arms++;
    }
    assert.equal(now.getTime(), due.getTime());
    assert.equal(arms, 2);
  });

  it('jitters within [−min(ahead, 10 s), +10 s) and never before now', () => {
    const now = MONDAY;
    const due = new Date(now.getTime() + MS_PER_MINUTE);
    assert.equal(jitteredFireTime(due, now, () => 0, 10_000).getTime(), due.getTime() - 10_000);
    assert.equal(jitteredFireTime(due, now, () => 0.5, 10_000).getTime(), due.getTime());
    assert.ok(jitteredFireTime(due, now, () => 0.999999, 10_000).getTime() < due.getTime() + 10_000);
    const soon = new Date(now.getTime() + 3_000);
    assert.equal(jitteredFireTime(soon, now, () => 0, 10_000).getTime(), now.getTime());
  });
});

describe('retryAfterFailure and afterBackupFailure', () => {
  it('retries about a minute later, five times, then returns to the schedule', () => {
    const now = at('2024-01-01T10:00:00Z');
    assert.deepEqual(retryAfterFailure(1, now), { retry: true, atUtc: at('2024-01-01T10:01:00Z'), attempt: 1 });
    assert.deepEqual(retryAfterFailure(5, now), { retry: true, atUtc: at('2024-01-01T10:01:00Z'), attempt: 5 });
    assert.deepEqual(retryAfterFailure(6, now), { retry: false });
    assert.deepEqual(retryAfterFailure(0, now), { retry: false });
    assert.equal((retryAfterFailure(1, now, () => 0) as { atUtc: Date }).atUtc.getTime() - now.getTime(), 57_000);
    assert.equal((retryAfterFailure(1, now, () => 1) as { atUtc: Date }).atUtc.getTime() - now.getTime(), 63_000);
  });

  it('a backup that keeps failing: the scheduled attempt, five retries a minute apart, then the next interval from the give-up', () => {
    let state: ScheduleState = { policyAppliedUtc: MONDAY, lastBackupUtc: at('2024-01-01T09:00:00Z') };
    let now = nextBackupDue(hourly, state, at('2024-01-01T09:00:00Z')).dueUtc;
    const attempts: string[] = [];
    for (let failures = 1; ; failures++) {
      attempts.push(iso(now));
      const next = afterBackupFailure({ code: 'LIFEBOAT_E_STORAGE_UNAVAILABLE', option: 'Incremental', consecutiveFailures: failures }, now);
      if (next.kind !== 'retry') {
        assert.equal(next.kind, 'schedule');
        state = { ...state, gaveUpUtc: now };
        break;
      }
      now = next.atUtc;
    }
    assert.deepEqual(attempts, ['2024-01-01T10:00:00Z', '2024-01-01T10:01:00Z', '2024-01-01T10:02:00Z', '2024-01-01T10:03:00Z', '2024-01-01T10:04:00Z', '2024-01-01T10:05:00Z']);
    assert.deepEqual(nextBackupDue(hourly, state, now), { dueUtc: at('2024-01-01T11:05:00Z'), missed: false });
  });

  it('an incremental refused for a missing full backup is followed by a full backup at once', () => {
    assert.deepEqual(afterBackupFailure({ code: 'FABRIC_E_MISSING_FULL_BACKUP', option: 'Incremental', consecutiveFailures: 1 }, MONDAY), { kind: 'full-now', reason: 'MissingFullBackup' });
    assert.equal(afterBackupFailure({ code: 'FABRIC_E_MISSING_FULL_BACKUP', option: 'Full', consecutiveFailures: 1 }, MONDAY).kind, 'retry');
  });
});

describe('decideBackupOption', () => {
  it('a chain is one full and MaxIncrementalBackups incrementals', () => {
    let counter = 0;
    const options: string[] = [];
    for (let i = 0; i < 9; i++) {
      const d = decideBackupOption({ chainCounter: counter, maxIncrementalBackups: 3 });
      options.push(d.option);
      counter = d.chainCounterAfter;
    }
    assert.deepEqual(options, ['Full', 'Incremental', 'Incremental', 'Incremental', 'Full', 'Incremental', 'Incremental', 'Incremental', 'Full']);
  });

  it('MaxIncrementalBackups 0: every backup is full', () => {
    assert.deepEqual(decideBackupOption({ chainCounter: 0, maxIncrementalBackups: 0 }), { option: 'Full', chainCounterAfter: 1, reason: 'full: the chain counter is 0 (no chain yet)' });
    assert.equal(decideBackupOption({ chainCounter: 1, maxIncrementalBackups: 0 }).option, 'Full');
  });

  it('moves the counter: Full → 1, Incremental → counter + 1', () => {
    assert.deepEqual(decideBackupOption({ chainCounter: 2, maxIncrementalBackups: 255 }), { option: 'Incremental', chainCounterAfter: 3, reason: 'incremental 2 of at most 255 after the chain\'s full backup' });
    assert.equal(decideBackupOption({ chainCounter: 256, maxIncrementalBackups: 255 }).chainCounterAfter, 1);
  });

  it('forces a full backup for each reason, whatever the counter', () => {
    for (const reason of ['DataLoss', 'Restore', 'PolicyChanged', 'OnDemandBackup', 'MissingFullBackup', 'NoChain'] as const) {
      const d = decideBackupOption({ chainCounter: 1, maxIncrementalBackups: 10, forceFull: reason });
      assert.equal(d.option, 'Full');
      assert.equal(d.chainCounterAfter, 1);
      assert.match(d.reason, /^full: /);
    }
    assert.equal(decideBackupOption({ chainCounter: 1, maxIncrementalBackups: 10, forceFull: undefined }).option, 'Incremental');
  });
});

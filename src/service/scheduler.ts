/**
 * The periodic backup scheduler. Per partition with an effective, non-suspended policy it keeps a
 * schedule state in the catalog and, when a backup is due, starts a periodic backup operation
 * through the service (one active operation per partition: an on-demand backup or a restore under
 * way makes it wait for the next tick). The decisions are the pure rules of `core/schedule.ts`:
 * when (`nextBackupDue`, `afterBackupFailure`) and Full or Incremental (`decideBackupOption`).
 *
 * `tick()` runs everything due at `clock.now()` and settles the periodic operations that ended;
 * `start()` runs ticks in a loop that sleeps until the next due time (waits chunked with
 * `timerDelayMs`, at most `idleTickMs` so policy changes and new partitions are seen), and wakes
 * when a host reports an operation's end. Clock and timer are injected, so tests drive it.
 */
import { applicationOf } from '../core/ids.ts';
import { periodicBackupPolicy } from '../core/protection.ts';
import { DEFAULT_JITTER_MS, type ForcedFullReason, afterBackupFailure, decideBackupOption, jitteredFireTime, nextBackupDue } from '../core/schedule.ts';
import { hashStringKey } from '../core/partitioning.ts';
import type { ScheduleState } from '../core/schedule.ts';
import type { BackupPolicy } from '../core/policy.ts';
import { randomUUID } from 'node:crypto';
import { isLifeboatError } from '../core/errors.ts';
import type { Catalog, Fence, OperationRecord, OperationStore, PartitionRecord, PeriodicScheduleRecord, PolicyStore } from '../catalog/port.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { LifeboatService } from './lifeboat-service.ts';
import { type BackgroundWork, SOLE_INSTANCE } from './leadership.ts';
import { Loop, type LoopTimer } from './loop.ts';
import { notify } from './observer.ts';

export type SchedulerTimer = LoopTimer;

export interface SchedulerDeps {
  readonly catalog: Catalog;
  readonly service: LifeboatService;
  readonly clock: Clock;
  readonly timer?: SchedulerTimer;
  /** Longest sleep of the loop between ticks, so policy and protection changes are seen (default 5 s). */
  readonly idleTickMs?: number;
  /**
   * Spread of scheduled backups around their due moment, so partitions sharing a schedule do not
   * all start at once (Service Fabric's JitterInBackupsInSeconds, default 10 s). Each partition's
   * offset is fixed per due moment (a hash of both), so ticks agree on it. 0 in fake-clock tests.
   */
  readonly jitterMs?: number;
  /**
   * The least time between the loop's steps (default MIN_STEP_GAP_MS): backups that come due
   * within it start together, one batch of catalog writes, a little late rather than one by one.
   */
  readonly minStepGapMs?: number;
  /** [0, 1) for the retry jitter; default 0.5 (exactly one minute). */
  readonly random?: () => number;
  readonly log?: Logger;
  /** Whether this instance does the background work now (leadership.ts); default: always, unfenced. */
  readonly work?: BackgroundWork;
}

export interface LagStats {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** What one tick did, for tests and logs. */
export interface TickResult {
  /** Periodic backups started, by partition. */
  readonly started: Array<{ partitionId: string; operationId: string; option: 'Full' | 'Incremental'; reason: string }>;
  /** Due, but the partition had an active operation: tried again next tick. */
  readonly busy: string[];
  /** The earliest moment something is due (undefined: nothing scheduled). */
  readonly nextDueUtc: Date | undefined;
}

/** A TickResult as a step fills it in. */
type PassResult = { -readonly [K in keyof TickResult]: TickResult[K] };
const emptyResult = (): PassResult => ({ started: [], busy: [], nextDueUtc: undefined });

const EARLIEST = new Date(-8.64e15);
/** Partitions whose due backups a pass starts with one batch of catalog writes. */
const START_BATCH = 200;

/**
 * States a pass writes in one statement when nothing else comes with them: after a slot's burst,
 * nearly every partition's settled state, and the steps that start backups wait for the pass.
 */
const SAVE_BATCH = 1000;

/** What a pass found for a partition (step 1), for step 2. */
interface Planned {
  readonly partition: PartitionRecord;
  /** Its state as the catalog holds it. */
  readonly stored: PeriodicScheduleRecord | undefined;
  /** Its state now (the policy that applies; a pending backup that ended, settled). */
  readonly state: PeriodicScheduleRecord;
  /** Its first schedule: its newest on-demand backup and restore are to be noted as seen. */
  readonly fresh: boolean;
  /** Its next backup, if due later: when (jittered), the moment it stands for, and the policy. */
  readonly upcoming?: PlannedBackup;
  /** Its backup is due now. */
  readonly due?: PlannedBackup;
}

interface PlannedBackup { readonly at: Date; readonly scheduled: Date; readonly policy: BackupPolicy }

/**
 * Between full passes the loop starts, from what the last full pass planned, the backups that
 * come due (in memory: no listing of every partition). A full pass runs at least every idle tick,
 * when protection changed, when the lead changed hands, and soon after an operation's end: SETTLE_MS
 * after the last full pass ended, or SETTLE_PASS_FACTOR times its length if longer — in a burst of
 * ends a full pass over 10,000 partitions takes a second or more, and passes back to back would
 * leave the starts between them waiting.
 */
const SETTLE_MS = 1000;
const SETTLE_PASS_FACTOR = 4;
/**
 * The least time between loop steps. 10,000 partitions on one 5-minute policy come due over the
 * jitter window (10 s) about one per millisecond: a step for each was six catalog round trips per
 * backup on the leader, which then fell seconds behind. Starts then wait at most this long.
 */
const MIN_STEP_GAP_MS = 100;
/** Partitions a pass plans between turns of the event loop. */
const PLAN_SLICE = 250;
/** Ended periodic operations a pass reads in one statement. */
const ENDED_READ_BATCH = 1000;
const MAX_JITTER_MEMO = 100_000;
const MAX_LAG_SAMPLES = 10_000;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export class Scheduler {
  private readonly d: SchedulerDeps;
  private readonly random: () => number;
  private readonly lags: number[] = [];
  /** Each partition's jittered due moment, by partition and due moment (a pure function of both). */
  private readonly jitteredDue = new Map<string, Date>();
  /**
   * Every partition's schedule state as this scheduler last read or wrote it, for the turn (fence
   * token) it read them in. Only the leading scheduler writes them, so within a turn the catalog
   * holds what this map does: a pass reads them once per turn, not once per pass (a burst of
   * ending backups runs pass after pass). Dropped when a write fails (it may or may not be in).
   */
  private known: { readonly token: number | undefined; readonly states: Map<string, PeriodicScheduleRecord> } | undefined;
  private readonly startedAt: Date;
  /** The not-yet-due backups the last full pass planned, soonest first (`next`: the first not started). */
  private upcoming: { readonly token: number | undefined; readonly entries: Planned[]; next: number } | undefined;
  /** Something a full pass must see happened (protection changed, the lead changed hands). */
  private stale = true;
  /** An operation ended since the last full pass (its partition is settled by the next). */
  private endedSince = false;
  /** When a full pass may run for operations that ended (clock ms; see SETTLE_MS). */
  private settleAtMs = 0;
  /** When the last full pass ended (clock ms): the next runs an idle tick after it at the latest. */
  private lastPassEndMs = 0;
  private readonly loop: Loop;
  /** The loop's longest sleep, and the most time between full passes. */
  private readonly idleTickMs: number;
  private chain: Promise<unknown> = Promise.resolve();
  /** Set by stop(): a tick under way returns between partitions. */
  private stopping = false;
  /** Looks at once for what is due (an operation ended, the protection changed, this instance became the leader). */
  readonly wake = (): void => {
    this.stale = true;
    this.loop.wake();
  };

  private readonly ended = (): void => {
    this.endedSince = true;
    // Seen by the next settling pass, not a step per end: ends come in bursts of thousands.
    this.loop.wakeBy(new Date(Math.max(this.d.clock.now().getTime(), this.settleAtMs)));
  };

  constructor(deps: SchedulerDeps) {
    this.d = deps;
    this.random = deps.random ?? (() => 0.5);
    this.startedAt = deps.clock.now();
    this.idleTickMs = deps.idleTickMs ?? 5000;
    this.loop = new Loop(async () => (await this.queued(() => this.loopStep())).nextDueUtc, {
      name: 'periodic backup scheduler', clock: deps.clock, idleMs: this.idleTickMs, minGapMs: deps.minStepGapMs ?? MIN_STEP_GAP_MS, log: deps.log,
      ...(deps.timer ? { timer: deps.timer } : {}),
    });
  }

  /** Scheduler lag (operation created − due), in ms: p50, p99 and max over the backups started. */
  lagStats(): LagStats {
    const sorted = [...this.lags].sort((a, b) => a - b);
    return { count: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.length ? (sorted[sorted.length - 1] as number) : 0 };
  }

  /** The partition's schedule state as the catalog holds it (undefined until a tick saw a policy). */
  scheduleOf(partitionId: string): Promise<PeriodicScheduleRecord | undefined> {
    return this.d.catalog.schedules.getPeriodic(partitionId);
  }

  /** Periodic operations still active (Accepted or in progress). */
  async activePeriodicOperations(): Promise<number> {
    return (await this.d.catalog.operations.active()).filter((o) => o.kind === 'PeriodicBackup').length;
  }

  /** Whether the loop runs (start() called, stop() not since): readiness asks. */
  get isRunning(): boolean {
    return this.loop.isRunning;
  }

  start(): void {
    if (this.loop.isRunning) return;
    this.stopping = false;
    this.d.service.orders.events.on('ended', this.ended);
    this.d.service.orders.events.on('protection-changed', this.wake);
    this.loop.start();
  }

  /** Stops the loop; a tick under way stops between partitions and is waited for, at most `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.d.service.orders.events.off('ended', this.ended);
    this.d.service.orders.events.off('protection-changed', this.wake);
    await this.loop.stop(graceMs);
  }

  /** Runs everything due now (a full pass); ticks never overlap. */
  tick(): Promise<TickResult> {
    return this.queued(() => this.tickNow());
  }

  private queued(step: () => Promise<TickResult>): Promise<TickResult> {
    const run = this.chain.catch(() => undefined).then(step);
    this.chain = run;
    return run;
  }

  /** The loop's step: a full pass when one is due (see SETTLE_MS), else the upcoming backups that came due. */
  private async loopStep(): Promise<TickResult> {
    const u = this.upcoming;
    const fullEveryMs = this.idleTickMs;
    const now = this.d.clock.now();
    // Counted from the last pass's end: a pass that takes seconds (10,000 partitions, a loaded
    // catalog) is followed by steps that start what comes due, not at once by another pass.
    const sinceLastPass = now.getTime() - this.lastPassEndMs;
    const turn = (this.d.work ?? SOLE_INSTANCE).turn();
    if (!turn || this.stale || !u || u.token !== turn.fence?.token || sinceLastPass >= fullEveryMs || (this.endedSince && now.getTime() >= this.settleAtMs)) {
      return this.tickNow();
    }
    const result = emptyResult();
    const due: Planned[] = [];
    for (; u.next < u.entries.length; u.next++) {
      const { upcoming, ...p } = u.entries[u.next] as Planned;
      if (!upcoming || upcoming.at > now) break;
      due.push({ ...p, due: upcoming });
    }
    try {
      for (let i = 0; i < due.length && !this.stopping; i += START_BATCH) await this.startDue(due.slice(i, i + START_BATCH), now, turn.fence, result);
    } catch (err) {
      this.lostTrack(err);
    }
    const soonest = u.entries[u.next]?.upcoming?.at;
    const fullAt = new Date(Math.min(this.lastPassEndMs + fullEveryMs, this.endedSince ? this.settleAtMs : Infinity));
    result.nextDueUtc = soonest && soonest < fullAt ? soonest : fullAt;
    return result;
  }

  /** A write failed (it may or may not be in): the next step reads the catalog afresh. */
  private lostTrack(err: unknown): void {
    this.known = undefined;
    this.upcoming = undefined;
    if (isLifeboatError(err, 'LIFEBOAT_E_NOT_LEADER')) this.d.log?.info({ err: err.message }, 'periodic backup: this instance lost the lead; the new leader schedules');
    else this.d.log?.warn({ err: String(err) }, 'periodic backups could not be started; the next pass tries again');
  }

  private async tickNow(): Promise<TickResult> {
    const result = emptyResult();
    const turn = (this.d.work ?? SOLE_INSTANCE).turn();
    // Another instance leads: it schedules.
    if (!turn) return result;
    const { fence } = turn;
    const { catalog } = this.d;
    const plannedAtMs = this.d.clock.now().getTime();
    // What happens from here on is seen by the next full pass.
    this.stale = false;
    this.endedSince = false;
    this.upcoming = undefined;
    const protection = await catalog.policies.getProtection();
    const policies = new Map((await catalog.policies.list()).map((p) => [p.name, p]));
    // Every partition's state in one read per turn: a pass over 10,000 partitions with nothing due
    // is then a pass in memory, not 10,000 catalog round trips.
    if (!this.known || this.known.token !== fence?.token) {
      this.known = { token: fence?.token, states: new Map((await catalog.schedules.listPeriodic()).map((r) => [r.partitionId, r])) };
    }
    const { states } = this.known;
    // Likewise which pending backups still run, and how those that ended did: a read of the active
    // ids and one of the ended operations per thousand, not one per partition (mid-slot, all are pending).
    const pendingIds = [...states.values()].flatMap((r) => (r.pending ? [r.pending.operationId] : []));
    const running = pendingIds.length > 0 ? await catalog.operations.activeIds() : new Set<string>();
    const endedIds = pendingIds.filter((id) => !running.has(id));
    const ended = new Map<string, OperationRecord>();
    for (let i = 0; i < endedIds.length; i += ENDED_READ_BATCH) {
      for (const [id, op] of await catalog.operations.getMany(endedIds.slice(i, i + ENDED_READ_BATCH))) ended.set(id, op);
    }
    // One service at a time: listing them all at once parsed 10,000 rows in one go on the leader,
    // and the requests it serves meanwhile waited for it (X5's p99 on the leader's instance).
    const partitions: PartitionRecord[] = [];
    for (const svc of await catalog.hierarchy.listServices()) {
      if (svc.hasPersistedState) partitions.push(...await catalog.hierarchy.listPartitions(svc.name));
    }
    const order = new Map(partitions.map((p, i) => [p.id, i]));

    // 1. Each partition's schedule as of now, in memory.
    const planned: Planned[] = [];
    for (const [i, partition] of partitions.entries()) {
      if (this.stopping) break;
      // In memory, but 10,000 partitions are a few hundred ms: the requests this instance serves get turns.
      if (i > 0 && i % PLAN_SLICE === 0) await new Promise((r) => setImmediate(r));
      try {
        const p = this.plan(partition, states.get(partition.id), running, ended, protection, policies);
        if (p) planned.push(p);
      } catch (err) {
        // One partition's state that cannot be planned (nothing was written) does not hold up the others.
        this.d.log?.warn({ partition: partition.id, err: String(err) }, 'periodic backup of a partition could not be scheduled');
      }
    }
    planned.sort((a, b) => (order.get(a.partition.id) ?? 0) - (order.get(b.partition.id) ?? 0));

    // 2. The states that changed, and the backups due, a batch at a time: a few catalog round
    // trips per batch, not several per backup (10,000 partitions can be due in one jitter window).
    const now = this.d.clock.now();
    try {
      const read = planned.filter((p) => p.fresh || p.due);
      for (let i = 0; i < read.length && !this.stopping; i += START_BATCH) await this.startDue(read.slice(i, i + START_BATCH), now, fence, result);
      const changed = planned.filter((p) => !p.fresh && !p.due && p.state !== p.stored).map((p) => p.state);
      for (let i = 0; i < changed.length; i += SAVE_BATCH) await this.save(changed.slice(i, i + SAVE_BATCH), now.toISOString(), fence);
      // Fresh ones wait for the next full pass: their states gained what step 2 read.
      const entries = planned.filter((p) => p.upcoming && !p.fresh).sort((a, b) => (a.upcoming as PlannedBackup).at.getTime() - (b.upcoming as PlannedBackup).at.getTime());
      this.upcoming = { token: fence?.token, entries, next: 0 };
    } catch (err) {
      this.lostTrack(err);
    }
    for (const p of planned) if (p.upcoming && (!result.nextDueUtc || p.upcoming.at < result.nextDueUtc)) result.nextDueUtc = p.upcoming.at;
    const endedAtMs = this.d.clock.now().getTime();
    this.lastPassEndMs = endedAtMs;
    this.settleAtMs = endedAtMs + Math.max(SETTLE_MS, SETTLE_PASS_FACTOR * (endedAtMs - plannedAtMs));
    const byOrder = (a: string, b: string): number => (order.get(a) ?? 0) - (order.get(b) ?? 0);
    result.started.sort((a, b) => byOrder(a.partitionId, b.partitionId));
    result.busy.sort(byOrder);
    return result;
  }

  /**
   * The partition's schedule state as of now (a pending backup that ended settled, the policy
   * that applies), and whether its backup is due; undefined when there is nothing to do (not
   * scheduled and unchanged, or its backup under way).
   */
  private plan(
    partition: PartitionRecord,
    stored: PeriodicScheduleRecord | undefined,
    running: ReadonlySet<string>,
    ended: ReadonlyMap<string, OperationRecord>,
    protection: Awaited<ReturnType<PolicyStore['getProtection']>>,
    policies: Map<string, { policy: BackupPolicy; uniqueId: string }>,
  ): Planned | undefined {
    const now = this.d.clock.now();
    const nowIso = now.toISOString();
    let s = stored;

    // A periodic backup that ended since the last tick. One that does not exist was never
    // started: its leader was cut off between recording it and starting it (fenced), so nothing
    // ran and nothing failed.
    if (s?.pending) {
      if (running.has(s.pending.operationId)) return undefined;
      const op = ended.get(s.pending.operationId);
      if (op && (op.state === 'Accepted' || op.state === 'BackupInProgress')) return undefined;
      s = op ? this.settle(s, op, now) : { ...s, pending: undefined };
    }

    // The policy that applies now.
    const run = periodicBackupPolicy(protection, { applicationName: applicationOf(partition.serviceName), serviceName: partition.serviceName, partitionId: partition.id });
    const record = run.run ? policies.get(run.policyName) : undefined;
    if (!run.run || !record) {
      if (s && s.active) s = { ...s, active: false };
      return s !== stored && s ? { partition, stored, state: s, fresh: false } : undefined;
    }
    // A new schedule (enable, policy update, resume): the chain counter starts again (§2.6). A
    // partition's first one notes its newest on-demand backup and restore (fresh: read in step 2),
    // so that only later ones force a full backup.
    let fresh = false;
    if (!s || !s.active || s.policyName !== record.policy.name || s.policyUniqueId !== record.uniqueId) {
      const changed = s !== undefined;
      fresh = !changed;
      s = {
        partitionId: partition.id, active: true, policyName: record.policy.name, policyUniqueId: record.uniqueId, policyAppliedUtc: nowIso,
        chainCounter: 0, consecutiveFailures: 0,
        ...(changed ? { forceFull: 'PolicyChanged' } : {}),
        lastBackupId: s?.lastBackupId, lastBackupLocation: s?.lastBackupLocation, lastBackupChainId: s?.lastBackupChainId, lastDataLossVersion: s?.lastDataLossVersion,
        seenOnDemandId: s?.seenOnDemandId, seenRestoreId: s?.seenRestoreId,
      };
    }

    // When it is due.
    const policy = record.policy;
    const state: ScheduleState = {
      lastBackupUtc: s.lastBackupUtc ? new Date(s.lastBackupUtc) : undefined,
      policyAppliedUtc: new Date(s.policyAppliedUtc),
      gaveUpUtc: s.gaveUpUtc ? new Date(s.gaveUpUtc) : undefined,
    };
    let due: Date;
    let scheduled: Date;
    if (s.fullNowUtc) {
      due = new Date(s.fullNowUtc);
      scheduled = new Date(s.attemptScheduledUtc ?? s.fullNowUtc);
    } else if (s.retryAtUtc) {
      due = new Date(s.retryAtUtc);
      scheduled = new Date(s.attemptScheduledUtc ?? s.retryAtUtc);
    } else {
      const raw = nextBackupDue(policy.schedule, state, EARLIEST).dueUtc;
      // A moment missed before the scheduler started is due when it started; the backup stands for
      // its scheduled moment unless a later slot was missed too (then it counts from now, once).
      const missedSlots = nextBackupDue(policy.schedule, { ...state, lastBackupUtc: raw }, now).missed;
      const base = raw < this.startedAt ? this.startedAt : raw;
      due = this.jittered(partition.id, base);
      scheduled = missedSlots ? now : raw;
    }
    if (due > now) return { partition, stored, state: s, fresh, upcoming: { at: due, scheduled, policy } };
    return { partition, stored, state: s, fresh, due: { at: due, scheduled, policy } };
  }

  /**
   * Step 2 for a batch of partitions that are fresh or due: one read of their newest on-demand
   * backups and restores, one write of their states (the due ones' as pending), the backups
   * started at once, and the states of those that could not start written back.
   */
  private async startDue(batch: readonly Planned[], now: Date, fence: Fence | undefined, result: PassResult): Promise<void> {
    const { catalog, service } = this.d;
    const nowIso = now.toISOString();
    const ids = batch.map((p) => p.partition.id);
    const [onDemands, restores] = await Promise.all([catalog.operations.latestOf(ids, 'Backup'), catalog.operations.latestOf(ids, 'Restore')]);
    const writes: PeriodicScheduleRecord[] = [];
    const starts: Array<{ p: Planned; due: PlannedBackup; before: PeriodicScheduleRecord; operationId: string; option: 'Full' | 'Incremental'; reason: string }> = [];
    for (const p of batch) {
      const id = p.partition.id;
      let s = p.fresh ? { ...p.state, seenOnDemandId: onDemands.get(id)?.id, seenRestoreId: restores.get(id)?.id } : p.state;
      if (!p.due) {
        writes.push(s);
        continue;
      }
      // What forces this backup to be full.
      const latestOnDemand = onDemands.get(id);
      const latestRestore = restores.get(id);
      if (latestOnDemand && latestOnDemand.id !== s.seenOnDemandId && latestOnDemand.state === 'Success') {
        s = { ...s, seenOnDemandId: latestOnDemand.id, chainCounter: 0, forceFull: 'OnDemandBackup' };
      }
      if (latestRestore && latestRestore.id !== s.seenRestoreId && latestRestore.state === 'Success') {
        s = { ...s, seenRestoreId: latestRestore.id, chainCounter: 0, forceFull: 'Restore' };
      }
      if (s.lastDataLossVersion !== undefined && s.lastDataLossVersion !== p.partition.epoch.DataLossVersion && s.forceFull === undefined) {
        s = { ...s, chainCounter: 0, forceFull: 'DataLoss' };
      }
      // Full or incremental.
      const forced = s.forceFull as ForcedFullReason | undefined;
      const noChain = s.chainCounter > 0 && (!s.lastBackupId || !s.lastBackupLocation) ? 'NoChain' : undefined;
      const { due } = p;
      const decision = decideBackupOption({ chainCounter: s.chainCounter, maxIncrementalBackups: due.policy.maxIncrementalBackups, forceFull: forced ?? noChain });
      const operationId = randomUUID();
      writes.push({ ...s, pending: { operationId, option: decision.option, chainCounterAfter: decision.chainCounterAfter, scheduledUtc: due.scheduled.toISOString() } });
      starts.push({ p, due, before: s, operationId, option: decision.option, reason: decision.reason });
    }
    // Recorded as pending before they start, both fenced: a leader that dies or loses the lease
    // between the two leaves pending backups that never started (settled in step 1), never a
    // backup the schedule does not know of (which the next leader would take again: a duplicate).
    await this.save(writes, nowIso, fence);
    if (starts.length === 0) return;
    const outcomes = await service.backups.startPeriodicBackups(starts.map(({ p, due, before, operationId, option }) => ({
      partition: p.partition, storage: due.policy.storage, option, parentBackupId: before.lastBackupId, parentBackupLocation: before.lastBackupLocation, operationId,
    })), fence);
    const notStarted: PeriodicScheduleRecord[] = [];
    outcomes.forEach((outcome, i) => {
      const { p, due, before, option, reason } = starts[i] as (typeof starts)[number];
      const id = p.partition.id;
      if ('op' in outcome) {
        const lag = Math.max(0, new Date(outcome.op.acceptedUtc).getTime() - due.at.getTime());
        this.lags.push(lag);
        if (this.lags.length > MAX_LAG_SAMPLES) this.lags.shift();
        notify(() => service.events.periodicBackupStarted({ partitionId: id, lagMs: lag }));
        result.started.push({ partitionId: id, operationId: outcome.op.id, option, reason });
        this.d.log?.info({ partition: id, operation: outcome.op.id, option, reason, lagMs: lag }, 'periodic backup started');
        return;
      }
      // Busy (an on-demand backup or a restore under way: the next tick tries again), or its host down.
      notStarted.push(before);
      if ('busy' in outcome) result.busy.push(id);
      else if ('hostDown' in outcome) this.d.log?.warn({ partition: id, host: outcome.hostDown.id, lastSeenUtc: outcome.hostDown.lastSeenUtc }, 'periodic backup not started: the partition\'s host is down');
      else this.d.log?.warn({ partition: id, err: String(outcome.refused) }, 'periodic backup of a partition could not be scheduled');
    });
    await this.save(notStarted, nowIso, fence);
  }

  /** Writes partitions' schedule states, and keeps them as the catalog now holds them. */
  private async save(records: readonly PeriodicScheduleRecord[], nowIso: string, fence: Fence | undefined): Promise<void> {
    if (records.length === 0) return;
    await this.d.catalog.schedules.putPeriodic(records, nowIso, fence);
    for (const r of records) this.known?.states.set(r.partitionId, r);
  }

  /** `due` moved by the partition's fixed offset in [−jitter, +jitter). */
  private jittered(partitionId: string, due: Date): Date {
    const jitterMs = this.d.jitterMs ?? DEFAULT_JITTER_MS;
    if (jitterMs <= 0) return due;
    const key = `${partitionId}|${due.toISOString()}`;
    const known = this.jitteredDue.get(key);
    if (known) return known;
    const h = hashStringKey(key);
    const random = Number(h & 0xffffffffn) / 2 ** 32;
    const at = jitteredFireTime(due, new Date(due.getTime() - jitterMs), () => random, jitterMs);
    // Kept: every pass asks again for every partition (the hash was 15% of a busy leader's CPU).
    if (this.jitteredDue.size >= MAX_JITTER_MEMO) this.jitteredDue.clear();
    this.jitteredDue.set(key, at);
    return at;
  }

  /** The schedule state after the periodic operation `pending` ended (or vanished). */
  private settle(s: PeriodicScheduleRecord, op: Awaited<ReturnType<OperationStore['get']>>, now: Date): PeriodicScheduleRecord {
    const pending = s.pending as NonNullable<PeriodicScheduleRecord['pending']>;
    const base: PeriodicScheduleRecord = { ...s, pending: undefined };
    if (op?.state === 'Success') {
      const r = op.result as { BackupId?: string; BackupLocation?: string; EpochOfLastBackupRecord?: { DataLossVersion: string }; BackupChainId?: string };
      return {
        ...base, lastBackupUtc: pending.scheduledUtc, lastBackupId: r.BackupId, lastBackupLocation: r.BackupLocation,
        lastBackupChainId: r.BackupChainId, lastDataLossVersion: r.EpochOfLastBackupRecord?.DataLossVersion,
        chainCounter: pending.chainCounterAfter, consecutiveFailures: 0, retryAtUtc: undefined, fullNowUtc: undefined, forceFull: undefined,
        attemptScheduledUtc: undefined, gaveUpUtc: undefined,
      };
    }
    const code = op?.failure?.Code ?? 'E_ABORT';
    const next = afterBackupFailure({ code, option: pending.option, consecutiveFailures: s.consecutiveFailures + 1 }, now, this.random);
    this.d.log?.warn({ partition: s.partitionId, operation: pending.operationId, code, next: next.kind }, 'periodic backup failed');
    switch (next.kind) {
      case 'full-now':
        return { ...base, forceFull: 'MissingFullBackup', chainCounter: 0, fullNowUtc: now.toISOString(), retryAtUtc: undefined, attemptScheduledUtc: pending.scheduledUtc };
      case 'retry':
        return { ...base, consecutiveFailures: s.consecutiveFailures + 1, retryAtUtc: next.atUtc.toISOString(), fullNowUtc: undefined, attemptScheduledUtc: pending.scheduledUtc };
      case 'schedule':
        return { ...base, consecutiveFailures: 0, retryAtUtc: undefined, fullNowUtc: undefined, attemptScheduledUtc: undefined, gaveUpUtc: now.toISOString() };
    }
  }
}

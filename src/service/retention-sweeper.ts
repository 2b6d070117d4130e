/**
 * The retention sweeper (sf-behaviour.md §2.13, rule 22). For every partition whose effective
 * policy has a Basic retention policy (suspended or not: suspension stops backups, not retention),
 * it lists the partition's backups in the policy's storage, plans with `core/retention.ts` using
 * the policy as it is now (an update applies at once: Service Fabric compared the new policy with
 * itself and ignored it), and deletes what the plan says, each backup's `.bkmetadata` before its
 * data (and out of the catalog's index before either). The backup being deleted is recorded in the catalog first, so a run cut short by a crash
 * finishes it first next time.
 *
 * Cadence: at once for a new policy version, then every 24 h when RetentionDuration is a day or
 * more, else every hour; a failed run is retried a minute later, up to 5 times, then waits for the
 * next regular run. Every decision carries its reason: `preview()` shows the plan without deleting
 * (REST `GetRetentionPlan`), and each deletion is logged with its reason.
 */
import type { RetentionDecisionWire, RetentionPlanWire } from '../wire/index.ts';
import { applicationOf } from '../core/ids.ts';
import { LifeboatError, isLifeboatError } from '../core/errors.ts';
import { effectivePolicy } from '../core/protection.ts';
import { formatDuration } from '../core/duration.ts';
import type { BackupPolicy } from '../core/policy.ts';
import { type RetentionBackup, type RetentionDecision, deletionSteps, planRetention, retentionReasonText } from '../core/retention.ts';
import { storageIdentity } from '../core/storage-description.ts';
import type { Catalog, Fence, PartitionRecord, RetentionStateRecord } from '../catalog/port.ts';
import type { BlobStore } from '../storage/port.ts';
import { BackupRepository } from '../repository/backup-repository.ts';
import type { StorageDescription } from '../core/storage-description.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { type BackgroundWork, SOLE_INSTANCE } from './leadership.ts';
import { Loop, type LoopTimer } from './loop.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const RETRY_MS = 60_000;
const MAX_RETRIES = 5;

export interface RetentionSweeperDeps {
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly openStorage: (d: StorageDescription) => BlobStore;
  readonly timer?: LoopTimer;
  /** Longest sleep of the loop, so new policies and partitions are seen (default 60 s). */
  readonly idleMs?: number;
  readonly log?: Logger;
  /** Whether this instance does the background work now (leadership.ts); default: always, unfenced. */
  readonly work?: BackgroundWork;
}

/** A backup as retention sees it, and where it is. */
interface SweptBackup extends RetentionBackup {
  readonly location: string;
}

export type { RetentionDecisionWire, RetentionPlanWire } from '../wire/index.ts';

export interface SweepResult {
  readonly partitionId: string;
  readonly deleted: string[];
  readonly error?: string;
}

function decisionWire(d: RetentionDecision<SweptBackup>): RetentionDecisionWire {
  const b = d.backup;
  return {
    BackupId: b.backupId, BackupType: b.type, BackupChainId: b.backupChainId, BackupLocation: b.location,
    CreationTimeUtc: b.creationUtc.toISOString(), Reason: retentionReasonText(d.reason),
  };
}

export class RetentionSweeper {
  private readonly loop: Loop;
  private chain: Promise<unknown> = Promise.resolve();
  private stopping = false;

  constructor(private readonly d: RetentionSweeperDeps) {
    this.loop = new Loop(async () => (await this.runDue()).nextRunUtc, {
      name: 'retention sweeper', clock: d.clock, idleMs: d.idleMs ?? 60_000, log: d.log, ...(d.timer ? { timer: d.timer } : {}),
    });
  }

  /** Whether the loop runs (start() called, stop() not since): readiness asks. */
  get isRunning(): boolean {
    return this.loop.isRunning;
  }

  start(): void {
    this.stopping = false;
    this.loop.start();
  }

  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    await this.loop.stop(graceMs);
  }

  /** Looks at once for what is due (this instance just became the leader). */
  wake(): void {
    this.loop.wake();
  }

  /** Sweeps every partition whose retention run is due; runs never overlap. */
  runDue(): Promise<{ results: SweepResult[]; nextRunUtc: Date | undefined }> {
    const run = this.chain.catch(() => undefined).then(() => this.runDueNow());
    this.chain = run;
    return run;
  }

  /** The plan a run would carry out now for the partition, deleting nothing. */
  async preview(partitionId: string): Promise<RetentionPlanWire> {
    const target = await this.retentionTarget(partitionId);
    const now = this.d.clock.now();
    const state = await this.d.catalog.schedules.getRetention(partitionId);
    const retention = target.policy.retention as NonNullable<BackupPolicy['retention']>;
    const backups = await this.listBackups(new BackupRepository(this.d.openStorage(target.policy.storage)), target.partition);
    const plan = planRetention(backups, retention, now);
    return {
      PartitionId: partitionId, PolicyName: target.policy.name, RetentionDuration: formatDuration(retention.retentionMs),
      MinimumNumberOfBackups: retention.minimumNumberOfBackups, CutoffUtc: plan.cutoffUtc.toISOString(),
      LastRunUtc: state?.policyUniqueId === target.uniqueId ? state.lastRunUtc ?? null : null,
      NextRunUtc: this.nextRun(state, target.uniqueId, retention.retentionMs, now).toISOString(),
      LastError: state?.lastError ?? null,
      Keep: plan.keep.map(decisionWire), Delete: plan.delete.map(decisionWire),
    };
  }

  private async retentionTarget(partitionId: string): Promise<{ partition: PartitionRecord; policy: BackupPolicy; uniqueId: string }> {
    const { catalog } = this.d;
    const partition = await catalog.hierarchy.getPartition(partitionId);
    if (!partition) throw new LifeboatError('FABRIC_E_PARTITION_NOT_FOUND', `Partition ${partitionId} does not exist.`);
    const eff = effectivePolicy((await catalog.policies.getProtection()).mappings, { applicationName: applicationOf(partition.serviceName), serviceName: partition.serviceName, partitionId });
    if (!eff) throw new LifeboatError('FABRIC_E_BACKUP_NOT_ENABLED', `Backup is not enabled for partition ${partitionId}, so no retention applies to it.`);
    const record = await catalog.policies.get(eff.policyName);
    if (!record) throw new LifeboatError('FABRIC_E_BACKUP_POLICY_NOT_EXISTING', `Backup policy '${eff.policyName}' does not exist.`);
    if (!record.policy.retention) {
      throw new LifeboatError('E_INVALIDARG', `Backup policy '${eff.policyName}' of partition ${partitionId} has no retention policy: its backups are kept until deleted.`);
    }
    return { partition, policy: record.policy, uniqueId: record.uniqueId };
  }

  private nextRun(state: RetentionStateRecord | undefined, uniqueId: string, retentionMs: number, now: Date): Date {
    if (!state || state.policyUniqueId !== uniqueId) return now;
    if (state.retryAtUtc) return new Date(state.retryAtUtc);
    if (state.deleting) return now;
    if (!state.lastRunUtc) return now;
    return new Date(new Date(state.lastRunUtc).getTime() + (retentionMs >= DAY ? DAY : HOUR));
  }

  private async runDueNow(): Promise<{ results: SweepResult[]; nextRunUtc: Date | undefined }> {
    const turn = (this.d.work ?? SOLE_INSTANCE).turn();
    // Another instance leads: it sweeps.
    if (!turn) return { results: [], nextRunUtc: undefined };
    try {
      return await this.runTurn(turn.fence);
    } catch (err) {
      if (!isLifeboatError(err, 'LIFEBOAT_E_NOT_LEADER')) throw err;
      this.d.log?.info({ err: err.message }, 'retention: this instance lost the lead; the new leader sweeps');
      return { results: [], nextRunUtc: undefined };
    }
  }

  private async runTurn(fence: Fence | undefined): Promise<{ results: SweepResult[]; nextRunUtc: Date | undefined }> {
    const { catalog } = this.d;
    const protection = await catalog.policies.getProtection();
    const policies = new Map((await catalog.policies.list()).map((p) => [p.name, p]));
    const results: SweepResult[] = [];
    let nextRunUtc: Date | undefined;
    for (const svc of await catalog.hierarchy.listServices()) {
      if (!svc.hasPersistedState) continue;
      for (const partition of await catalog.hierarchy.listPartitions(svc.name)) {
        if (this.stopping) return { results, nextRunUtc };
        const eff = effectivePolicy(protection.mappings, { applicationName: applicationOf(svc.name), serviceName: svc.name, partitionId: partition.id });
        const record = eff && policies.get(eff.policyName);
        const retention = record?.policy.retention;
        if (!record || !retention) continue;
        const now = this.d.clock.now();
        const state = await catalog.schedules.getRetention(partition.id);
        const due = this.nextRun(state, record.uniqueId, retention.retentionMs, now);
        if (due > now) {
          if (!nextRunUtc || due < nextRunUtc) nextRunUtc = due;
          continue;
        }
        const result = await this.sweep(partition, record.policy, record.uniqueId, state, now, fence);
        results.push(result);
        const after = this.nextRun(await catalog.schedules.getRetention(partition.id), record.uniqueId, retention.retentionMs, this.d.clock.now());
        if (!nextRunUtc || after < nextRunUtc) nextRunUtc = after;
      }
    }
    return { results, nextRunUtc };
  }

  private async listBackups(repo: BackupRepository, partition: PartitionRecord): Promise<SweptBackup[]> {
    const stored = await repo.list({ kind: 'Partition', serviceName: partition.serviceName, partitionId: partition.id },
      (key, err) => this.d.log?.warn({ key, err: String(err) }, 'retention: skipping unreadable backup metadata (it is neither kept nor deleted)'));
    return stored.map(({ location, metadata: m }) => ({
      backupId: m.BackupId, backupChainId: m.BackupChainId, parentBackupId: m.ParentBackupId, type: m.BackupType,
      creationUtc: new Date(m.CreationTimeUtc), location,
    }));
  }

  /** One run for one partition: finish an interrupted deletion, then carry out the plan. */
  private async sweep(partition: PartitionRecord, policy: BackupPolicy, uniqueId: string, state: RetentionStateRecord | undefined, now: Date, fence: Fence | undefined): Promise<SweepResult> {
    const { catalog, log } = this.d;
    const retention = policy.retention as NonNullable<BackupPolicy['retention']>;
    const storageKey = storageIdentity(policy.storage);
    const base: RetentionStateRecord = {
      partitionId: partition.id, policyUniqueId: uniqueId, consecutiveFailures: state?.policyUniqueId === uniqueId ? state.consecutiveFailures : 0,
      lastRunUtc: state?.lastRunUtc,
    };
    const deleted: string[] = [];
    try {
      const repo = new BackupRepository(this.d.openStorage(policy.storage));
      const backups = await this.listBackups(repo, partition);
      const plan = planRetention(backups, retention, now);
      const interrupted: SweptBackup | undefined = state?.deleting && state.deleting.storageKey === storageKey
        ? {
            backupId: state.deleting.backupId, backupChainId: state.deleting.backupChainId, parentBackupId: state.deleting.parentBackupId,
            type: state.deleting.backupType, creationUtc: new Date(state.deleting.creationUtc), location: state.deleting.dataKey,
          }
        : undefined;
      const reasons = new Map(plan.delete.map((x) => [x.backup.backupId, x.reason]));
      for (const step of deletionSteps(plan.delete, interrupted)) {
        const b = step.backup;
        if (step.object === 'metadata') {
          const keys = repo.objectKeys(b.location);
          await catalog.schedules.putRetention({
            ...base, deleting: {
              storageKey, backupId: b.backupId, backupChainId: b.backupChainId, parentBackupId: b.parentBackupId, backupType: b.type,
              creationUtc: b.creationUtc.toISOString(), metadataKey: keys.metadata, dataKey: keys.data,
            },
          }, now.toISOString(), fence); // fenced: an instance that lost the lead deletes nothing more
          // Out of every listing before anything is deleted: the index, then the metadata.
          const indexed = await catalog.backups.get(b.backupId);
          if (indexed?.storageKey === storageKey) await catalog.backups.delete(b.backupId);
          await repo.deleteMetadata(b.location);
        } else {
          await repo.deleteData(b.location);
          deleted.push(b.backupId);
          log?.info({
            partition: partition.id, policy: policy.name, backup: b.backupId, type: b.type, created: b.creationUtc.toISOString(),
            reason: retentionReasonText(reasons.get(b.backupId) ?? { rule: 'interrupted-deletion', detail: {} }),
          }, 'retention: backup deleted');
        }
      }
      await catalog.schedules.putRetention({ ...base, consecutiveFailures: 0, lastRunUtc: now.toISOString() }, now.toISOString(), fence);
      if (plan.delete.length > 0 || interrupted) {
        log?.info({ partition: partition.id, policy: policy.name, deleted: deleted.length, kept: plan.keep.length, cutoff: plan.cutoffUtc.toISOString() }, 'retention: run done');
      }
      return { partitionId: partition.id, deleted };
    } catch (err) {
      if (isLifeboatError(err, 'LIFEBOAT_E_NOT_LEADER')) throw err;
      const message = err instanceof Error ? err.message : String(err);
      const failures = base.consecutiveFailures + 1;
      const giveUp = failures > MAX_RETRIES;
      const current = await catalog.schedules.getRetention(partition.id);
      await catalog.schedules.putRetention({
        ...base, deleting: current?.deleting, lastError: message,
        consecutiveFailures: giveUp ? 0 : failures,
        ...(giveUp ? { lastRunUtc: now.toISOString(), retryAtUtc: undefined } : { retryAtUtc: new Date(now.getTime() + RETRY_MS).toISOString() }),
      }, now.toISOString(), fence);
      log?.warn({ partition: partition.id, policy: policy.name, err: message, attempt: failures, giveUp }, 'retention: run failed');
      return { partitionId: partition.id, deleted, error: message };
    }
  }
}

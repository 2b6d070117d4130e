/**
 * Data loss (sf-behaviour §2.12): what a host's partition in data loss does — restore the newest
 * backup (AutoRestoreOnDataLoss), wait for a user's restore, go on with the replica's state
 * (SkipAutoRestore), or, unprotected, its own handler.
 */
import { isLifeboatError } from '../core/errors.ts';
import type { DataLossDecision } from '../core/host-protocol.ts';
import { applicationOf } from '../core/ids.ts';
import { effectivePolicy } from '../core/protection.ts';
import type { Hierarchy } from './hierarchy.ts';
import type { OrderBoard } from './orders.ts';
import { type ServicePorts, timeoutMinutes } from './ports.ts';
import type { Restores } from './restores.ts';

export class DataLossDesk {
  constructor(private readonly p: ServicePorts, private readonly hierarchy: Hierarchy, private readonly orders: OrderBoard, private readonly restores: Restores) {}

  /**
   * A host's partition is in data loss. Not protected → its own handler runs. Protected: with
   * AutoRestoreOnDataLoss the newest backup's chain is restored (Safe) through a Restore
   * operation, which GetRestoreProgress shows; without it, or with no backup, the partition waits
   * for a user's restore (Service Fabric 10.0: "wait for user intervention"). SkipAutoRestore lets
   * it go on with the replica's state.
   */
  async decide(hostId: string, partitionId: string): Promise<DataLossDecision> {
    const partition = await this.p.catalog.hierarchy.getPartition(partitionId);
    if (!partition || partition.hostId !== hostId) return { Action: 'NotProtected' };
    const now = this.p.clock.now();
    // Kept in the catalog: the host may ask any instance.
    const skip = await this.p.catalog.hierarchy.takeSkipAutoRestore(partitionId);
    if (skip !== undefined && new Date(skip) > now) return { Action: 'Skip' };
    const eff = effectivePolicy((await this.p.catalog.policies.getProtection()).mappings, { applicationName: applicationOf(partition.serviceName), serviceName: partition.serviceName, partitionId });
    const record = eff && await this.p.catalog.policies.get(eff.policyName);
    if (!record) return { Action: 'NotProtected' };
    const active = (await this.p.catalog.operations.active(hostId)).find((o) => o.partitionId === partitionId && o.kind === 'Restore');
    if (active) return { Action: 'Wait', Reason: `restore ${active.id} is under way` };
    if (!record.policy.autoRestoreOnDataLoss) {
      return { Action: 'Wait', Reason: `policy '${record.name}' does not restore automatically: waiting for RestorePartition or SkipAutoRestore` };
    }
    try {
      const op = await this.restores.restorePartition(partitionId, undefined, undefined, true, true);
      this.p.log.info({ partition: partitionId, operation: op.id, backup: op.request.backupId }, 'data loss: auto-restore of the newest backup started');
      return { Action: 'Wait', Reason: `auto-restore ${op.id} of backup ${String(op.request.backupId)}` };
    } catch (err) {
      const why = isLifeboatError(err) ? err.message : String(err);
      return { Action: 'Wait', Reason: `auto-restore cannot start (${why}): waiting for RestorePartition or SkipAutoRestore` };
    }
  }

  /**
   * SkipAutoRestore (9.1): the partition leaves data loss keeping its replica's state instead of
   * being restored. An auto-restore not yet handed to the host is dropped; one already running
   * finishes. The request holds for RestoreTimeout minutes, kept in the catalog.
   */
  async skipAutoRestore(partitionId: string, restoreTimeout?: number): Promise<void> {
    const minutes = timeoutMinutes(restoreTimeout, 'RestoreTimeout');
    const partition = await this.hierarchy.getPartition(partitionId);
    const now = this.p.clock.now();
    await this.p.catalog.hierarchy.setSkipAutoRestore(partition.id, new Date(now.getTime() + minutes * 60_000).toISOString());
    const op = await this.p.catalog.operations.latest(partition.id, 'Restore');
    if (op && op.state === 'Accepted' && op.request.auto === true) {
      const dropped = await this.p.catalog.operations.update(op.id, {
        state: 'Failure', updatedUtc: now.toISOString(),
        failure: { Code: 'E_ABORT', Message: 'The auto-restore was skipped (SkipAutoRestore): the partition keeps its replica\'s state.' },
      });
      if (dropped) await this.orders.ended(op.id);
    }
    this.p.log.info({ partition: partition.id, minutes }, 'SkipAutoRestore requested');
    await this.orders.wakeHost(partition.hostId);
  }
}

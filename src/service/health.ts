/** Partition health as Service Fabric's BackupRestore reports it (GetPartitionHealth; the rules: core/health.ts). */
import { type EndedOperation, aggregatedHealthState, backupRestoreHealthEvents, eventsMatchingFilter } from '../core/health.ts';
import { hostIsDown } from '../core/host-liveness.ts';
import { applicationOf } from '../core/ids.ts';
import { effectivePolicy } from '../core/protection.ts';
import type { OperationRecord } from '../catalog/port.ts';
import type { Hierarchy } from './hierarchy.ts';
import type { ServicePorts } from './ports.ts';

export class Health {
  constructor(private readonly p: ServicePorts, private readonly hierarchy: Hierarchy) {}

  /** GetPartitionHealth: the BackupRestore events of the partition (core/health.ts). */
  async partitionHealth(partitionId: string, eventsHealthStateFilter = 0): Promise<Record<string, unknown>> {
    const partition = await this.hierarchy.getPartition(partitionId);
    const ref = { applicationName: applicationOf(partition.serviceName), serviceName: partition.serviceName, partitionId: partition.id };
    // Independent reads, at once (a health check is one of the most frequent calls).
    const { catalog } = this.p;
    const [protection, host, lastBackup, lastRestore] = await Promise.all([
      catalog.policies.getProtection(), catalog.hierarchy.getHost(partition.hostId),
      catalog.operations.latestEnded(partition.id, ['Backup', 'PeriodicBackup']), catalog.operations.latestEnded(partition.id, ['Restore']),
    ]);
    const eff = effectivePolicy(protection.mappings, ref);
    // operations.latestEnded answers only ended operations.
    const ended = (op: OperationRecord | undefined): EndedOperation | undefined => op && {
      state: op.state as EndedOperation['state'], updatedUtc: op.updatedUtc, failure: op.failure, auto: op.request.auto === true,
    };
    const events = backupRestoreHealthEvents({
      policyName: eff?.policyName,
      hostDown: host && hostIsDown(host, this.p.wallClock.now(), this.p.hostGraceMs) ? { hostId: host.id, lastSeenUtc: host.lastSeenUtc } : undefined,
      lastBackup: ended(lastBackup),
      lastRestore: ended(lastRestore),
    }, this.p.clock.now());
    const aggregated = aggregatedHealthState(events);
    return {
      AggregatedHealthState: aggregated,
      HealthEvents: eventsMatchingFilter(events, eventsHealthStateFilter),
      UnhealthyEvaluations: events.filter((e) => e.HealthState !== 'Ok').map((e) => ({
        HealthEvaluation: {
          Kind: 'Event', AggregatedHealthState: e.HealthState, ConsiderWarningAsError: false, UnhealthyEvent: e,
          Description: `${e.HealthState} event: SourceId='${e.SourceId}', Property='${e.Property}'.`,
        },
      })),
      HealthStatistics: null,
      PartitionId: partition.id,
      ReplicaHealthStates: [],
    };
  }
}

/** GetPartitionHealth's answer (Service Fabric's PartitionHealth), with the BackupRestore events (core/health.ts). */
import type { HealthEventWire, HealthState } from '../core/health.ts';

export type { HealthEventWire, HealthState } from '../core/health.ts';

export interface PartitionHealthWire {
  AggregatedHealthState: HealthState;
  HealthEvents: HealthEventWire[];
  UnhealthyEvaluations: Array<{
    HealthEvaluation: {
      Kind: 'Event'; AggregatedHealthState: HealthState; ConsiderWarningAsError: boolean; UnhealthyEvent: HealthEventWire; Description: string;
    };
  }>;
  HealthStatistics: null;
  PartitionId: string;
  ReplicaHealthStates: never[];
}

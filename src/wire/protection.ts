/**
 * Backup entities and protection as the wire carries them: BackupEntity (EnableBackup's
 * subjects, GetBackupEnabledEntities' items), the {Application,Service,Partition}BackupConfigurationInfo
 * answers, and the bodies of EnableBackup and DisableBackup.
 */
import {
  type BackupEntity, type EntityLevel, type ProtectionState, effectivePolicyOf, suspensionOf,
} from '../core/protection.ts';

export type BackupEntityWire =
  | { EntityKind: 'Application'; ApplicationName: string }
  | { EntityKind: 'Service'; ServiceName: string }
  | { EntityKind: 'Partition'; ServiceName: string; PartitionId: string };

export function entityWire(e: BackupEntity): BackupEntityWire {
  switch (e.kind) {
    case 'Application': return { EntityKind: 'Application', ApplicationName: e.applicationName };
    case 'Service': return { EntityKind: 'Service', ServiceName: e.serviceName };
    case 'Partition': return { EntityKind: 'Partition', ServiceName: e.serviceName, PartitionId: e.partitionId };
  }
}

export type BackupSuspensionInfoWire = { IsSuspended: boolean; SuspensionInheritedFrom: EntityLevel | 'Invalid' };

/** A {Application,Service,Partition}BackupConfigurationInfo; PolicyName only when a policy applies. */
export type BackupConfigurationInfoWire = {
  Kind: EntityLevel;
  PolicyName?: string;
  PolicyInheritedFrom: EntityLevel | 'Invalid';
  ApplicationName?: string;
  ServiceName?: string;
  PartitionId?: string;
  SuspensionInfo: BackupSuspensionInfoWire;
};

/** The configuration of `e` in the protection state: its effective policy and suspension. */
export function backupConfigurationWire(state: ProtectionState, e: BackupEntity): BackupConfigurationInfoWire {
  const eff = effectivePolicyOf(state.mappings, e);
  const susp = suspensionOf(state.suspensions, e);
  const from: EntityLevel | 'Invalid' = eff?.inheritedFrom ?? 'Invalid';
  const names = e.kind === 'Application' ? { ApplicationName: e.applicationName }
    : e.kind === 'Service' ? { ServiceName: e.serviceName } : { ServiceName: e.serviceName, PartitionId: e.partitionId };
  return {
    Kind: e.kind, ...(eff ? { PolicyName: eff.policyName } : {}), PolicyInheritedFrom: from, ...names,
    SuspensionInfo: { IsSuspended: susp.isSuspended, SuspensionInheritedFrom: susp.inheritedFrom },
  };
}

/** EnableBackupDescription. */
export interface EnableBackupRequest {
  BackupPolicyName: string;
}

/** DisableBackupDescription: CleanBackup deletes the backups of the partitions that lose their policy. */
export interface DisableBackupRequest {
  CleanBackup: boolean;
}

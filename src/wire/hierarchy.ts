/**
 * Applications, services and partitions as the hierarchy queries answer them (Service Fabric's
 * ApplicationInfo, StatefulServiceInfo, StatefulServicePartitionInfo, PartitionInformation).
 * Lifeboat knows only what the hosts registered, so the rest is fixed: one replica, healthy, ready.
 */
import { nameToId } from '../core/ids.ts';
import type { PartitionInfo } from '../core/partitioning.ts';
import type { EpochWire } from './epoch.ts';

/**
 * PartitionInformation: `ServicePartitionKind` Singleton, Named (+ `Name`) or Int64Range (+
 * `LowKey`, `HighKey` as decimal strings), and `Id`. Any member may be read as a string.
 */
export type PartitionInformationWire = Record<string, string> & { ServicePartitionKind: 'Singleton' | 'Named' | 'Int64Range'; Id: string };

export function partitionInformationWire(id: string, info: PartitionInfo): PartitionInformationWire {
  switch (info.kind) {
    case 'Singleton': return { ServicePartitionKind: 'Singleton', Id: id };
    case 'Named': return { ServicePartitionKind: 'Named', Id: id, Name: info.name };
    case 'Int64Range': return { ServicePartitionKind: 'Int64Range', Id: id, LowKey: info.lowKey.toString(), HighKey: info.highKey.toString() };
  }
}

export type ApplicationWire = {
  Id: string; Name: string; TypeName: string; TypeVersion: string; Status: 'Ready'; Parameters: never[]; HealthState: 'Ok';
  ApplicationDefinitionKind: 'ServiceFabricApplicationDescription';
};

export function applicationWire(name: string): ApplicationWire {
  const id = nameToId(name);
  return {
    Id: id, Name: name, TypeName: `${id}Type`, TypeVersion: '1.0.0', Status: 'Ready', Parameters: [], HealthState: 'Ok',
    ApplicationDefinitionKind: 'ServiceFabricApplicationDescription',
  };
}

export type ServiceWire = {
  Id: string; ServiceKind: 'Stateful'; Name: string; TypeName: string; ManifestVersion: string;
  HealthState: 'Ok'; ServiceStatus: 'Active'; IsServiceGroup: false; HasPersistedState: boolean;
};

/** The service of a registration: its name and whether it persists its state. */
export function serviceWire(s: { readonly name: string; readonly hasPersistedState: boolean }): ServiceWire {
  return {
    Id: nameToId(s.name), ServiceKind: 'Stateful', Name: s.name, TypeName: `${s.name.split('/').pop() ?? 'Service'}Type`, ManifestVersion: '1.0.0',
    HealthState: 'Ok', ServiceStatus: 'Active', IsServiceGroup: false, HasPersistedState: s.hasPersistedState,
  };
}

export type PartitionWire = {
  ServiceKind: 'Stateful'; HealthState: 'Ok'; PartitionStatus: 'Ready'; PartitionInformation: PartitionInformationWire;
  TargetReplicaSetSize: number; MinReplicaSetSize: number;
  CurrentConfigurationEpoch: { ConfigurationVersion: string; DataLossVersion: string };
};

/** A registered partition: its id, what part of the key space it holds, and its current epoch. */
export function partitionWire(p: { readonly id: string; readonly info: PartitionInfo; readonly epoch: EpochWire }): PartitionWire {
  return {
    ServiceKind: 'Stateful', HealthState: 'Ok', PartitionStatus: 'Ready', PartitionInformation: partitionInformationWire(p.id, p.info),
    TargetReplicaSetSize: 1, MinReplicaSetSize: 1,
    // Service Fabric writes this epoch ConfigurationVersion first.
    CurrentConfigurationEpoch: { ConfigurationVersion: p.epoch.ConfigurationVersion, DataLossVersion: p.epoch.DataLossVersion },
  };
}

/**
 * Simulated hosts for the scheduler benches: a service's registration with made-up partitions, and
 * the Success report a host would send for a backup order — no data is read or written, so only
 * the service, the catalog and the scheduler are measured.
 */
import { randomUUID } from 'node:crypto';
import type { Order, Registration, Report } from '../src/core/host-protocol.ts';
import { type PartitionScheme, partitionInfoToJson, partitionsOfScheme, schemeToJson } from '../src/core/partitioning.ts';

const EPOCH = { DataLossVersion: '1', ConfigurationVersion: '1' };

/** A stateful service of `scheme`'s partitions, each with a new id. */
export function simulatedService(name: string, scheme: PartitionScheme): Registration['Services'][number] {
  return {
    Name: name, Scheme: schemeToJson(scheme), HasPersistedState: true,
    Partitions: partitionsOfScheme(scheme).map((info) => ({ Id: randomUUID(), Epoch: EPOCH, Lsn: '100', Info: partitionInfoToJson(info) })),
  } as Registration['Services'][number];
}

/** The Success report of a backup order, its backup in `folder`; `chains` keeps each partition's chain id. */
export function successReport(o: Extract<Order, { Kind: 'Backup' }>, chains: Map<string, string>, folder: string): Report {
  const id = randomUUID();
  const incremental = o.Option === 'Incremental';
  const chain = incremental ? chains.get(o.PartitionId) ?? id : id;
  chains.set(o.PartitionId, chain);
  const state = { Id: o.PartitionId, Epoch: EPOCH, Lsn: '100' };
  return {
    OperationId: o.OperationId, State: 'Success', Partition: state,
    Backup: {
      BackupId: id, BackupChainId: chain, ParentBackupId: incremental ? o.ParentBackupId ?? '' : '', BackupLocation: `${folder}/${o.PartitionId}/${id}.lbk`,
      BackupType: incremental ? 'Incremental' : 'Full', EpochOfLastBackupRecord: state.Epoch, LsnOfLastBackupRecord: '100', CreationTimeUtc: new Date().toISOString(),
    },
  } as Report;
}

/**
 * What the Lifeboat service and its hosts say to each other (over HTTP for a separate host, by
 * function call for the host inside the service process). Orders go service → host; reports go
 * host → service. Wire names are PascalCase like the public API.
 */
import type { StorageDescription } from './storage-description.ts';

export interface EpochWire {
  readonly DataLossVersion: string;
  readonly ConfigurationVersion: string;
}

export interface PartitionState {
  readonly Id: string;
  readonly Epoch: EpochWire;
  readonly Lsn: string;
}

export interface RegisteredPartition extends PartitionState {
  /** partitionInfoToJson form. */
  readonly Info: Record<string, string>;
}

export interface RegisteredService {
  readonly Name: string;
  /** schemeToJson form. */
  readonly Scheme: Record<string, unknown>;
  readonly HasPersistedState: boolean;
  readonly Partitions: readonly RegisteredPartition[];
}

export interface Registration {
  readonly Services: readonly RegisteredService[];
}

export type Order =
  | { readonly OperationId: string; readonly Kind: 'Backup'; readonly PartitionId: string; readonly Storage: StorageDescription; readonly DeadlineUtc: string }
  | {
    readonly OperationId: string; readonly Kind: 'Restore'; readonly PartitionId: string; readonly Storage: StorageDescription; readonly DeadlineUtc: string;
    /** Data keys of the chain, full backup first. */
    readonly Chain: readonly string[];
  };

export interface StoredBackupSummary {
  readonly BackupId: string;
  readonly BackupChainId: string;
  readonly ParentBackupId: string;
  readonly BackupLocation: string;
  readonly BackupType: 'Full' | 'Incremental';
  readonly EpochOfLastBackupRecord: EpochWire;
  readonly LsnOfLastBackupRecord: string;
  readonly CreationTimeUtc: string;
}

export type Report =
  | { readonly OperationId: string; readonly State: 'InProgress' }
  | { readonly OperationId: string; readonly State: 'Success'; readonly Partition: PartitionState; readonly Backup?: StoredBackupSummary; readonly Restored?: { readonly Epoch: EpochWire; readonly Lsn: string } }
  | { readonly OperationId: string; readonly State: 'Failure'; readonly Error: { readonly Code: string; readonly Message: string }; readonly Partition?: PartitionState };

/** The service's side of the conversation, as a host sees it. */
export interface HostChannel {
  register(hostId: string, registration: Registration): Promise<void>;
  /** Orders for this host's partitions; waits up to `waitMs` for one when there is none. */
  pollOrders(hostId: string, waitMs: number): Promise<Order[]>;
  report(hostId: string, report: Report): Promise<void>;
}

const INT64 = /^-?\d{1,20}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function epochOf(v: unknown, where: string): EpochWire {
  const e = v as Record<string, unknown> | null;
  if (!e || typeof e.DataLossVersion !== 'string' || typeof e.ConfigurationVersion !== 'string' || !INT64.test(e.DataLossVersion) || !INT64.test(e.ConfigurationVersion)) {
    throw new TypeError(`${where}: Epoch must be {DataLossVersion, ConfigurationVersion} as decimal strings`);
  }
  return { DataLossVersion: e.DataLossVersion, ConfigurationVersion: e.ConfigurationVersion };
}

/** Checks a registration received from a host; throws TypeError with what is wrong. */
export function parseRegistration(value: unknown): Registration {
  const r = value as Record<string, unknown> | null;
  if (!r || !Array.isArray(r.Services)) throw new TypeError('A registration is {Services: [...]}');
  return {
    Services: r.Services.map((sv: unknown, i: number) => {
      const s = sv as Record<string, unknown> | null;
      if (!s || typeof s.Name !== 'string' || !s.Scheme || typeof s.Scheme !== 'object' || !Array.isArray(s.Partitions)) {
        throw new TypeError(`Services[${i}] needs Name, Scheme and Partitions`);
      }
      return {
        Name: s.Name,
        Scheme: s.Scheme as Record<string, unknown>,
        HasPersistedState: s.HasPersistedState !== false,
        Partitions: s.Partitions.map((pv: unknown, j: number) => {
          const p = pv as Record<string, unknown> | null;
          const where = `Services[${i}].Partitions[${j}]`;
          if (!p || typeof p.Id !== 'string' || !GUID.test(p.Id) || !p.Info || typeof p.Info !== 'object' || typeof p.Lsn !== 'string' || !INT64.test(p.Lsn)) {
            throw new TypeError(`${where} needs a GUID Id, Info and a decimal Lsn`);
          }
          return { Id: p.Id.toLowerCase(), Info: p.Info as Record<string, string>, Epoch: epochOf(p.Epoch, where), Lsn: p.Lsn };
        }),
      };
    }),
  };
}

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
  /**
   * Random per start of the host process (1 to 64 letters, digits or dashes). A registration with
   * another one than before is a host that restarted: what it was carrying out is lost. The same
   * one again is the same process moving to another service instance. Absent: treated as a restart.
   */
  readonly Incarnation?: string;
}

export type Order =
  | {
    readonly OperationId: string; readonly Kind: 'Backup'; readonly PartitionId: string; readonly Storage: StorageDescription; readonly DeadlineUtc: string;
    /** Full when absent (on-demand backups are always full). */
    readonly Option?: 'Full' | 'Incremental';
    /** For an Incremental: the backup it continues (the periodic chain's newest), as the service recorded it. */
    readonly ParentBackupId?: string;
    readonly ParentBackupLocation?: string;
  }
  | {
    readonly OperationId: string; readonly Kind: 'Restore'; readonly PartitionId: string; readonly Storage: StorageDescription; readonly DeadlineUtc: string;
    /** Data keys of the chain, full backup first. */
    readonly Chain: readonly string[];
    /** Force (a user's restore) when absent; Safe for an auto-restore on data loss (§2.12). */
    readonly RestorePolicy?: 'Safe' | 'Force';
  };

/**
 * What a host does about data loss in one of its partitions (§2.12), as the service decides it:
 * - NotProtected: no backup policy applies; the application's own data-loss handler runs.
 * - Wait: protected; a restore order will come (the service started an auto-restore, or the
 *   partition waits for a user's restore). Ask again after a while.
 * - Skip: SkipAutoRestore was called: leave data loss keeping the replica's state.
 */
export type DataLossDecision = { readonly Action: 'NotProtected' } | { readonly Action: 'Wait'; readonly Reason: string } | { readonly Action: 'Skip' };

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

/**
 * How far a transfer is: bytes moved so far, the total expected when known. A backup counts the
 * partition's bytes read (TotalBytes: the database file of a full; unknown for an incremental's
 * change log); a restore the stored bytes of the chain read (TotalBytes: the chain's objects).
 * StoredBytes: a backup's bytes written to storage so far.
 */
export interface TransferProgress {
  readonly BytesTransferred: number;
  readonly TotalBytes?: number;
  readonly StoredBytes?: number;
}

export type Report =
  | { readonly OperationId: string; readonly State: 'InProgress'; readonly Progress?: TransferProgress }
  | {
    readonly OperationId: string; readonly State: 'Success'; readonly Partition: PartitionState; readonly Backup?: StoredBackupSummary;
    readonly Restored?: { readonly Epoch: EpochWire; readonly Lsn: string }; readonly Progress?: TransferProgress;
  }
  | { readonly OperationId: string; readonly State: 'Failure'; readonly Error: { readonly Code: string; readonly Message: string }; readonly Partition?: PartitionState };

/** The service's side of the conversation, as a host sees it. */
export interface HostChannel {
  register(hostId: string, registration: Registration): Promise<void>;
  /** Orders for this host's partitions; waits up to `waitMs` for one when there is none. */
  pollOrders(hostId: string, waitMs: number, signal?: AbortSignal): Promise<Order[]>;
  report(hostId: string, report: Report): Promise<void>;
  /** A partition of this host is in data loss: what should it do? */
  dataLoss(hostId: string, partitionId: string): Promise<DataLossDecision>;
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
  if (r.Incarnation !== undefined && (typeof r.Incarnation !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(r.Incarnation))) {
    throw new TypeError('Incarnation is 1 to 64 letters, digits or dashes');
  }
  return {
    ...(typeof r.Incarnation === 'string' ? { Incarnation: r.Incarnation } : {}),
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

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096) throw new TypeError(`${where} must be a non-empty string`);
  return v;
}

function partitionStateOf(v: unknown, where: string): PartitionState {
  const p = v as Record<string, unknown> | null;
  if (!p || typeof p.Id !== 'string' || !GUID.test(p.Id) || typeof p.Lsn !== 'string' || !INT64.test(p.Lsn)) throw new TypeError(`${where} needs a GUID Id and a decimal Lsn`);
  return { Id: p.Id.toLowerCase(), Epoch: epochOf(p.Epoch, where), Lsn: p.Lsn };
}

const byteCount = (v: unknown, where: string): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`${where} must be a whole number of bytes`);
  return v;
};

function progressOf(v: unknown): { Progress?: TransferProgress } {
  if (v === undefined || v === null) return {};
  const p = v as Record<string, unknown>;
  if (typeof p !== 'object') throw new TypeError('Progress must be {BytesTransferred, TotalBytes?, StoredBytes?}');
  return {
    Progress: {
      BytesTransferred: byteCount(p.BytesTransferred, 'Progress.BytesTransferred'),
      ...(p.TotalBytes !== undefined ? { TotalBytes: byteCount(p.TotalBytes, 'Progress.TotalBytes') } : {}),
      ...(p.StoredBytes !== undefined ? { StoredBytes: byteCount(p.StoredBytes, 'Progress.StoredBytes') } : {}),
    },
  };
}

/** Checks a report received from a host; throws TypeError with what is wrong. */
export function parseReport(value: unknown): Report {
  const r = value as Record<string, unknown> | null;
  if (!r || typeof r !== 'object') throw new TypeError('A report is an object');
  const OperationId = str(r.OperationId, 'OperationId');
  switch (r.State) {
    case 'InProgress':
      return { OperationId, State: 'InProgress', ...progressOf(r.Progress) };
    case 'Failure': {
      const e = r.Error as Record<string, unknown> | null;
      if (!e || typeof e !== 'object') throw new TypeError('A Failure report needs Error {Code, Message}');
      return { OperationId, State: 'Failure', Error: { Code: str(e.Code, 'Error.Code'), Message: String(e.Message ?? '') }, ...(r.Partition ? { Partition: partitionStateOf(r.Partition, 'Partition') } : {}) };
    }
    case 'Success': {
      const Partition = partitionStateOf(r.Partition, 'Partition');
      if (r.Backup) {
        const b = r.Backup as Record<string, unknown>;
        const type = b.BackupType;
        if (type !== 'Full' && type !== 'Incremental') throw new TypeError('Backup.BackupType must be Full or Incremental');
        if (typeof b.LsnOfLastBackupRecord !== 'string' || !INT64.test(b.LsnOfLastBackupRecord)) throw new TypeError('Backup.LsnOfLastBackupRecord must be a decimal string');
        const created = str(b.CreationTimeUtc, 'Backup.CreationTimeUtc');
        if (Number.isNaN(new Date(created).getTime())) throw new TypeError('Backup.CreationTimeUtc must be a date-time');
        return {
          OperationId, State: 'Success', Partition, ...progressOf(r.Progress),
          Backup: {
            BackupId: str(b.BackupId, 'Backup.BackupId'), BackupChainId: str(b.BackupChainId, 'Backup.BackupChainId'), ParentBackupId: String(b.ParentBackupId ?? ''),
            BackupLocation: str(b.BackupLocation, 'Backup.BackupLocation'), BackupType: type, EpochOfLastBackupRecord: epochOf(b.EpochOfLastBackupRecord, 'Backup'),
            LsnOfLastBackupRecord: b.LsnOfLastBackupRecord, CreationTimeUtc: created,
          },
        };
      }
      if (r.Restored) {
        const x = r.Restored as Record<string, unknown>;
        if (typeof x.Lsn !== 'string' || !INT64.test(x.Lsn)) throw new TypeError('Restored.Lsn must be a decimal string');
        return { OperationId, State: 'Success', Partition, Restored: { Epoch: epochOf(x.Epoch, 'Restored'), Lsn: x.Lsn }, ...progressOf(r.Progress) };
      }
      throw new TypeError('A Success report carries Backup or Restored');
    }
    default:
      throw new TypeError('State must be InProgress, Success or Failure');
  }
}

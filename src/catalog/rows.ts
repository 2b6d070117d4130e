/**
 * The catalog's rows as both adapters keep them (the same tables and columns: src/catalog/sqlite.ts,
 * src/catalog/postgres.ts), and the records they stand for. Columns whose type differs between the
 * two (booleans) stay with their adapter.
 */
import { LifeboatError } from '../core/errors.ts';
import { partitionInfoFromJson } from '../core/partitioning.ts';
import type { BackupPolicy } from '../core/policy.ts';
import type { TokenRecord } from './access-port.ts';
import type { BackupRecord, FailureError, Fence, OperationRecord, OperationState, PartitionRecord, PolicyRecord } from './port.ts';

/** A released lease keeps its row (tokens only grow), expired since the epoch. */
export const RELEASED_UTC = '1970-01-01T00:00:00.000Z';

export function notLeader(fence: Fence): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_NOT_LEADER', `Lease ${fence.lease} is no longer ${fence.holder}'s (token ${fence.token}): another instance took it over; nothing was written.`);
}

export interface PolicyRow { name: string; policy: string; unique_id: string; created_utc: string; updated_utc: string }

export function policyRecord(r: PolicyRow): PolicyRecord {
  return { name: r.name, policy: JSON.parse(r.policy) as BackupPolicy, uniqueId: r.unique_id, createdUtc: r.created_utc, updatedUtc: r.updated_utc };
}

export interface OpRow {
  id: string; kind: string; partition_id: string; state: string; accepted_utc: string; deadline_utc: string; updated_utc: string;
  request: string; result: string; failure: string | null;
  /** Insertion order (a bigint: a string from pg). */
  seq?: number | string;
}
export interface PartRow { id: string; service_name: string; info: string; host_id: string; dlv: string; cv: string; last_lsn: string }
export interface BackupRow {
  backup_id: string; chain_id: string; parent_id: string; application_name: string; service_name: string; partition_id: string; partition_info: string;
  location: string; backup_type: string; dlv: string; cv: string; lsn: string; creation_utc: string; storage_key: string;
}

export const ACTIVE: ReadonlySet<OperationState> = new Set(['Accepted', 'BackupInProgress', 'RestoreInProgress']);

export function op(r: OpRow): OperationRecord {
  return {
    id: r.id, kind: r.kind as OperationRecord['kind'], partitionId: r.partition_id, state: r.state as OperationState,
    acceptedUtc: r.accepted_utc, deadlineUtc: r.deadline_utc, updatedUtc: r.updated_utc,
    request: JSON.parse(r.request) as Record<string, unknown>, result: JSON.parse(r.result) as Record<string, unknown>,
    failure: r.failure === null ? undefined : (JSON.parse(r.failure) as FailureError),
  };
}
export function part(r: PartRow): PartitionRecord {
  return {
    id: r.id, serviceName: r.service_name, info: partitionInfoFromJson(JSON.parse(r.info)), hostId: r.host_id,
    epoch: { DataLossVersion: r.dlv, ConfigurationVersion: r.cv }, lastLsn: r.last_lsn,
  };
}
export function backup(r: BackupRow): BackupRecord {
  return {
    backupId: r.backup_id, backupChainId: r.chain_id, parentBackupId: r.parent_id, applicationName: r.application_name, serviceName: r.service_name,
    partitionId: r.partition_id, partitionInfo: partitionInfoFromJson(JSON.parse(r.partition_info)), backupLocation: r.location,
    backupType: r.backup_type as BackupRecord['backupType'], epoch: { DataLossVersion: r.dlv, ConfigurationVersion: r.cv }, lsn: r.lsn,
    creationTimeUtc: r.creation_utc, storageKey: r.storage_key,
  };
}

export interface TokenRow { name: string; role: string; host_id: string | null; hash: string; created_utc: string }
export const token = (r: TokenRow): TokenRecord => ({ name: r.name, role: r.role as TokenRecord['role'], hostId: r.host_id ?? undefined, hash: r.hash, createdUtc: r.created_utc });

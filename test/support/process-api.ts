/** A small client of Lifeboat's REST API for tests that drive it from outside, as a user would. */
import { adminHeaders } from './api-http.ts';
import { waitFor } from './lifeboat.ts';

export const BACKUP_API = 'api-version=6.4';
export const QUERY_API = 'api-version=6.0';

export interface Reply {
  readonly status: number;
  readonly text: string;
  readonly json: unknown;
}

export async function call(method: string, url: string, body?: unknown): Promise<Reply> {
  const res = await fetch(url, {
    method,
    headers: { ...adminHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

// The wire shapes are the service's own: a test reads what the service says it sends.
import type { BackupInfoWire, BackupProgress as BackupProgressWire, RestoreProgress as RestoreProgressWire } from '../../src/service/lifeboat-service.ts';

export type { BackupInfoWire, BackupProgressWire, RestoreProgressWire };

export interface PartitionWire {
  PartitionInformation: Record<string, string> & { Id: string; ServicePartitionKind: string };
}

const ACTIVE_BACKUP = new Set(['Accepted', 'BackupInProgress']);
const ACTIVE_RESTORE = new Set(['Accepted', 'RestoreInProgress']);

export class LifeboatClient {
  constructor(readonly url: string) {}

  private async ok<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await call(method, `${this.url}${path}`, body);
    if (r.status !== 200) throw new Error(`${method} ${path} answered ${r.status}: ${r.text}`);
    return r.json as T;
  }

  async applications(): Promise<Array<{ Id: string; Name: string }>> {
    return (await this.ok<{ Items: Array<{ Id: string; Name: string }> }>('GET', `/Applications?${QUERY_API}`)).Items;
  }

  async services(applicationId: string): Promise<Array<{ Id: string; Name: string; ServiceKind: string }>> {
    return (await this.ok<{ Items: Array<{ Id: string; Name: string; ServiceKind: string }> }>('GET', `/Applications/${applicationId}/$/GetServices?${QUERY_API}`)).Items;
  }

  async partitions(serviceId: string): Promise<PartitionWire[]> {
    return (await this.ok<{ Items: PartitionWire[] }>('GET', `/Services/${serviceId}/$/GetPartitions?${QUERY_API}`)).Items;
  }

  /** POST Backup; returns the reply (202 when accepted). */
  async backup(partitionId: string, storage: unknown, timeoutMinutes?: number): Promise<Reply> {
    const t = timeoutMinutes === undefined ? '' : `&BackupTimeout=${timeoutMinutes}`;
    return call('POST', `${this.url}/Partitions/${partitionId}/$/Backup?${BACKUP_API}${t}`, { BackupStorage: storage });
  }

  async backupProgress(partitionId: string): Promise<BackupProgressWire> {
    return this.ok('GET', `/Partitions/${partitionId}/$/GetBackupProgress?${BACKUP_API}`);
  }

  /** Waits until the partition's last backup is no longer Accepted or in progress. */
  async backupDone(partitionId: string, ms = 30_000): Promise<BackupProgressWire> {
    return waitFor(() => this.backupProgress(partitionId), (v) => !ACTIVE_BACKUP.has(v.BackupState), ms, `the backup of ${partitionId} to end`);
  }

  async restore(partitionId: string, backup: { BackupId: string; BackupLocation: string }, storage: unknown, timeoutMinutes?: number): Promise<Reply> {
    const t = timeoutMinutes === undefined ? '' : `&RestoreTimeout=${timeoutMinutes}`;
    return call('POST', `${this.url}/Partitions/${partitionId}/$/Restore?${BACKUP_API}${t}`, { BackupId: backup.BackupId, BackupLocation: backup.BackupLocation, BackupStorage: storage });
  }

  async restoreProgress(partitionId: string): Promise<RestoreProgressWire> {
    return this.ok('GET', `/Partitions/${partitionId}/$/GetRestoreProgress?${BACKUP_API}`);
  }

  async restoreDone(partitionId: string, ms = 30_000): Promise<RestoreProgressWire> {
    return waitFor(() => this.restoreProgress(partitionId), (v) => !ACTIVE_RESTORE.has(v.RestoreState), ms, `the restore of ${partitionId} to end`);
  }

  async backups(partitionId: string): Promise<BackupInfoWire[]> {
    return (await this.ok<{ Items: BackupInfoWire[] }>('GET', `/Partitions/${partitionId}/$/GetBackups?${BACKUP_API}`)).Items;
  }
}

/** The sample key-value endpoint a host serves (`PUT/GET/DELETE <kv>/kv/{key}`). */
export class KvClient {
  constructor(readonly url: string) {}

  /** Writes the value; returns the partition that holds the key. */
  async put(key: string, value: string): Promise<string> {
    const res = await fetch(`${this.url}/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value });
    const body = (await res.json()) as { PartitionId?: string };
    if (res.status !== 200 || !body.PartitionId) throw new Error(`PUT ${key} answered ${res.status}: ${JSON.stringify(body)}`);
    return body.PartitionId;
  }

  /** The value, or undefined when the key has none (404). */
  async get(key: string): Promise<string | undefined> {
    const res = await fetch(`${this.url}/kv/${encodeURIComponent(key)}`);
    const text = await res.text();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET ${key} answered ${res.status}: ${text}`);
    return text;
  }

  async delete(key: string): Promise<void> {
    const res = await fetch(`${this.url}/kv/${encodeURIComponent(key)}`, { method: 'DELETE' });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`DELETE ${key} answered ${res.status}`);
  }

  /** Each partition's id, count of keys and LSN. */
  async partitions(): Promise<Array<{ PartitionId: string; Count: number; Lsn: string }>> {
    return (await fetch(`${this.url}/kv`)).json() as Promise<Array<{ PartitionId: string; Count: number; Lsn: string }>>;
  }
}

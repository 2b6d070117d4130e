/**
 * The REST API as tests drive it from outside, as a user would: typed reads through the real
 * LifeboatClient, and BackupPartition and RestorePartition as raw replies, so that a test sees
 * the status and the FabricError the service answered.
 */
import type { LifeboatClient } from '../../src/client/lifeboat-client.ts';
import { BACKUP_API_VERSION, QUERY_API_VERSION } from '../../src/wire/api-version.ts';
import type { BackupInfoWire, BackupProgress as BackupProgressWire, PartitionWire, RestoreProgress as RestoreProgressWire } from '../../src/wire/index.ts';
import { ROUTES, pathOf } from '../../src/wire/routes.ts';
import { adminHeaders } from './api-http.ts';
import { adminClient } from './client.ts';

export const BACKUP_API = `api-version=${BACKUP_API_VERSION}`;
export const QUERY_API = `api-version=${QUERY_API_VERSION}`;

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

// The wire shapes are the service's own (src/wire): a test reads what the service says it sends.
export type { BackupInfoWire, BackupProgressWire, PartitionWire, RestoreProgressWire };

export class TestApi {
  /** The typed client, as the test admin. */
  readonly client: LifeboatClient;

  constructor(readonly url: string) {
    this.client = adminClient(url);
  }

  async applications(): Promise<Array<{ Id: string; Name: string }>> {
    return (await this.client.hierarchy.listApplications()).Items;
  }

  async services(applicationId: string): Promise<Array<{ Id: string; Name: string; ServiceKind: string }>> {
    return (await this.client.hierarchy.listServices(applicationId)).Items;
  }

  async partitions(serviceId: string): Promise<PartitionWire[]> {
    return (await this.client.hierarchy.listPartitions(serviceId)).Items;
  }

  /** POST Backup; returns the reply (202 when accepted). */
  async backup(partitionId: string, storage: unknown, timeoutMinutes?: number): Promise<Reply> {
    const t = timeoutMinutes === undefined ? '' : `&BackupTimeout=${timeoutMinutes}`;
    return call('POST', `${this.url}${pathOf(ROUTES.backupPartition, { partitionId })}?${BACKUP_API}${t}`, { BackupStorage: storage });
  }

  async backupProgress(partitionId: string): Promise<BackupProgressWire> {
    return this.client.operations.backupProgress(partitionId);
  }

  /** Waits until the partition's last backup is no longer Accepted or in progress. */
  async backupDone(partitionId: string, ms = 30_000): Promise<BackupProgressWire> {
    return this.client.operations.waitForBackup(partitionId, { timeoutMs: ms });
  }

  async restore(partitionId: string, backup: { BackupId: string; BackupLocation: string }, storage: unknown, timeoutMinutes?: number): Promise<Reply> {
    const t = timeoutMinutes === undefined ? '' : `&RestoreTimeout=${timeoutMinutes}`;
    return call('POST', `${this.url}${pathOf(ROUTES.restorePartition, { partitionId })}?${BACKUP_API}${t}`, { BackupId: backup.BackupId, BackupLocation: backup.BackupLocation, BackupStorage: storage });
  }

  async restoreProgress(partitionId: string): Promise<RestoreProgressWire> {
    return this.client.operations.restoreProgress(partitionId);
  }

  async restoreDone(partitionId: string, ms = 30_000): Promise<RestoreProgressWire> {
    return this.client.operations.waitForRestore(partitionId, { timeoutMs: ms });
  }

  async backups(partitionId: string): Promise<BackupInfoWire[]> {
    return (await this.client.listing.partitionBackups(partitionId)).Items;
  }
}

/** The old name of TestApi (test/service still uses it); not to be confused with src/client's LifeboatClient. */
export { TestApi as LifeboatClient };

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

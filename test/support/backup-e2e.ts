/** Helpers for end-to-end tests of stored backups: back up, restore and verify through the REST API, keyrings, stored objects. */
import { lbFetch } from './api-http.ts';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metadataKeyOf } from '../../src/core/backup-layout.ts';
import { type StoredBackupMetadata, decodeBkMetadata } from '../../src/format/bkmetadata.ts';
import { type Keyring, makeKeyring } from '../../src/format/lbk2/index.ts';
import type { BackupProgress, RestoreProgress } from '../../src/wire/index.ts';
import type { Partition } from '../../src/state/index.ts';
import { type TestLifeboat, waitFor } from './lifeboat.ts';

export const V = 'api-version=6.4';

/** Random 32-byte keys by id (the bytes, so that tests can build keyrings of any subset). */
export function keys(...ids: string[]): Record<string, Buffer> {
  return Object.fromEntries(ids.map((id) => [id, randomBytes(32)]));
}

export function keyringOf(current: string, keyBytes: Record<string, Buffer>): Keyring {
  return makeKeyring(current, new Map(Object.entries(keyBytes)));
}

/** The keyring file format `--encryption-keys` reads. */
export function keyringFile(path: string, current: string, keyBytes: Record<string, Buffer>): string {
  writeFileSync(path, JSON.stringify({ current, keys: Object.fromEntries(Object.entries(keyBytes).map(([id, k]) => [id, k.toString('base64')])) }), { mode: 0o600 });
  return path;
}

export function samplePartition(lb: TestLifeboat, i = 0): Partition {
  const p = lb.sample?.service.partitionList[i];
  assert.ok(p, `sample partition ${i}`);
  return p;
}

export async function backupNow(lb: TestLifeboat, pid: string, storage: unknown = lb.storage): Promise<BackupProgress> {
  const r = await lbFetch(`${lb.url}/Partitions/${pid}/$/Backup?${V}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ BackupStorage: storage }) });
  assert.equal(r.status, 202, await r.text());
  const done = await waitFor(() => lb.service.backups.backupProgress(pid), (v) => v.BackupState !== 'Accepted' && v.BackupState !== 'BackupInProgress', 30_000, 'backup');
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
  return done;
}

export interface Named { readonly BackupId: string; readonly BackupLocation: string }

/** POST Restore: the answer when refused at once, else the progress once it ended. */
export async function restoreNow(lb: TestLifeboat, pid: string, b: Named, storage: unknown = lb.storage): Promise<{ status: number; text: string; progress?: RestoreProgress }> {
  const r = await lbFetch(`${lb.url}/Partitions/${pid}/$/Restore?${V}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ BackupId: b.BackupId, BackupLocation: b.BackupLocation, BackupStorage: storage }),
  });
  const text = await r.text();
  if (r.status !== 202) return { status: r.status, text };
  const progress = await waitFor(() => lb.service.restores.restoreProgress(pid), (v) => v.RestoreState !== 'Accepted' && v.RestoreState !== 'RestoreInProgress', 30_000, 'restore');
  return { status: r.status, text, progress };
}

/** POST VerifyBackup with `body` (undefined: no body); `query` is added to the api-version. */
export async function verifyNow(lb: TestLifeboat, pid: string, body?: unknown, query = ''): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await lbFetch(`${lb.url}/Partitions/${pid}/$/VerifyBackup?${V}${query}`, {
    method: 'POST', ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

export function verifyBody(lb: TestLifeboat, b: Named): Record<string, unknown> {
  return { BackupId: b.BackupId, BackupLocation: b.BackupLocation, BackupStorage: lb.storage };
}

export function storedMetadata(lb: Pick<TestLifeboat, 'share'>, location: string): StoredBackupMetadata {
  const path = join(lb.share, metadataKeyOf(location));
  return decodeBkMetadata(readFileSync(path), path);
}

/** Everything a restore must leave as it was when it fails. */
export function stateOf(p: Partition): { data: unknown; lsn: bigint; status: string } {
  return { data: p.dictionary('kv').enumerate(), lsn: p.lastLsn, status: p.status };
}

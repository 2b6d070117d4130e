/**
 * Durability of the catalog across a restart of the Lifeboat service: what was recorded is still
 * reported, operations cut off by the restart end truthfully (E_ABORT) or are carried out (still
 * Accepted), and a service killed with SIGKILL leaves nothing hanging or falsely successful.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { metadataKeyOf } from '../../src/core/backup-layout.ts';
import type { OperationRecord } from '../../src/catalog/port.ts';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { decodeBkMetadata } from '../../src/format/bkmetadata.ts';
import { decodeToFolder } from '../../src/format/lbk2/index.ts';
import { startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { type BackupProgressWire, KvClient, LifeboatClient } from '../support/process-api.ts';
import { Children, freePort, startHostProcess, startServiceProcess } from '../support/process-children.ts';
import { tempDir } from '../support/tmp.ts';

const SAMPLE_SERVICE_ID = 'SampleApp~MyStatefulService';

async function samplePartitions(api: LifeboatClient): Promise<string[]> {
  return (await api.partitions(SAMPLE_SERVICE_ID)).map((p) => p.PartitionInformation.Id);
}

/** Checks the backup a progress names is in the share and reads back whole (metadata and every file's checksum). */
async function assertReadableBackup(share: string, done: BackupProgressWire, t: Parameters<typeof tempDir>[0]): Promise<void> {
  const data = join(share, done.BackupLocation);
  const meta = join(share, metadataKeyOf(done.BackupLocation));
  assert.ok(existsSync(data), `${done.BackupLocation} is in the share`);
  assert.ok(existsSync(meta), `the metadata of ${done.BackupLocation} is in the share`);
  const m = decodeBkMetadata(readFileSync(meta), meta);
  assert.equal(m.BackupId, done.BackupId);
  assert.equal(m.LsnOfLastBackupRecord, done.LsnOfLastBackupRecord);
  const out = tempDir(t);
  await decodeToFolder(createReadStream(data), out, data, { workers: 0 }); // throws on any damaged byte
}

it('reports the backups and the last backup progress recorded before a restart on the same data dir', async (t) => {
  const dir = tempDir(t);
  const lb1 = await startTestLifeboat(t, {}, dir);
  const api1 = new LifeboatClient(lb1.url);
  const kv1 = new KvClient(lb1.sample?.url as string);
  const ids = await samplePartitions(api1);
  assert.equal(ids.length, 4);
  const written = new Map<string, string>();
  for (let i = 0; i < 60; i++) written.set(`k${i}`, await kv1.put(`k${i}`, `value${i}`));
  const [p0, p1, p2] = ids as [string, string, string, string];

  const ok = await api1.backup(p0, lb1.storage);
  assert.equal(ok.status, 202, ok.text);
  const done = await api1.backupDone(p0);
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
  // A failed backup is part of the record too: the share path is a file, not a folder.
  const blocked = join(lb1.fileShareRoots[0] as string, 'blocked');
  writeFileSync(blocked, 'not a folder');
  const bad = await api1.backup(p1, { StorageKind: 'FileShare', Path: blocked });
  assert.equal(bad.status, 202, bad.text);
  const failed = await api1.backupDone(p1);
  assert.equal(failed.BackupState, 'Failure', JSON.stringify(failed));
  assert.ok(failed.FailureError?.Code);

  const before = {
    apps: await api1.applications(),
    parts: await api1.partitions(SAMPLE_SERVICE_ID),
    progress: await Promise.all(ids.map((id) => api1.backupProgress(id))),
    restore: await Promise.all(ids.map((id) => api1.restoreProgress(id))),
    backups: await Promise.all(ids.map((id) => api1.backups(id))),
  };
  assert.equal(before.backups[0]?.length, 1);
  await lb1.close();

  const lb2 = await startTestLifeboat(t, {}, dir);
  const api2 = new LifeboatClient(lb2.url);
  assert.deepEqual(await api2.applications(), before.apps);
  assert.deepEqual(await api2.partitions(SAMPLE_SERVICE_ID), before.parts);
  assert.deepEqual(await Promise.all(ids.map((id) => api2.backupProgress(id))), before.progress, 'backup progress is what it was');
  assert.deepEqual(await Promise.all(ids.map((id) => api2.restoreProgress(id))), before.restore);
  assert.deepEqual(await Promise.all(ids.map((id) => api2.backups(id))), before.backups, 'the backup list is what it was');
  assert.equal((await api2.backupProgress(p2)).BackupState, 'Invalid', 'a partition never backed up still has no backup');
  await assertReadableBackup(lb2.share, done, t);

  // What is reported is usable: restore the listed backup after the restart.
  const kv2 = new KvClient(lb2.sample?.url as string);
  const inP0 = [...written].filter(([, p]) => p === p0).map(([k]) => k);
  assert.ok(inP0.length > 0);
  for (const k of inP0) await kv2.put(k, 'changed');
  const r = await api2.restore(p0, before.backups[0]?.[0] as { BackupId: string; BackupLocation: string }, lb2.storage);
  assert.equal(r.status, 202, r.text);
  const restored = await api2.restoreDone(p0);
  assert.equal(restored.RestoreState, 'Success', JSON.stringify(restored));
  assert.equal(restored.RestoredLsn, done.LsnOfLastBackupRecord);
  for (const k of inP0) assert.equal(await kv2.get(k), `value${k.slice(1)}`);
  // And a new backup is added to the old list.
  assert.equal((await api2.backup(p0, lb2.storage)).status, 202);
  assert.equal((await api2.backupDone(p0)).BackupState, 'Success');
  assert.equal((await api2.backups(p0)).length, 2);
});

it('after a restart, ends operations that were in progress with E_ABORT and carries out Accepted ones', async (t) => {
  const dir = tempDir(t);
  const lb1 = await startTestLifeboat(t, {}, dir); // registers the sample partitions
  const api1 = new LifeboatClient(lb1.url);
  const kv1 = new KvClient(lb1.sample?.url as string);
  const [p0, p1, p2, p3] = (await samplePartitions(api1)) as [string, string, string, string];
  const written = new Map<string, string>();
  for (let i = 0; i < 60; i++) written.set(`k${i}`, await kv1.put(`k${i}`, `value${i}`));
  const inP3 = [...written].filter(([, p]) => p === p3).map(([k]) => k);
  assert.ok(inP3.length > 0);
  // A backup of p3 to restore from after the restart; then p3 changes.
  assert.equal((await api1.backup(p3, lb1.storage)).status, 202);
  const b3 = await api1.backupDone(p3);
  assert.equal(b3.BackupState, 'Success');
  for (const k of inP3) await kv1.put(k, 'changed');
  await lb1.close();

  // Operations as the stopped service left them in its catalog.
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
  const now = Date.now();
  const op = (id: string, partitionId: string, kind: 'Backup' | 'Restore', request: Record<string, unknown>): OperationRecord => ({
    id, kind, partitionId, state: 'Accepted', acceptedUtc: new Date(now - 5000).toISOString(), deadlineUtc: new Date(now + 10 * 60_000).toISOString(),
    updatedUtc: new Date(now - 5000).toISOString(), request, result: {}, failure: undefined,
  });
  const restoreRequest = { storage: lb1.storage, chain: [b3.BackupLocation], backupId: b3.BackupId };
  const ids = { backupRunning: randomUUID(), backupQueued: randomUUID(), restoreRunning: randomUUID(), restoreQueued: randomUUID() };
  for (const [id, pid, kind, req] of [
    [ids.backupRunning, p0, 'Backup', { storage: lb1.storage }], [ids.backupQueued, p1, 'Backup', { storage: lb1.storage }],
    [ids.restoreRunning, p2, 'Restore', restoreRequest], [ids.restoreQueued, p3, 'Restore', restoreRequest],
  ] as const) {
    assert.deepEqual(await catalog.operations.insert(op(id, pid, kind, req)), { inserted: true });
  }
  await catalog.operations.update(ids.backupRunning, { state: 'BackupInProgress', updatedUtc: new Date(now - 4000).toISOString() });
  await catalog.operations.update(ids.restoreRunning, { state: 'RestoreInProgress', updatedUtc: new Date(now - 4000).toISOString() });
  await catalog.close();

  const lb2 = await startTestLifeboat(t, {}, dir);
  const api = new LifeboatClient(lb2.url);
  // Cut off while running: Failure, E_ABORT, saying why.
  const cut = await api.backupProgress(p0);
  assert.equal(cut.BackupState, 'Failure', JSON.stringify(cut));
  assert.equal(cut.FailureError?.Code, 'E_ABORT');
  assert.match(cut.FailureError?.Message ?? '', /backup.*cut off.*restarted/i);
  assert.equal(cut.BackupId, '00000000-0000-0000-0000-000000000000');
  const cutRestore = await api.restoreProgress(p2);
  assert.equal(cutRestore.RestoreState, 'Failure', JSON.stringify(cutRestore));
  assert.equal(cutRestore.FailureError?.Code, 'E_ABORT');
  assert.match(cutRestore.FailureError?.Message ?? '', /restore.*cut off.*restarted/i);

  // Still Accepted: carried out after the restart.
  const queued = await api.backupDone(p1);
  assert.equal(queued.BackupState, 'Success', JSON.stringify(queued));
  await assertReadableBackup(lb2.share, queued, t);
  assert.deepEqual((await api.backups(p1)).map((b) => b.BackupId), [queued.BackupId]);
  const queuedRestore = await api.restoreDone(p3);
  assert.equal(queuedRestore.RestoreState, 'Success', JSON.stringify(queuedRestore));
  assert.equal(queuedRestore.RestoredLsn, b3.LsnOfLastBackupRecord);
  const kv2 = new KvClient(lb2.sample?.url as string);
  for (const k of inP3) assert.equal(await kv2.get(k), `value${k.slice(1)}`);

  // The aborted partitions take new requests.
  assert.equal((await api.backup(p0, lb2.storage)).status, 202);
  assert.equal((await api.backupDone(p0)).BackupState, 'Success');
  const other = await api.restore(p2, b3, lb2.storage);
  assert.equal(other.status, 400, other.text);
  assert.equal((other.json as { Error: { Code: string } }).Error.Code, 'FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH', 'refused as a backup of another partition, not as busy');
});

it('ends an Accepted operation whose deadline passed while Lifeboat was down with Timeout, not as a failed backup', async (t) => {
  const dir = tempDir(t);
  const lb1 = await startTestLifeboat(t, {}, dir);
  const [p0] = (await samplePartitions(new LifeboatClient(lb1.url))) as [string];
  await lb1.close();
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
  const now = Date.now();
  const id = randomUUID();
  await catalog.operations.insert({
    id, kind: 'Backup', partitionId: p0, state: 'Accepted', acceptedUtc: new Date(now - 11 * 60_000).toISOString(),
    deadlineUtc: new Date(now - 60_000).toISOString(), updatedUtc: new Date(now - 11 * 60_000).toISOString(),
    request: { storage: lb1.storage }, result: {}, failure: undefined,
  });
  await catalog.close();

  const lb2 = await startTestLifeboat(t, {}, dir);
  const api = new LifeboatClient(lb2.url);
  const done = await api.backupDone(p0);
  assert.equal(done.BackupState, 'Timeout', JSON.stringify(done));
  assert.equal(done.FailureError?.Code, 'FABRIC_E_TIMEOUT');
});

it('never leaves a backup hanging or falsely successful when the Lifeboat process is killed with SIGKILL', async (t) => {
  const children = new Children(t);
  const dir = tempDir(t);
  let svc = await startServiceProcess(children, { dataDir: dir });
  const share = join(dir, 'backups', 'share');
  const storage = { StorageKind: 'FileShare', Path: share };
  const kv = new KvClient(svc.sampleUrl as string);
  // A few MB in one partition (values are at most 1 MiB; 256 KiB each here).
  const big = (i: number): string => `${i}:`.padEnd(256 * 1024, String.fromCharCode(97 + (i % 26)));
  const target = await kv.put('big0', big(0));
  let inTarget = 1;
  for (let i = 1; inTarget < 16; i++) if ((await kv.put(`big${i}`, big(i))) === target) inTarget++;

  const restart = async (): Promise<LifeboatClient> => {
    const killed = await svc.child.kill('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    svc = await startServiceProcess(children, { dataDir: dir });
    return new LifeboatClient(svc.url);
  };
  const outcomes: string[] = [];
  const check = async (api: LifeboatClient, before: number): Promise<void> => {
    const done = await api.backupDone(target, 30_000);
    outcomes.push(done.BackupState);
    if (done.BackupState === 'Success') {
      await assertReadableBackup(share, done, t);
      assert.ok((await api.backups(target)).some((b) => b.BackupId === done.BackupId), 'a successful backup is listed');
    } else {
      assert.equal(done.BackupState, 'Failure', JSON.stringify(done));
      assert.equal(done.FailureError?.Code, 'E_ABORT', JSON.stringify(done));
      assert.equal((await api.backups(target)).length, before, 'an aborted backup adds nothing to the list');
    }
  };

  // 1. Killed right after the 202: whatever it was doing, it ends.
  let api = new LifeboatClient(svc.url);
  const r1 = await api.backup(target, storage);
  assert.equal(r1.status, 202, r1.text);
  api = await restart();
  await check(api, 0);

  // 2. Killed once the progress reads BackupInProgress (the host is copying): E_ABORT.
  let sawInProgress = false;
  for (let attempt = 0; attempt < 3 && !sawInProgress; attempt++) {
    const listed = (await api.backups(target)).length;
    const r = await api.backup(target, storage);
    assert.equal(r.status, 202, r.text);
    const seen = await waitFor(() => api.backupProgress(target), (v) => v.BackupState !== 'Accepted', 10_000, 'the backup to start');
    if (seen.BackupState !== 'BackupInProgress') {
      // Finished before we could look: nothing to cut off this time.
      assert.equal(seen.BackupState, 'Success', JSON.stringify(seen));
      continue;
    }
    sawInProgress = true;
    api = await restart();
    await check(api, listed);
    // The backup may have reached the share before the kill; it is not reported as taken.
    assert.equal(outcomes.at(-1), 'Failure', 'a backup seen in progress at the kill ends in Failure');
  }
  t.diagnostic(`outcomes after kills: ${outcomes.join(', ')}; saw a backup in progress: ${String(sawInProgress)}`);

  // 3. The partition is not stuck: a new backup runs to the end, and the data is all there.
  const r3 = await api.backup(target, storage);
  assert.equal(r3.status, 202, r3.text);
  const last = await api.backupDone(target);
  assert.equal(last.BackupState, 'Success', JSON.stringify(last));
  await assertReadableBackup(share, last, t);
  const kv2 = new KvClient(svc.sampleUrl as string);
  assert.equal(await kv2.get('big0'), big(0));
});

it('carries out a backup queued for a host process across a SIGKILL of the service; a live host reconnects by itself', async (t) => {
  const children = new Children(t);
  const dir = tempDir(t);
  const port = await freePort();
  let svc = await startServiceProcess(children, { dataDir: dir, port, sample: false });
  const url = svc.url;
  const share = join(dir, 'backups', 'share');
  mkdirSync(share, { recursive: true });
  const storage = { StorageKind: 'FileShare', Path: share };
  const dirA = tempDir(t);
  const [a, b] = await Promise.all([
    startHostProcess(children, { serviceUrl: url, hostId: 'hostA', dataDir: dirA, service: 'fabric:/AppA/Kv', partitioning: 'singleton' }),
    startHostProcess(children, { serviceUrl: url, hostId: 'hostB', dataDir: tempDir(t), service: 'fabric:/AppB/Kv', partitioning: 'singleton' }),
  ]);
  await new KvClient(a.info.kv).put('a', 'A');
  await new KvClient(b.info.kv).put('b', 'B');
  const pA = a.info.partitions[0] as string;
  const pB = b.info.partitions[0] as string;

  // hostA is gone, so its backup stays Accepted; then the service itself is killed.
  await a.child.kill('SIGKILL');
  let api = new LifeboatClient(url);
  assert.equal((await api.backup(pA, storage)).status, 202);
  assert.equal((await api.backupProgress(pA)).BackupState, 'Accepted');
  await svc.child.kill('SIGKILL');
  svc = await startServiceProcess(children, { dataDir: dir, port, sample: false });
  assert.equal(svc.url, url);
  api = new LifeboatClient(svc.url);
  assert.equal((await api.backupProgress(pA)).BackupState, 'Accepted', 'still queued after the restart');

  // hostB lived through the restart: it finds the service again without being restarted.
  assert.ok(b.child.alive);
  assert.equal((await api.backup(pB, storage)).status, 202);
  const doneB = await api.backupDone(pB);
  assert.equal(doneB.BackupState, 'Success', JSON.stringify(doneB));
  assert.ok(existsSync(join(share, doneB.BackupLocation)));

  // hostA returns and carries out the order queued before the kill.
  await startHostProcess(children, { serviceUrl: url, hostId: 'hostA', dataDir: dirA, service: 'fabric:/AppA/Kv', partitioning: 'singleton' });
  const doneA = await api.backupDone(pA);
  assert.equal(doneA.BackupState, 'Success', JSON.stringify(doneA));
  await assertReadableBackup(share, doneA, t);
});

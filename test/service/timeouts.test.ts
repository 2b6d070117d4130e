/**
 * BackupTimeout and RestoreTimeout, on an injected clock: an operation not finished by its
 * deadline ends in Timeout (FABRIC_E_TIMEOUT), a late report does not rewrite that, and the
 * partition takes new requests. Runs in milliseconds: only the fake clock moves.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import type { TestContext } from 'node:test';
import { backupDataKey, metadataKeyOf } from '../../src/core/backup-layout.ts';
import { isLifeboatError } from '../../src/core/errors.ts';
import type { Registration, Report } from '../../src/core/host-protocol.ts';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { encodeBkMetadata } from '../../src/format/bkmetadata.ts';
import { LifeboatService } from '../../src/service/lifeboat-service.ts';
import { wireTime } from '../../src/wire/index.ts';
import { openStorage } from '../../src/storage/open.ts';
import { startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { LifeboatClient } from '../support/process-api.ts';
import { tempDir } from '../support/tmp.ts';

const SERVICE = 'fabric:/TimeApp/Svc';
const HOST = 'fake-host';
const EPOCH = { DataLossVersion: '1', ConfigurationVersion: '1' };
const EMPTY_ID = '00000000-0000-0000-0000-000000000000';

class FakeClock {
  current = new Date('2026-03-01T10:00:00.000Z');
  now = (): Date => this.current;
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

function registration(partitionId: string): Registration {
  return {
    Services: [{
      Name: SERVICE, Scheme: { kind: 'Singleton' }, HasPersistedState: true,
      Partitions: [{ Id: partitionId, Info: { kind: 'Singleton' }, Epoch: EPOCH, Lsn: '10' }],
    }],
  };
}

interface World {
  readonly service: LifeboatService;
  readonly catalog: SqliteCatalog;
  readonly clock: FakeClock;
  readonly pid: string;
  readonly storage: { StorageKind: 'FileShare'; Path: string };
}

/** A service on a fake clock with one registered host that never carries anything out by itself. */
async function world(t: TestContext): Promise<World> {
  const dir = tempDir(t);
  const root = join(dir, 'backups');
  mkdirSync(root);
  const clock = new FakeClock();
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
  t.after(() => catalog.close());
  const service = new LifeboatService({ catalog, clock, openStorage: (d) => openStorage(d, { fileShareRoots: [root] }) });
  const pid = randomUUID();
  await service.hosts.register(HOST, registration(pid));
  return { service, catalog, clock, pid, storage: { StorageKind: 'FileShare', Path: join(root, 'share') } };
}

/** Writes a valid .bkmetadata of a Full backup of the partition (accepting a restore reads only that). */
async function storedBackup(storage: { StorageKind: 'FileShare'; Path: string }, partitionId: string, at: Date): Promise<{ BackupId: string; BackupLocation: string }> {
  const BackupId = randomUUID();
  const BackupLocation = backupDataKey(SERVICE, partitionId, at);
  const store = openStorage(storage, { fileShareRoots: [storage.Path] });
  await store.put(metadataKeyOf(BackupLocation), encodeBkMetadata({
    BackupId, BackupChainId: randomUUID(), ParentBackupId: '', ParentBackupLocation: '', BackupLocation, BackupType: 'Full',
    ApplicationName: 'fabric:/TimeApp', ServiceName: SERVICE, PartitionId: partitionId, PartitionInformation: { kind: 'Singleton' },
    EpochOfLastBackupRecord: EPOCH, LsnOfLastBackupRecord: '10', FirstLsn: '1', CreationTimeUtc: at.toISOString(),
    ServiceManifestVersion: '1.0.0', DataSize: 0, DataSha256: '',
  }));
  return { BackupId, BackupLocation };
}

function lateBackupSuccess(w: World, operationId: string): Report {
  return {
    OperationId: operationId, State: 'Success', Partition: { Id: w.pid, Epoch: EPOCH, Lsn: '10' },
    Backup: {
      BackupId: randomUUID(), BackupChainId: randomUUID(), ParentBackupId: '', BackupLocation: backupDataKey(SERVICE, w.pid, w.clock.now()),
      BackupType: 'Full', EpochOfLastBackupRecord: EPOCH, LsnOfLastBackupRecord: '10', CreationTimeUtc: w.clock.now().toISOString(),
    },
  };
}

it('ends a backup nobody carried out with Timeout after BackupTimeout; a late report does not rewrite it; the next backup is accepted', async (t) => {
  const started = performance.now();
  const w = await world(t);
  const op = await w.service.backups.backupPartition(w.pid, { BackupStorage: w.storage }, 1);
  assert.equal(op.state, 'Accepted');
  assert.equal(op.deadlineUtc, new Date(w.clock.now().getTime() + 60_000).toISOString(), 'BackupTimeout is in minutes');

  w.clock.advance(59_000);
  assert.equal(await w.service.orders.expireOperations(), 0, 'not yet due');
  assert.equal((await w.service.backups.backupProgress(w.pid)).BackupState, 'Accepted');

  w.clock.advance(2_000); // 61 s after acceptance
  assert.equal(await w.service.orders.expireOperations(), 1);
  const timedOut = await w.service.backups.backupProgress(w.pid);
  assert.equal(timedOut.BackupState, 'Timeout', JSON.stringify(timedOut));
  assert.deepEqual(timedOut.FailureError, { Code: 'FABRIC_E_TIMEOUT', Message: 'The request of backup has timed out.' });
  assert.equal(timedOut.TimeStampUtc, wireTime(w.clock.now()));
  assert.equal(timedOut.BackupId, EMPTY_ID);
  assert.equal(await w.service.orders.expireOperations(), 0, 'an operation times out once');
  assert.deepEqual(await w.service.hosts.pollOrders(HOST, 0), [], 'a timed-out order is not handed out');

  // The host turns up late with a result: the request stays timed out.
  w.clock.advance(5_000);
  const late = lateBackupSuccess(w, op.id);
  await w.service.hosts.report(HOST, late);
  await w.service.hosts.report(HOST, { OperationId: op.id, State: 'Failure', Error: { Code: 'E_FAIL', Message: 'late' } });
  assert.deepEqual(await w.service.backups.backupProgress(w.pid), timedOut, 'late reports change nothing');
  assert.equal((await w.catalog.operations.get(op.id))?.state, 'Timeout');
  assert.equal((await w.catalog.backups.get(late.State === 'Success' ? late.Backup?.BackupId ?? '' : ''))?.applicationName, 'fabric:/TimeApp', 'the backup that reached storage late is indexed all the same');

  // The partition is free again.
  const next = await w.service.backups.backupPartition(w.pid, { BackupStorage: w.storage }, 1);
  assert.notEqual(next.id, op.id);
  assert.equal((await w.service.backups.backupProgress(w.pid)).BackupState, 'Accepted');
  const orders = await w.service.hosts.pollOrders(HOST, 0);
  assert.deepEqual(orders.map((o) => o.OperationId), [next.id]);
  assert.ok(performance.now() - started < 5_000, 'runs on the fake clock, not in minutes');
});

it('indexes a backup whose success report lost the race with its deadline', async (t) => {
  const w = await world(t);
  const op = await w.service.backups.backupPartition(w.pid, { BackupStorage: w.storage }, 1);
  await w.service.hosts.pollOrders(HOST, 0);
  // The deadline passes between the report's read of the operation and its end's write.
  const { operations } = w.catalog;
  const end = operations.end.bind(operations);
  operations.end = async (...args) => {
    w.clock.advance(61_000);
    assert.equal(await w.service.orders.expireOperations(), 1);
    return end(...args);
  };
  const report = lateBackupSuccess(w, op.id);
  await w.service.hosts.report(HOST, report);
  assert.equal((await w.catalog.operations.get(op.id))?.state, 'Timeout', 'the deadline won: its end stands');
  const id = report.State === 'Success' ? report.Backup?.BackupId : undefined;
  assert.equal((await w.catalog.backups.get(id ?? ''))?.partitionId, w.pid, 'and the backup the host made is indexed');
});

it('times out a backup the host took and reported in progress', async (t) => {
  const w = await world(t);
  const op = await w.service.backups.backupPartition(w.pid, { BackupStorage: w.storage }, 2);
  const [order] = await w.service.hosts.pollOrders(HOST, 0);
  assert.equal(order?.OperationId, op.id);
  assert.equal(order?.DeadlineUtc, new Date(w.clock.now().getTime() + 120_000).toISOString());
  await w.service.hosts.report(HOST, { OperationId: op.id, State: 'InProgress' });
  assert.equal((await w.service.backups.backupProgress(w.pid)).BackupState, 'BackupInProgress');

  w.clock.advance(119_000);
  assert.equal(await w.service.orders.expireOperations(), 0);
  assert.equal((await w.service.backups.backupProgress(w.pid)).BackupState, 'BackupInProgress');
  w.clock.advance(2_000);
  assert.equal(await w.service.orders.expireOperations(), 1);
  const timedOut = await w.service.backups.backupProgress(w.pid);
  assert.equal(timedOut.BackupState, 'Timeout');
  assert.equal(timedOut.FailureError?.Code, 'FABRIC_E_TIMEOUT');

  await w.service.hosts.report(HOST, { OperationId: op.id, State: 'InProgress' });
  await w.service.hosts.report(HOST, lateBackupSuccess(w, op.id));
  assert.deepEqual(await w.service.backups.backupProgress(w.pid), timedOut);
  await w.service.backups.backupPartition(w.pid, { BackupStorage: w.storage });
  assert.equal((await w.service.backups.backupProgress(w.pid)).BackupState, 'Accepted');
});

it('ends a restore nobody carried out with Timeout after RestoreTimeout; a late report does not rewrite it', async (t) => {
  const w = await world(t);
  const backup = await storedBackup(w.storage, w.pid, w.clock.now());
  const op = await w.service.restores.restorePartition(w.pid, { ...backup, BackupStorage: w.storage }, 1);
  assert.equal(op.kind, 'Restore');
  assert.deepEqual(op.request.chain, [backup.BackupLocation]);
  // One operation per partition: a backup waits for the restore.
  await assert.rejects(w.service.backups.backupPartition(w.pid, { BackupStorage: w.storage }), (err) => isLifeboatError(err, 'FABRIC_E_RESTORE_IN_PROGRESS'));

  w.clock.advance(30_000);
  assert.equal(await w.service.orders.expireOperations(), 0);
  const [order] = await w.service.hosts.pollOrders(HOST, 0);
  assert.equal(order?.Kind, 'Restore');
  await w.service.hosts.report(HOST, { OperationId: op.id, State: 'InProgress' });
  w.clock.advance(31_000);
  assert.equal(await w.service.orders.expireOperations(), 1);
  const timedOut = await w.service.restores.restoreProgress(w.pid);
  assert.equal(timedOut.RestoreState, 'Timeout', JSON.stringify(timedOut));
  assert.deepEqual(timedOut.FailureError, { Code: 'FABRIC_E_TIMEOUT', Message: 'The request of restore has timed out.' });
  assert.equal(timedOut.TimeStampUtc, wireTime(w.clock.now()));
  assert.equal(timedOut.RestoredLsn, '0');

  await w.service.hosts.report(HOST, { OperationId: op.id, State: 'Success', Partition: { Id: w.pid, Epoch: { DataLossVersion: '2', ConfigurationVersion: '1' }, Lsn: '10' }, Restored: { Epoch: EPOCH, Lsn: '10' } });
  assert.deepEqual(await w.service.restores.restoreProgress(w.pid), timedOut, 'a late restore report changes nothing');

  // The partition is free again.
  const next = await w.service.restores.restorePartition(w.pid, { ...backup, BackupStorage: w.storage }, 1);
  assert.notEqual(next.id, op.id);
  assert.equal((await w.service.restores.restoreProgress(w.pid)).RestoreState, 'Accepted');
});

it('refuses timeouts outside 1 minute to 7 days', async (t) => {
  const w = await world(t);
  for (const bad of [0, -1, 1.5, 7 * 24 * 60 + 1]) {
    await assert.rejects(w.service.backups.backupPartition(w.pid, { BackupStorage: w.storage }, bad), (err) => isLifeboatError(err, 'E_INVALIDARG'), `BackupTimeout ${bad}`);
    await assert.rejects(w.service.restores.restorePartition(w.pid, { BackupId: randomUUID(), BackupLocation: 'x.lbk', BackupStorage: w.storage }, bad), (err) => isLifeboatError(err, 'E_INVALIDARG'), `RestoreTimeout ${bad}`);
  }
  assert.equal((await w.service.backups.backupPartition(w.pid, { BackupStorage: w.storage }, 7 * 24 * 60)).state, 'Accepted');
});

it('times out through the REST API: BackupTimeout and RestoreTimeout query parameters and the deadline sweep', async (t) => {
  const clock = new FakeClock();
  const lb = await startTestLifeboat(t, { sample: false, clock, timeoutSweepMs: 10 });
  const api = new LifeboatClient(lb.url);
  const pid = randomUUID();
  await lb.service.hosts.register(HOST, registration(pid));

  const accepted = await api.backup(pid, lb.storage, 1);
  assert.equal(accepted.status, 202, accepted.text);
  clock.advance(30_000);
  await new Promise((r) => setTimeout(r, 50)); // a few sweeps: not due yet
  assert.equal((await api.backupProgress(pid)).BackupState, 'Accepted');
  clock.advance(31_000);
  const timedOut = await waitFor(() => api.backupProgress(pid), (v) => v.BackupState !== 'Accepted', 5_000, 'the sweep');
  assert.equal(timedOut.BackupState, 'Timeout');
  assert.equal(timedOut.FailureError?.Code, 'FABRIC_E_TIMEOUT');
  const again = await api.backup(pid, lb.storage, 1);
  assert.equal(again.status, 202, again.text);
  clock.advance(61_000);
  await waitFor(() => api.backupProgress(pid), (v) => v.BackupState === 'Timeout', 5_000, 'the second backup to time out');

  const backup = await storedBackup(lb.storage, pid, clock.now());
  const restore = await api.restore(pid, backup, lb.storage, 2);
  assert.equal(restore.status, 202, restore.text);
  clock.advance(61_000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await api.restoreProgress(pid)).RestoreState, 'Accepted', 'RestoreTimeout=2 is not due after 61 s');
  clock.advance(60_000);
  const restoreTimedOut = await waitFor(() => api.restoreProgress(pid), (v) => v.RestoreState !== 'Accepted', 5_000, 'the restore to time out');
  assert.equal(restoreTimedOut.RestoreState, 'Timeout');
  assert.equal(restoreTimedOut.FailureError?.Code, 'FABRIC_E_TIMEOUT');
  const bad = await api.backup(pid, lb.storage, 0);
  assert.equal(bad.status, 400, bad.text);
});

/**
 * GET /metrics, /healthz and /readyz against a real Lifeboat: the exposition parses; an on-demand
 * backup, a restore, periodic backups, a failed and a timed-out backup each move the counters,
 * histograms and scrape-time gauges they should; who may scrape; what the probes say (nothing),
 * and when /readyz says not ready.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { LifeboatService } from '../../src/service/lifeboat-service.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { FaultyStore } from '../../src/storage/faults.ts';
import { openStorage } from '../../src/storage/open.ts';
import type { Partition } from '../../src/state/index.ts';
import { send } from '../support/api-http.ts';
import { type TestLifeboat, startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { HOUR, MINUTE, fakeClock, step, write } from '../support/periodic.ts';
import { type Exposition, hasMetric, parseExposition, samplesOf, scrape, valueOf } from '../support/prometheus.ts';
import { SERVICE_NAME } from '../support/sample.ts';
import { tempDir } from '../support/tmp.ts';

/** Every metric Lifeboat itself defines, with its type (docs/metrics.md lists the same). */
const LIFEBOAT_METRICS: Readonly<Record<string, string>> = {
  lifeboat_backup_total: 'counter',
  lifeboat_restore_total: 'counter',
  lifeboat_backup_duration_seconds: 'histogram',
  lifeboat_restore_duration_seconds: 'histogram',
  lifeboat_backup_bytes_total: 'counter',
  lifeboat_scheduler_lag_seconds: 'histogram',
  lifeboat_storage_requests_total: 'counter',
  lifeboat_storage_retries_total: 'counter',
  lifeboat_catalog_reachable: 'gauge',
  lifeboat_partitions: 'gauge',
  lifeboat_partition_protected: 'gauge',
  lifeboat_partition_last_successful_backup_timestamp_seconds: 'gauge',
  lifeboat_operations_in_flight: 'gauge',
  lifeboat_catalog_backups: 'gauge',
  lifeboat_catalog_size_bytes: 'gauge',
};

async function metricsToken(lb: TestLifeboat, name = 'prometheus'): Promise<string> {
  return (await lb.client.access.createToken({ Role: 'metrics', Name: name })).Token;
}

const firstPartition = (lb: TestLifeboat): Partition => lb.sample?.service.partitionList[0] as Partition;
const okBackups = (e: Exposition, labels: Record<string, string> = {}): number => valueOf(e, 'lifeboat_backup_total', { outcome: 'success', ...labels });
const lastBackup = (e: Exposition, pid: string): number[] => samplesOf(e, 'lifeboat_partition_last_successful_backup_timestamp_seconds', { partition: pid }).map((s) => s.value);

describe('GET /metrics', () => {
  it('counts an on-demand backup and a restore, and reads the catalog\'s figures at scrape time', async (t) => {
    const lb = await startTestLifeboat(t);
    const token = await metricsToken(lb);
    const p = firstPartition(lb);
    p.transact((tx) => tx.dictionary('kv').set('k', 'v'.repeat(200_000)));
    const url = `${lb.url}/metrics`;

    const before = await scrape(url, token);
    for (const [name, type] of Object.entries(LIFEBOAT_METRICS)) {
      assert.equal(before.types.get(name), type, `${name} is a ${type}`);
      assert.ok((before.help.get(name) ?? '').length > 10, `${name} has a help text`);
    }
    assert.ok(hasMetric(before, 'process_cpu_seconds_total') && hasMetric(before, 'nodejs_eventloop_lag_seconds'), 'the process metrics are served too');
    for (const outcome of ['success', 'failure', 'timeout']) {
      assert.equal(samplesOf(before, 'lifeboat_backup_total', { kind: 'full', trigger: 'on_demand', outcome }).length, 1, `backup ${outcome} starts at 0, so rate() sees its first`);
    }
    assert.equal(valueOf(before, 'lifeboat_catalog_reachable'), 1);
    assert.deepEqual(lastBackup(before, p.id), [], 'no backup yet: no timestamp');
    assert.equal(valueOf(before, 'lifeboat_partition_protected', { partition: p.id, service: SERVICE_NAME }), 0);
    const partitions = lb.sample?.service.partitionList.length ?? 0;
    assert.equal(valueOf(before, 'lifeboat_partitions', { protection: 'unprotected' }), partitions);
    assert.equal(valueOf(before, 'lifeboat_partitions', { protection: 'protected' }), 0);
    assert.ok(valueOf(before, 'lifeboat_catalog_size_bytes') > 0);

    const startedSec = Date.now() / 1000;
    await lb.client.operations.backupPartition(p.id, { storage: lb.storage });
    const b = await lb.client.operations.waitForBackup(p.id);
    assert.equal(b.BackupState, 'Success', JSON.stringify(b.FailureError));
    const after = await scrape(url, token);
    assert.equal(okBackups(after, { kind: 'full', trigger: 'on_demand' }) - okBackups(before, { kind: 'full', trigger: 'on_demand' }), 1, 'one successful on-demand full backup');
    const count = (e: Exposition): number => valueOf(e, 'lifeboat_backup_duration_seconds_count', { kind: 'full', outcome: 'success' });
    assert.equal(count(after) - count(before), 1, 'its duration observed once');
    assert.ok(valueOf(after, 'lifeboat_backup_duration_seconds_sum') >= 0);
    const [stamp] = lastBackup(after, p.id);
    assert.ok(stamp !== undefined && stamp >= Math.floor(startedSec) - 1 && stamp <= Date.now() / 1000 + 1, `the partition's last successful backup: ${stamp}`);
    assert.equal(samplesOf(after, 'lifeboat_partition_last_successful_backup_timestamp_seconds', { partition: p.id })[0]?.labels.service, SERVICE_NAME);
    assert.equal(valueOf(after, 'lifeboat_catalog_backups') - valueOf(before, 'lifeboat_catalog_backups'), 1, 'one more backup in the index');
    const puts = (e: Exposition): number => valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', operation: 'put', outcome: 'success' });
    assert.ok(puts(after) - puts(before) >= 2, 'the backup\'s data and metadata puts were counted');
    // The byte counts come from the host's report (BytesTransferred, StoredBytes in the operation's result).
    const bytes = (e: Exposition, type: string): number => valueOf(e, 'lifeboat_backup_bytes_total', { kind: 'full', type });
    assert.ok(bytes(after, 'logical') - bytes(before, 'logical') >= 200_000, `logical bytes grew: ${bytes(after, 'logical')}`);
    assert.ok(bytes(after, 'stored') - bytes(before, 'stored') > 0, `stored bytes grew: ${bytes(after, 'stored')}`);

    await lb.client.operations.restorePartition(p.id, { backupId: b.BackupId, backupLocation: b.BackupLocation, storage: lb.storage });
    const r = await lb.client.operations.waitForRestore(p.id);
    assert.equal(r.RestoreState, 'Success', JSON.stringify(r.FailureError));
    const restored = await scrape(url, token);
    const restores = (e: Exposition): number => valueOf(e, 'lifeboat_restore_total', { trigger: 'on_demand', outcome: 'success' });
    assert.equal(restores(restored) - restores(after), 1, 'one successful restore');
    assert.equal(valueOf(restored, 'lifeboat_restore_duration_seconds_count', { outcome: 'success' }) - valueOf(after, 'lifeboat_restore_duration_seconds_count', { outcome: 'success' }), 1);
    const gets = (e: Exposition): number => valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', operation: 'get', outcome: 'success' });
    assert.ok(gets(restored) > gets(after), 'the restore\'s reads were counted');
    assert.equal(valueOf(restored, 'lifeboat_operations_in_flight'), 0, 'nothing under way');
    assert.equal(samplesOf(restored, 'lifeboat_operations_in_flight').length, 8, 'every in-flight series is there, at 0');
  });

  it('counts a backup whose storage fails as a failure, and the failed storage request', async (t) => {
    const lb = await startTestLifeboat(t);
    const token = await metricsToken(lb);
    const p = firstPartition(lb);
    // A FileShare "folder" that is a file: every write into it fails in the adapter itself.
    mkdirSync(lb.share, { recursive: true });
    const blocked = join(lb.share, 'not-a-folder');
    writeFileSync(blocked, 'x');
    const before = await scrape(`${lb.url}/metrics`, token);
    await lb.client.operations.backupPartition(p.id, { storage: { StorageKind: 'FileShare', Path: blocked } });
    const b = await lb.client.operations.waitForBackup(p.id);
    assert.equal(b.BackupState, 'Failure');
    const after = await scrape(`${lb.url}/metrics`, token);
    const failed = (e: Exposition): number => valueOf(e, 'lifeboat_backup_total', { kind: 'full', trigger: 'on_demand', outcome: 'failure' });
    assert.equal(failed(after) - failed(before), 1);
    assert.equal(okBackups(after) - okBackups(before), 0);
    assert.equal(valueOf(after, 'lifeboat_backup_duration_seconds_count', { outcome: 'failure' }) - valueOf(before, 'lifeboat_backup_duration_seconds_count', { outcome: 'failure' }), 1);
    const storageErrors = (e: Exposition): number => valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', outcome: 'error' }) + valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', outcome: 'transient' });
    assert.ok(storageErrors(after) > storageErrors(before), 'the failed storage request was counted');
    assert.deepEqual(lastBackup(after, p.id), [], 'a failed backup is no successful backup');
  });

  it('counts a backup that outlived its deadline as a timeout', async (t) => {
    const clock = fakeClock();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => { release = resolve; });
    let hold = false;
    // Armed, every put waits until released: the backup is under way when its deadline passes.
    const wrapStorage = (s: BlobStore): BlobStore => (hold ? new FaultyStore(s, [{ kind: 'delay', op: 'put', ms: 1 }], { sleep: () => held }) : s);
    const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 }, wrapStorage });
    t.after(() => release());
    const token = await metricsToken(lb);
    const p = firstPartition(lb);
    const before = await scrape(`${lb.url}/metrics`, token);
    hold = true;
    await lb.client.operations.backupPartition(p.id, { storage: lb.storage, timeoutMinutes: 1 });
    await waitFor(async () => (await lb.client.operations.backupProgress(p.id)).BackupState, (s) => s === 'BackupInProgress', 10_000, 'the backup to start');
    const during = await scrape(`${lb.url}/metrics`, token);
    assert.equal(valueOf(during, 'lifeboat_operations_in_flight', { operation: 'backup', trigger: 'on_demand', state: 'in_progress' }), 1, 'one backup under way');
    clock.advance(2 * MINUTE);
    await lb.service.orders.expireOperations();
    assert.equal((await lb.client.operations.backupProgress(p.id)).BackupState, 'Timeout');
    const after = await scrape(`${lb.url}/metrics`, token);
    const timedOut = (e: Exposition): number => valueOf(e, 'lifeboat_backup_total', { trigger: 'on_demand', outcome: 'timeout' });
    assert.equal(timedOut(after) - timedOut(before), 1);
    const durations = samplesOf(after, 'lifeboat_backup_duration_seconds_sum', { kind: 'full', outcome: 'timeout' });
    assert.ok((durations[0]?.value ?? 0) >= 120, 'its duration is on the service\'s clock: two minutes');
    assert.equal(valueOf(after, 'lifeboat_operations_in_flight'), 0);
    hold = false;
    release();
  });

  it('counts periodic backups by kind, their scheduler lag, and partitions by protection', async (t) => {
    const clock = fakeClock();
    const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 } });
    const token = await metricsToken(lb);
    const p = firstPartition(lb);
    await lb.service.policies.createPolicy({
      Name: 'hourly', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 3,
      Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' }, Storage: lb.storage,
    }, false);
    await lb.service.protection.enableBackup({ kind: 'Partition', id: p.id }, { BackupPolicyName: 'hourly' });
    await lb.scheduler.tick();
    const before = await scrape(`${lb.url}/metrics`, token);
    assert.equal(valueOf(before, 'lifeboat_partition_protected', { partition: p.id }), 1);
    assert.equal(valueOf(before, 'lifeboat_partitions', { protection: 'protected' }), 1);
    write([p], 'a');
    await step(lb, clock, HOUR);
    write([p], 'b');
    await step(lb, clock, HOUR);
    const after = await scrape(`${lb.url}/metrics`, token);
    assert.equal(okBackups(after, { kind: 'full', trigger: 'periodic' }) - okBackups(before, { kind: 'full', trigger: 'periodic' }), 1, 'the first periodic backup is full');
    assert.equal(okBackups(after, { kind: 'incremental', trigger: 'periodic' }) - okBackups(before, { kind: 'incremental', trigger: 'periodic' }), 1, 'the next is incremental');
    assert.equal(valueOf(after, 'lifeboat_scheduler_lag_seconds_count') - valueOf(before, 'lifeboat_scheduler_lag_seconds_count'), 2, 'the lag of both observed');
    assert.equal(lastBackup(after, p.id).length, 1);

    await lb.service.protection.suspendBackup({ kind: 'Partition', id: p.id });
    const suspended = await scrape(`${lb.url}/metrics`, token);
    assert.equal(valueOf(suspended, 'lifeboat_partitions', { protection: 'suspended' }), 1);
    assert.equal(valueOf(suspended, 'lifeboat_partitions', { protection: 'protected' }), 0);
    assert.equal(valueOf(suspended, 'lifeboat_partition_protected', { partition: p.id }), 0);
    assert.equal(lastBackup(suspended, p.id).length, 1, 'its last backup stays known');
  });

  it('counts an auto-restore after data loss under trigger="data_loss"', async (t) => {
    const lb = await startTestLifeboat(t, { scheduler: { manual: true, jitterMs: 0 }, dataLossRetryMs: 100 });
    const token = await metricsToken(lb);
    const p = firstPartition(lb);
    await lb.service.policies.createPolicy({
      Name: 'auto', AutoRestoreOnDataLoss: true, MaxIncrementalBackups: 0, Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' }, Storage: lb.storage,
    }, false);
    await lb.service.protection.enableBackup({ kind: 'Partition', id: p.id }, { BackupPolicyName: 'auto' });
    p.transact((tx) => tx.dictionary('kv').set('a', '1'));
    await lb.client.operations.backupPartition(p.id);
    assert.equal((await lb.client.operations.waitForBackup(p.id)).BackupState, 'Success');
    p.transact((tx) => tx.dictionary('kv').set('a', 'newer than the backup'));
    const before = await scrape(`${lb.url}/metrics`, token);
    // The replica is ahead of the backup: the auto-restore's Safe check refuses it.
    const loss = p.startDataLoss();
    await waitFor(() => lb.client.operations.restoreProgress(p.id), (r) => r.RestoreState === 'Failure', 30_000, 'the refused auto-restore');
    const after = await scrape(`${lb.url}/metrics`, token);
    const failed = (e: Exposition): number => valueOf(e, 'lifeboat_restore_total', { trigger: 'data_loss', outcome: 'failure' });
    assert.ok(failed(after) - failed(before) >= 1, 'the auto-restore counted as a data-loss restore');
    assert.equal(valueOf(after, 'lifeboat_restore_total', { trigger: 'on_demand' }), 0, 'no on-demand restore');
    await lb.client.operations.skipAutoRestore(p.id);
    assert.equal(await loss, false);
  });

  it('lets metrics tokens, readers and admins scrape; not hosts, nor anyone without a token', async (t) => {
    const lb = await startTestLifeboat(t, { sample: false });
    const scraper = await metricsToken(lb);
    const reader = (await lb.client.access.createToken({ Role: 'reader', Name: 'r' })).Token;
    const host = (await lb.client.access.createToken({ Role: 'host', Name: 'h', HostId: 'h' })).Token;
    for (const token of [scraper, reader]) {
      const r = await send(lb.url, { method: 'GET', path: '/metrics', token });
      assert.equal(r.status, 200);
      assert.ok(parseExposition(r.text).samples.length > 0);
    }
    const admin = await send(lb.url, { method: 'GET', path: '/metrics' });
    assert.equal(admin.status, 200);
    assert.ok(parseExposition(admin.text).samples.length > 0);
    assert.equal((await send(lb.url, { method: 'GET', path: '/metrics', token: host })).status, 403);
    assert.equal((await send(lb.url, { method: 'GET', path: '/metrics', token: null })).status, 401);
  });
});

describe('/healthz and /readyz', () => {
  it('answer without a token, say nothing, and /readyz is 503 while the loops are stopped', async (t) => {
    const lb = await startTestLifeboat(t);
    const health = await send(lb.url, { method: 'GET', path: '/healthz', token: null });
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.text), { Status: 'ok' });
    assert.equal(health.headers.get('cache-control'), 'no-store');
    const ready = await send(lb.url, { method: 'GET', path: '/readyz', token: null });
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.text), { Status: 'ready' });
    assert.equal((await fetch(`${lb.url}/readyz`, { method: 'HEAD' })).status, 200, 'HEAD works, for probes that use it');

    await lb.scheduler.stop();
    const stopped = await send(lb.url, { method: 'GET', path: '/readyz', token: null });
    assert.equal(stopped.status, 503);
    assert.deepEqual(JSON.parse(stopped.text), { Status: 'not ready' }, 'the same words whatever the cause');
    assert.equal((await send(lb.url, { method: 'GET', path: '/healthz', token: null })).status, 200, 'alive all the same');
    lb.scheduler.start();
    assert.equal((await send(lb.url, { method: 'GET', path: '/readyz', token: null })).status, 200);

    await lb.retention.stop();
    assert.equal((await send(lb.url, { method: 'GET', path: '/readyz', token: null })).status, 503, 'the retention sweeper stopped');
    lb.retention.start();
    assert.equal((await send(lb.url, { method: 'GET', path: '/readyz', token: null })).status, 200);
  });

  it('/readyz is 503 when the catalog does not answer, and the scrape says so instead of failing', async (t) => {
    const lb = await startTestLifeboat(t, { sample: false });
    assert.equal((await send(lb.url, { method: 'GET', path: '/readyz', token: null })).status, 200);
    // The catalog stops answering (as a database that went away would): not ready, and the
    // scrape says so instead of failing.
    const token = await metricsToken(lb);
    const operations = lb.catalog.operations;
    const original = operations.get.bind(operations);
    const originalActive = operations.active.bind(operations);
    operations.get = async () => { throw new Error('the catalog is gone'); };
    operations.active = async () => { throw new Error('the catalog is gone'); };
    t.after(() => { operations.get = original; operations.active = originalActive; });
    const gone = await send(lb.url, { method: 'GET', path: '/readyz', token: null });
    assert.equal(gone.status, 503);
    assert.ok(!gone.text.includes('gone'), 'no error text');
    const scraped = await scrape(`${lb.url}/metrics`, token);
    assert.equal(valueOf(scraped, 'lifeboat_catalog_reachable'), 0);
    assert.equal(samplesOf(scraped, 'lifeboat_partitions').length, 0);
    operations.get = original;
    operations.active = originalActive;
    assert.equal((await send(lb.url, { method: 'GET', path: '/readyz', token: null })).status, 200);
  });

  it('no host seen yet: the board counts hosts as they register or poll (the in-process host registers at start)', async (t) => {
    const dir = tempDir(t);
    const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
    t.after(() => catalog.close());
    const service = new LifeboatService({ catalog, clock: { now: () => new Date() }, openStorage: (d) => openStorage(d, { fileShareRoots: [dir] }) });
    assert.equal(service.orders.hostsSeen, 0);
    await service.hosts.register('h1', { Services: [] });
    await service.hosts.pollOrders('h2', 50);
    assert.equal(service.orders.hostsSeen, 2);
    const lb = await startTestLifeboat(t, { sample: false });
    assert.equal(lb.service.orders.hostsSeen, 1, 'the in-process host');
  });

  it('/readyz is 503 with a manual scheduler: no loop runs', async (t) => {
    const lb = await startTestLifeboat(t, { scheduler: { manual: true } });
    assert.equal((await send(lb.url, { method: 'GET', path: '/readyz', token: null })).status, 503);
  });
});

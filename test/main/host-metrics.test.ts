/**
 * The metrics server of an out-of-process host (src/main/host-metrics.ts), in process: it serves
 * the host's storage requests (through its StorageRegistry), the operations it reported (through
 * its observed channel) and the process's metrics, to the metrics token only; /healthz is public.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import type { HostChannel, Order, Report } from '../../src/core/host-protocol.ts';
import { startHostMetrics } from '../../src/main/host-metrics.ts';
import { MeteredStore } from '../../src/storage/metered.ts';
import { StorageRegistry } from '../../src/storage/open.ts';
import { FaultyStore } from '../../src/storage/faults.ts';
import { transientStorageError } from '../../src/storage/port.ts';
import { RetryingStore } from '../../src/storage/retry.ts';
import { hasMetric, parseExposition, scrape, valueOf } from '../support/prometheus.ts';
import { tempDir } from '../support/tmp.ts';

const TOKEN = 'lbt_metrics-token-for-the-host-0123456789';
const PID = '5e0f4c1e-0000-4000-8000-000000000001';
const EPOCH = { DataLossVersion: '1', ConfigurationVersion: '1' };

function fakeChannel(orders: Order[]): HostChannel & { reports: Report[] } {
  const reports: Report[] = [];
  return {
    reports,
    register: async () => undefined,
    pollOrders: async () => orders.splice(0),
    report: async (_hostId, r) => { reports.push(r); },
    dataLoss: async () => ({ Action: 'Wait' }) as never,
  };
}

it('serves the host\'s storage requests, its operations and the process\'s metrics to the metrics token', async (t) => {
  const dir = tempDir(t);
  const m = await startHostMetrics({ hostId: 'host-7', port: 0, token: TOKEN });
  t.after(() => m.close());
  assert.match(m.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  // The host's stores, metered as `lifeboat host` opens them.
  const stores = new StorageRegistry({ fileShareRoots: [dir], meter: m.storage });
  t.after(() => stores.close());
  const store = stores.open({ StorageKind: 'FileShare', Path: join(dir, 'share') });
  await store.put('App/Svc/p/a.lbk', Buffer.from('hello'));
  assert.equal(Buffer.concat(await (await store.get('App/Svc/p/a.lbk')).toArray()).toString(), 'hello');
  await assert.rejects(store.get('App/Svc/p/missing'));
  assert.equal(await store.head('App/Svc/p/missing'), undefined);
  for await (const _ of store.list('App/')) { /* drain */ }

  // The host's channel, observed: an order handed out, then its end reported.
  const channel = fakeChannel([
    { OperationId: 'op-1', Kind: 'Backup', PartitionId: PID, Storage: { StorageKind: 'FileShare', Path: dir }, DeadlineUtc: new Date(Date.now() + 60_000).toISOString() },
    { OperationId: 'op-2', Kind: 'Backup', PartitionId: PID, Storage: { StorageKind: 'FileShare', Path: dir }, DeadlineUtc: new Date(Date.now() + 60_000).toISOString() },
  ]);
  const observed = m.observe(channel);
  assert.equal((await observed.pollOrders('host-7', 0)).length, 2);
  const during = await scrape(`${m.url}/metrics`, TOKEN);
  assert.equal(valueOf(during, 'lifeboat_host_operations_in_flight', { operation: 'backup' }), 2);
  await observed.report('host-7', { OperationId: 'op-1', State: 'InProgress', Progress: { BytesTransferred: 10 } });
  await observed.report('host-7', {
    OperationId: 'op-1', State: 'Success', Partition: { Id: PID, Epoch: EPOCH, Lsn: '5' }, Progress: { BytesTransferred: 1000, StoredBytes: 400 },
    Backup: {
      BackupId: 'b', BackupChainId: 'c', ParentBackupId: '', BackupLocation: 'App/Svc/p/a', BackupType: 'Full', EpochOfLastBackupRecord: EPOCH,
      LsnOfLastBackupRecord: '5', CreationTimeUtc: new Date().toISOString(),
    } as never,
  });
  await observed.report('host-7', { OperationId: 'op-2', State: 'Failure', Error: { Code: 'E_FAIL', Message: 'no' } });
  assert.equal(channel.reports.length, 3, 'every report went through');

  const e = await scrape(`${m.url}/metrics`, TOKEN);
  assert.equal(valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', operation: 'put', outcome: 'success' }), 1);
  assert.equal(valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', operation: 'get', outcome: 'success' }), 1, 'a get counts when its stream ends');
  assert.equal(valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', operation: 'get', outcome: 'not_found' }), 1);
  assert.equal(valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', operation: 'head', outcome: 'success' }), 1, 'a head of a missing key is an answer');
  assert.equal(valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', operation: 'list', outcome: 'success' }), 1);
  assert.equal(valueOf(e, 'lifeboat_host_operations_total', { operation: 'backup', outcome: 'success' }), 1);
  assert.equal(valueOf(e, 'lifeboat_host_operations_total', { operation: 'backup', outcome: 'failure' }), 1);
  assert.equal(valueOf(e, 'lifeboat_host_bytes_total', { operation: 'backup', type: 'logical' }), 1000);
  assert.equal(valueOf(e, 'lifeboat_host_bytes_total', { operation: 'backup', type: 'stored' }), 400);
  assert.equal(valueOf(e, 'lifeboat_host_operations_in_flight'), 0);
  assert.equal(valueOf(e, 'lifeboat_host_info', { host_id: 'host-7' }), 1);
  assert.ok(hasMetric(e, 'process_resident_memory_bytes'), 'the process metrics');
});

it('refuses a scrape without the metrics token; /healthz is public and says nothing', async (t) => {
  const m = await startHostMetrics({ hostId: 'host-secret-name', port: 0, token: TOKEN });
  t.after(() => m.close());
  for (const headers of [{}, { authorization: 'Bearer lbt_another-token-0123456789abcdef' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }]) {
    const r = await fetch(`${m.url}/metrics`, { headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    assert.ok(!(await r.text()).includes('lifeboat_'), 'nothing of the metrics');
  }
  const h = await fetch(`${m.url}/healthz`);
  assert.equal(h.status, 200);
  const text = await h.text();
  assert.deepEqual(JSON.parse(text), { Status: 'ok' });
  assert.ok(!text.includes('host-secret-name'));
  assert.equal((await fetch(`${m.url}/other`)).status, 404);
  assert.equal((await fetch(`${m.url}/metrics`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 405);
  parseExposition(await (await fetch(`${m.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text());
  await assert.rejects(startHostMetrics({ hostId: 'h', port: 0, token: 'short' }), /16 to 256/);
});

it('counts every attempt of a retried request, each retry, and a get whose stream breaks as failed', async () => {
  const counted: string[] = [];
  const meter = { request: (b: string, op: string, outcome: string) => counted.push(`${b} ${op} ${outcome}`), retry: (b: string, op: string) => counted.push(`${b} ${op} retry`) };
  const inner = new Map<string, Buffer>();
  const memory = {
    description: 'memory',
    put: async (k: string, body: Readable | Uint8Array) => { inner.set(k, Buffer.from(body instanceof Readable ? Buffer.concat(await body.toArray()) : body)); },
    get: async (k: string) => Readable.from([inner.get(k) ?? Buffer.alloc(0)]),
    head: async () => undefined,
    async *list() { /* nothing */ },
    delete: async () => undefined,
    validate: async () => undefined,
  };
  const faulty = new FaultyStore(memory, [
    { kind: 'fail', op: 'put', calls: 1, error: () => transientStorageError('reset') },
    { kind: 'break-get', afterBytes: 2, error: () => new Error('cut'), calls: 1 },
  ]);
  const store = new RetryingStore(new MeteredStore(faulty, 'S3', meter), { sleep: async () => undefined, onRetry: (r) => meter.retry('S3', r.operation) });
  await store.put('k', Buffer.from('abcdef'));
  assert.deepEqual(counted.splice(0), ['S3 put transient', 'S3 put retry', 'S3 put success']);
  const broken = new MeteredStore(faulty, 'S3', meter);
  await assert.rejects(async () => { for await (const _ of await broken.get('k')) { /* read */ } }, /cut/);
  assert.deepEqual(counted.splice(0), ['S3 get error']);
  const stopped = await broken.get('k');
  stopped.destroy();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(counted.splice(0), ['S3 get success'], 'a reader that stops early is no backend failure');
});

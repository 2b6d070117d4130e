/**
 * Resource limits under attack, on a real Lifeboat: a hostile storage's 200 MB ".bkmetadata" is
 * refused after 1 MiB (memory stays flat), and 200 concurrent VerifyBackup calls run two at a
 * time with a bounded queue (the rest get 503 with Retry-After), while threads stay bounded and
 * the API keeps answering.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { assertFabricError, jsonOf, send } from '../support/api-http.ts';
import { backupNow, samplePartition } from '../support/backup-e2e.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { SERVICE_NAME } from '../support/sample.ts';

const V = 'api-version=6.4';
const threads = (): number => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);

it('refuses a huge .bkmetadata after 1 MiB, with memory flat', async (t) => {
  const lb = await startTestLifeboat(t);
  const p0 = samplePartition(lb, 0);
  const folder = join(lb.share, 'SampleApp', 'MyStatefulService', p0.id);
  mkdirSync(folder, { recursive: true });
  const huge = join(folder, '2026-01-01 00.00.00.bkmetadata');
  writeFileSync(huge, '');
  truncateSync(huge, 200 * 1024 * 1024); // sparse: 200 MB to read, nothing on disk
  writeFileSync(join(folder, '2026-01-01 00.00.00.lbk'), 'x');
  global.gc?.();
  const before = process.memoryUsage().rss;
  const restore = await send(lb.url, {
    method: 'POST', path: `/Partitions/${p0.id}/$/Restore?${V}`,
    body: { BackupId: '00000000-0000-4000-8000-000000000001', BackupLocation: `SampleApp/MyStatefulService/${p0.id}/2026-01-01 00.00.00.lbk`, BackupStorage: lb.storage },
  });
  assertFabricError(restore, 400, 'LIFEBOAT_E_BACKUP_CORRUPT');
  const listed = await send(lb.url, { method: 'POST', path: `/BackupRestore/$/GetBackups?${V}`, body: { Storage: lb.storage, BackupEntity: { EntityKind: 'Service', ServiceName: SERVICE_NAME } } });
  assert.ok(listed.status < 500, listed.text);
  const grown = process.memoryUsage().rss - before;
  assert.ok(grown < 100 * 1024 * 1024, `RSS grew by ${Math.round(grown / 1048576)} MB reading a 200 MB metadata object`);
});

it('runs 200 concurrent VerifyBackups through a bounded pool: 503 with Retry-After past the queue, threads bounded, the API answering', async (t) => {
  const lb = await startTestLifeboat(t);
  const p0 = samplePartition(lb, 0);
  for (let i = 0; i < 200; i++) await p0.transact((tx) => tx.dictionary('kv').set(`k${i}`, 'v'.repeat(1000)));
  const done = await backupNow(lb, p0.id);
  const body = { BackupId: done.BackupId, BackupLocation: done.BackupLocation, BackupStorage: lb.storage };
  const baseline = threads();
  let peak = baseline;
  const sampler = setInterval(() => { peak = Math.max(peak, threads()); }, 5);
  const calls = Array.from({ length: 200 }, () => send(lb.url, { method: 'POST', path: `/Partitions/${p0.id}/$/VerifyBackup?${V}`, body }));
  const meanwhile = await send(lb.url, { method: 'GET', path: '/Applications?api-version=6.0' });
  const answers = await Promise.all(calls);
  clearInterval(sampler);
  assert.equal(meanwhile.status, 200, 'the API answers during the flood');
  const ok = answers.filter((a) => a.status === 200);
  const busy = answers.filter((a) => a.status === 503);
  assert.equal(ok.length + busy.length, 200, `every answer is 200 or 503: ${[...new Set(answers.map((a) => a.status))].join(',')}`);
  assert.ok(ok.length >= 2, `${ok.length} ran, ${busy.length} refused`);
  for (const b of busy) {
    assert.equal((jsonOf(b) as { Error: { Code: string } }).Error.Code, 'LIFEBOAT_E_BUSY');
    assert.equal(b.headers.get('retry-after'), '1');
  }
  for (const a of ok) assert.equal((jsonOf(a) as { Ok: boolean }).Ok, true);
  assert.ok(peak - baseline <= 16, `threads went from ${baseline} to ${peak}`);
});

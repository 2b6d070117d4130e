/**
 * Byte progress: a host reports how far a backup and a restore are while they stream
 * (InProgress reports with BytesTransferred and TotalBytes), never more than the total, never
 * going back, and their final counts with Success; ProgressReports sends at most one report at a
 * time and one per interval.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DataLossDecision, HostChannel, Order, Registration, Report, TransferProgress } from '../../src/core/host-protocol.ts';
import { Host } from '../../src/host/host.ts';
import { ProgressReports } from '../../src/host/progress-reports.ts';
import { startSampleApp } from '../../src/host/sample-app.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import { tempDir } from '../support/tmp.ts';

describe('byte progress of backups and restores', () => {
  it('ProgressReports: one report in flight, one per interval, and drain waits for the one on its way', async () => {
    let now = 0;
    const sent: TransferProgress[] = [];
    let release: () => void = () => undefined;
    const reports = new ProgressReports(async (p) => {
      sent.push(p);
      await new Promise<void>((r) => { release = r; });
    }, 1000, () => now);
    reports.update({ BytesTransferred: 1 });
    reports.update({ BytesTransferred: 2 }); // one is in flight
    now = 5000;
    reports.update({ BytesTransferred: 3 }); // still in flight
    assert.deepEqual(sent.map((p) => p.BytesTransferred), [1]);
    let drained = false;
    const draining = reports.drain().then(() => { drained = true; });
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, false, 'drain waits for the report on its way');
    release();
    await draining;
    reports.update({ BytesTransferred: 4 });
    now = 5500;
    reports.update({ BytesTransferred: 5 }); // within the interval of the last one
    release();
    await reports.drain();
    assert.deepEqual(sent.map((p) => p.BytesTransferred), [1, 4]);
  });

  it('a host reports bytes as a backup and a restore stream, and the totals at the end', async (t) => {
    const dir = tempDir(t);
    const reports: Report[] = [];
    const orders: Order[] = [];
    const channel: HostChannel = {
      register: async (_id: string, _r: Registration) => undefined,
      pollOrders: async () => {
        await new Promise((r) => setTimeout(r, 10));
        return orders.splice(0);
      },
      report: async (_id: string, r: Report) => {
        reports.push(r);
      },
      dataLoss: async (): Promise<DataLossDecision> => ({ Action: 'NotProtected' }),
    };
    const share = new FileShareStore(join(dir, 'share'));
    const host = new Host({ id: 'h', channel, workDir: join(dir, 'work'), openStorage: () => share, pollWaitMs: 0, progressIntervalMs: 0, compression: 'none' });
    const app = await startSampleApp({ dataDir: join(dir, 'app'), port: 0, onDataLoss: host.onDataLoss });
    t.after(async () => {
      await host.stop();
      await host.stopped();
      await app.close();
    });
    host.addService(app.service);
    const entry = app.service.partitionList[0] as (typeof app.service.partitionList)[number];
    // ~12 MB of incompressible values: several blocks, so several reports.
    for (let i = 0; i < 12; i++) entry.transact((tx) => tx.dictionary('kv').set(`k${i}`, randomBytes(512 * 1024).toString('base64')));
    await host.start();
    const ended = async (id: string): Promise<Report> => {
      for (let i = 0; i < 1000; i++) {
        const r = reports.find((x) => x.OperationId === id && x.State !== 'InProgress');
        if (r) return r;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`operation ${id} did not end`);
    };
    const deadline = new Date(Date.now() + 600_000).toISOString();
    orders.push({ OperationId: 'b1', Kind: 'Backup', PartitionId: entry.id, Storage: { StorageKind: 'FileShare', Path: join(dir, 'share') }, DeadlineUtc: deadline });
    const backup = await ended('b1');
    assert.equal(backup.State, 'Success', JSON.stringify(backup));
    const during = (id: string): TransferProgress[] => reports.filter((r) => r.OperationId === id && r.State === 'InProgress' && r.Progress).map((r) => (r as { Progress: TransferProgress }).Progress);
    const b = during('b1');
    assert.ok(b.length >= 3, `several progress reports during the backup (${b.length})`);
    const total = b[0]?.TotalBytes ?? 0;
    assert.ok(total > 12 * 512 * 1024, `a full backup's total is the database file (${total})`);
    for (const [i, p] of b.entries()) {
      assert.equal(p.TotalBytes, total, 'the total does not change');
      assert.ok(p.BytesTransferred <= total, 'never past the total');
      if (i > 0) assert.ok(p.BytesTransferred >= (b[i - 1] as TransferProgress).BytesTransferred, 'never going back');
    }
    const final = (backup as { Progress?: TransferProgress }).Progress;
    assert.ok(final && final.BytesTransferred === final.TotalBytes && final.BytesTransferred >= total, `Success carries the bytes read: ${JSON.stringify(final)}`);
    assert.ok((final.StoredBytes ?? 0) > 12 * 512 * 1024 * 0.9, 'and the bytes stored (uncompressed here)');

    const location = (backup as { Backup: { BackupLocation: string } }).Backup.BackupLocation;
    orders.push({ OperationId: 'r1', Kind: 'Restore', PartitionId: entry.id, Storage: { StorageKind: 'FileShare', Path: join(dir, 'share') }, DeadlineUtc: deadline, Chain: [location], RestorePolicy: 'Force' });
    const restore = await ended('r1');
    assert.equal(restore.State, 'Success', JSON.stringify(restore));
    const r = during('r1');
    const stored = (await share.head(location))?.size ?? 0;
    assert.ok(r.length >= 3, `several progress reports during the restore (${r.length})`);
    for (const p of r) assert.ok(p.TotalBytes === stored && p.BytesTransferred <= stored, `the restore's total is the chain's stored size (${JSON.stringify(p)}, ${stored})`);
    assert.deepEqual((restore as { Progress?: TransferProgress }).Progress, { BytesTransferred: stored, TotalBytes: stored }, 'Success carries the stored bytes read');
  });
});

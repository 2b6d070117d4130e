/**
 * A host reads a partition's database file for a backup with O_DIRECT by default, and through the
 * page cache with `directIo: false`; it says which in its log line for each backup.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import type { DataLossDecision, HostChannel, Order, Registration, Report } from '../../src/core/host-protocol.ts';
import { Host } from '../../src/host/host.ts';
import { startSampleApp } from '../../src/host/sample-app.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import { tempDir } from '../support/tmp.ts';

/** Whether the file system the tests run on takes O_DIRECT at all. */
function takesDirect(dir: string): boolean {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (flag === undefined) return false;
  const probe = join(dir, 'direct-probe');
  writeFileSync(probe, 'x');
  try {
    closeSync(openSync(probe, constants.O_RDONLY | flag));
    return true;
  } catch {
    return false;
  }
}

async function backupOnce(t: { after(fn: () => Promise<void>): void }, dir: string, directIo: boolean | undefined): Promise<{ plainBytes: number; directBytes: number }> {
  const reports: Report[] = [];
  const infos: Array<{ obj: unknown; msg?: string }> = [];
  let order: Order | undefined;
  const channel: HostChannel = {
    register: async (_id: string, _r: Registration) => undefined,
    pollOrders: async () => {
      await new Promise((r) => setTimeout(r, 10));
      return order ? [order] : [];
    },
    report: async (_id: string, r: Report) => {
      reports.push(r);
      if (r.State !== 'InProgress') order = undefined;
    },
    dataLoss: async (): Promise<DataLossDecision> => ({ Action: 'NotProtected' }),
  };
  const share = join(dir, 'share');
  const host = new Host({
    id: 'h', channel, workDir: join(dir, 'work'), openStorage: () => new FileShareStore(share), pollWaitMs: 0,
    log: { warn: () => undefined, info: (obj, msg) => { infos.push({ obj, ...(msg === undefined ? {} : { msg }) }); } },
    ...(directIo === undefined ? {} : { directIo }),
  });
  const app = await startSampleApp({ dataDir: join(dir, 'app'), port: 0, onDataLoss: host.onDataLoss });
  t.after(async () => {
    await host.stop();
    await host.stopped();
    await app.close();
  });
  host.addService(app.service);
  const partition = app.service.partitionList[0] as { id: string; transact(fn: (tx: { dictionary(n: string): { set(k: string, v: string): void } }) => void): unknown };
  // Several MiB, so that the backup reads whole 1 MiB blocks.
  for (let i = 0; i < 6; i++) partition.transact((tx) => tx.dictionary('kv').set(`k${i}`, randomBytes(600_000).toString('base64')));
  order = {
    OperationId: 'op-1', Kind: 'Backup', PartitionId: partition.id, Storage: { StorageKind: 'FileShare', Path: share },
    DeadlineUtc: new Date(Date.now() + 600_000).toISOString(),
  };
  await host.start();
  for (let i = 0; i < 500 && !reports.some((r) => r.State !== 'InProgress'); i++) await new Promise((r) => setTimeout(r, 20));
  // Byte-progress reports (InProgress with Progress) may come between; the states are these.
  assert.deepEqual(reports.filter((r) => !(r.State === 'InProgress' && r.Progress)).map((r) => r.State), ['InProgress', 'Success'], JSON.stringify(reports));
  const line = infos.find((l) => l.msg === 'backup data uploaded');
  assert.ok(line, 'the host logs each uploaded backup');
  return line.obj as { plainBytes: number; directBytes: number };
}

it('a backup reads the database file past the page cache by default, where the file system takes O_DIRECT', async (t) => {
  const dir = tempDir(t);
  const { plainBytes, directBytes } = await backupOnce(t, dir, undefined);
  assert.ok(plainBytes > 4 * 1024 * 1024, `${plainBytes} bytes backed up`);
  if (takesDirect(dir)) assert.ok(directBytes >= 4 * 1024 * 1024, `${directBytes} of ${plainBytes} bytes read direct`);
  else assert.equal(directBytes, 0, 'this file system refuses O_DIRECT');
});

it('directIo: false reads it through the cache', async (t) => {
  const { plainBytes, directBytes } = await backupOnce(t, tempDir(t), false);
  assert.ok(plainBytes > 4 * 1024 * 1024);
  assert.equal(directBytes, 0);
});

/**
 * The service hands an order out again when it has not heard of it for a while; a host still
 * carrying it out must not start it a second time (a second copy would fail the partition's
 * one-backup-at-a-time check and report the operation as failed).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import type { DataLossDecision, HostChannel, Order, Registration, Report } from '../../src/core/host-protocol.ts';
import { Host } from '../../src/host/host.ts';
import { startSampleApp } from '../../src/host/sample-app.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { tempDir } from '../support/tmp.ts';

it('a host ignores an order it is already carrying out when the service hands it out again', async (t) => {
  const dir = tempDir(t);
  const reports: Report[] = [];
  let polls = 0;
  let order: Order | undefined;
  let releasePut: () => void = () => undefined;
  const putHeld = new Promise<void>((r) => { releasePut = r; });
  const channel: HostChannel = {
    register: async (_id: string, _r: Registration) => undefined,
    pollOrders: async () => {
      await new Promise((r) => setTimeout(r, 20));
      polls++;
      if (polls === 5) releasePut(); // the same order was handed out four times meanwhile
      return order ? [order] : [];
    },
    report: async (_id: string, r: Report) => {
      reports.push(r);
      if (r.State !== 'InProgress') order = undefined; // as the service: an ended operation is not handed out
    },
    dataLoss: async (): Promise<DataLossDecision> => ({ Action: 'NotProtected' }),
  };
  let puts = 0;
  const share = new FileShareStore(join(dir, 'share'));
  const store: BlobStore = Object.assign(Object.create(share) as BlobStore, {
    put: async (...args: Parameters<BlobStore['put']>) => {
      puts++;
      if (String(args[0]).endsWith('.lbk')) await putHeld;
      return share.put(...args);
    },
  });
  const host = new Host({ id: 'h', channel, workDir: join(dir, 'work'), openStorage: () => store, pollWaitMs: 0 });
  const app = await startSampleApp({ dataDir: join(dir, 'app'), port: 0, onDataLoss: host.onDataLoss });
  t.after(async () => {
    await host.stop();
    await host.stopped();
    await app.close();
  });
  host.addService(app.service);
  const pid = (app.service.partitionList[0] as { id: string }).id;
  order = {
    OperationId: 'op-1', Kind: 'Backup', PartitionId: pid, Storage: { StorageKind: 'FileShare', Path: join(dir, 'share') },
    DeadlineUtc: new Date(Date.now() + 600_000).toISOString(),
  };
  await host.start();
  for (let i = 0; i < 500 && !reports.some((r) => r.State !== 'InProgress'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(polls >= 5, `the order was handed out ${polls} times`);
  // Byte-progress reports (InProgress with Progress) may come between; the states are these.
  assert.deepEqual(reports.filter((r) => !(r.State === 'InProgress' && r.Progress)).map((r) => r.State), ['InProgress', 'Success'], JSON.stringify(reports));
  assert.equal(puts, 2, 'one data object and one .bkmetadata');
});

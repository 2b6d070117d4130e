/**
 * A burst of host reports: an instance writes a few at once and queues the rest, so the catalog's
 * connections stay free for everything else (the leader's scheduler among them); every report
 * queued is taken in its turn.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { backupDataKey } from '../../src/core/backup-layout.ts';
import type { Report } from '../../src/core/host-protocol.ts';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { LifeboatService } from '../../src/service/lifeboat-service.ts';
import { openStorage } from '../../src/storage/open.ts';
import { tempDir } from '../support/tmp.ts';

const SERVICE = 'fabric:/Burst/Svc';
const HOST = 'burst-host';
const EPOCH = { DataLossVersion: '1', ConfigurationVersion: '1' };

it('writes at most four host reports at once and takes every one of a burst in turn', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'backups');
  mkdirSync(root);
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
  t.after(() => catalog.close());
  const service = new LifeboatService({ catalog, clock: { now: () => new Date() }, openStorage: (d) => openStorage(d, { fileShareRoots: [root] }) });
  const names = Array.from({ length: 24 }, (_, i) => `p${i}`);
  const ids = names.map(() => randomUUID());
  await service.hosts.register(HOST, {
    Services: [{
      Name: SERVICE, Scheme: { kind: 'Named', names }, HasPersistedState: true,
      Partitions: ids.map((Id, i) => ({ Id, Info: { kind: 'Named', name: names[i] as string }, Epoch: EPOCH, Lsn: '1' })),
    }],
  });
  const storage = { StorageKind: 'FileShare' as const, Path: join(root, 'share') };
  const ops = await Promise.all(ids.map((id) => service.backups.backupPartition(id, { BackupStorage: storage }, 10)));
  assert.equal((await service.hosts.pollOrders(HOST, 0)).length, ids.length);

  // Each end takes a few turns of the event loop, as a round trip to PostgreSQL would.
  const { operations } = catalog;
  const end = operations.end.bind(operations);
  let writing = 0;
  let most = 0;
  operations.end = async (...args) => {
    most = Math.max(most, ++writing);
    try {
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      return await end(...args);
    } finally {
      writing--;
    }
  };
  const now = new Date().toISOString();
  await Promise.all(ops.map((op, i) => service.hosts.report(HOST, {
    OperationId: op.id, State: 'Success', Partition: { Id: ids[i] as string, Epoch: EPOCH, Lsn: '5' },
    Backup: {
      BackupId: randomUUID(), BackupChainId: randomUUID(), ParentBackupId: '', BackupLocation: backupDataKey(SERVICE, ids[i] as string, new Date()),
      BackupType: 'Full', EpochOfLastBackupRecord: EPOCH, LsnOfLastBackupRecord: '5', CreationTimeUtc: now,
    },
  } satisfies Report)));
  assert.equal(most, 4, 'four at once, no more');
  for (const op of ops) assert.equal((await catalog.operations.get(op.id))?.state, 'Success');
  assert.equal((await catalog.backups.list({ serviceName: SERVICE })).length, ids.length, 'every backup of the burst indexed');
});

/**
 * `lifeboat host --service-url URL,URL…` as a real process: with the first instance listed dead
 * (a port nobody listens on) and a real service process second, the host registers through the
 * second and carries out a backup ordered there. (Two service processes on one SQLite catalog are
 * not safe, so the second instance of a pair is stood in for by a dead URL.)
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { adminClient } from '../support/client.ts';
import { KvClient } from '../support/process-api.ts';
import { Children, freePort, startHostProcess, startServiceProcess } from '../support/process-children.ts';
import { tempDir } from '../support/tmp.ts';

it('a host given a dead service URL first and a live one second registers with the live one and carries out its backup', async (t) => {
  const children = new Children(t);
  const dir = tempDir(t);
  const svc = await startServiceProcess(children, { dataDir: dir, sample: false });
  const share = join(dir, 'backups', 'share');
  mkdirSync(share, { recursive: true });
  const dead = `http://127.0.0.1:${await freePort()}`;
  const host = await startHostProcess(children, {
    serviceUrl: `${dead},${svc.url}`, hostId: 'listed', dataDir: tempDir(t), service: 'fabric:/ListApp/Kv', partitioning: 'singleton',
  });
  const pid = host.info.partitions[0] as string;
  await new KvClient(host.info.kv).put('a', 'A');

  const api = adminClient(svc.url);
  assert.equal((await api.hierarchy.getPartition(pid)).PartitionInformation.Id, pid, 'registered with the live instance');
  await api.operations.backupPartition(pid, { storage: { StorageKind: 'FileShare', Path: share }, timeoutMinutes: 5 });
  const done = await api.operations.waitForBackup(pid, { timeoutMs: 60_000 });
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
  assert.ok(existsSync(join(share, done.BackupLocation)), `${done.BackupLocation} is in the share`);
  assert.ok(host.child.alive);
});

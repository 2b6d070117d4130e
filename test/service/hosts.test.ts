/**
 * Several hosts on one Lifeboat service, each in its own process (`lifeboat host`), driven
 * through the REST API and the key-value endpoints the hosts print.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { metadataKeyOf } from '../../src/core/backup-layout.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { KvClient, LifeboatClient } from '../support/process-api.ts';
import { Children, startHostProcess } from '../support/process-children.ts';
import { tempDir } from '../support/tmp.ts';

const A = { service: 'fabric:/AppA/Kv', partitioning: 'range:2' };
const B = { service: 'fabric:/AppB/Kv', partitioning: 'named:x,y,z' };

it('serves two hosts in their own processes: hierarchy, and backup and restore of a partition on each, concurrently', async (t) => {
  const children = new Children(t); // first, so its children die before the service closes
  const lb = await startTestLifeboat(t, { sample: false });
  const api = new LifeboatClient(lb.url);
  const [a, b] = await Promise.all([
    startHostProcess(children, { serviceUrl: lb.url, hostId: 'hostA', dataDir: tempDir(t), ...A }),
    startHostProcess(children, { serviceUrl: lb.url, hostId: 'hostB', dataDir: tempDir(t), ...B }),
  ]);
  assert.equal(a.info.host, 'hostA');
  assert.equal(a.info.service, A.service);
  assert.equal(a.info.partitions.length, 2);
  assert.equal(b.info.partitions.length, 3);

  // ---- the hierarchy shows both applications, their services and partitions ----
  assert.deepEqual((await api.applications()).map((x) => x.Name), ['fabric:/AppA', 'fabric:/AppB']);
  assert.deepEqual((await api.services('AppA')).map((s) => [s.Name, s.ServiceKind]), [[A.service, 'Stateful']]);
  assert.deepEqual((await api.services('AppB')).map((s) => [s.Name, s.ServiceKind]), [[B.service, 'Stateful']]);
  const partsA = await api.partitions('AppA~Kv');
  assert.deepEqual(partsA.map((p) => p.PartitionInformation.Id), a.info.partitions);
  assert.deepEqual(partsA.map((p) => p.PartitionInformation.ServicePartitionKind), ['Int64Range', 'Int64Range']);
  assert.equal(partsA[0]?.PartitionInformation.LowKey, '-9223372036854775808');
  assert.equal(partsA[1]?.PartitionInformation.HighKey, '9223372036854775807');
  const partsB = await api.partitions('AppB~Kv');
  assert.deepEqual(partsB.map((p) => p.PartitionInformation.Id), b.info.partitions);
  assert.deepEqual(partsB.map((p) => p.PartitionInformation.Name), ['x', 'y', 'z']);

  // ---- data through each host's own key-value endpoint ----
  const kvA = new KvClient(a.info.kv);
  const kvB = new KvClient(b.info.kv);
  const whereA = new Map<string, string>();
  const original = (i: number): string => `a${i}-${'v'.repeat(2000)}`;
  for (let i = 0; i < 120; i++) whereA.set(`a-key${i}`, await kvA.put(`a-key${i}`, original(i)));
  const pA = whereA.get('a-key0') as string;
  const inA = [...whereA].filter(([, p]) => p === pA).map(([k]) => k);
  const outsideA = [...whereA].filter(([, p]) => p !== pA).map(([k]) => k);
  assert.ok(inA.length > 10 && outsideA.length > 10, 'keys spread over both partitions of AppA');
  // A Named partition's key is its name.
  for (const name of ['x', 'y', 'z']) for (let v = 1; v <= 3; v++) await kvB.put(name, `${name}-v${v}`);
  const pB = b.info.partitions[1] as string;
  const lsnOf = async (kv: KvClient, id: string): Promise<string> => (await kv.partitions()).find((p) => p.PartitionId === id)?.Lsn ?? 'none';
  const lsnA = await lsnOf(kvA, pA);
  const lsnB = await lsnOf(kvB, pB);

  // ---- backups on both hosts at once ----
  const [ra, rb] = await Promise.all([api.backup(pA, lb.storage), api.backup(pB, lb.storage)]);
  assert.equal(ra.status, 202, ra.text);
  assert.equal(rb.status, 202, rb.text);
  const [doneA, doneB] = await Promise.all([api.backupDone(pA), api.backupDone(pB)]);
  assert.equal(doneA.BackupState, 'Success', JSON.stringify(doneA));
  assert.equal(doneB.BackupState, 'Success', JSON.stringify(doneB));
  assert.equal(doneA.LsnOfLastBackupRecord, lsnA);
  assert.equal(doneB.LsnOfLastBackupRecord, lsnB);
  for (const done of [doneA, doneB]) {
    assert.ok(existsSync(join(lb.share, done.BackupLocation)), `${done.BackupLocation} is in the share`);
    assert.ok(existsSync(join(lb.share, metadataKeyOf(done.BackupLocation))), `the metadata of ${done.BackupLocation} is in the share`);
  }
  assert.match(doneA.BackupLocation, new RegExp(`^AppA/Kv/${pA}/`));
  assert.match(doneB.BackupLocation, new RegExp(`^AppB/Kv/${pB}/`));
  const [listA, listB] = await Promise.all([api.backups(pA), api.backups(pB)]);
  assert.deepEqual(listA.map((x) => [x.BackupId, x.ApplicationName, x.ServiceName]), [[doneA.BackupId, 'fabric:/AppA', A.service]]);
  assert.deepEqual(listB.map((x) => [x.BackupId, x.ApplicationName, x.ServiceName, x.PartitionInformation.Name]), [[doneB.BackupId, 'fabric:/AppB', B.service, 'y']]);

  // ---- change both services after the backups ----
  for (const k of whereA.keys()) await kvA.put(k, 'changed');
  await kvA.delete('a-key0');
  const late = new Map<string, string>();
  for (let i = 0; i < 20; i++) late.set(`late${i}`, await kvA.put(`late${i}`, 'late'));
  for (const name of ['x', 'y', 'z']) await kvB.put(name, `${name}-after`);

  // ---- restores on both hosts at once ----
  const [sa, sb] = await Promise.all([
    api.restore(pA, listA[0] as { BackupId: string; BackupLocation: string }, lb.storage),
    api.restore(pB, listB[0] as { BackupId: string; BackupLocation: string }, lb.storage),
  ]);
  assert.equal(sa.status, 202, sa.text);
  assert.equal(sb.status, 202, sb.text);
  const [restA, restB] = await Promise.all([api.restoreDone(pA), api.restoreDone(pB)]);
  assert.equal(restA.RestoreState, 'Success', JSON.stringify(restA));
  assert.equal(restB.RestoreState, 'Success', JSON.stringify(restB));
  assert.equal(restA.RestoredLsn, lsnA);
  assert.equal(restB.RestoredLsn, lsnB);

  // The endpoints each host printed serve the restored partitions, and only those changed.
  for (const k of inA) assert.equal(await kvA.get(k), original(Number(k.slice('a-key'.length))), `${k} is restored`);
  for (const k of outsideA) assert.equal(await kvA.get(k), 'changed', `${k} (another partition) is untouched`);
  for (const [k, p] of late) assert.equal(await kvA.get(k), p === pA ? undefined : 'late', `${k} written after the backup`);
  assert.equal(await kvB.get('y'), 'y-v3');
  assert.equal(await kvB.get('x'), 'x-after');
  assert.equal(await kvB.get('z'), 'z-after');
  // The restored partitions took writes again.
  await kvA.put('a-key0', 'again');
  assert.equal(await kvA.get('a-key0'), 'again');
  await kvB.put('y', 'y-again');
  assert.equal(await kvB.get('y'), 'y-again');
  // Both hosts are still alive (a restore goes through data loss inside the host process).
  assert.ok(a.child.alive && b.child.alive);
});

it('goes on with one host when another is killed with SIGKILL; the killed host\'s order waits for it to return', async (t) => {
  const children = new Children(t);
  const lb = await startTestLifeboat(t, { sample: false });
  const api = new LifeboatClient(lb.url);
  const dirA = tempDir(t);
  const [a, b] = await Promise.all([
    startHostProcess(children, { serviceUrl: lb.url, hostId: 'hostA', dataDir: dirA, ...A }),
    startHostProcess(children, { serviceUrl: lb.url, hostId: 'hostB', dataDir: tempDir(t), ...B }),
  ]);
  await new KvClient(a.info.kv).put('before-kill', 'a');
  await new KvClient(b.info.kv).put('z', 'z1');

  const killed = await a.child.kill('SIGKILL');
  assert.equal(killed.signal, 'SIGKILL');
  await assert.rejects(fetch(`${a.info.kv}/kv`), 'the killed host no longer serves');

  // The service still lists the dead host's partitions, and takes a backup request for one; no
  // host carries it out, so it stays Accepted rather than pretending anything.
  const pA = a.info.partitions[0] as string;
  const deadReq = await api.backup(pA, lb.storage);
  assert.equal(deadReq.status, 202, deadReq.text);

  // The other host is unaffected: its backups go on.
  const pB = b.info.partitions[2] as string;
  for (let round = 0; round < 2; round++) {
    const r = await api.backup(pB, lb.storage);
    assert.equal(r.status, 202, r.text);
    const done = await api.backupDone(pB);
    assert.equal(done.BackupState, 'Success', JSON.stringify(done));
    assert.ok(existsSync(join(lb.share, done.BackupLocation)));
  }
  assert.equal((await api.backups(pB)).length, 2);
  assert.equal((await api.backupProgress(pA)).BackupState, 'Accepted');
  // A second request for the dead host's partition is refused while the first is pending.
  const again = await api.backup(pA, lb.storage);
  assert.equal(again.status, 409, again.text);

  // The host comes back (same id, same data): it registers again and carries the order out.
  const a2 = await startHostProcess(children, { serviceUrl: lb.url, hostId: 'hostA', dataDir: dirA, ...A });
  assert.deepEqual(a2.info.partitions, a.info.partitions, 'partition ids are kept in the host\'s data dir');
  const done = await api.backupDone(pA);
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
  assert.ok(existsSync(join(lb.share, done.BackupLocation)));
  assert.equal(await new KvClient(a2.info.kv).get('before-kill'), 'a');
});

it('hands a queued order to the host that takes a partition over from a killed host', async (t) => {
  const children = new Children(t);
  const lb = await startTestLifeboat(t, { sample: false });
  const api = new LifeboatClient(lb.url);
  const dirA = tempDir(t);
  const a = await startHostProcess(children, { serviceUrl: lb.url, hostId: 'hostA', dataDir: dirA, ...A });
  await new KvClient(a.info.kv).put('k', 'v');
  await a.child.kill('SIGKILL');
  const pid = a.info.partitions[0] as string;
  const r = await api.backup(pid, lb.storage);
  assert.equal(r.status, 202, r.text);

  // Another host (another id) opens the same data and registers the same partitions.
  const standby = await startHostProcess(children, { serviceUrl: lb.url, hostId: 'hostA-standby', dataDir: dirA, ...A });
  assert.deepEqual(standby.info.partitions, a.info.partitions);
  // It should get the order on its first polls; the service's redispatch delay (60 s) is for a
  // host that went quiet with the order, not for a new host of the partition.
  const done = await api.backupDone(pid, 20_000);
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
  assert.ok(existsSync(join(lb.share, done.BackupLocation)));
});

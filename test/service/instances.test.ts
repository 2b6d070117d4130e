/**
 * Several service instances on one catalog, in one process: two LifeboatServices over one catalog
 * behave as two instances do (nothing they share is in their memory, only in the catalog and its
 * signals). Orders go out once whichever instance a host polls, a host may move between
 * instances, a restart of it (a new incarnation) cuts what it carried out, a host that is down
 * fails its operations with a clear error, and leadership passes with a fence.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import type { TestContext } from 'node:test';
import type { Registration } from '../../src/core/host-protocol.ts';
import { isLifeboatError } from '../../src/core/errors.ts';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { LifeboatService } from '../../src/service/lifeboat-service.ts';
import { Leadership } from '../../src/service/leadership.ts';
import { openStorage } from '../../src/storage/open.ts';
import { tempDir } from '../support/tmp.ts';

const SERVICE = 'fabric:/Multi/Svc';
const HOST = 'h1';
const EPOCH = { DataLossVersion: '1', ConfigurationVersion: '1' };

class FakeClock {
  current = new Date('2026-03-01T10:00:00.000Z');
  now = (): Date => this.current;
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

function registration(partitionId: string, incarnation: string): Registration {
  return {
    Incarnation: incarnation,
    Services: [{ Name: SERVICE, Scheme: { kind: 'Singleton' }, HasPersistedState: true, Partitions: [{ Id: partitionId, Info: { kind: 'Singleton' }, Epoch: EPOCH, Lsn: '10' }] }],
  };
}

/** Two instances on one catalog; the wall clock (host liveness) is fake, so "down" needs no waiting. */
function instances(t: TestContext): { a: LifeboatService; b: LifeboatService; catalog: SqliteCatalog; wall: FakeClock; storage: { StorageKind: 'FileShare'; Path: string } } {
  const dir = tempDir(t);
  const root = join(dir, 'backups');
  mkdirSync(root);
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
  t.after(() => catalog.close());
  const wall = new FakeClock();
  const make = (): LifeboatService => {
    const s = new LifeboatService({ catalog, clock: wall, wallClock: wall, hostGraceMs: 30_000, openStorage: (d) => openStorage(d, { fileShareRoots: [root] }) });
    t.after(() => s.orders.wakeAll());
    return s;
  };
  return { a: make(), b: make(), catalog, wall, storage: { StorageKind: 'FileShare', Path: join(root, 'share') } };
}

it('hands an order out once, whichever instance the host polls, and wakes the host where it waits', async (t) => {
  const { a, b, storage } = instances(t);
  const pid = randomUUID();
  await a.hosts.register(HOST, registration(pid, 'inc-1'));
  // The host waits on B; the request arrives at A.
  const polled = b.hosts.pollOrders(HOST, 30_000);
  const op = await a.backups.backupPartition(pid, { BackupStorage: storage });
  const orders = await polled;
  assert.deepEqual(orders.map((o) => o.OperationId), [op.id]);
  assert.deepEqual(await a.hosts.pollOrders(HOST, 0), [], 'out already: not again on the other instance');
  // The same process moving to A: it carries on with what it has; nothing is cut or handed again.
  await a.hosts.register(HOST, registration(pid, 'inc-1'));
  assert.deepEqual(await a.hosts.pollOrders(HOST, 0), []);
  assert.equal((await b.backups.backupProgress(pid)).BackupState, 'Accepted');
  // A restart before it started: queued, handed out afresh.
  await a.hosts.register(HOST, registration(pid, 'inc-2'));
  assert.deepEqual((await b.hosts.pollOrders(HOST, 0)).map((o) => o.OperationId), [op.id]);
  // A restart while it ran: cut, saying why; both instances say the same.
  await b.hosts.report(HOST, { OperationId: op.id, State: 'InProgress' });
  await b.hosts.register(HOST, registration(pid, 'inc-3'));
  for (const s of [a, b]) {
    const p = await s.backups.backupProgress(pid);
    assert.equal(p.BackupState, 'Failure');
    assert.equal(p.FailureError?.Code, 'E_ABORT');
    assert.match(p.FailureError?.Message ?? '', /cut off: its host restarted/);
  }
});

it('one backup per partition across instances: of concurrent requests to both, exactly one is accepted', async (t) => {
  const { a, b, storage } = instances(t);
  const pid = randomUUID();
  await a.hosts.register(HOST, registration(pid, 'inc-1'));
  const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).backups.backupPartition(pid, { BackupStorage: storage })));
  assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
  for (const o of outcomes) if (o.status === 'rejected') assert.ok(isLifeboatError(o.reason, 'FABRIC_E_BACKUP_IN_PROGRESS'), String(o.reason));
});

it('a host unseen for the grace period is down: its operations fail, new ones are refused, health says so; back, it serves again', async (t) => {
  const { a, b, catalog, wall, storage } = instances(t);
  const pid = randomUUID();
  await a.hosts.register(HOST, registration(pid, 'inc-1'));
  await a.hosts.pollOrders(HOST, 0);
  const op = await b.backups.backupPartition(pid, { BackupStorage: storage });
  wall.advance(29_000);
  assert.equal(await a.orders.failOperationsOfDownHosts(), 0, 'within the grace period');
  wall.advance(2_000);
  assert.equal(await a.orders.failOperationsOfDownHosts(), 1);
  const p = await b.backups.backupProgress(pid);
  assert.equal(p.BackupState, 'Failure');
  assert.equal(p.FailureError?.Code, 'LIFEBOAT_E_HOST_LOST');
  assert.match(p.FailureError?.Message ?? '', new RegExp(`host ${HOST}.*not been seen since`));
  assert.equal((await catalog.operations.get(op.id))?.state, 'Failure');
  await assert.rejects(a.backups.backupPartition(pid, { BackupStorage: storage }), (err: unknown) => isLifeboatError(err, 'LIFEBOAT_E_HOST_LOST') && /unreachable/.test(err.message));
  const health = await b.health.partitionHealth(pid) as { AggregatedHealthState: string; HealthEvents: Array<{ Property: string; HealthState: string; Description: string }> };
  assert.equal(health.AggregatedHealthState, 'Error');
  assert.match(health.HealthEvents.find((e) => e.Property === 'Host')?.Description ?? '', /unreachable: host h1/);
  // The host comes back (a restart): it serves again, and health is clear of it.
  await b.hosts.register(HOST, registration(pid, 'inc-2'));
  assert.equal((await a.backups.backupPartition(pid, { BackupStorage: storage })).state, 'Accepted');
  const after = await a.health.partitionHealth(pid) as { HealthEvents: Array<{ Property: string }> };
  assert.equal(after.HealthEvents.some((e) => e.Property === 'Host'), false);
});

it('a partition moves to another host only when its host is not live on any instance', async (t) => {
  const { a, b, catalog, wall } = instances(t);
  const pid = randomUUID();
  await a.hosts.register(HOST, registration(pid, 'inc-1'));
  const polling = a.hosts.pollOrders(HOST, 2_000);
  await assert.rejects(b.hosts.register('h2', registration(pid, 'x')), (err: unknown) => isLifeboatError(err, 'E_ACCESSDENIED'), 'h1 polls on A: alive');
  await polling;
  wall.advance(6_000);
  await b.hosts.register('h2', registration(pid, 'x'));
  assert.equal((await catalog.hierarchy.getPartition(pid))?.hostId, 'h2');
});

it('leadership: one instance at a time; a paused leader is replaced and its writes are refused', async (t) => {
  const { a, catalog, storage } = instances(t);
  const pid = randomUUID();
  await a.hosts.register(HOST, registration(pid, 'inc-1'));
  const clock = new FakeClock();
  // Renewals are driven by the test (tryNow), not timers.
  const one = new Leadership({ leases: catalog.leases, holder: 'one', clock, ttlMs: 10_000, renewMs: 2_000 });
  const two = new Leadership({ leases: catalog.leases, holder: 'two', clock, ttlMs: 10_000, renewMs: 2_000 });
  t.after(() => Promise.all([one.stop(), two.stop()]));
  await one.tryNow();
  await two.tryNow();
  assert.equal(one.isLeader, true);
  assert.equal(two.isLeader, false);
  const oldTurn = one.turn();
  // One pauses: no renewal. It stops acting a renewal before its lease runs out, by its own clock.
  clock.advance(8_500);
  assert.equal(one.turn(), undefined);
  await two.tryNow();
  assert.equal(two.isLeader, false, 'the lease has not run out yet');
  clock.advance(1_600);
  await two.tryNow();
  assert.equal(two.isLeader, true);
  // What the paused leader started before it noticed carries its old fence: refused, nothing written.
  await assert.rejects(a.orders.accept((await catalog.hierarchy.getPartition(pid))!, 'PeriodicBackup', 10, { storage }, oldTurn?.fence), (err: unknown) => isLifeboatError(err, 'LIFEBOAT_E_NOT_LEADER'));
  assert.equal((await catalog.operations.active()).length, 0);
  await one.tryNow();
  assert.equal(one.isLeader, false, 'it finds it lost the lease');
  // Two gives it up (shutdown): one takes it at once, with a greater token.
  await two.stop();
  await one.tryNow();
  assert.equal(one.isLeader, true);
  assert.ok((one.turn()?.fence?.token ?? 0) > (oldTurn?.fence?.token ?? 0) + 1);
});

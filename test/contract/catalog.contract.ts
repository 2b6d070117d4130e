/**
 * The catalog contract (src/catalog/port.ts): every catalog adapter (SQLite today, PostgreSQL for
 * scale-out) runs this suite with a factory giving a fresh, empty catalog.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccessStore } from '../../src/catalog/access-port.ts';
import type { BackupKey, BackupRecord, Catalog, CatalogSignal, OperationRecord, PeriodicScheduleRecord, PolicyRecord } from '../../src/catalog/port.ts';
import { isLifeboatError } from '../../src/core/errors.ts';
import { parseBackupPolicy } from '../../src/core/policy.ts';
import { type BackupEntity, disableBackup, enableBackup, suspendBackup } from '../../src/core/protection.ts';

export interface CatalogContractOptions {
  readonly name: string;
  readonly create: (t: { after(fn: () => unknown): void }) => Promise<Catalog>;
  /** Opens the same catalog again (durability across restarts), when the adapter can. */
  readonly reopen?: (t: { after(fn: () => unknown): void }) => Promise<Catalog>;
  /** The adapter's access store (tokens, sign-in codes, the audit log), when it has one. */
  readonly access?: (c: Catalog) => AccessStore;
}

const notLeader = (err: unknown): boolean => isLifeboatError(err) && err.code === 'LIFEBOAT_E_NOT_LEADER';
const keyOf = (b: BackupRecord): BackupKey => [b.serviceName, b.partitionId, b.creationTimeUtc, b.backupId];

const P1 = '11111111-1111-4111-8111-111111111111';
const P2 = '22222222-2222-4222-8222-222222222222';
const epoch = { DataLossVersion: '1', ConfigurationVersion: '1' };

function operation(id: string, partitionId = P1, kind: 'Backup' | 'Restore' = 'Backup'): OperationRecord {
  return { id, kind, partitionId, state: 'Accepted', acceptedUtc: '2026-01-01T00:00:00.000Z', deadlineUtc: '2026-01-01T00:10:00.000Z', updatedUtc: '2026-01-01T00:00:00.000Z', request: { n: 1 }, result: {}, failure: undefined };
}

function backupRecord(id: string, partitionId: string, serviceName: string, creationTimeUtc: string): BackupRecord {
  return {
    backupId: id, backupChainId: id, parentBackupId: '', applicationName: serviceName.split('/').slice(0, 2).join('/'), serviceName, partitionId,
    partitionInfo: { kind: 'Singleton' }, backupLocation: `x/${id}.lbk`, backupType: 'Full', epoch, lsn: '5', creationTimeUtc, storageKey: 'FileShare:/s',
  };
}

async function seed(c: Catalog): Promise<void> {
  await c.hierarchy.upsertHost('h1', 'i1', '2026-01-01T00:00:00.000Z');
  await c.hierarchy.registerService('h1', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Named', names: ['x', 'y'] }, hasPersistedState: true }, [
    { id: P1, info: { kind: 'Named', name: 'x' }, epoch, lastLsn: '0' },
    { id: P2, info: { kind: 'Named', name: 'y' }, epoch, lastLsn: '0' },
  ]);
}

function policyRecord(name: string, uniqueId = `${name}-1`, path = '/s'): PolicyRecord {
  const policy = parseBackupPolicy({
    Name: name, AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 3, Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT10M' },
    Storage: { StorageKind: 'FileShare', Path: path, PrimaryUserName: 'u', PrimaryPassword: 'secret' },
  });
  return { name, policy, uniqueId, createdUtc: '2026-01-01T00:00:00.000Z', updatedUtc: '2026-01-01T00:00:00.000Z' };
}

const APP: BackupEntity = { kind: 'Application', applicationName: 'fabric:/A' };
const SVC: BackupEntity = { kind: 'Service', serviceName: 'fabric:/A/S' };
const PART1: BackupEntity = { kind: 'Partition', serviceName: 'fabric:/A/S', partitionId: P1 };

export function runCatalogContract(o: CatalogContractOptions): void {
  describe(`${o.name}: catalog contract`, () => {
    it('keeps services and their partitions in scheme order, and replaces them on re-registration', async (t) => {
      const c = await o.create(t);
      await seed(c);
      assert.deepEqual(await c.hierarchy.listApplications(), ['fabric:/A']);
      assert.deepEqual((await c.hierarchy.listPartitions('fabric:/A/S')).map((p) => p.id), [P1, P2]);
      assert.equal((await c.hierarchy.getPartition(P2))?.hostId, 'h1');
      await c.hierarchy.registerService('h2', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Singleton' }, hasPersistedState: true }, [
        { id: P2, info: { kind: 'Singleton' }, epoch: { DataLossVersion: '3', ConfigurationVersion: '1' }, lastLsn: '9' },
      ]);
      // h2 took P2 over; P1 is still h1's: one host's registration never drops another's partitions.
      const parts = await c.hierarchy.listPartitions('fabric:/A/S');
      assert.deepEqual(parts.map((p) => [p.id, p.hostId, p.lastLsn, p.epoch.DataLossVersion]), [[P1, 'h1', '0', '1'], [P2, 'h2', '9', '3']]);
      await c.hierarchy.registerService('h2', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Singleton' }, hasPersistedState: true }, []);
      assert.equal((await c.hierarchy.listPartitions('fabric:/A/S')).length, 1, 'h2 no longer serving P2 removes it, and only it');
      // h1 registering the service again without P1: the partition is gone.
      await c.hierarchy.registerService('h1', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Singleton' }, hasPersistedState: true }, [
        { id: P2, info: { kind: 'Singleton' }, epoch: { DataLossVersion: '3', ConfigurationVersion: '1' }, lastLsn: '9' },
      ]);
      assert.equal(await c.hierarchy.getPartition(P1), undefined);
      await c.hierarchy.registerService('h2', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Singleton' }, hasPersistedState: true }, [
        { id: P2, info: { kind: 'Singleton' }, epoch: { DataLossVersion: '3', ConfigurationVersion: '1' }, lastLsn: '9' },
      ]);
      await c.hierarchy.updatePartitionState(P2, { DataLossVersion: '4', ConfigurationVersion: '2' }, '12');
      assert.deepEqual((await c.hierarchy.getPartition(P2))?.epoch, { DataLossVersion: '4', ConfigurationVersion: '2' });
    });

    it('accepts one active operation per partition, even when asked at once', async (t) => {
      const c = await o.create(t);
      await seed(c);
      const results = await Promise.all(['a', 'b', 'c', 'd'].map((id) => c.operations.insert(operation(id))));
      assert.equal(results.filter((r) => r.inserted).length, 1);
      const loser = results.find((r) => !r.inserted);
      assert.ok(loser && !loser.inserted && ['a', 'b', 'c', 'd'].includes(loser.active.id));
      assert.equal((await c.operations.insert(operation('other-partition', P2))).inserted, true);
      assert.equal((await c.operations.active()).length, 2);
      assert.deepEqual((await c.operations.active('h1')).map((x) => x.partitionId).sort(), [P1, P2]);
    });

    it('updates an operation only while it is active', async (t) => {
      const c = await o.create(t);
      await seed(c);
      await c.operations.insert(operation('op1'));
      assert.equal(await c.operations.update('op1', { state: 'BackupInProgress', updatedUtc: '2026-01-01T00:00:01.000Z' }), true);
      assert.equal(await c.operations.update('op1', { state: 'Success', updatedUtc: '2026-01-01T00:00:02.000Z', result: { BackupId: 'b' } }), true);
      assert.equal(await c.operations.update('op1', { state: 'Failure', updatedUtc: '2026-01-01T00:00:03.000Z', failure: { Code: 'E_FAIL', Message: 'late' } }), false);
      const got = await c.operations.get('op1');
      assert.equal(got?.state, 'Success');
      assert.deepEqual(got?.result, { BackupId: 'b' });
      assert.equal(got?.failure, undefined);
      assert.equal((await c.operations.insert(operation('op2', P1, 'Restore'))).inserted, true, 'a finished operation no longer blocks');
      assert.equal((await c.operations.latest(P1, 'Backup'))?.id, 'op1');
      assert.equal((await c.operations.latest(P1, 'Restore'))?.id, 'op2');
      assert.equal(await c.operations.latest(P2, 'Backup'), undefined);
    });

    it('reads the active operations\' ids, and many operations at once', async (t) => {
      const c = await o.create(t);
      await seed(c);
      assert.deepEqual(await c.operations.activeIds(), new Set());
      await c.operations.insert(operation('a1', P1));
      await c.operations.insert(operation('a2', P2));
      assert.equal(await c.operations.update('a1', { state: 'Success', updatedUtc: '2026-01-01T00:00:02.000Z', result: { BackupId: 'b' } }), true);
      assert.deepEqual(await c.operations.activeIds(), new Set(['a2']));
      const many = await c.operations.getMany(['a1', 'a2', 'missing']);
      assert.deepEqual([...many.keys()].sort(), ['a1', 'a2']);
      assert.deepEqual(many.get('a1'), await c.operations.get('a1'));
      assert.deepEqual(many.get('a2'), await c.operations.get('a2'));
      assert.deepEqual(await c.operations.getMany([]), new Map());
    });

    it('merges an operation\'s result key by key', async (t) => {
      const c = await o.create(t);
      await seed(c);
      await c.operations.insert(operation('op1'));
      assert.equal(await c.operations.update('op1', { state: 'BackupInProgress', updatedUtc: '2026-01-01T00:00:01.000Z', result: { BytesTransferred: 5, TotalBytes: 9 } }), true);
      assert.equal(await c.operations.update('op1', { state: 'Success', updatedUtc: '2026-01-01T00:00:02.000Z', result: { BackupId: 'b', BytesTransferred: 9 } }), true);
      assert.deepEqual((await c.operations.get('op1'))?.result, { BytesTransferred: 9, TotalBytes: 9, BackupId: 'b' });
    });

    it('ends an operation with its host\'s report in one write, or writes nothing', async (t) => {
      const c = await o.create(t);
      await seed(c);
      // A service whose application is not its name's: the index takes the service's record.
      const P3 = '33333333-3333-4333-8333-333333333333';
      await c.hierarchy.registerService('h1', { name: 'fabric:/Shop/Cart', application: 'fabric:/Store', scheme: { kind: 'Singleton' }, hasPersistedState: true }, [
        { id: P3, info: { kind: 'Singleton' }, epoch, lastLsn: '0' },
      ]);
      const made = (id: string, partitionId: string, serviceName: string): Omit<BackupRecord, 'applicationName'> => {
        const { applicationName: _, ...rest } = backupRecord(id, partitionId, serviceName, '2026-01-05T00:00:00.000Z');
        return rest;
      };
      const later = { DataLossVersion: '2', ConfigurationVersion: '7' };
      await c.operations.insert(operation('op3', P3));
      assert.equal(await c.operations.update('op3', { state: 'BackupInProgress', updatedUtc: '2026-01-01T00:00:01.000Z', result: { TotalBytes: 9 } }), true);
      const success = { state: 'Success' as const, updatedUtc: '2026-01-01T00:00:02.000Z', result: { BackupId: 'b3' } };
      assert.equal(await c.operations.end('op3', success, { partitionState: { epoch: later, lastLsn: '42' }, backup: made('b3', P3, 'fabric:/Shop/Cart') }), 'ended');
      const op3 = await c.operations.get('op3');
      assert.equal(op3?.state, 'Success');
      assert.deepEqual(op3?.result, { TotalBytes: 9, BackupId: 'b3' });
      assert.deepEqual(await c.backups.get('b3'), { ...made('b3', P3, 'fabric:/Shop/Cart'), applicationName: 'fabric:/Store' });
      const p3 = await c.hierarchy.getPartition(P3);
      assert.deepEqual([p3?.epoch, p3?.lastLsn], [later, '42']);

      // Ended already: nothing more is written.
      assert.equal(await c.operations.end('op3', { ...success, state: 'Failure', failure: { Code: 'E_FAIL', Message: 'late' } }, {
        partitionState: { epoch, lastLsn: '43' }, backup: made('b-late', P3, 'fabric:/Shop/Cart'),
      }), 'not-active');
      assert.equal((await c.operations.get('op3'))?.state, 'Success');
      assert.equal(await c.backups.get('b-late'), undefined);
      assert.equal((await c.hierarchy.getPartition(P3))?.lastLsn, '42');

      // Another partition's backup id: refused whole — the operation stays active, the row and the partition as they were.
      await c.operations.insert(operation('op2', P2));
      assert.equal(await c.operations.end('op2', success, { partitionState: { epoch: later, lastLsn: '9' }, backup: made('b3', P2, 'fabric:/A/S') }), 'foreign-backup');
      assert.equal((await c.operations.get('op2'))?.state, 'Accepted');
      assert.equal((await c.backups.get('b3'))?.partitionId, P3);
      assert.equal((await c.hierarchy.getPartition(P2))?.lastLsn, '0');

      // A failure with the partition's state and no backup; then the partition's own id again, replaced.
      assert.equal(await c.operations.end('op2', { state: 'Failure', updatedUtc: '2026-01-01T00:00:03.000Z', failure: { Code: 'E_FAIL', Message: 'disk' } }, {
        partitionState: { epoch: later, lastLsn: '9' },
      }), 'ended');
      assert.deepEqual((await c.operations.get('op2'))?.failure, { Code: 'E_FAIL', Message: 'disk' });
      assert.equal((await c.hierarchy.getPartition(P2))?.lastLsn, '9');
      await c.operations.insert(operation('op3b', P3));
      assert.equal(await c.operations.end('op3b', success, { backup: { ...made('b3', P3, 'fabric:/Shop/Cart'), lsn: '50' } }), 'ended');
      assert.equal((await c.backups.get('b3'))?.lsn, '50');
      assert.equal((await c.hierarchy.getPartition(P3))?.lastLsn, '42', 'no state reported: the partition\'s is kept');

      // Racing ends (a report and the deadline): exactly one is written.
      for (const n of [1, 2, 3]) {
        await c.operations.insert(operation(`race${n}`, P2));
        const [report, deadline] = await Promise.all([
          c.operations.end(`race${n}`, success, { backup: made(`b-race${n}`, P2, 'fabric:/A/S') }),
          c.operations.update(`race${n}`, { state: 'Timeout', updatedUtc: '2026-01-01T00:00:04.000Z', failure: { Code: 'FABRIC_E_TIMEOUT', Message: 't' } }),
        ]);
        assert.equal([report === 'ended', deadline].filter(Boolean).length, 1, `race ${n}: ${report} / ${deadline}`);
        assert.equal((await c.backups.get(`b-race${n}`)) !== undefined, report === 'ended');
      }

      // A service with no record: the service name's application.
      await c.operations.insert(operation('op1', P1));
      assert.equal(await c.operations.end('op1', success, { backup: made('b-gone', P1, 'fabric:/Gone/S') }), 'ended');
      assert.equal((await c.backups.get('b-gone'))?.applicationName, 'fabric:/Gone');
    });

    it('indexes backups, filtered by entity and time, in a stable order', async (t) => {
      const c = await o.create(t);
      await c.backups.insert(backupRecord('b3', P2, 'fabric:/A/S', '2026-01-03T00:00:00.000Z'));
      await c.backups.insert(backupRecord('b1', P1, 'fabric:/A/S', '2026-01-01T00:00:00.000Z'));
      await c.backups.insert(backupRecord('b2', P1, 'fabric:/A/S', '2026-01-02T00:00:00.000Z'));
      await c.backups.insert(backupRecord('b4', P1, 'fabric:/B/T', '2026-01-04T00:00:00.000Z'));
      assert.deepEqual((await c.backups.list({ applicationName: 'fabric:/A' })).map((b) => b.backupId), ['b1', 'b2', 'b3']);
      assert.deepEqual((await c.backups.list({ partitionId: P1 })).map((b) => b.backupId), ['b1', 'b2', 'b4']);
      assert.deepEqual((await c.backups.list({ serviceName: 'fabric:/A/S', startUtc: '2026-01-02T00:00:00.000Z', endUtc: '2026-01-02T23:00:00.000Z' })).map((b) => b.backupId), ['b2']);
      assert.deepEqual(await c.backups.get('b3'), backupRecord('b3', P2, 'fabric:/A/S', '2026-01-03T00:00:00.000Z'));
    });

    it('keeps policies by name, secrets included, and refuses a duplicate name atomically', async (t) => {
      const c = await o.create(t);
      const results = await Promise.all([1, 2, 3].map((i) => c.policies.insert(policyRecord('P', `u${i}`))));
      assert.equal(results.filter(Boolean).length, 1, 'exactly one create of a name succeeds');
      assert.equal(await c.policies.insert(policyRecord('A')), true);
      assert.deepEqual((await c.policies.list()).map((p) => p.name), ['A', 'P']);
      const got = await c.policies.get('A');
      assert.deepEqual(got, policyRecord('A'));
      assert.equal(got?.policy.storage.StorageKind === 'FileShare' ? got.policy.storage.PrimaryPassword : '', 'secret');
      assert.equal(await c.policies.get('Nope'), undefined);
      const updated = { ...policyRecord('A', 'A-2', '/t'), updatedUtc: '2026-01-02T00:00:00.000Z' };
      assert.equal(await c.policies.update(updated), true);
      const after = await c.policies.get('A');
      assert.equal(after?.uniqueId, 'A-2');
      assert.equal(after?.createdUtc, '2026-01-01T00:00:00.000Z', 'created time is kept');
      assert.equal(after?.updatedUtc, '2026-01-02T00:00:00.000Z');
      assert.equal(after?.policy.storage.StorageKind === 'FileShare' ? after.policy.storage.Path : '', '/t');
      assert.equal(await c.policies.update({ ...updated, name: 'Nope' }), false);
      assert.equal(await c.policies.get('Nope'), undefined, 'an update never creates');
    });

    it('changes protection in one transaction, and writes nothing on a refusal', async (t) => {
      const c = await o.create(t);
      await seed(c);
      await c.policies.insert(policyRecord('P'));
      await c.policies.insert(policyRecord('Q'));
      assert.equal((await c.policies.getProtection()).mappings.size, 0);
      const refused = await c.policies.changeProtection((s, names) => enableBackup(s, APP, 'Nope', names));
      assert.equal(refused.ok, false);
      assert.equal(!refused.ok && refused.code, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING');
      assert.equal((await c.policies.changeProtection((s, names) => enableBackup(s, APP, 'P', names))).ok, true);
      assert.equal((await c.policies.changeProtection((s, names) => enableBackup(s, PART1, 'Q', names))).ok, true);
      assert.equal((await c.policies.changeProtection((s) => suspendBackup(s, SVC))).ok, true);
      let st = await c.policies.getProtection();
      assert.deepEqual([...st.mappings.entries()].map(([k, m]) => [k, m.policyName]).sort(), [[P1, 'Q'], ['fabric:/A', 'P']]);
      assert.deepEqual(st.mappings.get(P1)?.entity, PART1);
      assert.deepEqual([...st.suspensions.values()], [SVC]);
      // Concurrent enables of different entities: none is lost.
      await Promise.all([
        c.policies.changeProtection((s, names) => enableBackup(s, SVC, 'Q', names)),
        c.policies.changeProtection((s, names) => enableBackup(s, { kind: 'Partition', serviceName: 'fabric:/A/S', partitionId: P2 }, 'P', names)),
      ]);
      assert.equal((await c.policies.getProtection()).mappings.size, 4);
      const disabled = await c.policies.changeProtection((s) => disableBackup(s, APP));
      assert.equal(disabled.ok, true);
      const again = await c.policies.changeProtection((s) => disableBackup(s, APP));
      assert.equal(!again.ok && again.code, 'FABRIC_E_BACKUP_NOT_ENABLED');
      st = await c.policies.getProtection();
      assert.equal(st.mappings.has('fabric:/A'), false);
      assert.equal(st.mappings.size, 3);
    });

    it('deletes a policy only while no existing entity uses it', async (t) => {
      const c = await o.create(t);
      await seed(c);
      await c.policies.insert(policyRecord('P'));
      await c.policies.insert(policyRecord('Q'));
      const missing = await c.policies.delete('Nope');
      assert.equal(!missing.ok && missing.code, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING');
      await c.policies.changeProtection((s, names) => enableBackup(s, SVC, 'P', names));
      await c.policies.changeProtection((s) => suspendBackup(s, SVC));
      // A mapping on a partition that does not exist (any more) does not block the delete.
      const gone: BackupEntity = { kind: 'Partition', serviceName: 'fabric:/A/S', partitionId: '33333333-3333-4333-8333-333333333333' };
      await c.policies.changeProtection((s, names) => enableBackup(s, gone, 'Q', names));
      await c.policies.changeProtection((s) => suspendBackup(s, gone));
      const blocked = await c.policies.delete('P');
      assert.equal(!blocked.ok && blocked.code, 'FABRIC_E_BACKUP_IS_ENABLED');
      assert.ok(await c.policies.get('P'), 'still there');
      const q = await c.policies.delete('Q');
      assert.equal(q.ok, true);
      assert.equal(q.ok && q.removedMappings.length, 1);
      assert.deepEqual(q.ok && q.removedSuspensions, [gone]);
      assert.equal(await c.policies.get('Q'), undefined);
      assert.equal((await c.policies.getProtection()).suspensions.size, 1, 'the suspension under the deleted policy went with it');
      await c.policies.changeProtection((s) => disableBackup(s, SVC));
      const p = await c.policies.delete('P');
      assert.equal(p.ok, true);
      const st = await c.policies.getProtection();
      assert.equal(st.mappings.size, 0);
      assert.deepEqual([...st.suspensions.values()], [SVC], 'a suspension under no policy stays (as Service Fabric keeps it)');
      assert.deepEqual(await c.policies.list(), []);
    });

    it('removes a backup from the index', async (t) => {
      const c = await o.create(t);
      await c.backups.insert(backupRecord('b1', P1, 'fabric:/A/S', '2026-01-01T00:00:00.000Z'));
      await c.backups.delete('b1');
      await c.backups.delete('b1');
      assert.equal(await c.backups.get('b1'), undefined);
    });

    it('finds the newest ended operation of given kinds, skipping active ones', async (t) => {
      const c = await o.create(t);
      await seed(c);
      assert.equal(await c.operations.latestEnded(P1, ['Backup', 'PeriodicBackup']), undefined);
      await c.operations.insert({ ...operation('b1'), kind: 'Backup' });
      await c.operations.update('b1', { state: 'Success', updatedUtc: '2026-01-01T00:01:00.000Z' });
      await c.operations.insert({ ...operation('p1'), kind: 'PeriodicBackup' });
      await c.operations.update('p1', { state: 'Failure', updatedUtc: '2026-01-01T00:02:00.000Z', failure: { Code: 'E_FAIL', Message: 'x' } });
      await c.operations.insert({ ...operation('b2'), kind: 'Backup' }); // still Accepted
      assert.equal((await c.operations.latestEnded(P1, ['Backup', 'PeriodicBackup']))?.id, 'p1');
      assert.equal((await c.operations.latestEnded(P1, ['Backup']))?.id, 'b1');
      assert.equal(await c.operations.latestEnded(P1, ['Restore']), undefined);
      assert.equal(await c.operations.latestEnded(P1, []), undefined);
      // latest of many partitions in one read: those that have one.
      await c.operations.insert({ ...operation('r2', P2), kind: 'Restore' });
      const backups = await c.operations.latestOf([P1, P2, 'nowhere'], 'Backup');
      assert.deepEqual([...backups].map(([p, x]) => [p, x.id]).sort(), [[P1, 'b2']]);
      assert.deepEqual(backups.get(P1), await c.operations.latest(P1, 'Backup'), 'the same record as latest');
      assert.deepEqual([...(await c.operations.latestOf([P1, P2], 'Restore'))].map(([p, x]) => [p, x.id]), [[P2, 'r2']]);
      assert.equal((await c.operations.latestOf([], 'Backup')).size, 0);
    });

    it('keeps the scheduler\'s state per partition, replacing it whole', async (t) => {
      const c = await o.create(t);
      assert.equal(await c.schedules.getPeriodic(P1), undefined);
      const first = { partitionId: P1, active: true, policyName: 'P', policyUniqueId: 'u1', policyAppliedUtc: '2026-01-01T00:00:00.000Z', chainCounter: 0, consecutiveFailures: 0, forceFull: 'PolicyChanged' };
      await c.schedules.putPeriodic([first], '2026-01-01T00:00:00.000Z');
      assert.deepEqual(await c.schedules.getPeriodic(P1), first);
      const second = {
        partitionId: P1, active: true, policyName: 'P', policyUniqueId: 'u1', policyAppliedUtc: '2026-01-01T00:00:00.000Z', chainCounter: 1, consecutiveFailures: 0,
        pending: { operationId: 'op', option: 'Incremental' as const, chainCounterAfter: 2, scheduledUtc: '2026-01-01T00:01:00.000Z' },
      };
      await c.schedules.putPeriodic([second], '2026-01-01T00:01:00.000Z');
      assert.deepEqual(await c.schedules.getPeriodic(P1), second, 'replaced whole: forceFull is gone');
      assert.equal(await c.schedules.getPeriodic(P2), undefined);
      assert.deepEqual(await c.schedules.listPeriodic(), [second]);
      // Many at once; of two for one partition, the last.
      const third = { ...second, chainCounter: 2, pending: undefined };
      const other = { ...first, partitionId: P2 };
      await c.schedules.putPeriodic([{ ...third, chainCounter: 9 }, other, third], '2026-01-01T00:02:00.000Z');
      assert.deepEqual((await c.schedules.listPeriodic()).map((r) => [r.partitionId, r.chainCounter]), [[P1, 2], [P2, 0]]);
      await c.schedules.putPeriodic([], '2026-01-01T00:03:00.000Z');
      assert.equal((await c.schedules.listPeriodic()).length, 2);
    });

    it('keeps the retention sweeper\'s state per partition, with the backup being deleted', async (t) => {
      const c = await o.create(t);
      assert.equal(await c.schedules.getRetention(P1), undefined);
      const deleting = {
        storageKey: 'FileShare:/x', backupId: 'b1', backupChainId: 'b1', parentBackupId: '', backupType: 'Full' as const,
        creationUtc: '2026-01-01T00:00:00.000Z', metadataKey: 'A/S/p/x.bkmetadata', dataKey: 'A/S/p/x.lbk',
      };
      await c.schedules.putRetention({ partitionId: P1, policyUniqueId: 'u1', consecutiveFailures: 0, deleting }, '2026-01-02T00:00:00.000Z');
      assert.deepEqual((await c.schedules.getRetention(P1))?.deleting, deleting);
      await c.schedules.putRetention({ partitionId: P1, policyUniqueId: 'u1', consecutiveFailures: 0, lastRunUtc: '2026-01-02T00:00:00.000Z' }, '2026-01-02T00:00:00.000Z');
      const after = await c.schedules.getRetention(P1);
      assert.equal(after?.deleting, undefined);
      assert.equal(after?.lastRunUtc, '2026-01-02T00:00:00.000Z');
      assert.equal(await c.schedules.getRetention(P2), undefined);
    });

    it('keeps a SkipAutoRestore request until it is taken, once', async (t) => {
      const c = await o.create(t);
      await seed(c);
      assert.equal(await c.hierarchy.takeSkipAutoRestore(P1), undefined);
      await c.hierarchy.setSkipAutoRestore(P1, '2026-01-01T00:10:00.000Z');
      assert.equal(await c.hierarchy.takeSkipAutoRestore(P2), undefined, 'another partition has none');
      assert.equal(await c.hierarchy.takeSkipAutoRestore(P1), '2026-01-01T00:10:00.000Z');
      assert.equal(await c.hierarchy.takeSkipAutoRestore(P1), undefined, 'taken once');
    });

    it('records host incarnations and sightings', async (t) => {
      const c = await o.create(t);
      assert.deepEqual(await c.hierarchy.upsertHost('h1', 'i1', '2026-01-01T00:00:00.000Z'), { previousIncarnation: undefined });
      await c.hierarchy.hostSeen('h1', 'poll-started', '2026-01-01T00:00:05.000Z');
      let h = await c.hierarchy.getHost('h1');
      assert.deepEqual([h?.lastSeenUtc, h?.polling, h?.hungUp, h?.incarnation, h?.registeredUtc], ['2026-01-01T00:00:05.000Z', true, false, 'i1', '2026-01-01T00:00:00.000Z']);
      await c.hierarchy.hostSeen('h1', 'hung-up', '2026-01-01T00:00:06.000Z');
      h = await c.hierarchy.getHost('h1');
      assert.deepEqual([h?.polling, h?.hungUp], [false, true]);
      await c.hierarchy.hostSeen('h1', 'poll-ended', '2026-01-01T00:00:07.000Z');
      h = await c.hierarchy.getHost('h1');
      assert.deepEqual([h?.lastSeenUtc, h?.polling, h?.hungUp], ['2026-01-01T00:00:07.000Z', false, false]);
      // A new registration: the incarnation before it comes back; the flags start afresh.
      assert.deepEqual(await c.hierarchy.upsertHost('h1', 'i2', '2026-01-01T00:01:00.000Z'), { previousIncarnation: 'i1' });
      h = await c.hierarchy.getHost('h1');
      assert.deepEqual([h?.incarnation, h?.polling, h?.hungUp, h?.registeredUtc], ['i2', false, false, '2026-01-01T00:00:00.000Z']);
      await c.hierarchy.hostSeen('nobody', 'poll-started', '2026-01-01T00:01:00.000Z');
      assert.equal(await c.hierarchy.getHost('nobody'), undefined, 'a sighting of an unknown host registers nothing');
      await c.hierarchy.upsertHost('a0', 'x', '2026-01-01T00:01:00.000Z');
      assert.deepEqual((await c.hierarchy.listHosts()).map((x) => x.id), ['a0', 'h1']);
    });

    it('hands an order out once per host, again to another host or after it went quiet, never once ended', async (t) => {
      const c = await o.create(t);
      await seed(c);
      await c.operations.insert(operation('op1'));
      await c.operations.insert(operation('op2', P2));
      const at = (s: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
      const ids = (ops: readonly OperationRecord[]): string[] => ops.map((x) => x.id);
      const claimed = await c.operations.claimOrders('h1', at(0), at(-60));
      assert.deepEqual(ids(claimed), ['op1', 'op2'], 'the host\'s orders, oldest first');
      assert.deepEqual(claimed[0]?.request, { n: 1 }, 'whole records');
      assert.deepEqual(ids(await c.operations.claimOrders('h1', at(1), at(-59))), [], 'out to h1 already');
      assert.deepEqual(ids(await c.operations.claimOrders('h2', at(1), at(-59))), [], 'another host\'s partitions are not its orders');
      assert.deepEqual(ids(await c.operations.claimOrders('h1', at(61), at(1))), ['op1', 'op2'], 'handed before the quiet limit: again');
      // P2 moves to h2: its order goes there at once.
      await c.hierarchy.upsertHost('h2', 'j1', at(62));
      await c.hierarchy.registerService('h2', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Named', names: ['x', 'y'] }, hasPersistedState: true }, [
        { id: P2, info: { kind: 'Named', name: 'y' }, epoch, lastLsn: '0' },
      ]);
      assert.deepEqual(ids(await c.operations.claimOrders('h2', at(62), at(2))), ['op2'], 'a partition that moved: at once to its new host');
      await c.operations.releaseOrders('h2');
      assert.deepEqual(ids(await c.operations.claimOrders('h2', at(63), at(3))), ['op2'], 'released: handed again');
      // Claims at once: exactly one wins.
      await c.operations.releaseOrders('h2');
      const claims = await Promise.all(Array.from({ length: 8 }, () => c.operations.claimOrders('h2', at(64), at(4))));
      assert.deepEqual(claims.flat().map((x) => x.id), ['op2']);
      await c.operations.update('op2', { state: 'Success', updatedUtc: at(70) });
      await c.operations.releaseOrders('h2');
      assert.deepEqual(ids(await c.operations.claimOrders('h2', at(71), at(11))), [], 'an ended operation is never handed out');
    });

    it('pages the backup index by key, with Latest and filters, the same as the whole list', async (t) => {
      const c = await o.create(t);
      const rows: BackupRecord[] = [];
      // Two services, three partitions, backups at equal and different times, ids out of order.
      const parts: Array<[string, string]> = [['fabric:/A/S', P1], ['fabric:/A/S', P2], ['fabric:/A/T', '33333333-3333-4333-8333-333333333333']];
      let n = 0;
      for (const [svc, pid] of parts) {
        for (let i = 0; i < 7; i++) {
          const id = `${(97 - n++).toString().padStart(3, '0')}-${pid.slice(0, 4)}`;
          rows.push(backupRecord(id, pid, svc, new Date(Date.UTC(2026, 0, 1, i < 2 ? 0 : i)).toISOString()));
        }
      }
      for (const b of [...rows].reverse()) await c.backups.insert(b);
      const all = await c.backups.list({});
      assert.equal(await c.backups.count(), 21);
      const byKey = [...rows].sort((a, b) => (keyOf(a).join('\u0000') < keyOf(b).join('\u0000') ? -1 : 1));
      assert.deepEqual(all.map((b) => b.backupId), byKey.map((b) => b.backupId));
      for (const filter of [{}, { serviceName: 'fabric:/A/S' }, { partitionId: P2 }, { applicationName: 'fabric:/A', startUtc: '2026-01-01T03:00:00.000Z', endUtc: '2026-01-01T05:00:00.000Z' }]) {
        for (const latest of [false, true]) {
          const whole = await c.backups.page(filter, { limit: 0, latest });
          const pages: BackupRecord[] = [];
          let after: BackupKey | undefined;
          for (;;) {
            const p = await c.backups.page(filter, { after, limit: 4, latest });
            assert.ok(p.length <= 4);
            pages.push(...p);
            if (p.length < 4) break;
            after = keyOf(p[p.length - 1] as BackupRecord);
          }
          assert.deepEqual(pages.map((b) => b.backupId), whole.map((b) => b.backupId), JSON.stringify({ filter, latest }));
          if (!latest) assert.deepEqual(whole.map((b) => b.backupId), (await c.backups.list(filter)).map((b) => b.backupId));
        }
      }
      const latest = await c.backups.page({}, { limit: 0, latest: true });
      assert.deepEqual(latest.map((b) => [b.partitionId, b.creationTimeUtc]), parts.map(([, pid]) => [pid, '2026-01-01T06:00:00.000Z']));
      // Ties at one moment: the greatest id is the newest.
      const tied = await c.backups.page({ partitionId: P1, endUtc: '2026-01-01T00:00:00.000Z' }, { limit: 0, latest: true });
      const tiedIds = rows.filter((b) => b.partitionId === P1 && b.creationTimeUtc === '2026-01-01T00:00:00.000Z').map((b) => b.backupId).sort();
      assert.deepEqual(tied.map((b) => b.backupId), [tiedIds[tiedIds.length - 1]]);
    });

    it('orders text by its bytes, whatever the locale', async (t) => {
      const c = await o.create(t);
      for (const [i, svc] of ['fabric:/A/b', 'fabric:/A/B', 'fabric:/A/_x', 'fabric:/A/a-b', 'fabric:/A/ab'].entries()) {
        await c.backups.insert(backupRecord(`b${i}`, P1, svc, '2026-01-01T00:00:00.000Z'));
      }
      assert.deepEqual((await c.backups.list({})).map((b) => b.serviceName), ['fabric:/A/B', 'fabric:/A/_x', 'fabric:/A/a-b', 'fabric:/A/ab', 'fabric:/A/b']);
    });

    it('gives a lease to one holder at a time, with a token that grows on every taking', async (t) => {
      const c = await o.create(t);
      const at = (s: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
      assert.equal(await c.leases.get('leader'), undefined);
      const a1 = await c.leases.acquire('leader', 'A', at(0), at(10));
      assert.deepEqual(a1, { name: 'leader', holder: 'A', token: 1, untilUtc: at(10) });
      assert.equal(await c.leases.acquire('leader', 'B', at(5), at(15)), undefined, 'held by A');
      assert.deepEqual(await c.leases.acquire('leader', 'A', at(5), at(15)), { name: 'leader', holder: 'A', token: 1, untilUtc: at(15) }, 'a renewal keeps the token');
      const b = await c.leases.acquire('leader', 'B', at(15), at(25));
      assert.deepEqual(b, { name: 'leader', holder: 'B', token: 2, untilUtc: at(25) }, 'expired: B takes it with a greater token');
      assert.equal(await c.leases.acquire('leader', 'A', at(16), at(26)), undefined);
      await c.leases.release('leader', 'A'); // not A's: nothing
      assert.equal((await c.leases.get('leader'))?.holder, 'B');
      await c.leases.release('leader', 'B');
      const a2 = await c.leases.acquire('leader', 'A', at(17), at(27));
      assert.equal(a2?.token, 3, 'released: taken at once, and the token still grows');
      // B's late writes with its old token are refused, and write nothing.
      await seed(c);
      const fenceB = { lease: 'leader', holder: 'B', token: 2 };
      await assert.rejects(c.operations.insert(operation('late'), fenceB), notLeader);
      assert.equal(await c.operations.get('late'), undefined);
      await assert.rejects(c.schedules.putPeriodic([{ partitionId: P1, active: true, policyName: 'P', policyUniqueId: 'u', policyAppliedUtc: at(0), chainCounter: 0, consecutiveFailures: 0 }], at(18), fenceB), notLeader);
      assert.equal(await c.schedules.getPeriodic(P1), undefined);
      await assert.rejects(c.schedules.putRetention({ partitionId: P1, policyUniqueId: 'u', consecutiveFailures: 0 }, at(18), fenceB), notLeader);
      assert.equal(await c.schedules.getRetention(P1), undefined);
      // A's current token writes.
      const fenceA = { lease: 'leader', holder: 'A', token: 3 };
      assert.deepEqual(await c.operations.insert(operation('ok'), fenceA), { inserted: true });
      await c.schedules.putPeriodic([{ partitionId: P1, active: true, policyName: 'P', policyUniqueId: 'u', policyAppliedUtc: at(0), chainCounter: 0, consecutiveFailures: 0 }], at(18), fenceA);
      assert.equal((await c.schedules.getPeriodic(P1))?.policyName, 'P');
      // Over an existing row too: the old token changes nothing, the current one does.
      const q = (partitionId: string): PeriodicScheduleRecord => ({ partitionId, active: true, policyName: 'Q', policyUniqueId: 'u', policyAppliedUtc: at(0), chainCounter: 0, consecutiveFailures: 0 });
      await assert.rejects(c.schedules.putPeriodic([q(P1), q(P2)], at(19), fenceB), notLeader);
      assert.equal((await c.schedules.getPeriodic(P1))?.policyName, 'P');
      assert.equal(await c.schedules.getPeriodic(P2), undefined, 'none of a refused batch is written');
      await assert.rejects(c.schedules.putPeriodic([], at(19), fenceB), notLeader);
      // Many operations at once: a stale fence inserts none; the current one each partition without one.
      await assert.rejects(c.operations.insertMany([operation('m1', P2)], fenceB), notLeader);
      assert.equal(await c.operations.get('m1'), undefined);
      assert.deepEqual(await c.operations.insertMany([operation('m1', P2), operation('m2', P1), operation('m3', P2)], fenceA), new Set(['m1']), 'P1 has one; the second of P2 waits');
      assert.deepEqual(await c.operations.insertMany([operation('m4', P2)], fenceA), new Set(), 'all busy: none, and no refusal');
      await assert.rejects(c.operations.insertMany([operation('m5', P2)], fenceB), notLeader);
      // A fenced insert with an operation in the way: that one comes back; with a stale fence, the refusal.
      const inTheWay = await c.operations.insert(operation('second'), fenceA);
      assert.equal(inTheWay.inserted ? undefined : inTheWay.active.id, 'ok');
      await assert.rejects(c.operations.insert(operation('second'), fenceB), notLeader);
      // Many at once: one holder.
      const racers = await Promise.all(['C', 'D', 'E', 'F'].map((h) => c.leases.acquire('other', h, at(0), at(10))));
      assert.equal(racers.filter((r) => r !== undefined).length, 1);
    });

    it('sends signals to every subscriber, and stops on unsubscribe', async (t) => {
      const c = await o.create(t);
      const got: CatalogSignal[] = [];
      const got2: CatalogSignal[] = [];
      const off = c.signals.subscribe((s) => got.push(s));
      const off2 = c.signals.subscribe((s) => got2.push(s));
      await c.signals.publish({ kind: 'orders', hostId: 'h1' });
      await c.signals.publish({ kind: 'ended', operationId: 'op1' });
      const deadline = Date.now() + 5000;
      while ((got.length < 2 || got2.length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got, [{ kind: 'orders', hostId: 'h1' }, { kind: 'ended', operationId: 'op1' }]);
      assert.deepEqual(got2, got);
      off();
      await c.signals.publish({ kind: 'protection' });
      const until = Date.now() + 5000;
      while (got2.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got2.at(-1), { kind: 'protection' });
      assert.equal(got.length, 2, 'unsubscribed: no more');
      off2();
    });

    if (o.access) {
      const accessOf = o.access;
      it('takes a sign-in code once, and never after it expired', async (t) => {
        const c = await o.create(t);
        const a = accessOf(c);
        await a.insertSignInCode('h1', '2026-01-01T00:10:00.000Z');
        await a.insertSignInCode('h2', '2026-01-01T00:10:00.000Z');
        const takes = await Promise.all(Array.from({ length: 5 }, () => a.takeSignInCode('h1', '2026-01-01T00:05:00.000Z')));
        assert.equal(takes.filter(Boolean).length, 1, 'once');
        assert.equal(await a.takeSignInCode('h2', '2026-01-01T00:10:00.000Z'), false, 'expired at its moment');
        assert.equal(await a.takeSignInCode('h2', '2026-01-01T00:05:00.000Z'), false, 'and gone');
        assert.equal(await a.takeSignInCode('nope', '2026-01-01T00:05:00.000Z'), false);
      });
    }

    if (o.reopen) {
      it('keeps everything across a reopen', async (t) => {
        const c = await o.create(t);
        await seed(c);
        await c.operations.insert(operation('op1'));
        await c.backups.insert(backupRecord('b1', P1, 'fabric:/A/S', '2026-01-01T00:00:00.000Z'));
        await c.close();
        const again = await (o.reopen as NonNullable<typeof o.reopen>)(t);
        assert.equal((await again.operations.get('op1'))?.state, 'Accepted');
        assert.equal((await again.backups.get('b1'))?.backupId, 'b1');
        assert.equal((await again.hierarchy.listPartitions('fabric:/A/S')).length, 2);
        await again.policies.insert(policyRecord('P'));
        await again.policies.changeProtection((s, names) => enableBackup(s, SVC, 'P', names));
        await again.close();
        const third = await (o.reopen as NonNullable<typeof o.reopen>)(t);
        assert.equal((await third.policies.get('P'))?.uniqueId, 'P-1');
        assert.equal((await third.policies.getProtection()).mappings.get('fabric:/A/S')?.policyName, 'P');
      });
    }
  });
}

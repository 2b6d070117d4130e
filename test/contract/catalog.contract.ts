/**
 * The catalog contract (src/catalog/port.ts): every catalog adapter (SQLite today, PostgreSQL for
 * scale-out) runs this suite with a factory giving a fresh, empty catalog.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackupRecord, Catalog, OperationRecord } from '../../src/catalog/port.ts';

export interface CatalogContractOptions {
  readonly name: string;
  readonly create: (t: { after(fn: () => unknown): void }) => Promise<Catalog>;
  /** Opens the same catalog again (durability across restarts), when the adapter can. */
  readonly reopen?: (t: { after(fn: () => unknown): void }) => Promise<Catalog>;
}

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
  await c.upsertHost('h1', '2026-01-01T00:00:00.000Z');
  await c.registerService('h1', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Named', names: ['x', 'y'] }, hasPersistedState: true }, [
    { id: P1, info: { kind: 'Named', name: 'x' }, epoch, lastLsn: '0' },
    { id: P2, info: { kind: 'Named', name: 'y' }, epoch, lastLsn: '0' },
  ]);
}

export function runCatalogContract(o: CatalogContractOptions): void {
  describe(`${o.name}: catalog contract`, () => {
    it('keeps services and their partitions in scheme order, and replaces them on re-registration', async (t) => {
      const c = await o.create(t);
      await seed(c);
      assert.deepEqual(await c.listApplications(), ['fabric:/A']);
      assert.deepEqual((await c.listPartitions('fabric:/A/S')).map((p) => p.id), [P1, P2]);
      assert.equal((await c.getPartition(P2))?.hostId, 'h1');
      await c.registerService('h2', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Singleton' }, hasPersistedState: true }, [
        { id: P2, info: { kind: 'Singleton' }, epoch: { DataLossVersion: '3', ConfigurationVersion: '1' }, lastLsn: '9' },
      ]);
      const parts = await c.listPartitions('fabric:/A/S');
      assert.deepEqual(parts.map((p) => [p.id, p.hostId, p.lastLsn, p.epoch.DataLossVersion]), [[P2, 'h2', '9', '3']]);
      assert.equal(await c.getPartition(P1), undefined);
      await c.updatePartitionState(P2, { DataLossVersion: '4', ConfigurationVersion: '2' }, '12');
      assert.deepEqual((await c.getPartition(P2))?.epoch, { DataLossVersion: '4', ConfigurationVersion: '2' });
    });

    it('accepts one active operation per partition, even when asked at once', async (t) => {
      const c = await o.create(t);
      await seed(c);
      const results = await Promise.all(['a', 'b', 'c', 'd'].map((id) => c.insertOperation(operation(id))));
      assert.equal(results.filter((r) => r.inserted).length, 1);
      const loser = results.find((r) => !r.inserted);
      assert.ok(loser && !loser.inserted && ['a', 'b', 'c', 'd'].includes(loser.active.id));
      assert.equal((await c.insertOperation(operation('other-partition', P2))).inserted, true);
      assert.equal((await c.activeOperations()).length, 2);
      assert.deepEqual((await c.activeOperations('h1')).map((x) => x.partitionId).sort(), [P1, P2]);
    });

    it('updates an operation only while it is active', async (t) => {
      const c = await o.create(t);
      await seed(c);
      await c.insertOperation(operation('op1'));
      assert.equal(await c.updateOperation('op1', { state: 'BackupInProgress', updatedUtc: '2026-01-01T00:00:01.000Z' }), true);
      assert.equal(await c.updateOperation('op1', { state: 'Success', updatedUtc: '2026-01-01T00:00:02.000Z', result: { BackupId: 'b' } }), true);
      assert.equal(await c.updateOperation('op1', { state: 'Failure', updatedUtc: '2026-01-01T00:00:03.000Z', failure: { Code: 'E_FAIL', Message: 'late' } }), false);
      const got = await c.getOperation('op1');
      assert.equal(got?.state, 'Success');
      assert.deepEqual(got?.result, { BackupId: 'b' });
      assert.equal(got?.failure, undefined);
      assert.equal((await c.insertOperation(operation('op2', P1, 'Restore'))).inserted, true, 'a finished operation no longer blocks');
      assert.equal((await c.latestOperation(P1, 'Backup'))?.id, 'op1');
      assert.equal((await c.latestOperation(P1, 'Restore'))?.id, 'op2');
      assert.equal(await c.latestOperation(P2, 'Backup'), undefined);
    });

    it('indexes backups, filtered by entity and time, in a stable order', async (t) => {
      const c = await o.create(t);
      await c.insertBackup(backupRecord('b3', P2, 'fabric:/A/S', '2026-01-03T00:00:00.000Z'));
      await c.insertBackup(backupRecord('b1', P1, 'fabric:/A/S', '2026-01-01T00:00:00.000Z'));
      await c.insertBackup(backupRecord('b2', P1, 'fabric:/A/S', '2026-01-02T00:00:00.000Z'));
      await c.insertBackup(backupRecord('b4', P1, 'fabric:/B/T', '2026-01-04T00:00:00.000Z'));
      assert.deepEqual((await c.listBackups({ applicationName: 'fabric:/A' })).map((b) => b.backupId), ['b1', 'b2', 'b3']);
      assert.deepEqual((await c.listBackups({ partitionId: P1 })).map((b) => b.backupId), ['b1', 'b2', 'b4']);
      assert.deepEqual((await c.listBackups({ serviceName: 'fabric:/A/S', startUtc: '2026-01-02T00:00:00.000Z', endUtc: '2026-01-02T23:00:00.000Z' })).map((b) => b.backupId), ['b2']);
      assert.deepEqual(await c.getBackup('b3'), backupRecord('b3', P2, 'fabric:/A/S', '2026-01-03T00:00:00.000Z'));
    });

    if (o.reopen) {
      it('keeps everything across a reopen', async (t) => {
        const c = await o.create(t);
        await seed(c);
        await c.insertOperation(operation('op1'));
        await c.insertBackup(backupRecord('b1', P1, 'fabric:/A/S', '2026-01-01T00:00:00.000Z'));
        await c.close();
        const again = await (o.reopen as NonNullable<typeof o.reopen>)(t);
        assert.equal((await again.getOperation('op1'))?.state, 'Accepted');
        assert.equal((await again.getBackup('b1'))?.backupId, 'b1');
        assert.equal((await again.listPartitions('fabric:/A/S')).length, 2);
      });
    }
  });
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StatefulService, isLifeboatError } from '../../src/state/index.ts';
import { tempDir } from '../support/tmp.ts';

const ranged = { kind: 'UniformInt64Range', count: 4, lowKey: 0n, highKey: 1023n } as const;

describe('StatefulService', () => {
  it('creates one partition per range with stable GUIDs, and looks keys up', async (t) => {
    const dir = tempDir(t);
    const s = await StatefulService.open({ name: 'fabric:/App/Svc', partitioning: ranged, dataDir: dir });
    assert.equal(s.partitionList.length, 4);
    const ids = s.partitionList.map((p) => p.id);
    assert.equal(new Set(ids).size, 4);
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(s.partitionForKey(0n).id, ids[0]);
    assert.equal(s.partitionForKey(1023).id, ids[3]);
    assert.equal(s.partitionForKey('some string').id, s.partitionForKey('some string').id);
    assert.throws(() => s.partitionForKey(1024n), (e: unknown) => isLifeboatError(e, 'FABRIC_E_INVALID_PARTITION_KEY'));
    assert.throws(() => s.partition('nope'), (e: unknown) => isLifeboatError(e, 'FABRIC_E_PARTITION_NOT_FOUND'));
    await s.close();

    const again = await StatefulService.open({ name: 'fabric:/App/Svc', partitioning: ranged, dataDir: dir });
    assert.deepEqual(again.partitionList.map((p) => p.id), ids);
    await again.close();
  });

  it('refuses a data directory holding another service or partitioning', async (t) => {
    const dir = tempDir(t);
    await (await StatefulService.open({ name: 'fabric:/App/Svc', partitioning: ranged, dataDir: dir })).close();
    for (const o of [
      { name: 'fabric:/App/Other', partitioning: ranged },
      { name: 'fabric:/App/Svc', partitioning: { ...ranged, count: 2 } },
      { name: 'fabric:/App/Svc', partitioning: { kind: 'Singleton' } as const },
    ]) {
      await assert.rejects(StatefulService.open({ ...o, dataDir: dir }), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_DATA_DIR_MISMATCH'));
    }
  });

  it('supports Named partitions and validates names', async (t) => {
    const dir = tempDir(t);
    const s = await StatefulService.open({ name: 'fabric:/App/Svc', partitioning: { kind: 'Named', names: ['east', 'west'] }, dataDir: dir });
    assert.deepEqual(s.partitionList.map((p) => p.info), [{ kind: 'Named', name: 'east' }, { kind: 'Named', name: 'west' }]);
    assert.equal(s.partitionForKey('west').info.kind, 'Named');
    await s.close();
    for (const name of ['App/Svc', 'fabric:/App', 'fabric:/App//Svc', 42]) {
      await assert.rejects(StatefulService.open({ name: name as string, partitioning: { kind: 'Singleton' }, dataDir: `${dir}/x` }),
        (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'), String(name));
    }
  });

  it('treats a partition whose folder vanished as data loss', async (t) => {
    const { rmSync } = await import('node:fs');
    const dir = tempDir(t);
    const s = await StatefulService.open({ name: 'fabric:/App/Svc', partitioning: ranged, dataDir: dir });
    const victim = s.partitionList[2];
    assert.ok(victim);
    victim.transact((tx) => tx.dictionary('d').set('a', 1));
    await s.close();
    rmSync(`${dir}/partitions/${victim.id}`, { recursive: true });
    const lost: string[] = [];
    const again = await StatefulService.open({ name: 'fabric:/App/Svc', partitioning: ranged, dataDir: dir, onDataLoss: (ctx) => { lost.push(ctx.partition.id); return false; } });
    assert.deepEqual(lost, [victim.id]);
    assert.equal(again.partition(victim.id).lastLsn, 0n);
    assert.equal(again.partition(victim.id).epoch.dataLossVersion, 2n);
    await again.close();
  });
});

/**
 * Property: random transactions, with full and incremental backups taken at random points (full
 * backups while writes go on), epoch changes and refused callbacks; restoring any backup's chain
 * gives exactly the state at that backup's LSN.
 */
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { it } from 'node:test';
import fc from 'fast-check';
import type { BackupInfo, Partition, Value } from '../../src/state/index.ts';
import { isLifeboatError } from '../../src/state/index.ts';
import { dump, openSingleton } from '../support/state.ts';
import { tempDir } from '../support/tmp.ts';

type Op =
  | { kind: 'set'; dict: number; key: number; value: Value }
  | { kind: 'delete'; dict: number; key: number }
  | { kind: 'drop'; dict: number };
type Step =
  | { kind: 'tx'; ops: Op[] }
  | { kind: 'full'; concurrentTxs: Op[][] }
  | { kind: 'incremental' }
  | { kind: 'epoch' }
  | { kind: 'refused' };

const value = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 20 }),
  fc.record({ a: fc.array(fc.integer(), { maxLength: 3 }), s: fc.string({ maxLength: 5 }) }),
  fc.uint8Array({ maxLength: 40 }),
  fc.constant(null),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), dict: fc.nat(2), key: fc.nat(30), value }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), dict: fc.nat(2), key: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), dict: fc.nat(2) }) },
);
const ops = fc.array(op, { minLength: 1, maxLength: 6 });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('tx' as const), ops }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('full' as const), concurrentTxs: fc.array(ops, { maxLength: 8 }) }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'incremental' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'epoch' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'refused' as const }) },
);

type Model = Map<string, Map<string, Value>>;

function apply(p: Partition, model: Model, txOps: Op[]): void {
  p.transact((tx) => {
    for (const o of txOps) {
      const name = `dict${o.dict}`;
      if (o.kind === 'set') {
        tx.dictionary(name).set(`key${o.key}`, o.value);
        if (!model.has(name)) model.set(name, new Map());
        model.get(name)?.set(`key${o.key}`, o.value instanceof Uint8Array ? Buffer.from(o.value) : (JSON.parse(JSON.stringify(o.value)) as Value));
      } else if (o.kind === 'delete') {
        tx.dictionary(name).delete(`key${o.key}`);
        model.get(name)?.delete(`key${o.key}`);
      } else {
        tx.removeDictionary(name);
        model.delete(name);
      }
    }
  });
}

function snapshotOf(model: Model): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const name of [...model.keys()].sort()) {
    const d: Record<string, unknown> = {};
    const entries = [...(model.get(name) ?? new Map<string, Value>()).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [k, v] of entries) d[k] = v instanceof Uint8Array ? `hex:${Buffer.from(v).toString('hex')}` : v;
    out[name] = d;
  }
  return out;
}

it('restoring any backup chain gives exactly the state at its LSN', { timeout: 600_000 }, async (t) => {
  const root = tempDir(t);
  let run = 0;
  let writesDuringFull = 0;
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), async (steps) => {
    const dir = `${root}/run${run++}`;
    const { service, partition: p } = await openSingleton(`${dir}/live`);
    const model: Model = new Map();
    const stateAt = new Map<bigint, ReturnType<typeof snapshotOf>>([[0n, {}]]);
    const record = (): void => { stateAt.set(p.lastLsn, snapshotOf(model)); };
    const backups = new Map<string, BackupInfo>();
    let n = 0;
    try {
      for (const s of steps) {
        if (s.kind === 'tx') {
          apply(p, model, s.ops);
          record();
        } else if (s.kind === 'full') {
          const running = p.backup({ option: 'Full', folder: `${dir}/b${n++}` });
          for (const txOps of s.concurrentTxs) {
            await tick();
            apply(p, model, txOps);
            record();
          }
          const info = await running;
          if (info.lastLsn < p.lastLsn && s.concurrentTxs.length > 0 && stateAt.has(info.lastLsn)) writesDuringFull++;
          backups.set(info.backupId, info);
        } else if (s.kind === 'incremental') {
          try {
            const info = await p.backup({ option: 'Incremental', folder: `${dir}/b${n++}` });
            backups.set(info.backupId, info);
          } catch (err) {
            assert.ok(isLifeboatError(err, 'FABRIC_E_MISSING_FULL_BACKUP'), String(err));
            const last = p.lastCompletedBackup;
            assert.ok(last === undefined || last.epoch.configurationVersion !== p.epoch.configurationVersion, `refused without cause: ${String(err)}`);
          }
        } else if (s.kind === 'epoch') {
          await p.advanceConfiguration();
        } else {
          await assert.rejects(p.backup({ option: 'Full', folder: `${dir}/b${n++}`, callback: () => false }));
        }
      }
      assert.deepEqual(dump(p), snapshotOf(model), 'the live partition matches the model');

      for (const target of backups.values()) {
        const chain: string[] = [];
        for (let b: BackupInfo | undefined = target; b; b = b.option === 'Full' ? undefined : backups.get(b.parentBackupId)) chain.push(b.directory);
        assert.equal(backups.get(target.backupChainId)?.directory, chain.at(-1), 'parent links lead to the chain\'s full backup');
        const fresh = await openSingleton(`${dir}/restore-${target.backupId}`);
        try {
          // Safe needs a backup strictly ahead of the empty partition (LSN > 0).
          const r = await fresh.partition.restore(chain, { policy: target.lastLsn > 0n ? 'Safe' : 'Force' });
          assert.equal(r.restoredLsn, target.lastLsn);
          assert.equal(fresh.partition.lastLsn, target.lastLsn);
          assert.deepEqual(dump(fresh.partition), stateAt.get(target.lastLsn), `restore of ${target.option} backup at LSN ${target.lastLsn}`);
        } finally {
          await fresh.service.close();
        }
      }
      // And in place, over newer state, with Force.
      const newest = [...backups.values()].at(-1);
      if (newest) {
        const chain: string[] = [];
        for (let b: BackupInfo | undefined = newest; b; b = b.option === 'Full' ? undefined : backups.get(b.parentBackupId)) chain.push(b.directory);
        await p.restore(chain, { policy: 'Force' });
        assert.deepEqual(dump(p), stateAt.get(newest.lastLsn));
      }
    } finally {
      await service.close();
    }
  }), { numRuns: 100, includeErrorInReport: true, seed: Number(process.env.LIFEBOAT_PROPERTY_SEED ?? Date.now() % 1_000_000) });
  assert.ok(writesDuringFull > 0, 'some full backups were taken while writes committed after their snapshot');
});

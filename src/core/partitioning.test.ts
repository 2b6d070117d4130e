import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isLifeboatError } from './errors.ts';
import { INT64_MAX, INT64_MIN, hashStringKey, partitionIndexForKey, partitionsOfScheme, type PartitionScheme } from './partitioning.ts';

describe('partitionsOfScheme', () => {
  it('splits a UniformInt64Range into contiguous ranges covering it exactly', () => {
    fc.assert(fc.property(
      fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), fc.bigInt({ min: 0n, max: 2n ** 40n }), fc.integer({ min: 1, max: 50 }),
      (low, width, count) => {
        const high = low + width > INT64_MAX ? INT64_MAX : low + width;
        fc.pre(high - low + 1n >= BigInt(count));
        const parts = partitionsOfScheme({ kind: 'UniformInt64Range', count, lowKey: low, highKey: high });
        assert.equal(parts.length, count);
        let next = low;
        for (const p of parts) {
          assert.equal(p.kind, 'Int64Range');
          if (p.kind !== 'Int64Range') return;
          assert.equal(p.lowKey, next);
          assert.ok(p.highKey >= p.lowKey);
          next = p.highKey + 1n;
        }
        assert.equal(next - 1n, high);
      }));
  });

  it('matches Service Fabric for the whole Int64 range in 4', () => {
    const parts = partitionsOfScheme({ kind: 'UniformInt64Range', count: 4, lowKey: INT64_MIN, highKey: INT64_MAX });
    assert.deepEqual(parts.map((p) => (p.kind === 'Int64Range' ? [p.lowKey, p.highKey] : [])), [
      [INT64_MIN, -4611686018427387905n], [-4611686018427387904n, -1n], [0n, 4611686018427387903n], [4611686018427387904n, INT64_MAX],
    ]);
  });

  it('rejects bad schemes with E_INVALIDARG', () => {
    const bad: unknown[] = [
      { kind: 'Named', names: [] }, { kind: 'Named', names: ['a', 'a'] }, { kind: 'Named', names: [''] },
      { kind: 'UniformInt64Range', count: 0, lowKey: 0n, highKey: 10n }, { kind: 'UniformInt64Range', count: 2, lowKey: 10n, highKey: 0n },
      { kind: 'UniformInt64Range', count: 20, lowKey: 0n, highKey: 10n }, { kind: 'UniformInt64Range', count: 1.5, lowKey: 0n, highKey: 10n },
      { kind: 'Hashed' },
    ];
    for (const scheme of bad) {
      assert.throws(() => partitionsOfScheme(scheme as PartitionScheme), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'), JSON.stringify(scheme, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
    }
  });
});

describe('partitionIndexForKey', () => {
  const scheme: PartitionScheme = { kind: 'UniformInt64Range', count: 4, lowKey: 0n, highKey: 99n };
  const parts = partitionsOfScheme(scheme);
  it('finds Int64 keys by range and refuses keys outside it', () => {
    assert.equal(partitionIndexForKey(scheme, parts, 0), 0);
    assert.equal(partitionIndexForKey(scheme, parts, 24n), 0);
    assert.equal(partitionIndexForKey(scheme, parts, 25n), 1);
    assert.equal(partitionIndexForKey(scheme, parts, 99), 3);
    assert.throws(() => partitionIndexForKey(scheme, parts, 100n), (e: unknown) => isLifeboatError(e, 'FABRIC_E_INVALID_PARTITION_KEY'));
    assert.throws(() => partitionIndexForKey(scheme, parts, 1.5), (e: unknown) => isLifeboatError(e, 'FABRIC_E_INVALID_PARTITION_KEY'));
  });
  it('hashes string keys stably into the range, spreading them over the partitions', () => {
    // Short, similar keys too: the range is picked by the hash's high bits.
    for (const make of [(i: number) => `key-${i}`, (i: number) => `k${i}`, (i: number) => String(i)]) {
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < 4000; i++) {
        const idx = partitionIndexForKey(scheme, parts, make(i));
        counts[idx] = (counts[idx] ?? 0) + 1;
        assert.equal(partitionIndexForKey(scheme, parts, make(i)), idx);
      }
      for (const c of counts) assert.ok(c > 850, `uneven spread ${counts.join(',')}`);
      const whole = { kind: 'UniformInt64Range', count: 4, lowKey: INT64_MIN, highKey: INT64_MAX } as const;
      const wholeParts = partitionsOfScheme(whole);
      const wc = [0, 0, 0, 0];
      for (let i = 0; i < 4000; i++) {
        const idx = partitionIndexForKey(whole, wholeParts, make(i));
        wc[idx] = (wc[idx] ?? 0) + 1;
      }
      for (const c of wc) assert.ok(c > 850, `uneven spread over the whole Int64 range ${wc.join(',')}`);
    }
    // FNV-1a 64 + fmix64 is the contract: a change here would move every stored string key.
    assert.equal(hashStringKey(''), -1166397803181037274n);
    assert.equal(hashStringKey('a'), -9033471704281723301n);
  });
  it('looks Named partitions up by name', () => {
    const named: PartitionScheme = { kind: 'Named', names: ['east', 'west'] };
    const np = partitionsOfScheme(named);
    assert.equal(partitionIndexForKey(named, np, 'west'), 1);
    assert.throws(() => partitionIndexForKey(named, np, 'north'), (e: unknown) => isLifeboatError(e, 'FABRIC_E_INVALID_PARTITION_KEY'));
  });
});

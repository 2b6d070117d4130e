import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLifeboatError } from '../core/errors.ts';
import { INT64_MAX, INT64_MIN, partitionIndexForKey, partitionsOfScheme } from '../core/partitioning.ts';
import { partitionInformationWire } from '../wire/hierarchy.ts';
import { parseEntityName, partitionForKey, rangeText } from './entities.ts';

const PID = '3f2a6c1e-0000-4000-8000-0000000000aa';

describe('parseEntityName', () => {
  it('reads applications, services and partitions as users write them, and as REST ids', () => {
    assert.deepEqual(parseEntityName('fabric:/SampleApp'), { kind: 'Application', applicationName: 'fabric:/SampleApp' });
    assert.deepEqual(parseEntityName('SampleApp'), { kind: 'Application', applicationName: 'fabric:/SampleApp' });
    assert.deepEqual(parseEntityName('fabric:/SampleApp/MyStatefulService'), { kind: 'Service', serviceName: 'fabric:/SampleApp/MyStatefulService' });
    assert.deepEqual(parseEntityName('SampleApp~MyStatefulService'), { kind: 'Service', serviceName: 'fabric:/SampleApp/MyStatefulService' });
    assert.deepEqual(parseEntityName(PID.toUpperCase()), { kind: 'Partition', partitionId: PID });
    assert.deepEqual(parseEntityName('fabric:/SampleApp/MyStatefulService', '42'), { kind: 'PartitionByKey', serviceName: 'fabric:/SampleApp/MyStatefulService', key: '42' });
  });

  it('refuses a partition key with an application or a partition, and names that name nothing', () => {
    for (const [text, key] of [['fabric:/SampleApp', '1'], [PID, '1'], ['fabric:/', undefined], ['fabric://x', undefined]] as const) {
      assert.throws(() => parseEntityName(text, key), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'), `${text} ${key ?? ''}`);
    }
  });
});

describe('partitionForKey', () => {
  const ranged = partitionsOfScheme({ kind: 'UniformInt64Range', count: 4, lowKey: INT64_MIN, highKey: INT64_MAX });
  const wire = ranged.map((info, i) => partitionInformationWire(`p${i}`, info));

  it('finds the range holding an Int64 key, at the edges too', () => {
    assert.equal(partitionForKey(wire, '42'), 2);
    assert.equal(partitionForKey(wire, '-1'), 1);
    assert.equal(partitionForKey(wire, INT64_MIN.toString()), 0);
    assert.equal(partitionForKey(wire, INT64_MAX.toString()), 3);
    assert.equal(partitionForKey(wire, (ranged[1] as { highKey: bigint }).highKey.toString()), 1);
  });

  it('hashes any other key as the state library does, so it finds where the sample app keeps it', () => {
    const scheme = { kind: 'UniformInt64Range', count: 4, lowKey: INT64_MIN, highKey: INT64_MAX } as const;
    for (const key of ['hello', 'k1', 'k2', 'order-17', 'ü']) assert.equal(partitionForKey(wire, key), partitionIndexForKey(scheme, ranged, key), key);
  });

  it('refuses a key outside a smaller range', () => {
    const small = partitionsOfScheme({ kind: 'UniformInt64Range', count: 2, lowKey: 0n, highKey: 9n }).map((info, i) => partitionInformationWire(`p${i}`, info));
    assert.equal(partitionForKey(small, '7'), 1);
    assert.throws(() => partitionForKey(small, '10'), (e: unknown) => isLifeboatError(e, 'FABRIC_E_INVALID_PARTITION_KEY'));
  });

  it('takes the name of a Named partition, and the one partition of a Singleton', () => {
    const named = ['east', 'west'].map((name, i) => partitionInformationWire(`n${i}`, { kind: 'Named', name }));
    assert.equal(partitionForKey(named, 'west'), 1);
    assert.throws(() => partitionForKey(named, 'north'), (e: unknown) => isLifeboatError(e, 'FABRIC_E_INVALID_PARTITION_KEY'));
    assert.equal(partitionForKey([partitionInformationWire('s', { kind: 'Singleton' })], 'anything'), 0);
    assert.throws(() => partitionForKey([], 'x'), (e: unknown) => isLifeboatError(e, 'FABRIC_E_INVALID_PARTITION_KEY'));
  });

  it('rangeText', () => {
    assert.equal(rangeText(wire[0]!), `[${INT64_MIN}, ${ranged[0]!.kind === 'Int64Range' ? ranged[0]!.highKey : ''}]`);
    assert.equal(rangeText(partitionInformationWire('n', { kind: 'Named', name: 'east' })), 'name east');
    assert.equal(rangeText(partitionInformationWire('s', { kind: 'Singleton' })), 'singleton');
  });
});

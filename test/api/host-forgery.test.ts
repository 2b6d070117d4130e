/**
 * The host protocol under attack, over HTTP, by a process holding a valid host token for a host
 * of its own ('evil'): it may not steal a live host's partitions or their orders, act as another
 * host, finish or fake another host's operation, overwrite another partition's index row, empty
 * another host's registration, or send registrations past the limits. Each attempt is refused
 * and leaves the catalog as it was; the legitimate path still works beside it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { partitionInfoToJson, schemeToJson } from '../../src/core/partitioning.ts';
import { assertFabricError, assertSuccess, jsonOf, send } from '../support/api-http.ts';
import { type TestLifeboat, startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { SERVICE_NAME } from '../support/sample.ts';

const V = 'api-version=6.4';
const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

async function hostToken(lb: TestLifeboat, hostId: string): Promise<string> {
  const r = assertSuccess(await send(lb.url, { method: 'POST', path: `/Lifeboat/$/Tokens/$/Create?${V}`, body: { Role: 'host', HostId: hostId, Name: `t-${hostId}` } }), 201) as { Token: string };
  return r.Token;
}

function registration(service: string, scheme: Record<string, unknown>, partitions: Array<{ id: string; info: Record<string, string> }>): unknown {
  return {
    Services: [{
      Name: service, Scheme: scheme, HasPersistedState: true,
      Partitions: partitions.map((p) => ({ Id: p.id, Info: p.info, Epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, Lsn: '0' })),
    }],
  };
}

const SINGLETON = { kind: 'Singleton' };

async function samplePartitions(lb: TestLifeboat): Promise<Array<{ id: string; info: Record<string, string> }>> {
  const parts = await lb.catalog.hierarchy.listPartitions(SERVICE_NAME);
  return parts.map((p) => ({ id: p.id, info: partitionInfoToJson(p.info) }));
}

describe('host protocol forgery', () => {
  it('refuses every forgery by another host and changes nothing', async (t) => {
    const lb = await startTestLifeboat(t);
    const token = await hostToken(lb, 'evil');
    const as = (method: string, path: string, body?: unknown): ReturnType<typeof send> => send(lb.url, { method, path, body, token });
    const sample = await samplePartitions(lb);
    const p0 = sample[0]?.id as string;
    const before = json(await lb.catalog.hierarchy.listPartitions(SERVICE_NAME));

    // Its own service registers.
    const own = randomUUID();
    assertSuccess(await as('POST', '/Lifeboat/Hosts/evil/$/Register', registration('fabric:/Evil/Svc', SINGLETON, [{ id: own, info: { kind: 'Singleton' } }])), 200);

    // Stealing the live in-process host's partitions (and with them, their orders and credentials).
    const sampleScheme = (await lb.catalog.hierarchy.getService(SERVICE_NAME))?.scheme;
    assert.ok(sampleScheme);
    const schemeJson = schemeToJson(sampleScheme);
    assertFabricError(await as('POST', '/Lifeboat/Hosts/evil/$/Register', registration(SERVICE_NAME, schemeJson, sample)), 403, 'E_ACCESSDENIED', 'taking a live host\'s partitions');
    // Emptying its registration, or changing its scheme.
    assertSuccess(await as('POST', '/Lifeboat/Hosts/evil/$/Register', registration(SERVICE_NAME, schemeJson, [])), 200, 'a registration of no partitions of it');
    assertFabricError(await as('POST', '/Lifeboat/Hosts/evil/$/Register', registration(SERVICE_NAME, SINGLETON, [])), 403, 'E_ACCESSDENIED', 'another scheme for a live host\'s service');
    assert.equal(json(await lb.catalog.hierarchy.listPartitions(SERVICE_NAME)), before, 'the sample partitions are still the local host\'s, unchanged');
    assert.deepEqual((await lb.catalog.hierarchy.getService(SERVICE_NAME))?.scheme, sampleScheme);

    // Acting as the other host.
    for (const [method, path, body] of [
      ['GET', '/Lifeboat/Hosts/local/$/Orders?WaitMs=0', undefined],
      ['POST', '/Lifeboat/Hosts/local/$/Register', registration('fabric:/Evil/Svc', SINGLETON, [])],
      ['POST', '/Lifeboat/Hosts/local/$/Report', { OperationId: 'x', State: 'InProgress' }],
      ['POST', '/Lifeboat/Hosts/local/$/DataLoss', { PartitionId: p0 }],
    ] as const) {
      assertFabricError(await as(method, path, body), 403, 'E_ACCESSDENIED', `${method} ${path}`);
    }

    // The local host's backup: evil gets no order for it, and cannot report on it.
    assertSuccess(await send(lb.url, { method: 'POST', path: `/Partitions/${p0}/$/Backup?${V}`, body: { BackupStorage: lb.storage } }), 202);
    const op = await lb.catalog.operations.latest(p0, 'Backup');
    assert.ok(op);
    const evilOrders = jsonOf(await as('GET', '/Lifeboat/Hosts/evil/$/Orders?WaitMs=0')) as { Orders: unknown[] };
    assert.deepEqual(evilOrders.Orders, [], 'no order of another host\'s partition');
    const fake = {
      OperationId: op.id, State: 'Success', Partition: { Id: p0, Epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, Lsn: '0' },
      Backup: {
        BackupId: randomUUID(), BackupChainId: randomUUID(), ParentBackupId: '', BackupLocation: 'SampleApp/MyStatefulService/x/fake.lbk', BackupType: 'Full',
        EpochOfLastBackupRecord: { DataLossVersion: '1', ConfigurationVersion: '1' }, LsnOfLastBackupRecord: '0', CreationTimeUtc: new Date().toISOString(),
      },
    };
    assertFabricError(await as('POST', '/Lifeboat/Hosts/evil/$/Report', fake), 400, 'E_INVALIDARG', 'faking another host\'s Success');
    assertFabricError(await as('POST', '/Lifeboat/Hosts/evil/$/Report', { ...fake, OperationId: randomUUID() }), 400, 'E_INVALIDARG', 'an operation that does not exist');
    const done = await waitFor(async () => jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${p0}/$/GetBackupProgress?${V}` })) as Record<string, unknown>, (p) => p.BackupState === 'Success', 30_000, 'the real backup');
    assert.notEqual(done.BackupId, fake.Backup.BackupId, 'the real host\'s result stands');
    const real = await lb.catalog.backups.get(done.BackupId as string);
    assert.ok(real);

    // Evil's own backup: the order carries only its storage; its report may not touch p0's index.
    assertSuccess(await send(lb.url, { method: 'POST', path: `/Partitions/${own}/$/Backup?${V}`, body: { BackupStorage: lb.storage } }), 202);
    const orders = (jsonOf(await as('GET', '/Lifeboat/Hosts/evil/$/Orders?WaitMs=5000')) as { Orders: Array<Record<string, unknown>> }).Orders;
    assert.equal(orders.length, 1);
    const order = orders[0] as Record<string, unknown>;
    assert.deepEqual(order.Storage, lb.storage, 'the order names its own storage and nothing more');
    const evilFolder = `Evil/Svc/${own}`;
    const summary = { ...fake.Backup, BackupId: real.backupId, BackupLocation: `${evilFolder}/b.lbk` };
    const report = (b: Record<string, unknown>): unknown => ({ OperationId: order.OperationId, State: 'Success', Partition: { Id: own, Epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, Lsn: '0' }, Backup: b });
    assertFabricError(await as('POST', '/Lifeboat/Hosts/evil/$/Report', report(summary)), 400, 'E_INVALIDARG', 'overwriting another partition\'s index row');
    assertFabricError(await as('POST', '/Lifeboat/Hosts/evil/$/Report', report({ ...summary, BackupId: randomUUID(), BackupLocation: real.backupLocation })), 400, 'E_INVALIDARG', 'indexing another partition\'s object');
    assertFabricError(await as('POST', '/Lifeboat/Hosts/evil/$/Report', report({ ...summary, BackupId: randomUUID(), BackupLocation: `${evilFolder}/../../../SampleApp/x.lbk` })), 400, 'E_INVALIDARG', 'a location that climbs out');
    assertFabricError(await as('POST', '/Lifeboat/Hosts/evil/$/Report', { ...(report({ ...summary, BackupId: randomUUID() }) as object), Partition: { Id: p0, Epoch: { DataLossVersion: '9', ConfigurationVersion: '9' }, Lsn: '99' } }), 400, 'E_INVALIDARG', 'another partition\'s state');
    assert.deepEqual(await lb.catalog.backups.get(real.backupId), real, 'p0\'s index row is unchanged');
    assert.equal((await lb.catalog.hierarchy.getPartition(p0))?.lastLsn, (JSON.parse(before) as Array<{ id: string; lastLsn: string }>).find((p) => p.id === p0)?.lastLsn);

    // Its own, well-formed report is taken; a second one on the ended operation changes nothing.
    const mine = { ...summary, BackupId: randomUUID() };
    assertSuccess(await as('POST', '/Lifeboat/Hosts/evil/$/Report', report(mine)), 200);
    const ended = await lb.catalog.operations.get(order.OperationId as string);
    assert.equal(ended?.state, 'Success');
    assertSuccess(await as('POST', '/Lifeboat/Hosts/evil/$/Report', { OperationId: order.OperationId, State: 'Failure', Error: { Code: 'E_FAIL', Message: 'late' } }), 200);
    assert.deepEqual(await lb.catalog.operations.get(order.OperationId as string), ended, 'a report on an ended operation changes nothing');

    // The audit log keeps every report refused or denied, and none of those taken (the operation keeps them).
    const log = (assertSuccess(await send(lb.url, { method: 'GET', path: `/Lifeboat/$/AuditLog?${V}&MaxResults=1000` }), 200) as { Items: Array<Record<string, unknown>> }).Items;
    const reports = log.filter((i) => i.Principal === 't-evil' && String(i.Route).endsWith('/$/Report'));
    assert.deepEqual(reports.map((i) => [i.Status, i.Outcome]), [[403, 'denied'], ...Array.from({ length: 6 }, () => [400, 'refused'])]);
    assert.ok(log.some((i) => i.Principal === 't-evil' && String(i.Route).endsWith('/$/Register') && i.Outcome === 'allowed'), 'a registration taken is audited');
  });

  it('holds registrations and order polls to their limits', async (t) => {
    const lb = await startTestLifeboat(t, { sample: false });
    const token = await hostToken(lb, 'big');
    const many = Array.from({ length: 10_001 }, () => ({ id: randomUUID(), info: { kind: 'Singleton' } }));
    assertFabricError(await send(lb.url, { method: 'POST', path: '/Lifeboat/Hosts/big/$/Register', body: registration('fabric:/Big/Svc', SINGLETON, many), token }), 400, 'E_INVALIDARG', '10,001 partitions');
    const dup = randomUUID();
    assertFabricError(await send(lb.url, { method: 'POST', path: '/Lifeboat/Hosts/big/$/Register', body: registration('fabric:/Big/Svc', SINGLETON, [{ id: dup, info: { kind: 'Singleton' } }, { id: dup, info: { kind: 'Singleton' } }]), token }), 400, 'E_INVALIDARG', 'a partition twice');
    assertFabricError(await send(lb.url, { method: 'POST', path: '/Lifeboat/Hosts/big/$/Register', raw: `{"Services":[],"x":"${'x'.repeat(5 * 1024 * 1024)}"}`, token }), 413, 'FABRIC_E_VALUE_TOO_LARGE');
    assert.deepEqual(await lb.catalog.hierarchy.listApplications(), [], 'nothing registered');

    const polls = Array.from({ length: 4 }, () => send(lb.url, { method: 'GET', path: '/Lifeboat/Hosts/big/$/Orders?WaitMs=3000', token }));
    await new Promise((r) => setTimeout(r, 300));
    const fifth = await send(lb.url, { method: 'GET', path: '/Lifeboat/Hosts/big/$/Orders?WaitMs=3000', token });
    assert.equal(fifth.status, 503, fifth.text);
    assert.equal((jsonOf(fifth) as { Error: { Code: string } }).Error.Code, 'LIFEBOAT_E_BUSY');
    assert.equal(fifth.headers.get('retry-after'), '1');
    for (const p of await Promise.all(polls)) assertSuccess(p, 200);
  });
});

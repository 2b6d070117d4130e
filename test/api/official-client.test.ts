/**
 * Lifeboat driven by the official, unmodified `azure-servicefabric` npm client (2.2.0, ms-rest):
 * every route in scope — the hierarchy queries, on-demand backup and its progress, the three
 * backup lists, GetBackupsFromBackupLocation, restore and its progress — and the client's view of
 * an error. The client sends api-version 6.0/6.1 for the queries and 6.2-preview for backup
 * routes, serializes PascalCase bodies from its camelCase models, and deserializes the answers
 * through its model mappers: whatever the server names differently is silently dropped, so the
 * deserialized values are checked against what the server really did.
 */
import { lbFetch, officialRequestOptions } from '../support/api-http.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sf from 'azure-servicefabric';
import type * as models from 'azure-servicefabric/lib/models/index.js';
import { type TestLifeboat, startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { APP_ID, APP_NAME, SERVICE_ID, SERVICE_NAME, UNKNOWN_PID } from '../support/sample.ts';

const ServiceFabricClient = sf.default;
type Client = InstanceType<typeof ServiceFabricClient>;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Sent {
  readonly method: string;
  readonly url: string;
  readonly body: string | null;
  readonly headers: Readonly<Record<string, string>>;
}

/** An ms-rest pipeline filter that records every request the client makes. */
function recorder(into: Sent[]) {
  return (resource: { method: string; url: string; body?: unknown; headers: Record<string, string> }, next: (r: unknown, cb: unknown) => unknown, callback: unknown): unknown => {
    into.push({ method: resource.method, url: resource.url, body: typeof resource.body === 'string' ? resource.body : null, headers: { ...resource.headers } });
    return next(resource, callback);
  };
}

/** The error ms-rest hands back for a non-success answer. */
interface ClientError extends Error {
  statusCode?: number;
  code?: string;
  body?: { error?: { code?: string; message?: string } };
  response?: { headers?: Record<string, string> };
}

async function clientError(p: Promise<unknown>): Promise<ClientError> {
  try {
    await p;
  } catch (err) {
    return err as ClientError;
  }
  assert.fail('the client call succeeded; an error was expected');
}

function assertClientError(err: ClientError, status: number, code: string): void {
  const ctx = `status ${String(err.statusCode)}, body ${JSON.stringify(err.body)}, message ${String(err.message)}`;
  assert.equal(err.statusCode, status, ctx);
  // The generated client reads the code from the FabricError model (`Error.Code` on the wire) into
  // err.body.error.code. (It also tries `parsed.error.code` — camelCase — for err.code/err.message,
  // which a spec-conformant `{"Error": …}` body never fills: a client quirk, not checked here.)
  assert.equal(err.body?.error?.code, code, ctx);
  assert.ok((err.body?.error?.message ?? '').length > 0, `a message; ${ctx}`);
  if (status === 404) assert.equal(err.response?.headers?.['x-servicefabric'], 'ResourceNotFound', ctx);
}

async function backupDone(client: Client, pid: string): Promise<models.BackupProgressInfo> {
  return waitFor(() => client.getPartitionBackupProgress(pid), (v) => v.backupState !== 'Accepted' && v.backupState !== 'BackupInProgress', 30_000, 'backup');
}

async function restoreDone(client: Client, pid: string): Promise<models.RestoreProgressInfo> {
  return waitFor(() => client.getPartitionRestoreProgress(pid), (v) => v.restoreState !== 'Accepted' && v.restoreState !== 'RestoreInProgress', 30_000, 'restore');
}

function fileShare(lb: TestLifeboat): models.FileShareBackupStorageDescription {
  return { storageKind: 'FileShare', path: lb.share };
}

describe('the official azure-servicefabric npm client', () => {
  it('drives every route against a real Lifeboat', async (t) => {
    const started = new Date(Date.now() - 1000);
    const lb = await startTestLifeboat(t);
    const sample = lb.sample;
    assert.ok(sample);
    const sent: Sent[] = [];
    // No credentials: the constructor is (baseUri, options); ms-rest then adds no signing filter.
    const client = new ServiceFabricClient(lb.url, { noRetryPolicy: true, filters: [recorder(sent)], requestOptions: officialRequestOptions() });

    for (let i = 0; i < 60; i++) {
      const r = await fetch(`${sample.url}/kv/key${i}`, { method: 'PUT', body: `value${i}` });
      assert.ok(r.ok, `PUT key${i}: ${r.status}`);
    }

    // ---- hierarchy --------------------------------------------------------------------------
    let partitions: models.ServicePartitionInfo[] = [];
    await t.test('getApplicationInfoList, getApplicationInfo, getServiceInfoList', async () => {
      const apps = await client.getApplicationInfoList();
      assert.deepEqual(apps.items?.map((a) => [a.id, a.name]), [[APP_ID, APP_NAME]]);
      assert.equal(apps.continuationToken, '');
      const app = await client.getApplicationInfo(APP_ID);
      assert.equal(app.id, APP_ID);
      assert.equal(app.name, APP_NAME);
      const services = await client.getServiceInfoList(APP_ID);
      assert.equal(services.items?.length, 1);
      const svc = services.items?.[0] as models.StatefulServiceInfo;
      assert.equal(svc.id, SERVICE_ID);
      assert.equal(svc.name, SERVICE_NAME);
      assert.equal(svc.serviceKind, 'Stateful');
      assert.equal(svc.hasPersistedState, true);
    });

    await t.test('getPartitionInfoList, getPartitionInfo: four Int64Range partitions covering the Int64 range', async () => {
      const list = await client.getPartitionInfoList(SERVICE_ID);
      partitions = list.items ?? [];
      assert.equal(partitions.length, 4);
      const served = sample.service.partitionList.map((p) => p.id).sort();
      assert.deepEqual(partitions.map((p) => p.partitionInformation?.id).sort(), served);
      let next = -(2n ** 63n);
      for (const p of partitions) {
        assert.equal(p.serviceKind, 'Stateful');
        const info = p.partitionInformation as models.Int64RangePartitionInformation;
        assert.equal(info.servicePartitionKind, 'Int64Range');
        assert.equal(typeof info.lowKey, 'string');
        assert.equal(BigInt(info.lowKey ?? 'x'), next, `partition ${String(info.id)} starts where the previous ended`);
        next = BigInt(info.highKey ?? 'x') + 1n;
        const epoch = (p as models.StatefulServicePartitionInfo).currentConfigurationEpoch;
        assert.match(epoch?.configurationVersion ?? '', /^\d+$/);
        assert.match(epoch?.dataLossVersion ?? '', /^\d+$/);
        assert.deepEqual(await client.getPartitionInfo(info.id ?? ''), p);
      }
      assert.equal(next, 2n ** 63n, 'the last partition ends at Int64.MaxValue');
    });
    assert.equal(partitions.length, 4, 'the partitions are needed for the rest');

    // The partition to back up and restore: one that holds some of the keys.
    const target = partitions.find((p) => sample.service.partition(p.partitionInformation?.id ?? '').dictionary('kv').enumerate().length > 0);
    assert.ok(target);
    const pid = target.partitionInformation?.id ?? '';
    const info = target.partitionInformation as models.Int64RangePartitionInformation;
    const epochNow = (target as models.StatefulServicePartitionInfo).currentConfigurationEpoch;
    const partition = sample.service.partition(pid);
    const before = partition.dictionary('kv').enumerate();
    const lsnAtBackup = partition.lastLsn.toString();

    // ---- backup -------------------------------------------------------------------------------
    let progress: models.BackupProgressInfo | undefined;
    await t.test('backupPartition to a FileShare, then getPartitionBackupProgress until Success', async () => {
      const n = sent.length;
      await client.backupPartition(pid, { backupPartitionDescription: { backupStorage: fileShare(lb) }, backupTimeout: 5 });
      const req = sent[n];
      assert.ok(req);
      assert.equal(req.method, 'POST');
      assert.equal(req.url, `${lb.url}/Partitions/${pid}/$/Backup?BackupTimeout=5&api-version=6.2-preview&timeout=60`);
      assert.deepEqual(JSON.parse(req.body ?? 'null'), { BackupStorage: { StorageKind: 'FileShare', Path: lb.share } });
      progress = await backupDone(client, pid);
      assert.equal(progress.backupState, 'Success', JSON.stringify(progress));
      assert.match(progress.backupId ?? '', GUID);
      assert.match(progress.backupLocation ?? '', new RegExp(`^SampleApp/MyStatefulService/${pid}/.+\\.lbk$`));
      assert.equal(progress.lsnOfLastBackupRecord, lsnAtBackup);
      assert.ok(progress.timeStampUtc instanceof Date && progress.timeStampUtc >= started && progress.timeStampUtc <= new Date(), String(progress.timeStampUtc));
      assert.equal(progress.failureError, undefined);
    });
    assert.ok(progress?.backupState === 'Success', 'the backup is needed for the rest');
    const backupId = progress.backupId ?? '';
    const backupLocation = progress.backupLocation ?? '';

    await t.test('getPartitionBackupProgress: the epoch deserializes through the client\'s BackupEpoch model', async () => {
      // azure-servicefabric 2.2.0 (BackupRestore 6.2-preview) names BackupEpoch's members
      // ConfigurationNumber / DataLossNumber; what the client cannot map, it drops.
      const p = await client.getPartitionBackupProgress(pid);
      assert.deepEqual(p.epochOfLastBackupRecord, { configurationNumber: epochNow?.configurationVersion, dataLossNumber: epochNow?.dataLossVersion },
        `raw answer: ${await rawText(`${lb.url}/Partitions/${pid}/$/GetBackupProgress?api-version=6.2-preview`)}`);
    });

    // A second backup, of another partition, for the lists and paging.
    const other = partitions.find((p) => p !== target)?.partitionInformation?.id ?? '';
    await client.backupPartition(other, { backupPartitionDescription: { backupStorage: fileShare(lb) } });
    const otherProgress = await backupDone(client, other);
    assert.equal(otherProgress.backupState, 'Success', JSON.stringify(otherProgress));

    // ---- lists --------------------------------------------------------------------------------
    const checkItem = (b: models.BackupInfo | undefined): void => {
      assert.ok(b);
      assert.equal(b.backupId, backupId);
      assert.equal(b.backupChainId, backupId, 'a full backup starts its own chain');
      assert.equal(b.applicationName, APP_NAME);
      assert.equal(b.serviceName, SERVICE_NAME);
      assert.equal(b.backupLocation, backupLocation);
      assert.equal(b.backupType, 'Full');
      assert.equal(b.lsnOfLastBackupRecord, lsnAtBackup);
      assert.ok(b.creationTimeUtc instanceof Date && b.creationTimeUtc >= started && b.creationTimeUtc <= new Date(), String(b.creationTimeUtc));
      assert.deepEqual(b.partitionInformation, { id: pid, servicePartitionKind: 'Int64Range', lowKey: info.lowKey, highKey: info.highKey });
    };

    await t.test('getPartitionBackupList', async () => {
      const list = await client.getPartitionBackupList(pid);
      assert.equal(list.items?.length, 1);
      checkItem(list.items?.[0]);
      const latest = await client.getPartitionBackupList(pid, { latest: true, startDateTimeFilter: started, endDateTimeFilter: new Date(Date.now() + 60_000) });
      assert.deepEqual(latest.items?.map((b) => b.backupId), [backupId]);
      const future = await client.getPartitionBackupList(pid, { startDateTimeFilter: new Date(Date.now() + 3_600_000) });
      assert.deepEqual(future.items, []);
    });

    await t.test('getServiceBackupList and getApplicationBackupList', async () => {
      const want = [backupId, otherProgress.backupId].sort();
      const svc = await client.getServiceBackupList(SERVICE_ID);
      assert.deepEqual(svc.items?.map((b) => b.backupId).sort(), want);
      assert.equal(svc.continuationToken, '');
      checkItem(svc.items?.find((b) => b.backupId === backupId));
      const app = await client.getApplicationBackupList(APP_ID, { latest: true, startDateTimeFilter: started, endDateTimeFilter: new Date(Date.now() + 60_000) });
      assert.deepEqual(app.items?.map((b) => b.backupId).sort(), want);
      checkItem(app.items?.find((b) => b.backupId === backupId));
    });

    await t.test('getServiceBackupList pages with maxResults and the continuationToken, as the client sends it', async () => {
      // The client pastes ContinuationToken into the URL unencoded (x-ms-skip-url-encoding).
      const seen: string[] = [];
      let token: string | undefined;
      for (let page = 0; page < 5; page++) {
        const res: models.PagedBackupInfoList = await client.getServiceBackupList(SERVICE_ID, { maxResults: 1, ...(token ? { continuationToken: token } : {}) });
        assert.ok((res.items?.length ?? 0) <= 1, `page ${page} holds at most MaxResults=1 item; request ${sent[sent.length - 1]?.url ?? ''}; got ${JSON.stringify(res)}`);
        seen.push(...(res.items ?? []).map((b) => b.backupId ?? ''));
        token = res.continuationToken;
        if (!token) break;
      }
      assert.deepEqual(seen, [...new Set(seen)], 'no backup twice');
      assert.deepEqual(seen.sort(), [backupId, otherProgress.backupId].sort());
    });

    await t.test('getBackupsFromBackupLocation for a partition, a service and an application', async () => {
      const n = sent.length;
      const byPartition = await client.getBackupsFromBackupLocation({ storage: fileShare(lb), backupEntity: { entityKind: 'Partition', serviceName: SERVICE_NAME, partitionId: pid } as models.PartitionBackupEntity });
      assert.deepEqual(JSON.parse(sent[n]?.body ?? 'null'), { Storage: { StorageKind: 'FileShare', Path: lb.share }, BackupEntity: { EntityKind: 'Partition', ServiceName: SERVICE_NAME, PartitionId: pid } });
      assert.equal(byPartition.items?.length, 1);
      checkItem(byPartition.items?.[0]);
      const byService = await client.getBackupsFromBackupLocation({ storage: fileShare(lb), backupEntity: { entityKind: 'Service', serviceName: SERVICE_NAME } as models.ServiceBackupEntity });
      assert.deepEqual(byService.items?.map((b) => b.backupId).sort(), [backupId, otherProgress.backupId].sort());
      const byApp = await client.getBackupsFromBackupLocation({ storage: fileShare(lb), backupEntity: { entityKind: 'Application', applicationName: APP_NAME } as models.ApplicationBackupEntity, latest: true });
      assert.deepEqual(byApp.items?.map((b) => b.backupId).sort(), [backupId, otherProgress.backupId].sort());
      checkItem(byApp.items?.find((b) => b.backupId === backupId));
    });

    await t.test('backup lists: epochs deserialize through the client\'s BackupEpoch model', async () => {
      const list = await client.getPartitionBackupList(pid);
      assert.deepEqual(list.items?.[0]?.epochOfLastBackupRecord, { configurationNumber: epochNow?.configurationVersion, dataLossNumber: epochNow?.dataLossVersion },
        `raw answer: ${await rawText(`${lb.url}/Partitions/${pid}/$/GetBackups?api-version=6.2-preview`)}`);
    });

    // ---- restore ------------------------------------------------------------------------------
    // Change the partition, then restore the backup over it.
    partition.transact((tx) => {
      for (const { key } of before) tx.dictionary('kv').delete(key);
      tx.dictionary('kv').set('after', 'x');
    });
    assert.notDeepEqual(partition.dictionary('kv').enumerate(), before);

    let restored: models.RestoreProgressInfo | undefined;
    await t.test('restorePartition, then getPartitionRestoreProgress until Success; the sample app serves the restored data', async () => {
      const n = sent.length;
      await client.restorePartition(pid, { backupId, backupLocation, backupStorage: fileShare(lb) }, { restoreTimeout: 5 });
      assert.equal(sent[n]?.url, `${lb.url}/Partitions/${pid}/$/Restore?RestoreTimeout=5&api-version=6.2-preview&timeout=60`);
      assert.deepEqual(JSON.parse(sent[n]?.body ?? 'null'), { BackupId: backupId, BackupLocation: backupLocation, BackupStorage: { StorageKind: 'FileShare', Path: lb.share } });
      restored = await restoreDone(client, pid);
      assert.equal(restored.restoreState, 'Success', JSON.stringify(restored));
      assert.equal(restored.restoredLsn, lsnAtBackup);
      assert.ok(restored.timeStampUtc instanceof Date && restored.timeStampUtc >= started, String(restored.timeStampUtc));
      assert.equal(restored.failureError, undefined);
      assert.deepEqual(partition.dictionary('kv').enumerate(), before);
      for (const { key, value } of before) {
        const r = await fetch(`${sample.url}/kv/${encodeURIComponent(key)}`);
        assert.equal(r.status, 200, key);
        assert.equal(await r.text(), value);
      }
      assert.equal((await fetch(`${sample.url}/kv/after`)).status, 404, 'the key written after the backup is gone');
    });

    await t.test('getPartitionRestoreProgress: the epoch deserializes through the client\'s BackupEpoch model', async () => {
      const r = await client.getPartitionRestoreProgress(pid);
      const raw = JSON.parse(await rawText(`${lb.url}/Partitions/${pid}/$/GetRestoreProgress?api-version=6.2-preview`)) as Record<string, Record<string, string> | null>;
      const e = raw.RestoredEpoch;
      assert.ok(e, JSON.stringify(raw));
      // Whatever epoch the server reports, the client must see it.
      assert.deepEqual(r.restoredEpoch, { configurationNumber: e.ConfigurationNumber ?? e.ConfigurationVersion, dataLossNumber: e.DataLossNumber ?? e.DataLossVersion }, `raw answer: ${JSON.stringify(raw)}`);
    });

    await t.test('getPartitionRestoreProgress: RestoredEpoch is the epoch of the restored backup, like RestoredLsn', async () => {
      // The Service Fabric examples (GetPartitionRestoreProgress, 6.2-preview and 6.4) give
      // RestoredEpoch and RestoredLsn equal to EpochOfLastBackupRecord and LsnOfLastBackupRecord of
      // the backup the GetBackups examples list: the point of the partition's history restored.
      const raw = JSON.parse(await rawText(`${lb.url}/Partitions/${pid}/$/GetRestoreProgress?api-version=6.4`)) as { RestoredEpoch: unknown; RestoredLsn: string };
      const nowInfo = (await client.getPartitionInfo(pid)) as models.StatefulServicePartitionInfo;
      assert.equal(raw.RestoredLsn, lsnAtBackup);
      assert.deepEqual(raw.RestoredEpoch, { DataLossVersion: epochNow?.dataLossVersion, ConfigurationVersion: epochNow?.configurationVersion },
        `the backup's epoch was ${JSON.stringify(epochNow)}; the partition's epoch now is ${JSON.stringify(nowInfo.currentConfigurationEpoch)}`);
    });

    // ---- errors -------------------------------------------------------------------------------
    await t.test('errors surface with the FabricError code the client parsed', async () => {
      assertClientError(await clientError(client.getPartitionInfo(UNKNOWN_PID)), 404, 'FABRIC_E_PARTITION_NOT_FOUND');
      assertClientError(await clientError(client.getPartitionBackupProgress(UNKNOWN_PID)), 404, 'FABRIC_E_PARTITION_NOT_FOUND');
      assertClientError(await clientError(client.backupPartition(UNKNOWN_PID, { backupPartitionDescription: { backupStorage: fileShare(lb) } })), 404, 'FABRIC_E_PARTITION_NOT_FOUND');
      assertClientError(await clientError(client.getApplicationInfo('NoSuchApp')), 404, 'FABRIC_E_APPLICATION_NOT_FOUND');
      assertClientError(await clientError(client.getPartitionInfoList('SampleApp~NoSuchService')), 404, 'FABRIC_E_SERVICE_DOES_NOT_EXIST');
      assertClientError(await clientError(client.backupPartition(pid, { backupPartitionDescription: { backupStorage: { storageKind: 'FileShare', path: '/etc' } as models.FileShareBackupStorageDescription } })), 400, 'E_INVALIDARG');
      assertClientError(await clientError(client.backupPartition(pid)), 404, 'FABRIC_E_BACKUP_NOT_ENABLED');
      assertClientError(await clientError(client.restorePartition(pid, { backupId: UNKNOWN_PID, backupLocation, backupStorage: fileShare(lb) })), 400, 'E_INVALIDARG');
    });

    // Every request went to this Lifeboat, backup routes with the client's preview api-version.
    assert.ok(sent.length > 0);
    for (const s of sent) {
      assert.ok(s.url.startsWith(`${lb.url}/`), s.url);
      const v = new URL(s.url).searchParams.get('api-version');
      assert.ok(/\$\/(Backup|GetBackupProgress|Restore|GetRestoreProgress|GetBackups)\b/.test(s.url) ? v === '6.2-preview' : v === '6.0' || v === '6.1', `${s.url}`);
    }
  });
});

async function rawText(url: string): Promise<string> {
  return (await lbFetch(url)).text();
}

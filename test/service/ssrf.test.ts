/**
 * SSRF through the API: a listener on a loopback port that is not allow-listed receives no
 * connection from a policy (with ValidateConnection), an on-demand backup, a restore,
 * GetBackupsFromBackupLocation or VerifyBackup naming it — as Azure, managed identity or S3 —
 * and the answer is the same whether anything listens there. Ambient AWS credentials in the
 * service's environment are never sent to a request-named endpoint.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { it } from 'node:test';
import { PUBLIC_CLOUD_SUFFIXES } from '../../src/storage/endpoints.ts';
import { assertFabricError, send } from '../support/api-http.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { SERVICE_NAME } from '../support/sample.ts';

const V = 'api-version=6.4';

it('contacts no endpoint a request names unless it is allow-listed, and says nothing of what listens', async (t) => {
  let connections = 0;
  const server = createServer((s) => { connections++; s.destroy(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => { server.close(); });
  const port = (server.address() as { port: number }).port;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = 'AKIAAMBIENTSENTINEL';
  process.env.AWS_SECRET_ACCESS_KEY = 'ambient-secret-sentinel';
  t.after(() => {
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID; else process.env.AWS_ACCESS_KEY_ID = saved.id;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY; else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
  });
  // The default allow-list: public cloud suffixes only.
  const lb = await startTestLifeboat(t, { storageEndpoints: PUBLIC_CLOUD_SUFFIXES });
  const pid = (await lb.catalog.hierarchy.listPartitions(SERVICE_NAME))[0]?.id as string;
  const storages = (p: number): Array<Record<string, unknown>> => [
    { StorageKind: 'AzureBlobStore', ConnectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:${p}/devstoreaccount1;`, ContainerName: 'ccc' },
    { StorageKind: 'ManagedIdentityAzureBlobStore', ManagedIdentityType: 'VMSS', BlobServiceUri: `https://127.0.0.1:${p}/`, ContainerName: 'ccc' },
    { StorageKind: 'S3', Bucket: 'bkt', Endpoint: `http://127.0.0.1:${p}`, ForcePathStyle: true },
    { StorageKind: 'S3', Bucket: 'bkt', Endpoint: `http://localhost:${p}`, AccessKeyId: 'AK', SecretAccessKey: 'SK' },
    { StorageKind: 'S3', Bucket: 'bkt', Endpoint: `http://2130706433:${p}`, AccessKeyId: 'AK', SecretAccessKey: 'SK' },
  ];
  const requests = (storage: Record<string, unknown>): Array<{ method: string; path: string; body: unknown }> => [
    { method: 'POST', path: `/BackupRestore/BackupPolicies/$/Create?${V}&ValidateConnection=true`, body: { Name: 'p1', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 0, Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT30M' }, Storage: storage } },
    { method: 'POST', path: `/Partitions/${pid}/$/Backup?${V}`, body: { BackupStorage: storage } },
    { method: 'POST', path: `/Partitions/${pid}/$/Restore?${V}`, body: { BackupId: '00000000-0000-4000-8000-000000000001', BackupLocation: 'SampleApp/MyStatefulService/x/y.lbk', BackupStorage: storage } },
    { method: 'POST', path: `/Partitions/${pid}/$/VerifyBackup?${V}`, body: { BackupId: '00000000-0000-4000-8000-000000000001', BackupLocation: 'SampleApp/MyStatefulService/x/y.lbk', BackupStorage: storage } },
    { method: 'POST', path: `/BackupRestore/$/GetBackups?${V}`, body: { Storage: storage, BackupEntity: { EntityKind: 'Service', ServiceName: SERVICE_NAME } } },
  ];
  const closedPort = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
  for (const [i, storage] of storages(port).entries()) {
    for (const [j, r] of requests(storage).entries()) {
      const open = await send(lb.url, r);
      assertFabricError(open, 400, 'E_INVALIDARG', `${r.method} ${r.path} naming ${JSON.stringify(storage)}`);
      const other = requests(storages(closedPort)[i] as Record<string, unknown>)[j] as typeof r;
      const closed = await send(lb.url, other);
      assert.equal(open.text.replaceAll(String(port), 'P'), closed.text.replaceAll(String(closedPort), 'P'), 'the same answer whether something listens');
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(connections, 0, 'the listener was never contacted');
  assert.equal((await lb.catalog.policies.list()).length, 0);
});

/**
 * Policy secrets through the service, over SealedCatalog(SqliteCatalog): GetBackupPolicy answers
 * them masked; an UpdateBackupPolicy that sends the mask "****" back keeps the stored secret while
 * the storage (kind, identity) and the secret's user name or key id stay the same, and is refused
 * when they changed; the catalog file never holds a secret in clear.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { loadOrCreateCatalogKey } from '../../src/catalog/catalog-key.ts';
import { SealedCatalog } from '../../src/catalog/sealed.ts';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { isLifeboatError } from '../../src/core/errors.ts';
import { LifeboatService } from '../../src/service/lifeboat-service.ts';
import { openStorage } from '../../src/storage/open.ts';
import { tempDir } from '../support/tmp.ts';

const sentinel = (what: string): string => `${what}-${randomBytes(12).toString('hex')}`;

function world(t: TestContext): { dir: string; root: string; catalog: SealedCatalog; service: LifeboatService } {
  const dir = tempDir(t);
  const root = join(dir, 'backups');
  mkdirSync(root);
  const catalog = new SealedCatalog(new SqliteCatalog(join(dir, 'catalog.sqlite')), loadOrCreateCatalogKey(dir));
  t.after(() => catalog.close().catch(() => undefined));
  const service = new LifeboatService({ catalog, clock: { now: () => new Date('2026-03-01T10:00:00.000Z') }, openStorage: (d) => openStorage(d, { fileShareRoots: [root] }) });
  return { dir, root, catalog, service };
}

function body(name: string, storage: Record<string, unknown>, maxIncrementals = 3): Record<string, unknown> {
  return { Name: name, AutoRestoreOnDataLoss: false, MaxIncrementalBackups: maxIncrementals, Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT10M' }, Storage: storage };
}

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLifeboatError(err, 'E_INVALIDARG'), String(err));
    assert.match(err.message, pattern);
    return true;
  });
}

async function storedStorage(catalog: SealedCatalog, name: string): Promise<Record<string, unknown>> {
  return (await catalog.policies.get(name))!.policy.storage as Record<string, unknown>;
}

describe('policy secrets through the service', () => {
  it('a GET → Update round trip that sends "****" back keeps the stored secret', async (t) => {
    const { dir, root, catalog, service } = world(t);
    const pw = sentinel('pw');
    const conn = `DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=${sentinel('ak')};EndpointSuffix=core.windows.net`;
    const s3key = sentinel('s3');
    const share = { StorageKind: 'FileShare', Path: join(root, 'a'), PrimaryUserName: 'backup', PrimaryPassword: pw };
    await service.policies.createPolicy(body('share', share), false);
    await service.policies.createPolicy(body('azure', { StorageKind: 'AzureBlobStore', ConnectionString: conn, ContainerName: 'cont1' }), false);
    await service.policies.createPolicy(body('s3', { StorageKind: 'S3', Bucket: 'bucket1', AccessKeyId: 'AKIA1', SecretAccessKey: s3key }), false);

    const got = await service.policies.getPolicy('share');
    assert.equal((got.Storage as Record<string, unknown>).PrimaryPassword, '****');
    assert.deepEqual((await service.policies.listPolicies()).map((p) => Object.entries(p.Storage as Record<string, unknown>).filter(([, v]) => v === '****').map(([k]) => k)),
      [['ConnectionString'], ['SecretAccessKey'], ['PrimaryPassword']]);
    const before = (await catalog.policies.get('share'))!.uniqueId;

    // What GET answered, with one change, goes back: the password is kept, the change is made.
    await service.policies.updatePolicy('share', { ...got, MaxIncrementalBackups: 7 }, false);
    const after = (await catalog.policies.get('share'))!;
    assert.equal((after.policy.storage as Record<string, unknown>).PrimaryPassword, pw);
    assert.equal(after.policy.maxIncrementalBackups, 7);
    assert.notEqual(after.uniqueId, before);

    // Azure: the masked ConnectionString carries the account; the same container keeps it.
    await service.policies.updatePolicy('azure', { ...(await service.policies.getPolicy('azure')), MaxIncrementalBackups: 5 }, false);
    assert.equal((await storedStorage(catalog, 'azure')).ConnectionString, conn);
    await service.policies.updatePolicy('s3', await service.policies.getPolicy('s3'), false);
    assert.equal((await storedStorage(catalog, 's3')).SecretAccessKey, s3key);

    // A secret sent again replaces the stored one.
    const pw2 = sentinel('pw2');
    await service.policies.updatePolicy('share', body('share', { ...share, PrimaryPassword: pw2 }), false);
    assert.equal((await storedStorage(catalog, 'share')).PrimaryPassword, pw2);

    // No secret is in the catalog's files in clear.
    for (const f of readdirSync(dir).filter((n) => n.startsWith('catalog.sqlite'))) {
      const bytes = readFileSync(join(dir, f));
      for (const s of [pw, pw2, conn, s3key]) assert.equal(bytes.indexOf(s), -1, `${f} holds a secret`);
    }
  });

  it('refuses the mask when the storage, or the secret\'s user name or key id, changed', async (t) => {
    const { root, catalog, service } = world(t);
    const pw = sentinel('pw');
    const share = { StorageKind: 'FileShare', Path: join(root, 'a'), PrimaryUserName: 'backup', PrimaryPassword: pw };
    await service.policies.createPolicy(body('share', share), false);
    const conn = `DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=${sentinel('ak')};EndpointSuffix=core.windows.net`;
    await service.policies.createPolicy(body('azure', { StorageKind: 'AzureBlobStore', ConnectionString: conn, ContainerName: 'cont1' }), false);
    await service.policies.createPolicy(body('s3', { StorageKind: 'S3', Bucket: 'bucket1', AccessKeyId: 'AKIA1', SecretAccessKey: sentinel('s3') }), false);
    const masked = { ...share, PrimaryPassword: '****' };

    await refused(service.policies.updatePolicy('share', body('share', { ...masked, Path: join(root, 'elsewhere') }), false), /send the secret again: the storage changed/);
    await refused(service.policies.updatePolicy('share', body('share', { StorageKind: 'S3', Bucket: 'bucket0', SecretAccessKey: '****' }), false), /StorageKind .*send the secret again: the storage changed/);
    await refused(service.policies.updatePolicy('share', body('share', { ...masked, PrimaryUserName: 'someone-else' }), false), /PrimaryUserName is not the stored policy's/);
    await refused(service.policies.updatePolicy('share', body('share', { ...share, SecondaryUserName: 'u2', SecondaryPassword: '****' }), false), /stored policy has no SecondaryPassword/);
    await refused(service.policies.updatePolicy('azure', body('azure', { StorageKind: 'AzureBlobStore', ConnectionString: '****', ContainerName: 'cont2' }), false), /send the secret again: the storage changed/);
    await refused(service.policies.updatePolicy('s3', body('s3', { StorageKind: 'S3', Bucket: 'bucket2', AccessKeyId: 'AKIA1', SecretAccessKey: '****' }), false), /the storage changed/);
    await refused(service.policies.updatePolicy('s3', body('s3', { StorageKind: 'S3', Bucket: 'bucket1', AccessKeyId: 'AKIA2', SecretAccessKey: '****' }), false), /AccessKeyId is not the stored policy's/);

    // Nothing changed by the refusals.
    assert.equal((await storedStorage(catalog, 'share')).PrimaryPassword, pw);
    assert.equal((await storedStorage(catalog, 'share')).Path, join(root, 'a'));
    assert.equal((await storedStorage(catalog, 'azure')).ConnectionString, conn);
  });

  it('refuses the mask as the secret of a new policy', async (t) => {
    const { root, service } = world(t);
    await refused(service.policies.createPolicy(body('p', { StorageKind: 'FileShare', Path: join(root, 'a'), PrimaryUserName: 'u', PrimaryPassword: '****' }), false),
      /PrimaryPassword is '\*\*\*\*', the mask Lifeboat answers in place of a secret: send the secret itself/);
    await assert.rejects(service.policies.getPolicy('p'), (err: unknown) => isLifeboatError(err, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING'));
  });
});

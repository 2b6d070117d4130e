/**
 * openStorage and StorageRegistry: build every storage kind without touching the network, wrap
 * each in a RetryingStore, refuse what is not usable up front; a registry shares one cloud adapter
 * (and so its SDK client and connections) between calls for the same description — but never
 * between descriptions that differ in anything but their FriendlyName, secrets included, and never
 * with another registry.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, it } from 'node:test';
import { isLifeboatError } from '../../src/core/errors.ts';
import type { StorageDescription } from '../../src/core/storage-description.ts';
import { AzureBlobStore } from '../../src/storage/azure-blob.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import { StorageRegistry, type StoragePolicy, openStorage } from '../../src/storage/open.ts';
import { RetryingStore } from '../../src/storage/retry.ts';
import { S3Store } from '../../src/storage/s3.ts';
import { tempDir } from '../support/tmp.ts';

const policy = { fileShareRoots: ['/srv/backups'] };
/** A registry closed when the test ends. */
function registry(t: TestContext, p: StoragePolicy = policy): StorageRegistry {
  const stores = new StorageRegistry(p);
  t.after(() => stores.close());
  return stores;
}
// Nothing listens on port 1: building a store must not need the endpoint.
const azure: StorageDescription = { StorageKind: 'AzureBlobStore', ConnectionString: 'DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=c2VjcmV0LWtleQ==;BlobEndpoint=http://127.0.0.1:1/acct;', ContainerName: 'backups' };
const identity: StorageDescription = { StorageKind: 'ManagedIdentityAzureBlobStore', ManagedIdentityType: 'VMSS', BlobServiceUri: 'https://acct.blob.core.windows.net', ContainerName: 'backups' };
const s3: StorageDescription = { StorageKind: 'S3', Bucket: 'lifeboat-backups', Region: 'eu-west-1', Endpoint: 'http://127.0.0.1:1', AccessKeyId: 'AKIAEXAMPLE', SecretAccessKey: 'secret-one', ForcePathStyle: true };

it('builds every storage kind, each wrapped in a RetryingStore, without any network', (t) => {
  const root = tempDir(t);
  const cases: Array<[StorageDescription, new (...args: never[]) => object, string]> = [
    [{ StorageKind: 'FileShare', Path: join(root, 'share') }, FileShareStore, `FileShare ${join(root, 'share')}`],
    [azure, AzureBlobStore, 'AzureBlobStore acct/backups'],
    [identity, AzureBlobStore, 'AzureBlobStore (managed identity) acct/backups'],
    [s3, S3Store, 'S3 http://127.0.0.1:1/lifeboat-backups'],
  ];
  const stores = registry(t, { fileShareRoots: [root] });
  for (const [d, kind, description] of cases) {
    for (const store of [openStorage(d, { fileShareRoots: [root] }), stores.open(d)]) {
      assert.ok(store instanceof RetryingStore, d.StorageKind);
      assert.equal(store.description, description);
    }
    assert.ok(stores.openAdapter(d) instanceof kind, d.StorageKind);
  }
});

it('shares one cloud adapter per description, and a new one when anything but FriendlyName differs', (t) => {
  const stores = registry(t);
  for (const [d, changed] of [
    [azure, { ConnectionString: (azure as { ConnectionString: string }).ConnectionString.replace('c2VjcmV0LWtleQ==', 'b3RoZXIta2V5') }],
    [azure, { ContainerName: 'other' }],
    [identity, { ManagedIdentityType: 'Cluster' }],
    [s3, { SecretAccessKey: 'secret-two' }],
    [s3, { ForcePathStyle: false }],
    [s3, { Region: 'us-east-1' }],
  ] as Array<[StorageDescription, Record<string, unknown>]>) {
    const first = stores.openAdapter(d);
    assert.equal(stores.openAdapter({ ...d }), first, `${d.StorageKind}: the same description`);
    assert.equal(stores.openAdapter({ ...d, FriendlyName: 'a label' }), first, `${d.StorageKind}: only the label differs`);
    assert.notEqual(stores.openAdapter({ ...d, ...changed } as StorageDescription), first, `${d.StorageKind}: ${Object.keys(changed).join()} differs`);
    assert.notEqual(registry(t).openAdapter(d), first, `${d.StorageKind}: another registry has its own`);
    // Each call still gets its own wrapper.
    assert.notEqual(stores.open(d), stores.open(d));
  }
});

it('refuses descriptions no store can be built from, without echoing secrets', (t) => {
  const stores = registry(t);
  const refused = (d: unknown, pattern: RegExp, secret?: string): void => {
    for (const open of [() => openStorage(d as StorageDescription, policy), () => stores.open(d as StorageDescription)]) {
      assert.throws(open, (e: unknown) => {
        assert.ok(isLifeboatError(e, 'E_INVALIDARG'), String(e));
        assert.match(e.message, pattern);
        if (secret) assert.ok(!e.message.includes(secret), 'the message carries the secret');
        return true;
      });
    }
  };
  refused({ ...azure, ContainerName: 'Bad_Name' }, /not a valid Azure container name/);
  refused({ ...azure, ConnectionString: 'DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey=c2VjcmV0LWtleQ==' }, /not a usable Azure Storage connection string/, 'c2VjcmV0LWtleQ==');
  refused({ ...identity, BlobServiceUri: 'http://acct.blob.core.windows.net' }, /must be an https URL/);
  refused({ ...s3, Endpoint: 'ftp://127.0.0.1' }, /is not an http\(s\) URL/);
  refused({ ...s3, AccessKeyId: undefined }, /AccessKeyId and SecretAccessKey must be given together/);
  refused({ StorageKind: 'DsmsAzureBlobStore' }, /not supported/);
});

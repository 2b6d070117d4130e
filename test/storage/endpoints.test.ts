/**
 * The endpoint allow-list and the ambient-credential rule (src/storage/endpoints.ts), through
 * openStorage: what is refused before any connection, odd IP spellings, suffixes on a dot
 * boundary, symlinks out of a FileShare root, and a flood of distinct S3 descriptions (a
 * StorageRegistry stays bounded, closes what it evicts after a grace, and closes everything it
 * holds when it is closed).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { type TestContext, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { isLifeboatError } from '../../src/core/errors.ts';
import type { StorageDescription } from '../../src/core/storage-description.ts';
import { DEFAULT_ENDPOINT_RULES, type EndpointRules, azureBlobEndpointOf, checkEndpointEntries } from '../../src/storage/endpoints.ts';
import { StorageRegistry, openStorage } from '../../src/storage/open.ts';
import { S3Store } from '../../src/storage/s3.ts';
import { tempDir } from '../support/tmp.ts';

const refused = (d: StorageDescription, endpoints: EndpointRules = DEFAULT_ENDPOINT_RULES): string => {
  try {
    openStorage(d, { fileShareRoots: [], endpoints });
  } catch (err) {
    assert.ok(isLifeboatError(err, 'E_INVALIDARG'), String(err));
    return err.message;
  }
  assert.fail(`${JSON.stringify(d)} was accepted`);
};
const accepted = (d: StorageDescription, endpoints: EndpointRules = DEFAULT_ENDPOINT_RULES): void => {
  assert.ok(openStorage(d, { fileShareRoots: [], endpoints }));
};
const s3 = (endpoint: string | undefined, keys = true): StorageDescription => ({
  StorageKind: 'S3', Bucket: 'bkt', ...(endpoint ? { Endpoint: endpoint } : {}), Region: 'us-east-1', ...(keys ? { AccessKeyId: 'AK', SecretAccessKey: 'SK' } : {}),
});
const azure = (cs: string): StorageDescription => ({ StorageKind: 'AzureBlobStore', ConnectionString: cs, ContainerName: 'c1c' });

async function listener(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((s) => { n++; s.destroy(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, connections: () => n };
}

describe('storage endpoints', () => {
  it('allows the public clouds by default and refuses loopback, private and metadata addresses in every spelling', () => {
    accepted(s3(undefined));
    accepted(s3('https://s3.eu-west-1.amazonaws.com'));
    accepted(azure('DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net'));
    for (const host of ['127.0.0.1', 'localhost', '2130706433', '0x7f.1', '127.1', '[::1]', '[::ffff:127.0.0.1]', '169.254.169.254', '10.0.0.5', 'metadata.google.internal']) {
      assert.match(refused(s3(`http://${host}:9000`)), /not on this Lifeboat's allow-list/, host);
    }
    // A suffix matches on a dot boundary only.
    refused(s3('https://evil-amazonaws.com'));
    refused(s3('https://s3.amazonaws.com.attacker.example'));
    refused(azure('BlobEndpoint=https://acct.blob.core.windows.net.attacker.example/;SharedAccessSignature=sv=x'));
    refused(azure('UseDevelopmentStorage=true'));
    refused({ StorageKind: 'ManagedIdentityAzureBlobStore', ManagedIdentityType: 'VMSS', BlobServiceUri: 'https://169.254.169.254/', ContainerName: 'c1c' });
    assert.match(refused(s3('ftp://x')), /http or https/);
    assert.match(refused(s3('http://user:pw@s3.amazonaws.com')), /user info/);
  });

  it('normalizes odd IP spellings before an exact entry: listing 127.0.0.1 allows them, and only them', () => {
    const rules: EndpointRules = { allowed: ['127.0.0.1:9000'], ambient: [] };
    for (const host of ['127.0.0.1', '2130706433', '0x7f.1', '127.1']) accepted(s3(`http://${host}:9000`), rules);
    refused(s3('http://127.0.0.1:9001'), rules);
    refused(s3('http://127.0.0.2:9000'), rules);
    refused(s3('http://localhost:9000'), rules);
    assert.equal(azureBlobEndpointOf('AccountName=abc;AccountKey=x').href, 'https://abc.blob.core.windows.net/');
    assert.throws(() => checkEndpointEntries(['http://x/y']), /not an endpoint entry/);
    checkEndpointEntries(['.example.com', 'host:1', '[::1]:2', 's3://my-bucket']);
  });

  it('sends the machine\'s own credentials only to endpoints the operator listed for them', () => {
    const rules: EndpointRules = { allowed: ['127.0.0.1', '.amazonaws.com'], ambient: ['s3://ours'] };
    assert.match(refused(s3('http://127.0.0.1:9000', false), rules), /own credentials/);
    assert.match(refused(s3(undefined, false), rules), /own credentials for bucket 'bkt'/);
    accepted({ StorageKind: 'S3', Bucket: 'ours', Region: 'us-east-1' }, rules);
    accepted(s3('http://127.0.0.1:9000', true), rules);
    const mi: StorageDescription = { StorageKind: 'ManagedIdentityAzureBlobStore', ManagedIdentityType: 'VMSS', BlobServiceUri: 'https://acct.blob.core.windows.net/', ContainerName: 'c1c' };
    assert.match(refused(mi), /own credentials/);
    accepted(mi, { allowed: DEFAULT_ENDPOINT_RULES.allowed, ambient: ['acct.blob.core.windows.net'] });
  });

  it('refuses with the same words whether something listens or not, and connects to nothing', async (t) => {
    const open = await listener();
    t.after(() => { open.server.close(); });
    const closed = await listener();
    await new Promise<void>((r) => closed.server.close(() => r()));
    const strip = (m: string, port: number): string => m.replaceAll(String(port), 'PORT');
    for (const make of [(p: number) => s3(`http://127.0.0.1:${p}`), (p: number) => azure(`DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:${p}/a;`)]) {
      assert.equal(strip(refused(make(open.port)), open.port), strip(refused(make(closed.port)), closed.port));
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(open.connections(), 0);
  });

  it('resolves FileShare paths before checking them: a symlink out of a root is refused', () => {
    const dir = tempDir({ after: () => undefined });
    const root = join(dir, 'root');
    const outside = join(dir, 'outside');
    mkdirSync(join(root, 'team'), { recursive: true });
    mkdirSync(outside);
    symlinkSync(outside, join(root, 'escape'));
    const policy = { fileShareRoots: [root] };
    assert.ok(openStorage({ StorageKind: 'FileShare', Path: join(root, 'team') }, policy));
    assert.ok(openStorage({ StorageKind: 'FileShare', Path: join(root, 'team', 'not-yet') }, policy), 'a folder to be made inside');
    for (const Path of [join(root, 'escape'), join(root, 'escape', 'deeper'), `${root}/team/../../outside`]) {
      assert.throws(() => openStorage({ StorageKind: 'FileShare', Path }, policy), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG') && !(e as Error).message.includes(`'${outside}'`), Path);
    }
  });

  it('keeps at most 64 cloud stores for 2,000 distinct S3 descriptions (evicted ones are closed after a grace); descriptors stay bounded', async (t) => {
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    const rules: EndpointRules = { allowed: ['127.0.0.1'], ambient: [] };
    const stores = new StorageRegistry({ fileShareRoots: [], endpoints: rules });
    t.after(() => stores.close());
    const first = stores.openAdapter(s3('http://127.0.0.1:1'));
    assert.equal(typeof first.close, 'function', 'S3 stores can be closed');
    for (let i = 0; i < 2000; i++) stores.openAdapter({ ...s3('http://127.0.0.1:1'), Bucket: `bucket-${i}` } as StorageDescription);
    assert.equal(stores.size, 64);
    assert.ok(fds() - before < 50, `descriptors ${before} → ${fds()}`);
    const heapMb = process.memoryUsage().heapUsed / 1048576;
    assert.ok(heapMb < 1024, `heap ${heapMb} MB`);
  });
});

describe('StorageRegistry: what it evicts and what it holds is closed', () => {
  const rules: EndpointRules = { allowed: ['127.0.0.1'], ambient: [] };
  const bucket = (name: string): StorageDescription => ({ ...s3('http://127.0.0.1:1'), Bucket: name } as StorageDescription);
  /** How many times each S3Store was closed (the real close still runs). */
  function countCloses(t: TestContext): Map<object, number> {
    const closes = new Map<object, number>();
    const close = S3Store.prototype.close;
    t.mock.method(S3Store.prototype, 'close', async function (this: S3Store) {
      closes.set(this, (closes.get(this) ?? 0) + 1);
      return close.call(this);
    });
    return closes;
  }

  it('closes an evicted store once its grace has passed, and none it still keeps', async (t) => {
    const closes = countCloses(t);
    const stores = new StorageRegistry({ fileShareRoots: [], endpoints: rules }, { maxCached: 2, evictedCloseAfterMs: 50 });
    t.after(() => stores.close());
    const [a, b] = [stores.openAdapter(bucket('a')), stores.openAdapter(bucket('b'))];
    assert.equal(stores.openAdapter(bucket('a')), a, 'a is kept, and now the most recently used');
    const c = stores.openAdapter(bucket('c')); // evicts b, the least recently used
    assert.equal(stores.size, 2);
    assert.notEqual(stores.openAdapter(bucket('b')), b, 'b was evicted: a new store is built for it'); // evicts a
    assert.equal(closes.size, 0, 'nothing is closed during the grace: an operation may still hold it');
    await delay(200);
    assert.deepEqual([b, a, c].map((s) => closes.get(s) ?? 0), [1, 1, 0]);
  });

  it('close() closes every store it keeps and every evicted one still in its grace, once each, and opens nothing after', async (t) => {
    const closes = countCloses(t);
    const stores = new StorageRegistry({ fileShareRoots: [], endpoints: rules }, { maxCached: 3, evictedCloseAfterMs: 50 });
    const opened = ['a', 'b', 'c', 'd', 'e'].map((n) => stores.openAdapter(bucket(n))); // a and b evicted, in their grace
    assert.equal(stores.size, 3);
    await stores.close();
    assert.deepEqual(opened.map((s) => closes.get(s) ?? 0), [1, 1, 1, 1, 1]);
    assert.equal(stores.size, 0);
    await delay(200);
    assert.deepEqual(opened.map((s) => closes.get(s) ?? 0), [1, 1, 1, 1, 1], 'the grace timers were cancelled');
    assert.throws(() => stores.open(bucket('a')), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_UNAVAILABLE'));
    await stores.close(); // a second close is harmless
  });
});

/**
 * The Azure Blob adapter against a real Azurite: the storage contract, plus what only Azure has —
 * a missing container, refused credentials, an endpoint that is not there, block staging and its
 * commit condition, listing order, and the managed-identity (bearer token) path over HTTPS. Then
 * the store openStorage builds, meeting faults a proxy injects into real requests to Azurite: 503s,
 * resets and cut-off downloads are retried (and only by the RetryingStore, not also by the SDK), a
 * streamed put's block is re-sent by the SDK, and permanent failures (in the storage contract) are not retried at all.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { promisify, inspect } from 'node:util';
import { ManagedIdentityCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import fc from 'fast-check';
import { isLifeboatError } from '../../src/core/errors.ts';
import { AzureBlobStore, BLOCK_SIZE, azureBlobStoreFor, inByteOrder, managedIdentityCredential } from '../../src/storage/azure-blob.ts';
import { openStorage } from '../../src/storage/open.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { type RetryInfo, type RetryOptions, isTransient } from '../../src/storage/retry.ts';
import { runStorageContract } from '../contract/storage.contract.ts';
import { type ManagedIdentityReport, azuriteForTests, selfSignedCertificate, startAzurite, startFaultProxy } from '../support/azurite.ts';
import { tempDir } from '../support/tmp.ts';

const az = azuriteForTests();

async function storeIn(t: { after(fn: () => unknown): void }, extra: { listPageSize?: number } = {}): Promise<AzureBlobStore> {
  return new AzureBlobStore({ connectionString: az.server().connectionString, containerName: await az.container(t), ...extra });
}

async function keys(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

async function text(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const byBytes = (ks: readonly string[]): string[] => [...ks].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

/** Every string reachable from `x` through own properties (enumerable or not), as a logger might serialize it. */
function reachableText(x: unknown, seen = new Set<unknown>(), depth = 0): string {
  if (typeof x === 'string') return x;
  if (x === null || typeof x !== 'object' || seen.has(x) || depth > 8) return '';
  seen.add(x);
  const parts: string[] = [];
  if (x instanceof Map) for (const [k, v] of x) parts.push(reachableText(k, seen, depth + 1), reachableText(v, seen, depth + 1));
  for (const name of Object.getOwnPropertyNames(x)) {
    let v: unknown;
    try {
      v = (x as Record<string, unknown>)[name];
    } catch {
      continue;
    }
    parts.push(reachableText(v, seen, depth + 1));
  }
  return parts.join('\n');
}

/** Checks a storage failure: its code, a message matching `pattern`, and no `secret` anywhere in it. */
function unavailable(pattern: RegExp, secret?: string) {
  return (e: unknown): boolean => {
    assert.ok(isLifeboatError(e, 'LIFEBOAT_E_STORAGE_UNAVAILABLE'), `expected STORAGE_UNAVAILABLE, got ${inspect(e)}`);
    assert.match(e.message, pattern);
    if (secret !== undefined) {
      for (const form of [secret, encodeURIComponent(secret)]) {
        assert.ok(!inspect(e, { depth: Infinity }).includes(form) && !reachableText(e).includes(form), 'the error carries the secret');
      }
    }
    return true;
  };
}

/** A loopback port nothing listens on (a refused connection). */
function closedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

runStorageContract({
  name: 'AzureBlobStore (Azurite)',
  ...(az.skip ? { skip: az.skip } : {}),
  create: (t) => storeIn(t),
  // Through openStorage (the RetryingStore) and the fault proxy, as the service reaches Azure.
  permanentFailures: async (t) => {
    const proxy = await startFaultProxy(az.server());
    t.after(() => proxy.close());
    const containerName = await az.container(t);
    const port = await closedPort();
    const open = (ConnectionString: string, ContainerName: string) => (retry: RetryOptions): BlobStore =>
      openStorage({ StorageKind: 'AzureBlobStore', ConnectionString, ContainerName }, { fileShareRoots: [], retry });
    const ops = ['validate', 'put', 'get', 'list'] as const;
    return [
      { what: 'missing container', open: open(proxy.connectionString, 'no-such-container'), message: /Azure container 'no-such-container' does not exist/, ops },
      { what: 'wrong key', open: open(proxy.connectionString.replace(az.server().accountKey, randomBytes(64).toString('base64')), containerName), message: /rejected the credentials/, ops },
      {
        what: 'refused connection', open: open(proxy.connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1`), containerName),
        message: /cannot be reached \(ECONNREFUSED\)/, ops,
      },
    ];
  },
});

describe('AzureBlobStore against Azurite', { ...(az.skip ? { skip: az.skip } : {}) }, () => {
  it('describes itself by account and container, without the key', async (t) => {
    const store = await storeIn(t);
    assert.equal(store.description, `AzureBlobStore devstoreaccount1/${store.containerName}`);
    assert.ok(!inspect(store, { depth: Infinity }).includes(az.server().accountKey));
    // validate() writes and deletes a probe; it never shows up as a key.
    await store.validate();
    assert.deepEqual(await keys(store, ''), []);
  });

  it('a missing container fails validate, put, get and list with a message naming it', async () => {
    const store = new AzureBlobStore({ connectionString: az.server().connectionString, containerName: 'no-such-container' });
    const named = /Azure container 'no-such-container' does not exist in account devstoreaccount1/;
    await assert.rejects(store.validate(), unavailable(named));
    await assert.rejects(store.put('a/b', Buffer.from('x')), unavailable(named));
    await assert.rejects(store.put('a/b', Readable.from([Buffer.from('x')])), unavailable(named));
    await assert.rejects(store.get('a/b'), unavailable(named));
    await assert.rejects(store.head('a/b'), unavailable(named));
    await assert.rejects(keys(store, 'a/'), unavailable(named));
  });

  it('a wrong account key is refused with a clear message that does not contain the key', async (t) => {
    const containerName = await az.container(t);
    const wrongKey = randomBytes(64).toString('base64');
    const store = new AzureBlobStore({ connectionString: az.server().connectionString.replace(az.server().accountKey, wrongKey), containerName });
    // Azure says AuthenticationFailed; Azurite says AuthorizationFailure for the same mistake.
    const refused = /Azure Blob storage rejected the credentials \((AuthenticationFailed|AuthorizationFailure)\) for account devstoreaccount1/;
    await assert.rejects(store.validate(), unavailable(refused, wrongKey));
    await assert.rejects(store.put('a/b', Buffer.from('x')), unavailable(refused, wrongKey));
    await assert.rejects(store.get('a/b'), unavailable(refused, wrongKey));
    await assert.rejects(keys(store, ''), unavailable(refused, wrongKey));
    assert.ok(!inspect(store, { depth: Infinity }).includes(wrongKey));
  });

  it('a refused SAS never shows its signature, even in the error\'s cause', async (t) => {
    const containerName = await az.container(t);
    const sig = randomBytes(32).toString('base64');
    const sas = `sv=2023-11-03&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&st=2020-01-01T00:00:00Z&spr=https,http&sig=${encodeURIComponent(sig)}`;
    const store = new AzureBlobStore({ connectionString: `BlobEndpoint=${az.server().blobEndpoint};SharedAccessSignature=${sas}`, containerName });
    assert.equal(store.description, `AzureBlobStore devstoreaccount1/${containerName}`);
    for (const attempt of [() => store.validate(), () => store.put('a/b', Buffer.from('x')), () => store.get('a/b')]) {
      await assert.rejects(attempt(), unavailable(/Azure Blob storage rejected the credentials \((AuthenticationFailed|AuthorizationFailure)\)/, sig));
    }
  });

  it('an endpoint with nothing listening fails with a clear message, without long retries', { timeout: 30_000 }, async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const cs = az.server().connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1`);
    const store = new AzureBlobStore({ connectionString: cs, containerName: 'anything' });
    const refused = new RegExp(`Azure Blob endpoint http://127\\.0\\.0\\.1:${port} cannot be reached \\(ECONNREFUSED\\)`);
    await assert.rejects(store.validate(), unavailable(refused, az.server().accountKey));
    await assert.rejects(store.put('a/b', Buffer.from('x')), unavailable(refused));
    await assert.rejects(store.put('a/b', Readable.from([Buffer.alloc(1024)])), unavailable(refused));
    await assert.rejects(store.head('a/b'), unavailable(refused));
    await assert.rejects(keys(store, ''), unavailable(refused));
  });

  it('a large streamed put goes in several blocks and reads back identically', async (t) => {
    const store = await storeIn(t);
    const total = 40 * 1024 * 1024;
    const sent = createHash('sha256');
    // Chunks of an odd size, so blocks do not line up with them; bytes around the first block
    // boundary are kept to check a range read across it.
    const around = { from: BLOCK_SIZE - 1000, to: BLOCK_SIZE + 1000, bytes: Buffer.alloc(2000) };
    const source = Readable.from((function* () {
      for (let at = 0; at < total;) {
        const chunk = randomBytes(Math.min(1024 * 1024 - 7, total - at));
        sent.update(chunk);
        const lo = Math.max(at, around.from);
        const hi = Math.min(at + chunk.length, around.to);
        if (lo < hi) chunk.copy(around.bytes, lo - around.from, lo - at, hi - at);
        at += chunk.length;
        yield chunk;
      }
    })());
    await store.put('big/40MiB', source);
    assert.equal((await store.head('big/40MiB'))?.size, total);
    const blocks = await BlobServiceClient.fromConnectionString(az.server().connectionString)
      .getContainerClient(store.containerName).getBlockBlobClient('big/40MiB').getBlockList('committed');
    assert.equal(blocks.committedBlocks?.length, Math.ceil(total / BLOCK_SIZE));
    assert.ok(Math.ceil(total / BLOCK_SIZE) > 1);
    const got = createHash('sha256');
    let read = 0;
    for await (const c of await store.get('big/40MiB')) {
      got.update(c as Buffer);
      read += (c as Buffer).length;
    }
    assert.equal(read, total);
    assert.equal(got.digest('hex'), sent.digest('hex'));
    const rangedBytes: Buffer[] = [];
    for await (const c of await store.get('big/40MiB', { start: around.from, end: around.to })) rangedBytes.push(c as Buffer);
    assert.deepEqual(Buffer.concat(rangedBytes), around.bytes);
  });

  it('the commit refuses a blob that appeared while the put was staging its blocks', async (t) => {
    const store = await storeIn(t);
    // The first read of the body happens after put's existence check: another writer commits the
    // key then, so only the commit's If-None-Match can stop the put.
    let sneaked = false;
    const body = new Readable({
      read() {
        if (sneaked) {
          this.push(null);
          return;
        }
        sneaked = true;
        store.put('race/key', Buffer.from('the other writer'))
          .then(() => this.push(Buffer.alloc(3 * 1024 * 1024, 2)), (err: Error) => this.destroy(err));
      },
    });
    await assert.rejects(store.put('race/key', body), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS'));
    assert.ok(sneaked);
    assert.equal(await text(await store.get('race/key')), 'the other writer');
  });

  it('two puts of one key at once: exactly one wins, the other gets OBJECT_EXISTS', async (t) => {
    const store = await storeIn(t);
    const body = (fill: number): Readable => Readable.from([Buffer.alloc(BLOCK_SIZE + 10, fill)]);
    const results = await Promise.allSettled([store.put('both/key', body(1)), store.put('both/key', body(2))]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const lost = results.find((r) => r.status === 'rejected');
    assert.ok(lost && isLifeboatError(lost.reason, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS'), inspect(lost));
    const winner = results[0]?.status === 'fulfilled' ? 1 : 2;
    const bytes: Buffer[] = [];
    for await (const c of await store.get('both/key')) bytes.push(c as Buffer);
    assert.deepEqual(Buffer.concat(bytes), Buffer.alloc(BLOCK_SIZE + 10, winner));
  });

  // The SDK's stream reader waits forever on such a source; the time limit turns a hang into a failure.
  it('a source that closes without ending or failing rejects the put and leaves nothing', { timeout: 60_000 }, async (t) => {
    const store = await storeIn(t);
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(64 * 1024, 1));
        this.destroy();
      },
    });
    await assert.rejects(store.put('closed/early', body));
    assert.equal(await store.head('closed/early'), undefined);
    assert.deepEqual(await keys(store, 'closed/'), []);
  });

  it('the source stream\'s own error is what a failed put rejects with', async (t) => {
    const store = await storeIn(t);
    const broke = new Error('disk read failed');
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(BLOCK_SIZE + 1, 1));
        this.destroy(broke);
      },
    });
    await assert.rejects(store.put('src/err', body), (e: unknown) => e === broke);
    assert.deepEqual(await keys(store, 'src/'), []);
  });

  it('reads ranges at and past the end as empty, and empty ranges of missing keys as NOT_FOUND', async (t) => {
    const store = await storeIn(t);
    await store.put('r/k', Buffer.from('0123456789'));
    assert.equal(await text(await store.get('r/k', { start: 10 })), '');
    assert.equal(await text(await store.get('r/k', { start: 50, end: 60 })), '');
    assert.equal(await text(await store.get('r/k', { start: 4, end: 4 })), '');
    assert.equal(await text(await store.get('r/k', { start: 8, end: 100 })), '89');
    await assert.rejects(store.get('r/missing', { start: 3, end: 3 }), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_NOT_FOUND'));
    await assert.rejects(store.get('r/missing', { start: 3 }), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_NOT_FOUND'));
  });

  it('lists in byte order where Azurite\'s own (UTF-16) order differs, over any page size', async (t) => {
    // Not U+FFFF: XML cannot carry it, and Azurite answers such a listing with a 500.
    const names = ['u/a', 'u/é', 'u/\ue000', 'u/\ue000\u{1F600}', 'u/\u{1F600}', 'u/\u{1F600}x', 'u/\u{1F600}\ue000', 'u/\u{10FFFF}', 'u/\ufffd'];
    const first = await storeIn(t);
    for (const k of names) await first.put(k, Buffer.from(k));
    // The test means something only if the service's order is not byte order.
    const raw: string[] = [];
    for await (const b of BlobServiceClient.fromConnectionString(az.server().connectionString).getContainerClient(first.containerName).listBlobsFlat()) raw.push(b.name);
    assert.notDeepEqual(raw, byBytes(names));
    for (const listPageSize of [1, 2, 3, 5000]) {
      const store = new AzureBlobStore({ connectionString: az.server().connectionString, containerName: first.containerName, listPageSize });
      assert.deepEqual(await keys(store, 'u/'), byBytes(names), `page size ${listPageSize}`);
      assert.deepEqual(await keys(store, 'u/\u{1F600}'), byBytes(names.filter((k) => k.startsWith('u/\u{1F600}'))), `page size ${listPageSize}`);
    }
  });

  it('a managed identity reaches the container with bearer tokens over HTTPS', { timeout: 120_000 }, async (t) => {
    const dir = tempDir(t);
    const cert = selfSignedCertificate(dir);
    if (!cert) {
      const why = 'openssl is not installed: cannot make the certificate Azurite needs for OAuth';
      // CI runs every backend path; this one skipped would go unnoticed.
      if (process.env.LIFEBOAT_REQUIRE_ALL_BACKENDS === '1') assert.fail(`${why}, but CI requires every backend (LIFEBOAT_REQUIRE_ALL_BACKENDS=1)`);
      t.skip(why);
      return;
    }
    const https = await startAzurite({ https: cert, oauth: true });
    t.after(() => https.stop());
    assert.match(https.blobEndpoint, /^https:/);
    // Only the child trusts the certificate (NODE_EXTRA_CA_CERTS is read at start-up); TLS checks stay on.
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: cert.certPath, LB_AZ_CS: https.connectionString, LB_AZ_EP: https.blobEndpoint };
    delete env.NODE_TLS_REJECT_UNAUTHORIZED;
    const support = new URL('../support/azurite.ts', import.meta.url).href;
    const code = `import { managedIdentityRoundTrip } from ${JSON.stringify(support)};
      process.stdout.write(JSON.stringify(await managedIdentityRoundTrip(process.env.LB_AZ_CS, process.env.LB_AZ_EP)));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', code], { env, timeout: 90_000 });
    const r = JSON.parse(stdout) as ManagedIdentityReport;
    assert.match(r.description, /^AzureBlobStore \(managed identity\) devstoreaccount1\/lb-mi-/);
    assert.ok(r.scopes.length > 0);
    assert.ok(r.scopes.every((s) => s.includes('https://storage.azure.com/.default')), JSON.stringify(r.scopes));
    assert.equal(r.readBack, 'through a token');
    assert.equal(r.size, 'through a token'.length);
    assert.deepEqual(r.listed, ['App/Svc/p/backup.lbk']);
    assert.equal(r.secondPut?.code, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS');
    assert.equal(r.wrongAudience?.code, 'LIFEBOAT_E_STORAGE_UNAVAILABLE');
    assert.match(r.wrongAudience?.message ?? '', /rejected the credentials \(AuthenticationFailed: Invalid token audience\.\) for account devstoreaccount1/);
  });
});

describe('AzureBlobStore without a server', () => {
  it('refuses a managed identity over plain http, bad container names and bad connection strings, without echoing secrets', () => {
    const credential = { getToken: async () => null };
    assert.throws(() => new AzureBlobStore({ blobServiceUri: 'http://127.0.0.1:10000/devstoreaccount1', containerName: 'backups', credential }),
      (e: unknown) => isLifeboatError(e, 'E_INVALIDARG') && /https/.test(e.message));
    for (const containerName of ['ab', 'Backups', 'a--b', '-ab', 'a_b', 'x'.repeat(64)]) {
      assert.throws(() => new AzureBlobStore({ connectionString: 'UseDevelopmentStorage=true', containerName }), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'), containerName);
    }
    const secret = 'c2VjcmV0LWtleS1ub3Qtc2hvd24=';
    assert.throws(() => new AzureBlobStore({ connectionString: `DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey=${secret}`, containerName: 'backups' }),
      (e: unknown) => isLifeboatError(e, 'E_INVALIDARG') && !e.message.includes(secret));
  });

  it('refuses keys Azure could store but never list, and keys over its length limit', async () => {
    const store = new AzureBlobStore({ connectionString: 'UseDevelopmentStorage=true', containerName: 'backups' });
    for (const key of ['a/\uffff', 'a/\u0001b', 'a/\ud800', 'a/\udc00x', `a/${'x'.repeat(1100)}`]) {
      await assert.rejects(store.put(key, Buffer.from('x')), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'), JSON.stringify(key));
    }
  });

  it('builds both Azure storage kinds from their descriptions', () => {
    const keyed = azureBlobStoreFor({ StorageKind: 'AzureBlobStore', ConnectionString: 'UseDevelopmentStorage=true', ContainerName: 'backups' });
    assert.equal(keyed.description, 'AzureBlobStore devstoreaccount1/backups');
    const mi = azureBlobStoreFor({ StorageKind: 'ManagedIdentityAzureBlobStore', ManagedIdentityType: 'VMSS', BlobServiceUri: 'https://acct.blob.core.windows.net', ContainerName: 'backups' });
    assert.equal(mi.description, 'AzureBlobStore (managed identity) acct/backups');
    for (const type of ['VMSS', 'Cluster', 'anything']) assert.ok(managedIdentityCredential(type) instanceof ManagedIdentityCredential, type);
  });

  it('orders listing pages by bytes whether the service sorts by UTF-8 or by UTF-16', async () => {
    const alphabet = ['a', 'z', 'é', '/', '\u07ff', '\ud7ff', '\ue000', '\uffff', '\u{1F600}', '\u{10000}', '\u{10FFFF}'];
    const utf16 = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
    const utf8 = (x: string, y: string): number => Buffer.compare(Buffer.from(x), Buffer.from(y));
    await fc.assert(fc.asyncProperty(
      fc.uniqueArray(fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 5 }).map((cs) => cs.join('')), { maxLength: 40 }),
      fc.integer({ min: 1, max: 7 }), fc.boolean(),
      async (names, pageSize, serviceUsesUtf16) => {
        const service = [...names].sort(serviceUsesUtf16 ? utf16 : utf8);
        const pages = (async function* () {
          for (let i = 0; i < service.length; i += pageSize) yield service.slice(i, i + pageSize);
        })();
        const out: string[] = [];
        for await (const k of inByteOrder(pages, (s) => s)) out.push(k);
        assert.deepEqual(out, byBytes(names));
      },
    ), { numRuns: 500 });
  });
});

describe('AzureBlobStore through openStorage, with faults in real requests', { ...(az.skip ? { skip: az.skip } : {}) }, () => {
  /** A proxy in front of Azurite, a container, and the store openStorage builds through the proxy (retries recorded, never waited). */
  async function rig(t: { after(fn: () => unknown): void }, retry: RetryOptions = {}) {
    const proxy = await startFaultProxy(az.server());
    t.after(() => proxy.close());
    const containerName = await az.container(t);
    const retries: RetryInfo[] = [];
    const store = openStorage({ StorageKind: 'AzureBlobStore', ConnectionString: proxy.connectionString, ContainerName: containerName },
      { fileShareRoots: [], retry: { sleep: async () => undefined, onRetry: (i) => { retries.push(i); }, ...retry } });
    return { proxy, containerName, retries, store };
  }

  it('a 503, a 500 and reset connections on single requests are retried until they pass', async (t) => {
    const { proxy, retries, store } = await rig(t);
    proxy.fault({ op: 'PutBlob', times: 1, action: 'status', status: 503, code: 'ServerBusy' });
    await store.put('App/Svc/p/a.bkmetadata', Buffer.from('metadata'));
    proxy.fault({ op: 'GetBlobProperties', times: 1, action: 'reset' });
    assert.equal((await store.head('App/Svc/p/a.bkmetadata'))?.size, 8);
    proxy.fault({ op: 'ListBlobs', times: 2, action: 'status', status: 500, code: 'InternalError' });
    assert.deepEqual(await keys(store, 'App/'), ['App/Svc/p/a.bkmetadata']);
    proxy.fault({ op: 'DeleteBlob', times: 1, action: 'reset' });
    await store.delete('App/Svc/p/a.bkmetadata');
    assert.deepEqual(await keys(store, 'App/'), []);
    assert.deepEqual(retries.map((r) => `${r.operation} ${r.attempt}`), ['put 1', 'head 1', 'list 1', 'list 2', 'delete 1']);
    assert.match(retries[0]?.reason ?? '', /ServerBusy \(HTTP 503\)/);
    assert.match(retries[1]?.reason ?? '', /ECONNRESET|EPIPE|socket hang up/);
    // One request per attempt (`!` marks the faulted ones): the SDK itself did not try again.
    assert.deepEqual(proxy.requests.map((r) => `${r.op}${r.fault ? '!' : ''}`), [
      'PutBlob!', 'PutBlob',
      'GetBlobProperties!', 'GetBlobProperties',
      'ListBlobs!', 'ListBlobs!', 'ListBlobs',
      'DeleteBlob!', 'DeleteBlob',
      'ListBlobs',
    ]);
  });

  it('a download cut off mid-body is resumed from the next byte, and the bytes are exact', async (t) => {
    const { proxy, containerName, retries, store } = await rig(t);
    const data = randomBytes(3 * 1024 * 1024);
    await BlobServiceClient.fromConnectionString(az.server().connectionString).getContainerClient(containerName).getBlockBlobClient('big.lbk').uploadData(data);
    proxy.fault({ op: 'GetBlob', times: 1, action: 'cut', afterBytes: 1024 * 1024 + 17 });
    const chunks: Buffer[] = [];
    for await (const c of await store.get('big.lbk')) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(data));
    const gets = proxy.requests.filter((r) => r.op === 'GetBlob');
    assert.deepEqual(gets.map((r) => r.fault), ['cut', undefined], 'one more request, for the rest');
    assert.equal(retries.length, 1);
    const offset = retries[0]?.offset ?? 0;
    assert.ok(offset > 0 && offset <= 1024 * 1024 + 17, `resumed at ${offset}`);
    assert.equal(gets[1]?.range, `bytes=${offset}-`);
    assert.match(retries[0]?.reason ?? '', /broke off mid-stream/);
  });

  it('attempts do not multiply: a request that keeps failing is sent exactly maxAttempts times', async (t) => {
    const { proxy, retries, store } = await rig(t, { maxAttempts: 3 });
    proxy.fault({ op: 'PutBlob', times: 100, action: 'status', status: 503, code: 'ServerBusy' });
    await assert.rejects(store.put('k', Buffer.from('x')), (e: unknown) => {
      assert.ok(isTransient(e), inspect(e));
      assert.match(e.message, /ServerBusy.*Gave up after 3 attempts\.$/);
      return true;
    });
    assert.equal(proxy.requests.filter((r) => r.op === 'PutBlob').length, 3);
    assert.equal(retries.length, 2);
  });

  it('a streamed put, which no wrapper can repeat, has the SDK send a failed block again', async (t) => {
    const { proxy, retries, store } = await rig(t);
    proxy.fault({ op: 'PutBlock', times: 1, action: 'status', status: 503, code: 'ServerBusy' });
    const data = randomBytes(BLOCK_SIZE + 1000);
    await store.put('App/Svc/p/streamed.lbk', Readable.from([data]));
    const chunks: Buffer[] = [];
    for await (const c of await store.get('App/Svc/p/streamed.lbk')) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(data));
    const blocks = proxy.requests.filter((r) => r.op === 'PutBlock');
    assert.equal(blocks.length, 3, 'two blocks, one of them sent twice');
    assert.equal(blocks.filter((r) => r.fault === 'status').length, 1);
    assert.deepEqual(retries, [], 'the RetryingStore passes a stream through once');
  });
});

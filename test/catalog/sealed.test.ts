/**
 * SealedCatalog over the real SQLite catalog: secrets of policies and operation requests read back
 * as written, and no byte of them (nor their base64) is in any file of the data directory; a wrong
 * key, a tampered value and a value moved into another field are refused; an old clear catalog
 * reads as it is and `sealExisting` seals it. The catalog key file: created 0600, refused when
 * others may read it or when damaged.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { CATALOG_KEY_FILE, checkPrivateFile, loadOrCreateCatalogKey } from '../../src/catalog/catalog-key.ts';
import type { OperationRecord, PolicyRecord } from '../../src/catalog/port.ts';
import { SEALED_PREFIX, SealedCatalog } from '../../src/catalog/sealed.ts';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { isLifeboatError } from '../../src/core/errors.ts';
import { parseBackupPolicy } from '../../src/core/policy.ts';
import { type StorageDescription, storageIdentity } from '../../src/core/storage-description.ts';
import { tempDir } from '../support/tmp.ts';

const posix = process.platform !== 'win32';
const P1 = '11111111-1111-4111-8111-111111111111';
const T0 = '2026-01-01T00:00:00.000Z';

const sentinel = (what: string): string => `${what}-${randomBytes(12).toString('hex')}`;

function policy(name: string, storage: StorageDescription, uniqueId = `${name}-1`): PolicyRecord {
  const p = parseBackupPolicy({
    Name: name, AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 3, Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT10M' }, Storage: storage,
  });
  return { name, policy: p, uniqueId, createdUtc: T0, updatedUtc: T0 };
}

function operation(id: string, request: Record<string, unknown>): OperationRecord {
  return { id, kind: 'Backup', partitionId: P1, state: 'Accepted', acceptedUtc: T0, deadlineUtc: '2026-01-01T00:10:00.000Z', updatedUtc: T0, request, result: {}, failure: undefined };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Every file under `dir`, as raw bytes, holds none of the secrets (as text or base64). */
function assertNowhere(dir: string, secrets: readonly string[]): string[] {
  const files = filesUnder(dir);
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const s of secrets) {
      for (const form of [s, Buffer.from(s).toString('base64'), Buffer.from(s, 'utf16le').toString('latin1')]) {
        assert.equal(bytes.indexOf(Buffer.from(form, 'latin1')), -1, `${f} holds ${s} (as ${form === s ? 'text' : 'an encoding of it'})`);
      }
    }
  }
  return files;
}

async function rejectsSealed(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLifeboatError(err, 'LIFEBOAT_E_CATALOG_KEY_MISMATCH'), String(err));
    assert.match(err.message, pattern);
    assert.match(err.message, /catalog key/);
    return true;
  });
}

function world(t: TestContext): { dir: string; file: string; key: Buffer; raw: SqliteCatalog; sealed: SealedCatalog } {
  const dir = tempDir(t);
  const file = join(dir, 'catalog.sqlite');
  const key = loadOrCreateCatalogKey(dir);
  const raw = new SqliteCatalog(file);
  const sealed = new SealedCatalog(raw, key);
  t.after(() => sealed.close().catch(() => undefined));
  return { dir, file, key, raw, sealed };
}

describe('SealedCatalog', () => {
  it('stores the secrets of policies and operations sealed, and reads them back as written', async (t) => {
    const { dir, file, key, raw, sealed } = world(t);
    const s = { azure: sentinel('azurekey'), s3: sentinel('s3secret'), pw1: sentinel('primary'), pw2: sentinel('secondary'), op: sentinel('opkey'), pw3: sentinel('updated') };
    const azure: StorageDescription = {
      StorageKind: 'AzureBlobStore', ContainerName: 'backups',
      ConnectionString: `DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=${s.azure};EndpointSuffix=core.windows.net`,
    };
    const s3: StorageDescription = { StorageKind: 'S3', Bucket: 'b1', Region: 'eu-west-1', AccessKeyId: 'AKIAEXAMPLE', SecretAccessKey: s.s3 };
    const share: StorageDescription = { StorageKind: 'FileShare', Path: '/srv/share', PrimaryUserName: 'u1', PrimaryPassword: s.pw1, SecondaryUserName: 'u2', SecondaryPassword: s.pw2 };
    const policies = [policy('azure', azure), policy('s3', s3), policy('share', share)];
    for (const p of policies) assert.equal(await sealed.policies.insert(p), true);
    assert.deepEqual(await sealed.policies.list(), policies);
    assert.deepEqual(await sealed.policies.get('azure'), policies[0]);
    // The service computes identities on what it reads: opened descriptions.
    assert.equal(storageIdentity((await sealed.policies.get('azure'))!.policy.storage), 'AzureBlobStore:acct1/backups');

    const updated = policy('share', { ...share, PrimaryPassword: s.pw3 }, 'share-2');
    assert.equal(await sealed.policies.update(updated), true);
    assert.deepEqual(await sealed.policies.get('share'), updated);

    const opStorage: StorageDescription = { ...azure, ConnectionString: azure.ConnectionString.replace(s.azure, s.op) };
    const request = { storage: opStorage, chain: ['a/b.lbk'], backupId: 'b1' };
    assert.deepEqual(await sealed.operations.insert(operation('op1', request)), { inserted: true });
    const again = await sealed.operations.insert(operation('op2', { storage: s3 }));
    assert.equal(again.inserted, false);
    assert.deepEqual(!again.inserted && again.active.request, request);
    assert.deepEqual((await sealed.operations.get('op1'))?.request, request);
    assert.deepEqual((await sealed.operations.active()).map((o) => o.request), [request]);
    assert.deepEqual((await sealed.operations.latest(P1, 'Backup'))?.request, request);
    assert.equal(await sealed.operations.update('op1', { state: 'Success', updatedUtc: T0, result: { BackupId: 'b1' } }), true);
    const ended = await sealed.operations.latestEnded(P1, ['Backup']);
    assert.deepEqual(ended?.request, request);
    assert.deepEqual(ended?.result, { BackupId: 'b1' });

    // Underneath, the catalog holds sealed values only.
    const stored = (await raw.policies.get('azure'))!.policy.storage as { ConnectionString: string };
    assert.ok(stored.ConnectionString.startsWith(SEALED_PREFIX), stored.ConnectionString);
    assert.ok(((await raw.operations.get('op1'))!.request.storage as { ConnectionString: string }).ConnectionString.startsWith(SEALED_PREFIX));

    const secrets = Object.values(s);
    const open = assertNowhere(dir, secrets); // while open: the WAL and shm are there
    assert.ok(open.some((f) => f.endsWith('-wal')), open.join(', '));
    await sealed.close();
    const closed = assertNowhere(dir, secrets);
    assert.ok(closed.includes(file));
    assert.ok(readFileSync(file).includes(SEALED_PREFIX), 'the catalog holds the sealed values');

    // Opened again with the same key (from its file), everything reads as before.
    const reopened = new SealedCatalog(new SqliteCatalog(file), loadOrCreateCatalogKey(dir));
    t.after(() => reopened.close().catch(() => undefined));
    assert.ok(loadOrCreateCatalogKey(dir).equals(key));
    assert.deepEqual(await reopened.policies.get('s3'), policies[1]);
    assert.deepEqual((await reopened.operations.get('op1'))?.request, request);
  });

  it('refuses to open secrets with another key, tampered, or moved into another field', async (t) => {
    const { file, raw, sealed } = world(t);
    const share: StorageDescription = { StorageKind: 'FileShare', Path: '/srv/share', PrimaryUserName: 'u1', PrimaryPassword: sentinel('p'), SecondaryUserName: 'u2', SecondaryPassword: sentinel('s') };
    const azure: StorageDescription = { StorageKind: 'AzureBlobStore', ContainerName: 'c', ConnectionString: `AccountName=a;AccountKey=${sentinel('k')}` };
    await sealed.policies.insert(policy('share', share));
    await sealed.policies.insert(policy('azure', azure));

    const other = new SealedCatalog(new SqliteCatalog(file), randomBytes(32));
    t.after(() => other.close().catch(() => undefined));
    await rejectsSealed(other.policies.get('share'), /PrimaryPassword sealed in the catalog cannot be opened: it does not authenticate/);
    await rejectsSealed(other.policies.list(), /cannot be opened/);

    const rawShare = (await raw.policies.get('share'))!;
    const rawStorage = rawShare.policy.storage as Record<string, string>;
    const rewrite = async (storage: Record<string, unknown>): Promise<void> => {
      assert.equal(await raw.policies.update({ ...rawShare, policy: { ...rawShare.policy, storage: storage as StorageDescription } }), true);
    };

    // One bit of the ciphertext flipped.
    const bytes = Buffer.from((rawStorage.PrimaryPassword as string).slice(SEALED_PREFIX.length), 'base64');
    bytes[14] = (bytes[14] as number) ^ 0x01;
    await rewrite({ ...rawStorage, PrimaryPassword: SEALED_PREFIX + bytes.toString('base64') });
    await rejectsSealed(sealed.policies.get('share'), /PrimaryPassword .*does not authenticate/);
    // Truncated.
    await rewrite({ ...rawStorage, PrimaryPassword: `${SEALED_PREFIX}AAAA` });
    await rejectsSealed(sealed.policies.get('share'), /PrimaryPassword .*truncated/);

    // The sealed SecondaryPassword moved into PrimaryPassword, or the ConnectionString into it.
    await rewrite({ ...rawStorage, PrimaryPassword: rawStorage.SecondaryPassword });
    await rejectsSealed(sealed.policies.get('share'), /PrimaryPassword .*does not authenticate/);
    const rawAzure = (await raw.policies.get('azure'))!.policy.storage as { ConnectionString: string };
    await rewrite({ ...rawStorage, PrimaryPassword: rawAzure.ConnectionString });
    await rejectsSealed(sealed.policies.get('share'), /PrimaryPassword .*does not authenticate/);

    // Put back as it was, it opens again.
    await rewrite(rawStorage);
    assert.deepEqual((await sealed.policies.get('share'))?.policy.storage, share);
  });

  it('seals a value that only looks sealed, so one copied from a catalog file is never opened for a caller', async (t) => {
    const { raw, sealed } = world(t);
    const share: StorageDescription = { StorageKind: 'FileShare', Path: '/srv/a', PrimaryUserName: 'u', PrimaryPassword: sentinel('p') };
    await sealed.policies.insert(policy('a', share));
    const copied = ((await raw.policies.get('a'))!.policy.storage as { PrimaryPassword: string }).PrimaryPassword;
    const planted: StorageDescription = { StorageKind: 'FileShare', Path: '/srv/elsewhere', PrimaryUserName: 'u', PrimaryPassword: copied };
    await sealed.policies.insert(policy('b', planted));
    assert.equal(((await sealed.policies.get('b'))!.policy.storage as { PrimaryPassword: string }).PrimaryPassword, copied);
  });

  it('reads an old clear catalog as it is, and sealExisting seals its policies in place', async (t) => {
    const { dir, raw, sealed } = world(t);
    const pw = sentinel('old');
    const key = sentinel('oldop');
    const old = policy('old', { StorageKind: 'S3', Bucket: 'b', AccessKeyId: 'id', SecretAccessKey: pw }, 'old-uid');
    await raw.policies.insert(old);
    await raw.operations.insert(operation('op-old', { storage: { StorageKind: 'S3', Bucket: 'b', SecretAccessKey: key } }));
    assert.deepEqual(await sealed.policies.get('old'), old);

    assert.deepEqual(await sealed.sealExisting(), { policies: 1, operationsLeftClear: 1 });
    const after = (await raw.policies.get('old'))!;
    assert.ok((after.policy.storage as { SecretAccessKey: string }).SecretAccessKey.startsWith(SEALED_PREFIX));
    assert.equal(after.uniqueId, 'old-uid', 'the policy version is unchanged: the scheduler sees no new policy');
    assert.equal(after.updatedUtc, T0);
    assert.deepEqual(await sealed.policies.get('old'), old);
    // Nothing left to seal in policies the second time.
    assert.deepEqual(await sealed.sealExisting(), { policies: 0, operationsLeftClear: 1 });
    // The port cannot rewrite the clear operation request; it stays readable.
    assert.deepEqual((await sealed.operations.get('op-old'))?.request, { storage: { StorageKind: 'S3', Bucket: 'b', SecretAccessKey: key } });
    void dir;
  });

  it('refuses a key that is not 32 bytes', () => {
    assert.throws(() => new SealedCatalog(undefined as never, randomBytes(16)), /32 bytes/);
  });
});

describe('catalog key file', { skip: !posix && 'file modes are POSIX' }, () => {
  it('is created once, 32 random bytes in base64, mode 0600, and read back the same', (t) => {
    const dir = join(tempDir(t), 'data');
    const key = loadOrCreateCatalogKey(dir);
    assert.equal(key.length, 32);
    const path = join(dir, CATALOG_KEY_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o077, 0, 'a data directory it creates is private');
    assert.equal(readFileSync(path, 'utf8').trim(), key.toString('base64'));
    assert.ok(loadOrCreateCatalogKey(dir).equals(key));
    assert.deepEqual(readdirSync(dir), [CATALOG_KEY_FILE], 'no temporary file is left');
  });

  it('refuses a key file others may read, and a damaged one', (t) => {
    const dir = tempDir(t);
    loadOrCreateCatalogKey(dir);
    const path = join(dir, CATALOG_KEY_FILE);
    chmodSync(path, 0o644);
    assert.throws(() => loadOrCreateCatalogKey(dir), (err: unknown) => {
      assert.ok(isLifeboatError(err, 'E_INVALIDARG'));
      assert.match(err.message, /catalog key file .*catalog\.key has mode 0644: other users may read or change it.*chmod 600/);
      return true;
    });
    chmodSync(path, 0o600);
    writeFileSync(path, `${randomBytes(16).toString('base64')}\n`);
    assert.throws(() => loadOrCreateCatalogKey(dir), /does not hold 32 bytes in base64: it is damaged/);
    writeFileSync(path, 'not a key at all\n');
    assert.throws(() => loadOrCreateCatalogKey(dir), /does not hold 32 bytes/);
  });

  it('checkPrivateFile refuses a keyring readable by group or others, a folder, and a missing file', (t) => {
    const dir = tempDir(t);
    const keyring = join(dir, 'keys.json');
    writeFileSync(keyring, '{}', { mode: 0o600 });
    checkPrivateFile(keyring, 'The keyring file (--encryption-keys)');
    for (const mode of [0o640, 0o604, 0o620]) {
      chmodSync(keyring, mode);
      assert.throws(() => checkPrivateFile(keyring, 'The keyring file (--encryption-keys)'), (err: unknown) => {
        assert.ok(isLifeboatError(err, 'E_INVALIDARG'));
        assert.match(err.message, /^The keyring file \(--encryption-keys\) .*keys\.json has mode 0\d{3}: other users may read or change it/);
        return true;
      });
    }
    assert.throws(() => checkPrivateFile(dir, 'The keyring file'), /is not a regular file/);
    assert.throws(() => checkPrivateFile(join(dir, 'none'), 'The keyring file'), /cannot be read \(ENOENT\)/);
  });
});

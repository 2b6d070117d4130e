/**
 * The backup repository (src/repository) on a real file share: a backup exists only once its
 * metadata is committed (a crash between the data and the metadata leaves nothing visible and
 * takes no name), metadata is read with a size cap, an unreadable one is skipped, chains are
 * followed and checked, and a deletion cut short between its steps is finished by running it again.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isLifeboatError } from '../../src/core/errors.ts';
import type { StoredBackupMetadata } from '../../src/format/bkmetadata.ts';
import { BackupRepository, type NewBackupMetadata } from '../../src/repository/backup-repository.ts';
import { checkChain, readChain } from '../../src/repository/chain.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { tempDir } from '../support/tmp.ts';

const SERVICE = 'fabric:/App/Svc';
const PARTITION = '11111111-2222-3333-4444-555555555555';
const AT = new Date('2026-03-01T10:00:00.000Z');

function metadata(over: Partial<StoredBackupMetadata> = {}): NewBackupMetadata {
  const id = randomUUID();
  return {
    BackupId: id, BackupChainId: id, ParentBackupId: '', ParentBackupLocation: '', BackupType: 'Full',
    ApplicationName: 'fabric:/App', ServiceName: SERVICE, PartitionId: PARTITION, PartitionInformation: { kind: 'Singleton' },
    EpochOfLastBackupRecord: { DataLossVersion: '1', ConfigurationVersion: '1' }, LsnOfLastBackupRecord: '5', FirstLsn: '1',
    CreationTimeUtc: AT.toISOString(), ServiceManifestVersion: '1.0.0', DataSize: 4, DataSha256: 'x', ...over,
  };
}

const PARTITION_SCOPE = { kind: 'Partition', serviceName: SERVICE, partitionId: PARTITION } as const;

/** A file share whose `delete` of the keys named fails once: a crash between a deletion's steps. */
class FailingDeletes implements BlobStore {
  readonly failOnce = new Set<string>();
  constructor(private readonly inner: BlobStore) {}
  get description(): string { return this.inner.description; }
  put(...a: Parameters<BlobStore['put']>): Promise<void> { return this.inner.put(...a); }
  get(...a: Parameters<BlobStore['get']>): Promise<Readable> { return this.inner.get(...a); }
  head(key: string): ReturnType<BlobStore['head']> { return this.inner.head(key); }
  list(prefix: string): ReturnType<BlobStore['list']> { return this.inner.list(prefix); }
  validate(): Promise<void> { return this.inner.validate(); }
  async delete(key: string): Promise<void> {
    if (this.failOnce.delete(key)) throw new Error(`crash while deleting ${key}`);
    await this.inner.delete(key);
  }
}

async function commitBackup(repo: BackupRepository, at: Date, over: Partial<StoredBackupMetadata> = {}): Promise<{ location: string; metadata: NewBackupMetadata }> {
  const location = await repo.freeLocation(SERVICE, PARTITION, at);
  await repo.putData(location, Readable.from([Buffer.from('data')]));
  const m = metadata(over);
  await repo.commit(location, m);
  return { location, metadata: m };
}

describe('BackupRepository', () => {
  it('shows a backup only once its metadata is committed, and a crash between data and metadata takes its name but shows nothing', async (t) => {
    const root = tempDir(t);
    const repo = new BackupRepository(new FileShareStore(root));
    const unreadable: string[] = [];
    const location = await repo.freeLocation(SERVICE, PARTITION, AT);
    assert.equal(location, 'App/Svc/11111111-2222-3333-4444-555555555555/2026-03-01 10.00.00.lbk');
    await repo.putData(location, Readable.from([Buffer.from('data')]));
    // The "crash": no commit. The data is there, the backup is not.
    assert.ok(existsSync(join(root, location)));
    assert.deepEqual(await repo.list(PARTITION_SCOPE, (k) => unreadable.push(k)), []);
    await assert.rejects(repo.at(location), (err) => isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND'));
    // The next backup in the same second does not reuse the name of the data left behind.
    const next = await repo.freeLocation(SERVICE, PARTITION, AT);
    assert.equal(next, 'App/Svc/11111111-2222-3333-4444-555555555555/2026-03-01 10.00.01.lbk');
    const m = metadata();
    await repo.putData(next, Readable.from([Buffer.from('data')]));
    await repo.commit(next, m);
    const listed = await repo.list(PARTITION_SCOPE, (k) => unreadable.push(k));
    assert.deepEqual(listed.map((b) => [b.location, b.metadata.BackupId, b.metadata.BackupLocation]), [[next, m.BackupId, next]]);
    assert.equal((await repo.at(next)).metadata.BackupId, m.BackupId);
    assert.deepEqual(unreadable, []);
    // Other scopes: the service's and the application's hold it, another application's does not.
    assert.equal((await repo.list({ kind: 'Service', serviceName: SERVICE }, () => undefined)).length, 1);
    assert.equal((await repo.list({ kind: 'Application', applicationName: 'fabric:/App' }, () => undefined)).length, 1);
    assert.equal((await repo.list({ kind: 'Application', applicationName: 'fabric:/Ap' }, () => undefined)).length, 0);
  });

  it('refuses metadata over the 1 MiB cap without reading it all, and skips it in listings while showing the others', async (t) => {
    const root = tempDir(t);
    const share = new FileShareStore(root);
    let bytesRead = 0;
    const counting: BlobStore = Object.assign(Object.create(share) as FileShareStore, {
      get: async (key: string, range?: { start: number; end?: number }) => {
        const s = await share.get(key, range);
        s.on('data', (c: Buffer) => { bytesRead += c.length; });
        return s;
      },
    });
    const repo = new BackupRepository(counting);
    const good = await commitBackup(repo, AT);
    const huge = 'App/Svc/11111111-2222-3333-4444-555555555555/2026-03-01 11.00.00';
    mkdirSync(dirname(join(root, huge)), { recursive: true });
    writeFileSync(join(root, `${huge}.bkmetadata`), Buffer.alloc(64 * 1024 * 1024, 0x20));
    writeFileSync(join(root, `${huge}.lbk`), 'data');
    const damaged = 'App/Svc/11111111-2222-3333-4444-555555555555/2026-03-01 12.00.00';
    writeFileSync(join(root, `${damaged}.bkmetadata`), '{"Body":{},"Sha256":"0"}');
    writeFileSync(join(root, `${damaged}.lbk`), 'data');

    bytesRead = 0;
    await assert.rejects(repo.at(`${huge}.lbk`), (err) => isLifeboatError(err, 'LIFEBOAT_E_BACKUP_CORRUPT') && /larger than 1048576 bytes/.test(err.message));
    assert.ok(bytesRead > 1024 * 1024 && bytesRead < 4 * 1024 * 1024, `read ${bytesRead} bytes of a 64 MiB metadata object`);

    const unreadable: Array<[string, string]> = [];
    const listed = await repo.list(PARTITION_SCOPE, (key, err) => unreadable.push([key, isLifeboatError(err) ? err.code : String(err)]));
    assert.deepEqual(listed.map((b) => b.location), [good.location]);
    assert.deepEqual(unreadable, [[`${huge}.bkmetadata`, 'LIFEBOAT_E_BACKUP_CORRUPT'], [`${damaged}.bkmetadata`, 'LIFEBOAT_E_BACKUP_CORRUPT']]);
  });

  it('reads a chain by its parent links and refuses one with a gap', async (t) => {
    const repo = new BackupRepository(new FileShareStore(tempDir(t)));
    const full = await commitBackup(repo, AT, { LsnOfLastBackupRecord: '10', FirstLsn: '1' });
    const inc = await commitBackup(repo, new Date(AT.getTime() + 60_000), {
      BackupType: 'Incremental', BackupChainId: full.metadata.BackupId, ParentBackupId: full.metadata.BackupId, ParentBackupLocation: full.location,
      FirstLsn: '11', LsnOfLastBackupRecord: '20',
    });
    const chain = await readChain(repo, await repo.at(inc.location));
    assert.deepEqual(chain.map((b) => b.metadata.BackupId), [full.metadata.BackupId, inc.metadata.BackupId]);
    checkChain(repo, chain);
    await repo.deleteMetadata(full.location);
    await assert.rejects(readChain(repo, await repo.at(inc.location)), (err) => isLifeboatError(err, 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN') && /the chain has a gap/.test(err.message));
  });

  it('deletes metadata first, and a deletion cut short after it is finished by running it again', async (t) => {
    const root = tempDir(t);
    const store = new FailingDeletes(new FileShareStore(root));
    const repo = new BackupRepository(store);
    const a = await commitBackup(repo, AT);
    const b = await commitBackup(repo, new Date(AT.getTime() + 60_000));
    // Retention's two steps, with the data's delete failing ("crash") after the metadata's.
    store.failOnce.add(a.location);
    await repo.deleteMetadata(a.location);
    await assert.rejects(repo.deleteData(a.location), /crash while deleting/);
    // Gone from every listing at once, though its data is still there.
    assert.deepEqual((await repo.list(PARTITION_SCOPE, () => undefined)).map((x) => x.location), [b.location]);
    assert.ok(existsSync(join(root, a.location)));
    // Run again with the same location (what retention recorded): both steps are idempotent.
    await repo.deleteMetadata(a.location);
    await repo.deleteData(a.location);
    assert.ok(!existsSync(join(root, a.location)));
    // deleteAll (CleanBackup): metadata before data for each backup; the other backup is listed no more.
    const keys = repo.objectKeys(b.location);
    store.failOnce.add(keys.data);
    await assert.rejects(repo.deleteAll(PARTITION_SCOPE), /crash while deleting/);
    assert.ok(!existsSync(join(root, keys.metadata)) && existsSync(join(root, keys.data)), 'the metadata went first');
    assert.deepEqual(await repo.list(PARTITION_SCOPE, () => undefined), []);
  });

  it('maps data missing under committed metadata to LIFEBOAT_E_BACKUP_CORRUPT', async (t) => {
    const root = tempDir(t);
    const repo = new BackupRepository(new FileShareStore(root));
    const a = await commitBackup(repo, AT);
    await repo.deleteData(a.location);
    assert.equal(await repo.dataInfo(a.location), undefined);
    await assert.rejects(repo.openData(a.location), (err) => isLifeboatError(err, 'LIFEBOAT_E_BACKUP_CORRUPT') && /is missing; its metadata is there/.test(err.message));
  });
});

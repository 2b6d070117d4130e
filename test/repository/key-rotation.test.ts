/**
 * Key rotation over a storage (BackupRepository.rewrapKeys, src/repository): what it re-wraps, leaves alone and
 * reports, backup by backup; data objects untouched; a second run has nothing to do.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { type StoredBackupMetadata, decodeBkMetadata, encodeBkMetadata } from '../../src/format/bkmetadata.ts';
import { makeKeyring } from '../../src/format/lbk2/index.ts';
import { unwrapDataKey, wrapDataKey } from '../../src/format/lbk2/keys.ts';
import { BackupRepository } from '../../src/repository/backup-repository.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import { tempDir } from '../support/tmp.ts';

function metadata(location: string): StoredBackupMetadata {
  return {
    BackupId: randomUUID(), BackupChainId: randomUUID(), ParentBackupId: '', ParentBackupLocation: '', BackupLocation: location, BackupType: 'Full',
    ApplicationName: 'fabric:/App', ServiceName: 'fabric:/App/Svc', PartitionId: randomUUID(), PartitionInformation: { kind: 'Singleton' },
    EpochOfLastBackupRecord: { DataLossVersion: '1', ConfigurationVersion: '1' }, LsnOfLastBackupRecord: '5', FirstLsn: '1',
    CreationTimeUtc: '2026-01-01T00:00:00.000Z', ServiceManifestVersion: '1.0.0', DataSize: 4, DataSha256: 'x',
  };
}

it('re-wraps only data keys under old keys, reports every other case, and a second run has nothing to do', async (t) => {
  const root = tempDir(t);
  const keyBytes = new Map([['k1', randomBytes(32)], ['k2', randomBytes(32)]]);
  const k1 = makeKeyring('k1', keyBytes);
  const ring = makeKeyring('k2', keyBytes);
  const dataKey = randomBytes(32);
  const put = (key: string, bytes: Buffer): void => {
    mkdirSync(dirname(join(root, key)), { recursive: true });
    writeFileSync(join(root, key), bytes);
  };
  const stored = (name: string, encryption: ReturnType<typeof wrapDataKey> | undefined, data = true): string => {
    const location = `App/Svc/p/${name}.lbk`;
    if (data) put(location, Buffer.from('data'));
    put(`App/Svc/p/${name}.bkmetadata`, encodeBkMetadata({ ...metadata(location), ...(encryption ? { Encryption: encryption } : {}) }));
    return `App/Svc/p/${name}.bkmetadata`;
  };
  const old = stored('a-old', wrapDataKey(dataKey, k1));
  stored('b-current', wrapDataKey(randomBytes(32), ring));
  stored('c-plain', undefined);
  const gone = stored('d-gone', wrapDataKey(randomBytes(32), k1), false);
  const foreign = stored('e-foreign', wrapDataKey(randomBytes(32), makeKeyring('k0', new Map([['k0', randomBytes(32)]]))));
  put('App/Svc/p/f-damaged.bkmetadata', Buffer.from('{"Body":{}}'));
  put('Other/Svc/p/g-elsewhere.bkmetadata', encodeBkMetadata({ ...metadata('Other/Svc/p/g-elsewhere.lbk'), Encryption: wrapDataKey(randomBytes(32), k1) }));
  const goneBefore = readFileSync(join(root, gone));

  const store = new FileShareStore(root);
  const report = await new BackupRepository(store).rewrapKeys({ kind: 'Prefix', prefix: 'App/' }, ring);
  assert.deepEqual({ ...report, failed: report.failed.map((f) => [f.key, f.code]) }, {
    scanned: 6, rewrapped: 1, current: 1, unencrypted: 1, gone: 1,
    failed: [[foreign, 'LIFEBOAT_E_ENCRYPTION_KEY_MISSING'], ['App/Svc/p/f-damaged.bkmetadata', 'LIFEBOAT_E_BACKUP_CORRUPT']],
  });
  assert.match(report.failed[0]?.message ?? '', /key 'k0'/);

  // The re-wrapped record holds the same data key, under k2; the data object is as it was.
  const record = decodeBkMetadata(readFileSync(join(root, old)), old).Encryption;
  assert.equal(record?.KeyId, 'k2');
  assert.deepEqual(unwrapDataKey(record as NonNullable<typeof record>, makeKeyring('k2', new Map([['k2', keyBytes.get('k2') as Buffer]]))), dataKey);
  assert.deepEqual(readFileSync(join(root, 'App/Svc/p/a-old.lbk')), Buffer.from('data'));
  // A backup whose data is gone is left alone (not brought back); outside the prefix nothing changed.
  assert.deepEqual(readFileSync(join(root, gone)), goneBefore);
  assert.equal(decodeBkMetadata(readFileSync(join(root, 'Other/Svc/p/g-elsewhere.bkmetadata')), 'x').Encryption?.KeyId, 'k1');

  const again = await new BackupRepository(store).rewrapKeys({ kind: 'Prefix', prefix: 'App/' }, ring);
  assert.deepEqual([again.rewrapped, again.current, again.failed.length], [0, 2, 2]);
});

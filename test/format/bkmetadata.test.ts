/**
 * `.bkmetadata` versions 1 and 2: version 2 is written and carries the wrapped data key of an
 * encrypted backup; version 1 (written before `.lbk` version 2) is still read; damage and bad
 * records are refused as damage; a key rotation's rewrite keeps every other field as stored.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { isLifeboatError } from '../../src/core/errors.ts';
import { partitionInfoToJson } from '../../src/core/partitioning.ts';
import { type StoredBackupMetadata, decodeBkMetadata, encodeBkMetadata, withEncryption } from '../../src/format/bkmetadata.ts';
import { makeKeyring, rewrapDataKey } from '../../src/format/lbk2/index.ts';
import { wrapDataKey } from '../../src/format/lbk2/keys.ts';

const base: StoredBackupMetadata = {
  BackupId: '11111111-1111-4111-8111-111111111111', BackupChainId: '11111111-1111-4111-8111-111111111111', ParentBackupId: '', ParentBackupLocation: '',
  BackupLocation: 'App/Svc/p/2026-01-01 00.00.00.lbk', BackupType: 'Full', ApplicationName: 'fabric:/App', ServiceName: 'fabric:/App/Svc',
  PartitionId: '22222222-2222-4222-8222-222222222222', PartitionInformation: { kind: 'Int64Range', lowKey: -5n, highKey: 5n },
  EpochOfLastBackupRecord: { DataLossVersion: '1', ConfigurationVersion: '2' }, LsnOfLastBackupRecord: '42', FirstLsn: '1',
  CreationTimeUtc: '2026-01-01T00:00:00.000Z', ServiceManifestVersion: '1.0.0', DataSize: 10, DataSha256: 'ab',
};

const corrupt = (e: unknown): boolean => isLifeboatError(e, 'LIFEBOAT_E_BACKUP_CORRUPT');

/** A document as it would be stored (`base` and `extra`), sealed with a correct checksum. */
function sealed(extra: Record<string, unknown>): Buffer {
  const body = { Version: 2, ...base, PartitionInformation: partitionInfoToJson(base.PartitionInformation), ...extra };
  return Buffer.from(JSON.stringify({ Body: body, Sha256: createHash('sha256').update(JSON.stringify(body)).digest('hex') }));
}

it('writes version 3 with the wrapped data key, and reads versions 1, 2 and 3', () => {
  const k1 = makeKeyring('k1', new Map([['k1', randomBytes(32)]]));
  const record = wrapDataKey(randomBytes(32), k1);
  const { DataSha256: _, ...withoutDigest } = base;
  const framed: StoredBackupMetadata = { ...withoutDigest, DataFramesSha256: 'f'.repeat(64) };
  const v3 = encodeBkMetadata({ ...framed, Encryption: record });
  assert.match(v3.toString(), /^\{"Body":\{"Version":3,/);
  assert.deepEqual(decodeBkMetadata(v3, 'x'), { ...framed, Encryption: record });
  assert.deepEqual(decodeBkMetadata(encodeBkMetadata(framed), 'x'), framed, 'unencrypted: no Encryption member at all');
  const v2 = encodeBkMetadata({ ...base, Encryption: record }, 2);
  assert.match(v2.toString(), /^\{"Body":\{"Version":2,/);
  assert.deepEqual(decodeBkMetadata(v2, 'x'), { ...base, Encryption: record });
  assert.throws(() => encodeBkMetadata(framed, 2), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'));
  assert.throws(() => encodeBkMetadata({ ...framed, DataSha256: 'ab' }), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'));

  const v1 = encodeBkMetadata(base, 1);
  assert.match(v1.toString(), /^\{"Body":\{"Version":1,/);
  assert.deepEqual(decodeBkMetadata(v1, 'x'), base);
  assert.throws(() => encodeBkMetadata({ ...base, Encryption: record }, 1), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'));
});

it('records the data object by its frames digest (what Lifeboat writes) or, as before, by the SHA-256 of all of it; one of them must be there', () => {
  const { DataSha256: _, ...withoutDigest } = base;
  const framed: StoredBackupMetadata = { ...withoutDigest, DataFramesSha256: 'f'.repeat(64) };
  assert.equal(decodeBkMetadata(encodeBkMetadata(framed), 'x').DataSha256, undefined);
  assert.equal(decodeBkMetadata(encodeBkMetadata(base, 2), 'x').DataSha256, 'ab', 'older backups keep their DataSha256');
  assert.throws(() => decodeBkMetadata(sealed({ DataSha256: undefined }), 'x'), (e: unknown) => corrupt(e) && /missing or malformed/.test((e as Error).message));
  assert.throws(() => decodeBkMetadata(sealed({ DataSha256: undefined, DataFramesSha256: 7 }), 'x'), corrupt);
});

it('refuses damage, unknown versions and malformed key records as damage, naming the object', () => {
  const enc = encodeBkMetadata(base);
  assert.throws(() => decodeBkMetadata(Buffer.from(enc.toString().replace('"42"', '"43"')), 'store/a.bkmetadata'), (e: unknown) => corrupt(e) && /store\/a\.bkmetadata.*checksum mismatch/.test((e as Error).message));
  assert.throws(() => decodeBkMetadata(Buffer.from('nope'), 'x'), corrupt);
  assert.throws(() => decodeBkMetadata(Buffer.from('null'), 'x'), corrupt);
  assert.throws(() => decodeBkMetadata(sealed({ Version: 4 }), 'x'), (e: unknown) => corrupt(e) && /version 4/.test((e as Error).message));
  const bad = { KeyId: 'k1', Algorithm: 'AES-256-GCM', WrappedKey: 'c2hvcnQ=', Nonce: randomBytes(12).toString('base64') };
  assert.throws(() => decodeBkMetadata(sealed({ Encryption: bad }), 'x'),
    (e: unknown) => corrupt(e) && /WrappedKey/.test((e as Error).message));
});

it('replaces the wrapped data key keeping every other field as stored (unknown ones too), and never reseals damage', () => {
  const keys = new Map([['k1', randomBytes(32)], ['k2', randomBytes(32)]]);
  const old = wrapDataKey(randomBytes(32), makeKeyring('k1', keys));
  const stored = sealed({ Encryption: old, FutureField: { kept: true } });
  const record = rewrapDataKey(old, makeKeyring('k2', keys));
  const rewritten = withEncryption(stored, 'x', record);
  const body = (JSON.parse(rewritten.toString()) as { Body: Record<string, unknown> }).Body;
  assert.deepEqual(body.FutureField, { kept: true });
  assert.deepEqual(decodeBkMetadata(rewritten, 'x'), { ...decodeBkMetadata(stored, 'x'), Encryption: record });
  const damaged = Buffer.from(stored.toString().replace('"42"', '"41"'));
  assert.throws(() => withEncryption(damaged, 'x', record), corrupt);
});

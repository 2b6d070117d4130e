/**
 * Restores that can be constrained: a backup of another service is refused unless the request
 * says AllowCrossServiceRestore (Service Fabric accepts it silently); with
 * --require-encrypted-restores and a keyring, a chain holding an unencrypted backup is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { it } from 'node:test';
import { partitionInfoToJson } from '../../src/core/partitioning.ts';
import { assertFabricError, assertSuccess, send } from '../support/api-http.ts';
import { backupNow, keyringOf, samplePartition } from '../support/backup-e2e.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { tempDir } from '../support/tmp.ts';

const V = 'api-version=6.4';

it('refuses a restore from another service\'s backup unless AllowCrossServiceRestore is true', async (t) => {
  const lb = await startTestLifeboat(t);
  const p0 = samplePartition(lb, 0);
  const done = await backupNow(lb, p0.id);
  // Another service with a partition of the same kind and range, registered by a host of its own.
  const other = '6e0c1a7e-0000-4000-8000-00000000a11c';
  await lb.service.hosts.register('other-host', {
    Services: [{ Name: 'fabric:/Other/Svc', Scheme: { kind: 'UniformInt64Range', count: 4, lowKey: '-9223372036854775808', highKey: '9223372036854775807' }, HasPersistedState: true,
      Partitions: [{ Id: other, Info: partitionInfoToJson(p0.info), Epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, Lsn: '0' }] }],
  });
  const body = { BackupId: done.BackupId, BackupLocation: done.BackupLocation, BackupStorage: lb.storage };
  const refused = await send(lb.url, { method: 'POST', path: `/Partitions/${other}/$/Restore?${V}`, body });
  assertFabricError(refused, 400, 'FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH');
  assert.match(refused.text, /AllowCrossServiceRestore/);
  assert.equal((await lb.catalog.operations.latest(other, 'Restore')), undefined, 'nothing accepted');
  assertFabricError(await send(lb.url, { method: 'POST', path: `/Partitions/${other}/$/Restore?${V}`, body: { ...body, AllowCrossServiceRestore: 'yes' } }), 400, 'E_INVALIDARG');
  assertSuccess(await send(lb.url, { method: 'POST', path: `/Partitions/${other}/$/Restore?${V}`, body: { ...body, AllowCrossServiceRestore: true } }), 202, 'said so: accepted');
});

it('with --require-encrypted-restores, refuses an unencrypted backup and restores an encrypted one', async (t) => {
  const shared = tempDir(t);
  const storage = { StorageKind: 'FileShare' as const, Path: join(shared, 'share') };
  const plain = await startTestLifeboat(t, { fileShareRoots: [shared] });
  const unencrypted = await backupNow(plain, samplePartition(plain, 0).id, storage);
  const keyring = keyringOf('k1', { k1: randomBytes(32) });
  const strict = await startTestLifeboat(t, { fileShareRoots: [shared], encryptionKeys: keyring, requireEncryptedRestores: true });
  const pid = samplePartition(strict, 0).id;
  const refused = await send(strict.url, { method: 'POST', path: `/Partitions/${pid}/$/Restore?${V}`, body: { BackupId: unencrypted.BackupId, BackupLocation: unencrypted.BackupLocation, BackupStorage: storage } });
  assertFabricError(refused, 400, 'E_INVALIDARG');
  assert.match(refused.text, /not encrypted/);
  const encrypted = await backupNow(strict, pid, storage);
  assertSuccess(await send(strict.url, { method: 'POST', path: `/Partitions/${pid}/$/Restore?${V}`, body: { BackupId: encrypted.BackupId, BackupLocation: encrypted.BackupLocation, BackupStorage: storage } }), 202);
});

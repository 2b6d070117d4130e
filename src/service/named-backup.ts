/** The backup a RestorePartition or VerifyBackup body names (or the newest one), checked against the partition. */
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { partitionInfoToJson, samePartitionInfo } from '../core/partitioning.ts';
import { type StorageDescription, parseStorageDescription, storageIdentity } from '../core/storage-description.ts';
import type { PartitionRecord } from '../catalog/port.ts';
import type { BackupRepository, StoredBackup } from '../repository/backup-repository.ts';
import { policyOfPartition } from './policies.ts';
import type { ServicePorts } from './ports.ts';

/** What a request may say of the backup it means. */
export type BackupReference = { BackupId?: unknown; BackupLocation?: unknown; BackupStorage?: unknown } | undefined;

/**
 * The backup a RestorePartition or VerifyBackup body names, read from its `.bkmetadata` and
 * checked to be the BackupId named and of a partition like this one. Without a body (or with
 * Latest) the newest backup of the partition in its policy's storage, or the BackupStorage
 * given, as the backup index knows it (9.1).
 */
export async function namedBackup(
  p: ServicePorts, partition: PartitionRecord, given: { BackupId?: unknown; BackupLocation?: unknown; BackupStorage?: unknown } | undefined, latest: boolean,
): Promise<{ storage: StorageDescription; repo: BackupRepository; target: StoredBackup }> {
  let body = given;
  if (body === undefined || body === null || latest) {
    const storage = body?.BackupStorage === undefined || body.BackupStorage === null
      ? (await policyOfPartition(p.catalog, partition)).storage
      : parseStorageDescription(body.BackupStorage);
    const key = storageIdentity(storage);
    const newest = (await p.catalog.backups.list({ partitionId: partition.id })).filter((b) => b.storageKey === key)
      .sort((a, b) => (a.creationTimeUtc < b.creationTimeUtc ? -1 : a.creationTimeUtc > b.creationTimeUtc ? 1 : 0)).pop();
    if (!newest) throw new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `No backup of partition ${partition.id} is known in ${key}.`);
    body = { BackupId: newest.backupId, BackupLocation: newest.backupLocation, BackupStorage: storage };
  }
  invalidArgUnless(typeof body.BackupId === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(body.BackupId), 'BackupId must be a GUID.');
  invalidArgUnless(typeof body.BackupLocation === 'string' && body.BackupLocation.length > 0, 'BackupLocation is required.');
  const storage = body.BackupStorage === undefined || body.BackupStorage === null
    ? (await policyOfPartition(p.catalog, partition)).storage
    : parseStorageDescription(body.BackupStorage);
  const repo = p.repositoryFor(storage);
  const target = await repo.at(body.BackupLocation);
  const m = target.metadata;
  if (m.BackupId.toLowerCase() !== body.BackupId.toLowerCase()) {
    throw new LifeboatError('E_INVALIDARG', `The backup at ${target.location} is ${m.BackupId}, not ${body.BackupId}.`);
  }
  if (!samePartitionInfo(m.PartitionInformation, partition.info)) {
    throw new LifeboatError('FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH',
      `Backup ${m.BackupId} is of a ${JSON.stringify(partitionInfoToJson(m.PartitionInformation))} partition; partition ${partition.id} is ${JSON.stringify(partitionInfoToJson(partition.info))}.`);
  }
  return { storage, repo, target };
}

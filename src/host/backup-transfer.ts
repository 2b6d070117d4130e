/**
 * Backup to storage, as a host carries out a backup order: the partition's replica backup
 * streams from its pinned snapshot into a `.lbk` version 2 archive (zstd; encrypted with a
 * keyring) and straight into the upload, with nothing written locally; the `.bkmetadata` goes
 * last, from the partition's backup callback (the repository's commit point).
 */
import { stat } from 'node:fs/promises';
import type { Clock } from '../core/clock.ts';
import { LifeboatError, isLifeboatError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Order, StoredBackupSummary, TransferProgress } from '../core/host-protocol.ts';
import { applicationOf } from '../core/ids.ts';
import type { StoredBackupMetadata } from '../format/bkmetadata.ts';
import { type ArchiveInput, type BlockRunner, type Compression, type Keyring, encodeFiles } from '../format/lbk2/index.ts';
import type { BackupRepository } from '../repository/backup-repository.ts';
import type { Partition, StatefulService } from '../state/index.ts';

/** What the transfer pipelines (backup and restore) take from the host that runs them. */
export interface TransferContext {
  readonly hostId: string;
  readonly clock: Clock;
  /** The host's block pool (compression, checksums, encryption off the event loop). */
  readonly workers: BlockRunner;
  readonly keyring?: Keyring | undefined;
  readonly compression?: Compression | undefined;
  /** O_DIRECT for the partition's database file where the system allows (HostOptions.directIo). */
  readonly directIo?: boolean | undefined;
  readonly log?: Logger | undefined;
  /** Told how far a backup is as each block goes out (plaintext read, stored written; the total when known). */
  readonly onBackupProgress?: ((p: TransferProgress) => void) | undefined;
  /** Told the size of each chunk a restore reads from storage. */
  readonly onStoredBytesRead?: ((bytes: number) => void) | undefined;
}

export type BackupOrder = Extract<Order, { Kind: 'Backup' }>;

interface Uploaded {
  readonly bytes: number;
  readonly plainBytes: number;
  readonly framesSha256: string;
  readonly encryption?: StoredBackupMetadata['Encryption'];
}

/** Carries out the backup the order names, to `repo`; what the host reports of it, and the bytes it moved. */
export async function backupToStorage(
  t: TransferContext, repo: BackupRepository, service: StatefulService, partition: Partition, order: BackupOrder,
): Promise<{ readonly backup: StoredBackupSummary; readonly progress: TransferProgress }> {
  const deadline = new Date(order.DeadlineUtc);
  let location = '';
  const option = order.Option ?? 'Full';
  const parentId = option === 'Incremental' ? order.ParentBackupId ?? '' : '';
  const parentLocation = option === 'Incremental' ? order.ParentBackupLocation ?? '' : '';
  let uploaded: Uploaded | undefined;
  const info = await partition.backup({
    option,
    // The replica's files go straight into the archive being uploaded: read once, never copied locally.
    writer: async (b) => {
      // An incremental must continue the backup the service named (an on-demand or direct backup
      // in between moved the replica's chain on): otherwise it is refused, and a full follows (§2.7).
      if (option === 'Incremental' && b.parentBackupId !== parentId) {
        throw new LifeboatError('FABRIC_E_MISSING_FULL_BACKUP',
          `An incremental backup of partition ${partition.id} cannot continue backup ${parentId}: the replica's last backup is another one. Take a full backup.`);
      }
      if (t.clock.now() > deadline) throw new LifeboatError('FABRIC_E_TIMEOUT', 'The request of backup has timed out.');
      location = await repo.freeLocation(service.name, partition.id, new Date(b.takenAtUtc));
      uploaded = await upload(t, repo, location, b.files);
      return repo.where(location);
    },
    callback: async (b) => {
      if (!uploaded) return false;
      await repo.commit(location, {
        BackupId: b.backupId, BackupChainId: b.backupChainId, ParentBackupId: parentId, ParentBackupLocation: parentLocation,
        BackupType: option, ApplicationName: applicationOf(service.name), ServiceName: service.name, PartitionId: partition.id,
        PartitionInformation: partition.info,
        EpochOfLastBackupRecord: { DataLossVersion: b.epoch.dataLossVersion.toString(), ConfigurationVersion: b.epoch.configurationVersion.toString() },
        LsnOfLastBackupRecord: b.lastLsn.toString(), FirstLsn: b.firstLsn.toString(), CreationTimeUtc: b.takenAtUtc, ServiceManifestVersion: '1.0.0',
        DataSize: uploaded.bytes, DataFramesSha256: uploaded.framesSha256, ...(uploaded.encryption ? { Encryption: uploaded.encryption } : {}),
      });
      return true;
    },
  }).catch((err: unknown) => {
    // What the callback met (a storage failure, mostly) is the failure to report, with its own code.
    if (isLifeboatError(err, 'LIFEBOAT_E_BACKUP_CALLBACK_FAILED') && isLifeboatError(err.cause)) throw err.cause;
    throw err;
  });
  const backup: StoredBackupSummary = {
    BackupId: info.backupId, BackupChainId: info.backupChainId, ParentBackupId: parentId, BackupLocation: location, BackupType: option,
    EpochOfLastBackupRecord: { DataLossVersion: info.epoch.dataLossVersion.toString(), ConfigurationVersion: info.epoch.configurationVersion.toString() },
    LsnOfLastBackupRecord: info.lastLsn.toString(), CreationTimeUtc: info.takenAtUtc,
  };
  const moved = uploaded as Uploaded | undefined;
  return { backup, progress: { BytesTransferred: moved?.plainBytes ?? 0, TotalBytes: moved?.plainBytes ?? 0, StoredBytes: moved?.bytes ?? 0 } };
}

/** The bytes a backup will read: known for files on disk (a full backup), not for streams (an incremental's change log). */
async function plainTotal(files: readonly ArchiveInput[]): Promise<number | undefined> {
  let total = 0;
  for (const f of files) {
    if ('path' in f) total += f.bytes ?? (await stat(f.path)).size;
    else if ('stream' in f) return undefined;
  }
  return total;
}

/** Streams the backup's files to storage as `.lbk` version 2; the encoder gives its size, frames digest and wrapped data key. */
async function upload(t: TransferContext, repo: BackupRepository, location: string, files: readonly ArchiveInput[]): Promise<Uploaded> {
  const report = t.onBackupProgress;
  const total = report ? await plainTotal(files) : undefined;
  const encoded = await encodeFiles(files, {
    workers: t.workers, compression: t.compression ?? 'zstd', ...(t.keyring ? { keyring: t.keyring } : {}), ...(t.directIo === undefined ? {} : { directRead: t.directIo }),
    // The archive's own small files (its metadata) are not in the total: the count stops at it until the end.
    ...(report ? {
      onProgress: (p) => report({
        BytesTransferred: total === undefined ? p.plainBytes : Math.min(p.plainBytes, total), StoredBytes: p.storedBytes, ...(total !== undefined ? { TotalBytes: total } : {}),
      }),
    } : {}),
  });
  try {
    // A read error ends the stream with it, so the put fails too (and says why, after its clean-up).
    await repo.putData(location, encoded.stream);
  } catch (err) {
    encoded.stream.destroy();
    throw err;
  }
  const r = await encoded.result;
  // directBytes: whether reading past the page cache is in effect here (0 where refused or off).
  t.log?.info({ object: location, plainBytes: r.plainBytes, storedBytes: r.bytes, directBytes: r.directBytes }, 'backup data uploaded');
  return { bytes: r.bytes, plainBytes: r.plainBytes, framesSha256: r.framesSha256, ...(r.encryption ? { encryption: r.encryption } : {}) };
}

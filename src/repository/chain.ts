/**
 * A backup's chain, read from the `.bkmetadata` objects by following ParentBackupLocation, and
 * checked as restore will check it (core/backup-chain): parent links, one chain id, one partition,
 * one DataLossVersion, LSNs that continue. The first problem is thrown, naming the backup and where.
 */
import { type ChainLink, planRestoreChain } from '../core/backup-chain.ts';
import { normalizeLocation } from '../core/backup-layout.ts';
import { LifeboatError, isLifeboatError } from '../core/errors.ts';
import type { BackupRepository, StoredBackup } from './backup-repository.ts';

function broken(message: string): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_BACKUP_CHAIN_BROKEN', message);
}

/** How long a chain may be before it is taken for a loop. */
const MAX_CHAIN = 10_000;

/**
 * The chain that ends in `target`, full backup first: each parent must be there and be the backup
 * named. LIFEBOAT_E_BACKUP_CHAIN_BROKEN (a parent missing or another backup than named) or
 * LIFEBOAT_E_BACKUP_CORRUPT (a metadata object damaged).
 */
export async function readChain(repo: BackupRepository, target: StoredBackup): Promise<StoredBackup[]> {
  const chain: StoredBackup[] = [target];
  for (let cur = target; cur.metadata.BackupType === 'Incremental';) {
    const m = cur.metadata;
    if (chain.length > MAX_CHAIN) throw broken(`The chain of ${target.metadata.BackupId} does not end in a full backup.`);
    let parentLocation: string;
    try {
      parentLocation = normalizeLocation(m.ParentBackupLocation);
    } catch {
      throw broken(`Incremental backup ${m.BackupId} at ${cur.location} names no valid parent location (ParentBackupLocation '${m.ParentBackupLocation}').`);
    }
    const parent = await repo.at(parentLocation).catch((err: unknown) => {
      if (isLifeboatError(err, 'LIFEBOAT_E_STORAGE_NOT_FOUND')) {
        throw broken(`Backup ${m.BackupId} at ${cur.location} follows ${m.ParentBackupId} at ${parentLocation}, which is not in ${repo.description}: the chain has a gap.`);
      }
      throw err;
    });
    if (parent.metadata.BackupId.toLowerCase() !== m.ParentBackupId.toLowerCase()) {
      throw broken(`Backup ${m.BackupId} at ${cur.location} follows ${m.ParentBackupId}, but the backup at ${parentLocation} is ${parent.metadata.BackupId}.`);
    }
    chain.unshift(parent);
    cur = parent;
  }
  return chain;
}

/** A chain rule's view of a stored backup (a full backup's parent is itself, as the chain rules have it). */
function linkOf(repo: BackupRepository, e: StoredBackup): ChainLink & { entry: StoredBackup } {
  const m = e.metadata;
  try {
    return {
      entry: e, backupId: m.BackupId, parentBackupId: m.BackupType === 'Full' && m.ParentBackupId === '' ? m.BackupId : m.ParentBackupId,
      backupChainId: m.BackupChainId, option: m.BackupType,
      epoch: { dataLossVersion: BigInt(m.EpochOfLastBackupRecord.DataLossVersion), configurationVersion: BigInt(m.EpochOfLastBackupRecord.ConfigurationVersion) },
      firstLsn: BigInt(m.FirstLsn), lastLsn: BigInt(m.LsnOfLastBackupRecord),
    };
  } catch {
    throw new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup metadata ${repo.metadataWhere(e.location)} is damaged: an epoch or LSN is not a number.`);
  }
}

/**
 * Checks a chain read by readChain as restore will check it: the full backup is its own parent
 * and chain, one chain id, one partition, one DataLossVersion, LSNs that continue.
 */
export function checkChain(repo: BackupRepository, chain: readonly StoredBackup[]): void {
  const full = chain[0] as StoredBackup;
  const target = chain[chain.length - 1] as StoredBackup;
  for (const e of chain) {
    if (e.metadata.PartitionId !== full.metadata.PartitionId) {
      throw broken(`Backup ${e.metadata.BackupId} at ${e.location} is of partition ${e.metadata.PartitionId}; its chain's full backup ${full.metadata.BackupId} of ${full.metadata.PartitionId}.`);
    }
  }
  const plan = planRestoreChain(chain.map((e) => linkOf(repo, e)));
  if (plan.chain.length !== chain.length) {
    const off = plan.dropped[0]?.backup.entry ?? target;
    throw broken(`Backup ${off.metadata.BackupId} at ${off.location} is not on the chain from full backup ${full.metadata.BackupId} to ${target.metadata.BackupId}.`);
  }
}

/** `lifeboat backups ls` (the backups of an entity, from the index or a storage) and `lifeboat verify` (a backup and its chain). */
import type { Command } from 'commander';
import type { LifeboatClient } from '../client/lifeboat-client.ts';
import { LifeboatError } from '../core/errors.ts';
import { isGuid, nameToId } from '../core/ids.ts';
import type { BackupInfoWire } from '../wire/backups.ts';
import type { BackupEntityWire } from '../wire/protection.ts';
import { type CliContext, type CommonOptions, parseStorageOption, parseTimeOption, runAction, withCommonOptions } from './common.ts';
import { bytesText } from '../core/bytes.ts';
import { UsageError } from './output.ts';
import { allPages } from '../client/lifeboat-client.ts';
import { type ResolvedEntity, applicationsOf, resolveEntityText } from './resolve.ts';

function entityWireOf(e: ResolvedEntity): BackupEntityWire {
  return e.kind === 'Partition' ? { EntityKind: 'Partition', ServiceName: e.serviceName, PartitionId: e.partitionId }
    : e.kind === 'Service' ? { EntityKind: 'Service', ServiceName: e.serviceName } : { EntityKind: 'Application', ApplicationName: e.applicationName };
}

interface BackupsLsOptions extends CommonOptions { partitionKey?: string; latest?: boolean; since?: string; until?: string; storage?: string }

async function listBackups(lb: LifeboatClient, e: ResolvedEntity, o: BackupsLsOptions): Promise<BackupInfoWire[]> {
  const filters = {
    ...(o.latest ? { latest: true } : {}), ...(o.since !== undefined ? { start: parseTimeOption(o.since, '--since') } : {}),
    ...(o.until !== undefined ? { end: parseTimeOption(o.until, '--until') } : {}),
  };
  const page = (t: string | undefined): typeof filters & { continuationToken?: string } => (t ? { ...filters, continuationToken: t } : filters);
  if (o.storage !== undefined) {
    const storage = parseStorageOption(o.storage);
    return allPages((t) => lb.listing.backupsInStorage(storage, entityWireOf(e), page(t)));
  }
  switch (e.kind) {
    case 'Partition': return allPages((t) => lb.listing.partitionBackups(e.partitionId, page(t)));
    case 'Service': return allPages((t) => lb.listing.serviceBackups(nameToId(e.serviceName), page(t)));
    case 'Application': return allPages((t) => lb.listing.applicationBackups(nameToId(e.applicationName), page(t)));
  }
}

/** The partition and location of backup `backupId`, from the index (GetBackups of each application). */
async function findBackup(lb: LifeboatClient, backupId: string): Promise<BackupInfoWire> {
  for (const app of await applicationsOf(lb)) {
    const hit = (await allPages((t) => lb.listing.applicationBackups(app.Id, t ? { continuationToken: t } : {}))).find((b) => b.BackupId.toLowerCase() === backupId.toLowerCase());
    if (hit) return hit;
  }
  throw new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `No backup ${backupId} is in the service's backup index.`, { details: { status: 404 } });
}

interface VerifyOptions extends CommonOptions { partitionKey?: string; backupId?: string; latest?: boolean; storage?: string }

export function registerBackups(program: Command, ctx: CliContext): void {
  const backups = program.command('backups').description('stored backups');
  withCommonOptions(backups.command('ls'), ctx)
    .description('the backups of an application, service or partition, oldest first: from the service\'s index, or read from a storage with --storage')
    .argument('<entity>', 'fabric:/App, fabric:/App/Service, a partition id, or fabric:/App/Service --partition-key <key>')
    .option('--partition-key <key>', 'with a service: the partition holding this key')
    .option('--latest', 'only the newest backup of each partition')
    .option('--since <date-time>', 'only backups taken at or after this time')
    .option('--until <date-time>', 'only backups taken at or before this time')
    .option('--storage <storage>', 'list what this storage holds (fileshare:<path> or a BackupStorage JSON) instead of the index')
    .action((entity: string, o: BackupsLsOptions) => runAction(ctx, o, async (lb, out) => {
      const items = await listBackups(lb, await resolveEntityText(lb, entity, o.partitionKey), o);
      if (out.json) {
        out.data(items);
        return;
      }
      out.table(['CREATED', 'TYPE', 'BACKUP ID', 'PARTITION', 'LSN', 'CHAIN', 'LOCATION'],
        items.map((b) => [b.CreationTimeUtc, b.BackupType, b.BackupId, b.PartitionInformation.Id ?? '', b.LsnOfLastBackupRecord, b.BackupChainId.slice(0, 8), b.BackupLocation]));
      out.note(`${items.length} backup(s)`);
    }));

  withCommonOptions(program.command('verify'), ctx)
    .description('check a backup and its whole chain without restoring it (VerifyBackup): metadata, links, every block\'s checksum and, with the keys, its authentication')
    .argument('<backup-or-partition>', 'a backup id (its partition and location come from the service\'s backup index), or a partition with --backup-id or --latest')
    .option('--partition-key <key>', 'with a service: the partition holding this key')
    .option('--backup-id <id>', 'with a partition: the backup to check')
    .option('--latest', 'with a partition: its newest backup')
    .option('--storage <storage>', 'the storage the backup is in (default: the partition\'s policy\'s)')
    .action((arg: string, o: VerifyOptions) => runAction(ctx, o, async (lb, out) => {
      const storage = o.storage === undefined ? undefined : parseStorageOption(o.storage);
      let partitionId: string;
      let ref;
      if (o.backupId === undefined && o.latest !== true) {
        if (!isGuid(arg) || o.partitionKey !== undefined) throw new UsageError('verify <backup-id>, or verify <partition> --backup-id <id> | --latest.');
        const b = await findBackup(lb, arg);
        partitionId = b.PartitionInformation.Id ?? '';
        ref = { backupId: b.BackupId, backupLocation: b.BackupLocation, ...(storage ? { storage } : {}) };
      } else {
        const p = await resolveEntityText(lb, arg, o.partitionKey);
        if (p.kind !== 'Partition') throw new UsageError('verify with --backup-id or --latest takes a partition.');
        partitionId = p.partitionId;
        if (o.latest) {
          ref = { latest: true as const, ...(storage ? { storage } : {}) };
        } else {
          const listed = (await allPages((t) => lb.listing.partitionBackups(p.partitionId, t ? { continuationToken: t } : {}))).find((b) => b.BackupId.toLowerCase() === o.backupId!.toLowerCase());
          if (!listed) throw new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `No backup ${o.backupId} of partition ${p.partitionId} is in the backup index.`, { details: { status: 404 } });
          ref = { backupId: listed.BackupId, backupLocation: listed.BackupLocation, ...(storage ? { storage } : {}) };
        }
      }
      const result = await lb.operations.verifyBackup(partitionId, ref);
      if (out.json) {
        out.data(result);
        return;
      }
      out.line(`${out.paint('✓', 'green')} backup ${result.BackupId} of partition ${partitionId} and its chain are intact`);
      out.table(['BACKUP ID', 'TYPE', 'VERSION', 'FILES', 'BLOCKS', 'STORED', 'ENCRYPTED', 'CONTENTS CHECKED', 'AUTHENTICATED', 'LOCATION'],
        result.Chain.map((c) => [c.BackupId, c.BackupType, String(c.Version), String(c.Files), String(c.Blocks), bytesText(c.StoredBytes),
          c.Encrypted ? 'yes' : 'no', c.ContentsChecked ? 'yes' : 'no', c.Authenticated ? 'yes' : 'no', c.BackupLocation]));
    }));
}

/**
 * `lifeboat backup`, `lifeboat restore` and `lifeboat progress`: on-demand operations of a
 * partition, followed with progress (progress.ts) until they end or the user detaches.
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { LifeboatClient } from '../client/lifeboat-client.ts';
import { ERROR_CATALOGUE, type ErrorCode, LifeboatError } from '../core/errors.ts';
import type { StorageDescription } from '../core/storage-description.ts';
import type { BackupInfoWire } from '../wire/backups.ts';
import { ACTIVE_BACKUP_STATES, ACTIVE_RESTORE_STATES, type BackupProgress, EMPTY_ID, type RestoreProgress } from '../wire/operations.ts';
import { type CliContext, type CommonOptions, parseStorageOption, parseTimeOption, parseTimeoutMinutes, runAction, withCommonOptions } from './common.ts';
import { bytesText } from '../core/bytes.ts';
import { EXIT, type Output, UsageError } from './output.ts';
import { type FollowOutcome, type ProgressSnapshot, follow } from './progress.ts';
import { allPages } from '../client/lifeboat-client.ts';
import { type ResolvedPartition, partitionsUnder, resolveEntityText } from './resolve.ts';

export function backupSnapshot(p: BackupProgress): ProgressSnapshot {
  return {
    state: p.BackupState, ended: !ACTIVE_BACKUP_STATES.includes(p.BackupState), succeeded: p.BackupState === 'Success',
    bytesTransferred: p.BytesTransferred, totalBytes: p.TotalBytes,
  };
}

export function restoreSnapshot(p: RestoreProgress): ProgressSnapshot {
  return {
    state: p.RestoreState, ended: !ACTIVE_RESTORE_STATES.includes(p.RestoreState), succeeded: p.RestoreState === 'Success',
    bytesTransferred: p.BytesTransferred, totalBytes: p.TotalBytes,
  };
}

const short = (id: string): string => id.slice(0, 8);

/** The message of a failed operation, with the catalogue's hint when the code is one of ours. */
function failureLines(out: Output, what: string, state: string, failure: { Code: string; Message: string } | null): void {
  out.term.stderr.write(`${out.paint('error:', 'red')} ${what} ended ${state}${failure ? `: ${failure.Code}: ${failure.Message}` : ''}\n`);
  const spec = failure && Object.hasOwn(ERROR_CATALOGUE, failure.Code) ? ERROR_CATALOGUE[failure.Code as ErrorCode] : undefined;
  if (spec) out.term.stderr.write(`hint: ${spec.hint}\n`);
}

function detachedNote(out: Output, what: string, partitionId: string): number {
  out.term.stderr.write(`detached: ${what} goes on in the service; follow it with \`lifeboat progress ${partitionId}\`.\n`);
  return EXIT.detached;
}

/** Waits for the backup of `p`; answers its final progress, or undefined when detached. */
async function followBackup(lb: LifeboatClient, out: Output, p: ResolvedPartition): Promise<FollowOutcome<BackupProgress>> {
  return follow({
    read: () => lb.operations.backupProgress(p.partitionId), snapshot: backupSnapshot, out,
    label: `backup ${short(p.partitionId)}`, what: `The backup of partition ${p.partitionId}`,
  });
}

async function followRestore(lb: LifeboatClient, out: Output, p: ResolvedPartition): Promise<FollowOutcome<RestoreProgress>> {
  return follow({
    read: () => lb.operations.restoreProgress(p.partitionId), snapshot: restoreSnapshot, out,
    label: `restore ${short(p.partitionId)}`, what: `The restore of partition ${p.partitionId}`,
  });
}

interface BackupCommandOptions extends CommonOptions { partitionKey?: string; storage?: string; timeout?: string; wait: boolean }

async function backupCommand(lb: LifeboatClient, out: Output, entity: string, o: BackupCommandOptions): Promise<number> {
  const storage = o.storage === undefined ? undefined : parseStorageOption(o.storage);
  const timeoutMinutes = o.timeout === undefined ? undefined : parseTimeoutMinutes(o.timeout);
  const partitions = await partitionsUnder(lb, await resolveEntityText(lb, entity, o.partitionKey));
  if (!o.wait && partitions.length > 1) throw new UsageError(`--no-wait backs up one partition; ${entity} has ${partitions.length} (they are backed up one at a time, waiting for each).`);
  const results: Array<{ PartitionId: string; ServiceName: string; Progress: BackupProgress | null }> = [];
  let code: number = EXIT.ok;
  for (const [i, p] of partitions.entries()) {
    await lb.operations.backupPartition(p.partitionId, { ...(storage ? { storage } : {}), ...(timeoutMinutes !== undefined ? { timeoutMinutes } : {}) });
    if (!o.wait) {
      const now = await lb.operations.backupProgress(p.partitionId);
      if (out.json) out.data([{ PartitionId: p.partitionId, ServiceName: p.serviceName, Progress: now }]);
      else out.line(`backup of partition ${p.partitionId} accepted (${now.BackupState}); follow it with \`lifeboat progress ${p.partitionId}\``);
      return EXIT.ok;
    }
    const ended = await followBackup(lb, out, p);
    if (ended.kind === 'detached') {
      const left = partitions.length - i - 1;
      if (left > 0) out.term.stderr.write(`${left} partition(s) of ${entity} were not backed up.\n`);
      if (out.json) out.data([...results, { PartitionId: p.partitionId, ServiceName: p.serviceName, Progress: ended.last ?? null }]);
      return detachedNote(out, 'the backup', p.partitionId);
    }
    const r = ended.last;
    results.push({ PartitionId: p.partitionId, ServiceName: p.serviceName, Progress: r });
    if (r.BackupState === 'Success') {
      const bytes = r.BytesTransferred !== undefined ? `, ${bytesText(r.BytesTransferred)} read` : '';
      out.line(`${out.paint('✓', 'green')} ${p.serviceName} partition ${p.partitionId}: backup ${r.BackupId} at ${r.BackupLocation} (LSN ${r.LsnOfLastBackupRecord}${bytes})`);
    } else {
      failureLines(out, `the backup of partition ${p.partitionId}`, r.BackupState, r.FailureError);
      code = EXIT.failed;
    }
  }
  if (out.json) out.data(results);
  return code;
}

/** The backups that can be restored into `p`: those in `storage` when given (read from it), else the index's. */
async function candidatesOf(lb: LifeboatClient, p: ResolvedPartition, storage: StorageDescription | undefined): Promise<BackupInfoWire[]> {
  const items = storage
    ? await allPages((t) => lb.listing.backupsInStorage(storage, { EntityKind: 'Partition', ServiceName: p.serviceName, PartitionId: p.partitionId }, t ? { continuationToken: t } : {}))
    : await allPages((t) => lb.listing.partitionBackups(p.partitionId, t ? { continuationToken: t } : {}));
  return items.sort((a, b) => (a.CreationTimeUtc < b.CreationTimeUtc ? -1 : a.CreationTimeUtc > b.CreationTimeUtc ? 1 : 0));
}

export interface RestorePick { backupId?: string; latest?: boolean; time?: string }

/** The backup a restore means, and its chain (full first) as the listing knows it. Pure. */
export function pickBackup(candidates: readonly BackupInfoWire[], pick: RestorePick, partitionId: string): { target: BackupInfoWire; chain: BackupInfoWire[] } {
  let target: BackupInfoWire | undefined;
  if (pick.backupId !== undefined) target = candidates.find((b) => b.BackupId.toLowerCase() === pick.backupId!.toLowerCase());
  else if (pick.time !== undefined) target = candidates.filter((b) => b.CreationTimeUtc <= pick.time!).pop();
  else target = candidates[candidates.length - 1];
  if (!target) {
    const which = pick.backupId !== undefined ? `backup ${pick.backupId}` : pick.time !== undefined ? `backup taken at or before ${pick.time}` : 'backup';
    throw new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `No ${which} of partition ${partitionId} is known (${candidates.length} backup(s) listed).`, { details: { status: 404 } });
  }
  const sameChain = candidates.filter((b) => b.BackupChainId === target.BackupChainId && b.CreationTimeUtc <= target.CreationTimeUtc);
  const fullAt = sameChain.map((b) => b.BackupType).lastIndexOf('Full');
  return { target, chain: fullAt < 0 ? sameChain : sameChain.slice(fullAt) };
}

async function confirm(out: Output, question: string): Promise<boolean> {
  const rl = createInterface({ input: out.term.stdin, output: out.term.stderr, terminal: true });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.on('SIGINT', () => resolve('n'));
      rl.on('close', () => resolve('n'));
      rl.question(question, resolve);
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

interface RestoreCommandOptions extends CommonOptions { partitionKey?: string; backupId?: string; latest?: boolean; time?: string; storage?: string; timeout?: string; yes?: boolean; wait: boolean }

async function restoreCommand(lb: LifeboatClient, out: Output, entity: string, o: RestoreCommandOptions): Promise<number> {
  const picks = [o.backupId !== undefined, o.latest === true, o.time !== undefined].filter(Boolean).length;
  if (picks !== 1) throw new UsageError('restore needs exactly one of --backup-id <id>, --latest, --time <date-time>.');
  const storage = o.storage === undefined ? undefined : parseStorageOption(o.storage);
  const timeoutMinutes = o.timeout === undefined ? undefined : parseTimeoutMinutes(o.timeout);
  const time = o.time === undefined ? undefined : parseTimeOption(o.time, '--time');
  const resolved = await resolveEntityText(lb, entity, o.partitionKey);
  if (resolved.kind !== 'Partition') throw new UsageError(`restore takes one partition: a partition id, or ${resolved.kind === 'Service' ? resolved.serviceName : 'a service'} --partition-key <key>.`);
  const pick = { ...(o.backupId !== undefined ? { backupId: o.backupId } : {}), ...(time !== undefined ? { time } : {}) };
  const { target, chain } = pickBackup(await candidatesOf(lb, resolved, storage), pick, resolved.partitionId);

  if (!out.json) {
    out.line(`Restore ${resolved.serviceName} partition ${resolved.partitionId}`);
    out.line(`  to backup ${target.BackupId} (${target.BackupType}, taken ${target.CreationTimeUtc}) at ${target.BackupLocation}`);
    out.line(`  from ${storage ? `the storage given (${storage.StorageKind})` : 'the storage of the partition\'s backup policy'}`);
    out.line(`  chain (${chain.length}, full first):`);
    out.table(['BACKUP ID', 'TYPE', 'CREATED', 'LSN', 'LOCATION'], chain.map((b) => [b.BackupId, b.BackupType, b.CreationTimeUtc, b.LsnOfLastBackupRecord, b.BackupLocation]));
    out.line(`  the partition goes back to LSN ${target.LsnOfLastBackupRecord} (epoch ${target.EpochOfLastBackupRecord.DataLossVersion}/${target.EpochOfLastBackupRecord.ConfigurationVersion}); what it holds now is replaced.`);
    out.line('  size: the chain\'s stored size shows in the progress once the restore starts.');
  }
  if (o.yes !== true) {
    if (out.term.stdin.isTTY !== true) throw new UsageError('restore replaces the partition\'s data: confirm with --yes (stdin is not a terminal, so there is no one to ask).');
    if (!(await confirm(out, `Restore partition ${resolved.partitionId} to backup ${target.BackupId}? [y/N] `))) {
      out.term.stderr.write('not restored.\n');
      return EXIT.failed;
    }
  }
  await lb.operations.restorePartition(resolved.partitionId, { backupId: target.BackupId, backupLocation: target.BackupLocation, ...(storage ? { storage } : {}) },
    timeoutMinutes !== undefined ? { timeoutMinutes } : {});
  const answer = (progress: RestoreProgress | null): unknown => ({ PartitionId: resolved.partitionId, Backup: target, Chain: chain, Progress: progress });
  if (!o.wait) {
    const now = await lb.operations.restoreProgress(resolved.partitionId);
    if (out.json) out.data(answer(now));
    else out.line(`restore of partition ${resolved.partitionId} accepted (${now.RestoreState}); follow it with \`lifeboat progress ${resolved.partitionId}\``);
    return EXIT.ok;
  }
  const ended = await followRestore(lb, out, resolved);
  if (ended.kind === 'detached') {
    if (out.json) out.data(answer(ended.last ?? null));
    return detachedNote(out, 'the restore', resolved.partitionId);
  }
  const r = ended.last;
  if (out.json) out.data(answer(r));
  if (r.RestoreState !== 'Success') {
    failureLines(out, `the restore of partition ${resolved.partitionId}`, r.RestoreState, r.FailureError);
    return EXIT.failed;
  }
  out.line(`${out.paint('✓', 'green')} partition ${resolved.partitionId} restored to backup ${target.BackupId} (LSN ${r.RestoredLsn})`);
  return EXIT.ok;
}

function progressRows(b: BackupProgress, r: RestoreProgress): string[][] {
  const bytes = (x: { BytesTransferred?: number; TotalBytes?: number }): string =>
    x.BytesTransferred === undefined ? '' : `${bytesText(x.BytesTransferred)}${x.TotalBytes !== undefined ? ` / ${bytesText(x.TotalBytes)}` : ''}`;
  return [
    ['backup', b.BackupState, b.TimeStampUtc, b.BackupId === EMPTY_ID ? '' : b.BackupId, b.LsnOfLastBackupRecord, bytes(b), b.FailureError ? `${b.FailureError.Code}: ${b.FailureError.Message}` : ''],
    ['restore', r.RestoreState, r.TimeStampUtc, '', r.RestoredLsn, bytes(r), r.FailureError ? `${r.FailureError.Code}: ${r.FailureError.Message}` : ''],
  ];
}

export function registerOperations(program: Command, ctx: CliContext): void {
  withCommonOptions(program.command('backup'), ctx)
    .description('back up a partition now, or every partition of a service or application (one at a time), and follow it with a progress bar; Ctrl-C asks whether to detach')
    .argument('<entity>', 'a partition id, fabric:/App/Service [--partition-key <key>], fabric:/App/Service (all its partitions) or fabric:/App')
    .option('--partition-key <key>', 'with a service: the partition holding this key (Int64 range, a string key as the state library hashes it, or a Named partition\'s name)')
    .option('--storage <storage>', 'where this backup goes: fileshare:<path> or a BackupStorage JSON description (default: the storage of the partition\'s policy)')
    .option('--timeout <minutes>', 'BackupTimeout: the service ends the backup with Timeout after this long (minutes, or e.g. 2h; default 10)')
    .option('--no-wait', 'return once the service accepted the backup (one partition only)')
    .action((entity: string, o: BackupCommandOptions) => runAction(ctx, o, (lb, out) => backupCommand(lb, out, entity, o)));

  withCommonOptions(program.command('restore'), ctx)
    .description('restore a partition from a backup: shows the backup, its chain and the LSN the partition goes back to, asks for confirmation (unless --yes), then follows it with a progress bar')
    .argument('<partition>', 'a partition id, or fabric:/App/Service --partition-key <key>')
    .option('--partition-key <key>', 'with a service: the partition holding this key')
    .option('--backup-id <id>', 'the backup to restore')
    .option('--latest', 'the partition\'s newest backup')
    .option('--time <date-time>', 'the newest backup taken at or before this time (point in time)')
    .option('--storage <storage>', 'the storage the backup is in: fileshare:<path> or a BackupStorage JSON (default: the partition\'s policy\'s); backups are then listed from it')
    .option('--timeout <minutes>', 'RestoreTimeout in minutes (default 10)')
    .option('-y, --yes', 'restore without asking (needed when stdin is not a terminal)')
    .option('--no-wait', 'return once the service accepted the restore')
    .action((entity: string, o: RestoreCommandOptions) => runAction(ctx, o, (lb, out) => restoreCommand(lb, out, entity, o)));

  withCommonOptions(program.command('progress'), ctx)
    .description('the latest on-demand backup and restore of a partition: state, time, backup, LSN, bytes, failure')
    .argument('<partition>', 'a partition id, or fabric:/App/Service --partition-key <key>')
    .option('--partition-key <key>', 'with a service: the partition holding this key')
    .action((entity: string, o: CommonOptions & { partitionKey?: string }) => runAction(ctx, o, async (lb, out) => {
      const p = await resolveEntityText(lb, entity, o.partitionKey);
      if (p.kind !== 'Partition') throw new UsageError('progress takes one partition: a partition id, or fabric:/App/Service --partition-key <key>.');
      const [b, r] = await Promise.all([lb.operations.backupProgress(p.partitionId), lb.operations.restoreProgress(p.partitionId)]);
      if (out.json) out.data({ PartitionId: p.partitionId, BackupProgress: b, RestoreProgress: r });
      else out.table(['OPERATION', 'STATE', 'TIME', 'BACKUP ID', 'LSN', 'BYTES', 'FAILURE'], progressRows(b, r));
    }));
}

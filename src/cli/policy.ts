/** `lifeboat policy create|get|ls|update|delete`: backup policies, from flags or a JSON file (BackupPolicyDescription). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { LifeboatClient } from '../client/lifeboat-client.ts';
import type { BackupPolicyWire, BackupScheduleWire } from '../wire/policy.ts';
import { type CliContext, type CommonOptions, parseStorageOption, runAction, withCommonOptions } from './common.ts';
import { type Output, UsageError } from './output.ts';
import { allPages } from '../client/lifeboat-client.ts';

export interface PolicyFlags {
  file?: string;
  storage?: string;
  interval?: string;
  daily?: string;
  maxIncrementals?: string;
  autoRestore?: boolean;
  retention?: string;
  minBackups?: string;
  validateConnection?: boolean;
}

function wholeNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag}: '${text}' is not a whole number.`);
  return n;
}

function scheduleOf(f: PolicyFlags): BackupScheduleWire | undefined {
  if (f.interval !== undefined && f.daily !== undefined) throw new UsageError('give --interval or --daily, not both.');
  if (f.interval !== undefined) return { ScheduleKind: 'FrequencyBased', Interval: f.interval };
  if (f.daily !== undefined) {
    const times = f.daily.split(',').map((t) => t.trim()).filter(Boolean);
    if (times.length === 0 || times.some((t) => !/^\d{1,2}:\d{2}$/.test(t))) throw new UsageError(`--daily: '${f.daily}' is not a list of times of day (e.g. 09:00,21:30).`);
    return { ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Daily', RunTimes: times.map((t) => `0001-01-01T${t.padStart(5, '0')}:00Z`) };
  }
  return undefined;
}

/** The policy the flags describe, over `base` (update: the stored policy; create: nothing). The service checks the rest. */
export function policyFromFlags(name: string, f: PolicyFlags, base?: BackupPolicyWire): BackupPolicyWire {
  if (f.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(f.file, 'utf8');
    } catch (err) {
      throw new UsageError(`--file: cannot read ${f.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    let p: unknown;
    try {
      p = JSON.parse(text) as unknown;
    } catch {
      throw new UsageError(`--file: ${f.file} is not JSON (a BackupPolicyDescription).`);
    }
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new UsageError(`--file: ${f.file} is not a JSON object (a BackupPolicyDescription).`);
    return { ...(p as BackupPolicyWire), Name: (p as { Name?: string }).Name ?? name };
  }
  const schedule = scheduleOf(f) ?? base?.Schedule;
  const storage = f.storage !== undefined ? parseStorageOption(f.storage) : base?.Storage;
  if (!schedule) throw new UsageError('a policy needs a schedule: --interval <ISO 8601 duration, e.g. PT1H> or --daily <HH:MM,…> (or --file policy.json).');
  if (!storage) throw new UsageError('a policy needs a storage: --storage fileshare:<path> or a BackupStorage JSON (or --file policy.json).');
  const retention = f.retention !== undefined || f.minBackups !== undefined
    ? {
        RetentionPolicyType: 'Basic' as const, RetentionDuration: f.retention ?? base?.RetentionPolicy?.RetentionDuration ?? '',
        MinimumNumberOfBackups: f.minBackups !== undefined ? wholeNumber(f.minBackups, '--min-backups') : base?.RetentionPolicy?.MinimumNumberOfBackups ?? 0,
      }
    : base?.RetentionPolicy;
  if (retention && retention.RetentionDuration === '') throw new UsageError('--min-backups needs --retention <ISO 8601 duration, e.g. P7D>.');
  return {
    Name: name,
    AutoRestoreOnDataLoss: f.autoRestore ?? base?.AutoRestoreOnDataLoss ?? false,
    MaxIncrementalBackups: f.maxIncrementals !== undefined ? wholeNumber(f.maxIncrementals, '--max-incrementals') : base?.MaxIncrementalBackups ?? 0,
    Schedule: schedule,
    Storage: storage,
    ...(retention ? { RetentionPolicy: retention } : {}),
  };
}

function scheduleText(s: BackupScheduleWire): string {
  return s.ScheduleKind === 'FrequencyBased' ? `every ${s.Interval}`
    : `${s.ScheduleFrequencyType}${s.RunDays ? ` ${s.RunDays.join(',')}` : ''} at ${s.RunTimes.map((t) => t.slice(11, 16)).join(',')}`;
}

function storageText(s: BackupPolicyWire['Storage']): string {
  const d = s as unknown as Record<string, unknown>;
  const where = d.Path ?? d.ContainerName ?? d.Bucket ?? '';
  return `${String(d.StorageKind)}${where ? ` ${String(where)}` : ''}`;
}

function printPolicies(out: Output, items: BackupPolicyWire[]): void {
  out.table(['NAME', 'SCHEDULE', 'STORAGE', 'MAX INCREMENTALS', 'RETENTION', 'MIN BACKUPS', 'AUTO-RESTORE'], items.map((p) => [
    p.Name, scheduleText(p.Schedule), storageText(p.Storage), String(p.MaxIncrementalBackups), p.RetentionPolicy?.RetentionDuration ?? '-',
    p.RetentionPolicy ? String(p.RetentionPolicy.MinimumNumberOfBackups ?? 0) : '-', p.AutoRestoreOnDataLoss ? 'yes' : 'no',
  ]));
}

function withPolicyFlags(c: Command): Command {
  return c
    .option('--file <policy.json>', 'the whole policy as a BackupPolicyDescription JSON (the other policy flags are then ignored)')
    .option('--storage <storage>', 'where its backups go: fileshare:<path> or a BackupStorage JSON')
    .option('--interval <duration>', 'back up every ISO 8601 duration (FrequencyBased), e.g. PT15M, PT1H')
    .option('--daily <times>', 'back up daily at these UTC times (TimeBased), e.g. 09:00,21:00')
    .option('--max-incrementals <n>', 'incremental backups between full ones (MaxIncrementalBackups; default 0)')
    .option('--auto-restore', 'restore the newest backup when a partition loses its data (AutoRestoreOnDataLoss)')
    .option('--retention <duration>', 'delete backups older than this ISO 8601 duration (Basic retention), e.g. P7D')
    .option('--min-backups <n>', 'with --retention: never fewer backups per partition than this')
    .option('--validate-connection', 'the service checks it can write to the storage first');
}

export function registerPolicy(program: Command, ctx: CliContext): void {
  const policy = program.command('policy').description('backup policies: create, get, ls, update, delete');
  withPolicyFlags(withCommonOptions(policy.command('create'), ctx))
    .description('create a backup policy from flags or --file policy.json')
    .argument('<name>', 'the policy\'s name')
    .action((name: string, o: CommonOptions & PolicyFlags) => runAction(ctx, o, async (lb, out) => {
      const p = policyFromFlags(name, o);
      await lb.policies.create(p, { validateConnection: o.validateConnection === true });
      if (out.json) out.data(await lb.policies.get(p.Name));
      else out.line(`policy '${p.Name}' created`);
    }));
  withPolicyFlags(withCommonOptions(policy.command('update'), ctx))
    .description('change a backup policy: the flags given replace those parts of it (secrets the service shows as **** stay), or --file replaces all of it')
    .argument('<name>', 'the policy\'s name')
    .action((name: string, o: CommonOptions & PolicyFlags) => runAction(ctx, o, async (lb, out) => {
      const p = policyFromFlags(name, o, o.file === undefined ? await lb.policies.get(name) : undefined);
      await lb.policies.update(name, p, { validateConnection: o.validateConnection === true });
      if (out.json) out.data(await lb.policies.get(name));
      else out.line(`policy '${name}' updated`);
    }));
  withCommonOptions(policy.command('get'), ctx)
    .description('one backup policy (secrets read ****), and the entities it is enabled on')
    .argument('<name>', 'the policy\'s name')
    .action((name: string, o: CommonOptions) => runAction(ctx, o, async (lb: LifeboatClient, out) => {
      const p = await lb.policies.get(name);
      if (out.json) {
        out.data(p);
        return;
      }
      printPolicies(out, [p]);
      const entities = await allPages((t) => lb.policies.enabledEntities(name, t ? { continuationToken: t } : {}));
      out.line();
      out.line(entities.length === 0 ? 'enabled on no entity' : `enabled on: ${entities.map((e) => (e.EntityKind === 'Application' ? e.ApplicationName : e.EntityKind === 'Service' ? e.ServiceName : `${e.ServiceName} partition ${e.PartitionId}`)).join('; ')}`);
    }));
  withCommonOptions(policy.command('ls'), ctx)
    .description('the backup policies')
    .action((o: CommonOptions) => runAction(ctx, o, async (lb, out) => {
      const items = await allPages((t) => lb.policies.list(t ? { continuationToken: t } : {}));
      if (out.json) out.data(items);
      else printPolicies(out, items);
    }));
  withCommonOptions(policy.command('delete'), ctx)
    .description('delete a backup policy (refused while an entity uses it: lifeboat disable first)')
    .argument('<name>', 'the policy\'s name')
    .action((name: string, o: CommonOptions) => runAction(ctx, o, async (lb, out) => {
      await lb.policies.delete(name);
      if (out.json) out.data({ Name: name, Deleted: true });
      else out.line(`policy '${name}' deleted`);
    }));
}

/** `lifeboat enable|disable|suspend|resume <entity>` and `lifeboat retention plan <entity>`. */
import type { Command } from 'commander';
import { isLifeboatError } from '../core/errors.ts';
import type { RetentionPlanWire } from '../wire/backups.ts';
import { type CliContext, type CommonOptions, runAction, withCommonOptions } from './common.ts';
import { UsageError } from './output.ts';
import { entityLabel, entityRef, partitionsUnder, resolveEntityText } from './resolve.ts';

const ENTITY_HELP = 'fabric:/App, fabric:/App/Service, a partition id, or fabric:/App/Service --partition-key <key>';

export function registerProtection(program: Command, ctx: CliContext): void {
  withCommonOptions(program.command('enable'), ctx)
    .description('apply a backup policy to an application, service or partition (what is below inherits it unless it has its own)')
    .argument('<entity>', ENTITY_HELP)
    .option('--partition-key <key>', 'with a service: the partition holding this key')
    .requiredOption('--policy <name>', 'the backup policy')
    .action((entity: string, o: CommonOptions & { partitionKey?: string; policy: string }) => runAction(ctx, o, async (lb, out) => {
      const e = await resolveEntityText(lb, entity, o.partitionKey);
      const ref = entityRef(e);
      await lb.protection.enableBackup(ref, o.policy);
      if (out.json) out.data(e.kind === 'Partition' ? await lb.protection.partitionConfiguration(e.partitionId) : (await lb.protection.configuration({ kind: e.kind, id: ref.id })).Items);
      else out.line(`backup enabled on ${entityLabel(e)} with policy '${o.policy}'`);
    }));
  withCommonOptions(program.command('disable'), ctx)
    .description('remove the entity\'s own backup policy (what is below falls back to an inherited one, if any)')
    .argument('<entity>', ENTITY_HELP)
    .option('--partition-key <key>', 'with a service: the partition holding this key')
    .option('--clean', 'also delete the backups of the partitions left without that policy\'s storage (CleanBackup)')
    .action((entity: string, o: CommonOptions & { partitionKey?: string; clean?: boolean }) => runAction(ctx, o, async (lb, out) => {
      const e = await resolveEntityText(lb, entity, o.partitionKey);
      await lb.protection.disableBackup(entityRef(e), { cleanBackup: o.clean === true });
      if (out.json) out.data({ Entity: entityRef(e), Disabled: true, CleanBackup: o.clean === true });
      else out.line(`backup disabled on ${entityLabel(e)}${o.clean ? ' and its backups deleted' : ''}`);
    }));
  for (const [verb, what] of [['suspend', 'stop periodic backups of an entity (and everything below it) until resumed; its policy stays'], ['resume', 'resume periodic backups suspended at this entity']] as const) {
    withCommonOptions(program.command(verb), ctx)
      .description(what)
      .argument('<entity>', ENTITY_HELP)
      .option('--partition-key <key>', 'with a service: the partition holding this key')
      .action((entity: string, o: CommonOptions & { partitionKey?: string }) => runAction(ctx, o, async (lb, out) => {
        const e = await resolveEntityText(lb, entity, o.partitionKey);
        if (verb === 'suspend') await lb.protection.suspendBackup(entityRef(e));
        else await lb.protection.resumeBackup(entityRef(e));
        if (out.json) out.data({ Entity: entityRef(e), Suspended: verb === 'suspend' });
        else out.line(`backup ${verb === 'suspend' ? 'suspended' : 'resumed'} on ${entityLabel(e)}`);
      }));
  }

  const retention = program.command('retention').description('retention of backups');
  withCommonOptions(retention.command('plan'), ctx)
    .description('what retention would delete now, and why (and what it keeps); deletes nothing')
    .argument('<entity>', ENTITY_HELP)
    .option('--partition-key <key>', 'with a service: the partition holding this key')
    .option('--keep', 'list the backups it keeps too')
    .action((entity: string, o: CommonOptions & { partitionKey?: string; keep?: boolean }) => runAction(ctx, o, async (lb, out) => {
      const e = await resolveEntityText(lb, entity, o.partitionKey);
      const plans: RetentionPlanWire[] = [];
      for (const p of await partitionsUnder(lb, e)) {
        try {
          plans.push(await lb.listing.retentionPlan(p.partitionId));
        } catch (err) {
          // Below an application or service, a partition without a policy (or one without retention) has no plan: say so and go on.
          if (e.kind === 'Partition' || !isLifeboatError(err) || (err.code !== 'FABRIC_E_BACKUP_NOT_ENABLED' && err.code !== 'E_INVALIDARG')) throw err;
          out.note(`partition ${p.partitionId}: no retention plan (${err.message})`);
        }
      }
      if (e.kind !== 'Partition' && plans.length === 0) throw new UsageError(`no partition of ${entityLabel(e)} has a policy with retention.`);
      if (out.json) {
        out.data(plans);
        return;
      }
      const rows: string[][] = [];
      for (const plan of plans) {
        for (const d of plan.Delete) rows.push([plan.PartitionId, 'delete', d.BackupId, d.BackupType, d.CreationTimeUtc, d.Reason]);
        if (o.keep) for (const d of plan.Keep) rows.push([plan.PartitionId, 'keep', d.BackupId, d.BackupType, d.CreationTimeUtc, d.Reason]);
      }
      for (const plan of plans) {
        out.line(`partition ${plan.PartitionId}: policy '${plan.PolicyName}', retention ${plan.RetentionDuration} (at least ${plan.MinimumNumberOfBackups}), cutoff ${plan.CutoffUtc}, `
          + `${plan.Delete.length} to delete, ${plan.Keep.length} kept; next run ${plan.NextRunUtc}${plan.LastError ? `; last error: ${plan.LastError}` : ''}`);
      }
      if (rows.length > 0) {
        out.line();
        out.table(['PARTITION', 'ACTION', 'BACKUP ID', 'TYPE', 'CREATED', 'WHY'], rows);
      }
    }));
}

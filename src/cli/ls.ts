/** `lifeboat ls [entity]`: the hierarchy with each entity's protection, and each partition's last backup and health. */
import type { Command } from 'commander';
import type { LifeboatClient } from '../client/lifeboat-client.ts';
import { isLifeboatError } from '../core/errors.ts';
import { nameToId } from '../core/ids.ts';
import type { BackupInfoWire } from '../wire/backups.ts';
import type { ApplicationWire, PartitionWire, ServiceWire } from '../wire/hierarchy.ts';
import type { BackupConfigurationInfoWire } from '../wire/protection.ts';
import { type CliContext, type CommonOptions, runAction, withCommonOptions } from './common.ts';
import { rangeText } from './entities.ts';
import { type Output, ageText } from './output.ts';
import { hierarchyOf, resolveEntityText } from './resolve.ts';

/** `ls --json`: the REST shapes, nested, each with its BackupConfigurationInfo; partitions with their newest backup and health. */
export interface LsPartition extends PartitionWire { BackupConfiguration: BackupConfigurationInfoWire; LastBackup: BackupInfoWire | null; Health: string }
export interface LsService extends ServiceWire { BackupConfiguration: BackupConfigurationInfoWire | null; Partitions: LsPartition[] }
export interface LsApplication extends ApplicationWire { BackupConfiguration: BackupConfigurationInfoWire | null; Services: LsService[] }

/** The entity's own configuration (the first item of the app/service answer). */
async function ownConfiguration(lb: LifeboatClient, kind: 'Application' | 'Service', name: string): Promise<BackupConfigurationInfoWire | null> {
  const page = await lb.protection.configuration({ kind, id: nameToId(name) });
  return page.Items.find((c) => c.Kind === kind) ?? null;
}

async function lsTree(lb: LifeboatClient, only: Awaited<ReturnType<typeof resolveEntityText>> | undefined): Promise<LsApplication[]> {
  const apps: LsApplication[] = [];
  for (const tree of await hierarchyOf(lb, only)) {
    const services: LsService[] = [];
    for (const s of tree.services) {
      const partitions: LsPartition[] = [];
      for (const p of s.partitions) {
        const id = p.PartitionInformation.Id;
        const [config, latest, health] = await Promise.all([
          lb.protection.partitionConfiguration(id),
          lb.listing.partitionBackups(id, { latest: true }),
          lb.hierarchy.partitionHealth(id).then((h) => h.AggregatedHealthState as string, (err: unknown) => (isLifeboatError(err) ? 'Unknown' : Promise.reject(err))),
        ]);
        partitions.push({ ...p, BackupConfiguration: config, LastBackup: latest.Items[latest.Items.length - 1] ?? null, Health: health });
      }
      services.push({ ...s.service, BackupConfiguration: await ownConfiguration(lb, 'Service', s.service.Name), Partitions: partitions });
    }
    apps.push({ ...tree.application, BackupConfiguration: await ownConfiguration(lb, 'Application', tree.application.Name), Services: services });
  }
  return apps;
}

function protectionCells(c: BackupConfigurationInfoWire | null): [string, string, string] {
  if (!c) return ['', '', ''];
  const from = c.PolicyInheritedFrom === 'Invalid' || c.PolicyInheritedFrom === c.Kind ? '' : c.PolicyInheritedFrom;
  const suspended = c.SuspensionInfo.IsSuspended
    ? `yes${c.SuspensionInfo.SuspensionInheritedFrom !== c.Kind && c.SuspensionInfo.SuspensionInheritedFrom !== 'Invalid' ? ` (${c.SuspensionInfo.SuspensionInheritedFrom})` : ''}` : '';
  return [c.PolicyName ?? '-', from, suspended];
}

function printTable(out: Output, apps: LsApplication[], nowMs: number): void {
  const rows: string[][] = [];
  for (const a of apps) {
    rows.push([a.Name, '', ...protectionCells(a.BackupConfiguration), '', '', '', '']);
    for (const s of a.Services) {
      rows.push([`  ${s.Name}`, '', ...protectionCells(s.BackupConfiguration), '', '', '', '']);
      for (const p of s.Partitions) {
        const b = p.LastBackup;
        const health = p.Health === 'Ok' ? out.paint('Ok', 'green') : p.Health === 'Warning' ? out.paint(p.Health, 'yellow') : p.Health === 'Error' ? out.paint(p.Health, 'red') : p.Health;
        rows.push([`    ${p.PartitionInformation.Id}`, rangeText(p.PartitionInformation), ...protectionCells(p.BackupConfiguration),
          b ? b.CreationTimeUtc : '-', b ? b.BackupType : '', b ? ageText(b.CreationTimeUtc, nowMs) : '', health]);
      }
    }
  }
  out.table(['ENTITY', 'RANGE', 'POLICY', 'INHERITED FROM', 'SUSPENDED', 'LAST BACKUP', 'TYPE', 'AGE', 'HEALTH'], rows);
}

export function registerLs(program: Command, ctx: CliContext): void {
  withCommonOptions(program.command('ls'), ctx)
    .description('the applications, services and partitions (with range), their protection (policy, inherited from, suspended), each partition\'s last backup (time, type, age) and health')
    .argument('[entity]', 'fabric:/App, fabric:/App/Service, a partition id (default: everything)')
    .option('--partition-key <key>', 'with a service: the partition holding this key (Int64 range, or the name of a Named partition)')
    .action((entity: string | undefined, o: CommonOptions & { partitionKey?: string }) => runAction(ctx, o, async (lb, out) => {
      const only = entity === undefined ? undefined : await resolveEntityText(lb, entity, o.partitionKey);
      const apps = await lsTree(lb, only);
      if (out.json) out.data(apps);
      else if (apps.length === 0) out.line('no applications: no host has registered a service yet');
      else printTable(out, apps, Date.now());
    }));
}

/** Protection of an application, a service or a partition: enable, disable, suspend, resume, configuration. */
import type { Page, PageQuery } from '../wire/paging.ts';
import type { BackupConfigurationInfoWire } from '../wire/protection.ts';
import { type EntityLevelName, type ProtectionAction, protectionRoute } from '../wire/routes.ts';
import { type Caller, pageQuery } from './caller.ts';

/** An entity by its REST id: an application or service id (`App~Svc`), or a partition GUID. */
export type EntityRef =
  | { readonly kind: 'Application'; readonly id: string }
  | { readonly kind: 'Service'; readonly id: string }
  | { readonly kind: 'Partition'; readonly id: string };

const PARAM_OF = { Application: 'applicationId', Service: 'serviceId', Partition: 'partitionId' } as const satisfies Record<EntityLevelName, string>;

/** The route of `action` on `e`, its id filled in as pathOf fills ids in. */
function pathFor(e: EntityRef, action: ProtectionAction): string {
  return protectionRoute(e.kind, action).replace(`:${PARAM_OF[e.kind]}`, encodeURIComponent(e.id));
}

export class ProtectionClient {
  constructor(private readonly c: Caller) {}

  /** Applies the policy to the entity (its partitions inherit it unless they have their own). */
  async enableBackup(e: EntityRef, policyName: string): Promise<void> {
    await this.c.call('POST', pathFor(e, 'EnableBackup'), { version: 'backup', body: { BackupPolicyName: policyName } });
  }

  /** Removes the entity's own policy; `cleanBackup` deletes the backups of the partitions that lose their policy. */
  async disableBackup(e: EntityRef, o: { readonly cleanBackup?: boolean } = {}): Promise<void> {
    await this.c.call('POST', pathFor(e, 'DisableBackup'), { version: 'backup', ...(o.cleanBackup !== undefined ? { body: { CleanBackup: o.cleanBackup } } : {}) });
  }

  async suspendBackup(e: EntityRef): Promise<void> {
    await this.c.call('POST', pathFor(e, 'SuspendBackup'), { version: 'backup' });
  }

  async resumeBackup(e: EntityRef): Promise<void> {
    await this.c.call('POST', pathFor(e, 'ResumeBackup'), { version: 'backup' });
  }

  /** GetPartitionBackupConfigurationInfo. */
  partitionConfiguration(partitionId: string): Promise<BackupConfigurationInfoWire> {
    return this.c.call('GET', pathFor({ kind: 'Partition', id: partitionId }, 'GetBackupConfigurationInfo'), { version: 'backup' });
  }

  /** Get{Application,Service}BackupConfigurationInfo: the entity itself, then what overrides it below. */
  configuration(e: EntityRef & { readonly kind: 'Application' | 'Service' }, page?: PageQuery): Promise<Page<BackupConfigurationInfoWire>> {
    return this.c.call('GET', pathFor(e, 'GetBackupConfigurationInfo'), { version: 'backup', query: pageQuery(page) });
  }
}

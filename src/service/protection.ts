/**
 * Protection: which policy applies to which application, service or partition (EnableBackup,
 * DisableBackup with CleanBackup, Suspend/ResumeBackup, the BackupConfigurationInfo queries). The
 * rules are the core's (core/protection.ts); each change is one catalog transaction.
 */
import { LifeboatError, invalidArgUnless, isLifeboatError } from '../core/errors.ts';
import { applicationOf } from '../core/ids.ts';
import { checkPolicyName } from '../core/policy.ts';
import {
  type BackupEntity, type CleanBackupTarget, type PartitionRef, type Refusal, cleanBackupTargets, disableBackup,
  effectivePolicyOf, enableBackup, entityKey, overridesBelow, resumeBackup, suspendBackup, suspensionOf,
} from '../core/protection.ts';
import { type StorageDescription, storageIdentity } from '../core/storage-description.ts';
import { backupConfigurationWire } from '../wire/index.ts';
import type { Hierarchy } from './hierarchy.ts';
import type { OrderBoard } from './orders.ts';
import type { ServicePorts } from './ports.ts';

export type BackupScope = { kind: 'Application'; name: string } | { kind: 'Service'; name: string } | { kind: 'Partition'; id: string };

export class Protection {
  constructor(private readonly p: ServicePorts, private readonly hierarchy: Hierarchy, private readonly orders: OrderBoard) {}

  /** The entity a scope names, after checking it exists and (service, partition) persists state. */
  private async protectionEntity(scope: BackupScope): Promise<BackupEntity> {
    if (scope.kind === 'Application') return { kind: 'Application', applicationName: await this.hierarchy.getApplication(scope.name) };
    if (scope.kind === 'Service') {
      const svc = await this.hierarchy.getService(scope.name);
      refuseStateless(svc.name, svc.hasPersistedState);
      return { kind: 'Service', serviceName: svc.name };
    }
    const p = await this.hierarchy.getPartition(scope.id);
    const svc = await this.hierarchy.getService(p.serviceName);
    refuseStateless(svc.name, svc.hasPersistedState);
    return { kind: 'Partition', serviceName: p.serviceName, partitionId: p.id };
  }

  async enableBackup(scope: BackupScope, body: Record<string, unknown> | undefined): Promise<void> {
    invalidArgUnless(body !== undefined, 'EnableBackup needs a body {"BackupPolicyName": …}.');
    const policyName = checkPolicyName(body.BackupPolicyName, 'BackupPolicyName');
    const entity = await this.protectionEntity(scope);
    const out = await this.p.catalog.policies.changeProtection((s, names) => enableBackup(s, entity, policyName, names));
    if (!out.ok) throw refusalError(out);
    this.p.log.info({ entity: entityKey(entity), policy: policyName, replaced: out.replaced }, 'backup enabled');
    await this.orders.protectionChanged();
  }

  /**
   * DisableBackup. With CleanBackup=true, the backups of the partitions that lose the disabled
   * mapping (protection.cleanBackupTargets) are deleted from the disabled policy's storage —
   * each backup's metadata object first, then its data — and from the backup index.
   */
  async disableBackup(scope: BackupScope, body: Record<string, unknown> | undefined): Promise<{ cleaned: CleanBackupTarget[] }> {
    let clean = false;
    if (body !== undefined) {
      invalidArgUnless(body.CleanBackup !== undefined && body.CleanBackup !== null, 'The CleanBackup field is required.');
      invalidArgUnless(typeof body.CleanBackup === 'boolean', 'CleanBackup must be true or false.');
      clean = body.CleanBackup;
    }
    const entity = await this.protectionEntity(scope);
    const partitions = clean ? await this.partitionsUnder(entity) : [];
    const policies = new Map((clean ? await this.p.catalog.policies.list() : []).map((p) => [p.name, p.policy]));
    let targets: CleanBackupTarget[] = [];
    const out = await this.p.catalog.policies.changeProtection((s) => {
      const r = disableBackup(s, entity);
      if (r.ok && clean) {
        targets = cleanBackupTargets(s, entity, partitions, (name) => {
          const p = policies.get(name);
          return p && storageIdentity(p.storage);
        });
      }
      return r;
    });
    if (!out.ok) throw refusalError(out);
    this.p.log.info({ entity: entityKey(entity), policy: out.removed.policyName, cleanBackup: clean }, 'backup disabled');
    await this.orders.protectionChanged();
    const storage = policies.get(out.removed.policyName)?.storage;
    const cleaned = targets.filter((t) => t.clean);
    if (storage && cleaned.length > 0) await this.cleanBackups(storage, cleaned);
    return { cleaned };
  }

  async suspendBackup(scope: BackupScope): Promise<void> {
    const entity = await this.protectionEntity(scope);
    const out = await this.p.catalog.policies.changeProtection((s) => suspendBackup(s, entity));
    if (!out.ok) throw refusalError(out);
    await this.orders.protectionChanged();
  }

  async resumeBackup(scope: BackupScope): Promise<void> {
    const entity = await this.protectionEntity(scope);
    const out = await this.p.catalog.policies.changeProtection((s) => resumeBackup(s, entity));
    if (!out.ok) throw refusalError(out);
    await this.orders.protectionChanged();
  }

  /**
   * Get{Application,Service}BackupConfigurationInfo: the entity itself (when a policy applies to
   * it or it is suspended), then the mappings and suspensions below it that override it, by key.
   * GetPartitionBackupConfigurationInfo: the partition alone (PolicyInheritedFrom Invalid when no
   * policy applies).
   */
  async backupConfiguration(scope: BackupScope): Promise<Array<Record<string, unknown>>> {
    const entity = await this.protectionEntity(scope);
    const state = await this.p.catalog.policies.getProtection();
    if (entity.kind === 'Partition') return [backupConfigurationWire(state, entity)];
    const below = overridesBelow(state, entity);
    const byKey = new Map<string, BackupEntity>();
    for (const m of below.mappings) byKey.set(entityKey(m.entity), m.entity);
    for (const e of below.suspended) byKey.set(entityKey(e), e);
    const self = effectivePolicyOf(state.mappings, entity) || suspensionOf(state.suspensions, entity).isSuspended ? [entity] : [];
    const rest = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
    return [...self, ...rest].map((e) => backupConfigurationWire(state, e));
  }

  private async partitionsUnder(entity: BackupEntity): Promise<PartitionRef[]> {
    const refs = async (serviceName: string): Promise<PartitionRef[]> =>
      (await this.p.catalog.hierarchy.listPartitions(serviceName)).map((p) => ({ applicationName: applicationOf(serviceName), serviceName, partitionId: p.id }));
    switch (entity.kind) {
      case 'Application': {
        const out: PartitionRef[] = [];
        for (const svc of await this.p.catalog.hierarchy.listServices(entity.applicationName)) if (svc.hasPersistedState) out.push(...await refs(svc.name));
        return out;
      }
      case 'Service': return refs(entity.serviceName);
      case 'Partition': return [{ applicationName: applicationOf(entity.serviceName), serviceName: entity.serviceName, partitionId: entity.partitionId }];
    }
  }

  /** Deletes every backup of the partitions in the storage (metadata first, then data) and from the index. */
  private async cleanBackups(storage: StorageDescription, targets: readonly CleanBackupTarget[]): Promise<void> {
    const key = storageIdentity(storage);
    for (const t of targets) {
      try {
        const n = await this.p.repositoryFor(storage).deleteAll({ kind: 'Partition', serviceName: t.partition.serviceName, partitionId: t.partition.partitionId });
        for (const b of await this.p.catalog.backups.list({ partitionId: t.partition.partitionId })) {
          if (b.storageKey === key) await this.p.catalog.backups.delete(b.backupId);
        }
        this.p.log.info({ partition: t.partition.partitionId, storage: key, backups: n, reason: t.reason }, 'CleanBackup: backups deleted');
      } catch (err) {
        this.p.log.warn({ partition: t.partition.partitionId, storage: key, err: isLifeboatError(err) ? err.message : String(err) }, 'CleanBackup: deleting backups failed');
      }
    }
  }
}

export function refusalError(r: Refusal): LifeboatError {
  return new LifeboatError(r.code, r.message);
}

function refuseStateless(serviceName: string, hasPersistedState: boolean): void {
  if (!hasPersistedState) {
    throw new LifeboatError('FABRIC_E_INVALID_FOR_STATELESS_SERVICES', `Service ${serviceName} has no persisted state; backup applies only to stateful services that persist their state.`);
  }
}

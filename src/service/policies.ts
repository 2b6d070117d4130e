/**
 * Backup policies (CreateBackupPolicy … DeleteBackupPolicy, GetAllEntitiesBackedUpByPolicy): their
 * checks (names, schedules, retention — core/policy.ts; a storage this installation may use, and
 * with ValidateConnection one that answers), secrets masked on the way out and kept through the
 * mask on the way back in.
 */
import { LifeboatError, invalidArgUnless, isLifeboatError } from '../core/errors.ts';
import { applicationOf } from '../core/ids.ts';
import { type BackupPolicy, checkPolicyName, parseBackupPolicy, policyToWire } from '../core/policy.ts';
import { effectivePolicy, entitiesOfPolicy, entityKey } from '../core/protection.ts';
import { SECRET_FIELDS, SECRET_MASK, type StorageDescription, storageIdentity } from '../core/storage-description.ts';
import type { Catalog, PartitionRecord } from '../catalog/port.ts';
import type { OrderBoard } from './orders.ts';
import type { ServicePorts } from './ports.ts';
import { entityWire } from '../wire/index.ts';
import { refusalError } from './protection.ts';

export class Policies {
  constructor(private readonly p: ServicePorts, private readonly orders: OrderBoard) {}

  /**
   * Checks a policy's storage: this installation must be able to write there (kind, allowed
   * roots — always), and with ValidateConnection it must be reachable and writable now.
   */
  private async checkPolicyStorage(policy: BackupPolicy, validateConnection: boolean): Promise<void> {
    const store = this.p.storageFor(policy.storage);
    if (!validateConnection) return;
    try {
      await store.validate();
    } catch (err) {
      const reason = isLifeboatError(err) ? err.message : 'the storage could not be reached';
      throw new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', `ValidateConnection failed for the storage of policy '${policy.name}' (${store.description}): ${reason}`);
    }
  }

  /** CreateBackupPolicy: 409 FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING for a name in use. */
  async createPolicy(body: unknown, validateConnection: boolean): Promise<void> {
    const policy = parseBackupPolicy(body);
    for (const field of SECRET_FIELDS) {
      invalidArgUnless((policy.storage as Record<string, unknown>)[field] !== SECRET_MASK,
        `${field} is '${SECRET_MASK}', the mask Lifeboat answers in place of a secret: send the secret itself.`);
    }
    await this.checkPolicyStorage(policy, validateConnection);
    const now = this.p.clock.now().toISOString();
    const inserted = await this.p.catalog.policies.insert({ name: policy.name, policy, uniqueId: this.p.newId(), createdUtc: now, updatedUtc: now });
    if (!inserted) throw new LifeboatError('FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING', `A backup policy named '${policy.name}' already exists.`);
    this.p.log.info({ policy: policy.name }, 'backup policy created');
    await this.orders.protectionChanged();
  }

  /**
   * UpdateBackupPolicy: replaces the policy named in the path. The body's Name must be the same
   * name (a policy cannot be renamed: its mappings refer to it by name), else E_INVALIDARG.
   */
  async updatePolicy(name: string, body: unknown, validateConnection: boolean): Promise<void> {
    checkPolicyName(name, 'backupPolicyName');
    const given = parseBackupPolicy(body);
    invalidArgUnless(given.name === name, `The Name in the body ('${given.name}') must be the policy's name in the path ('${name}'); a policy cannot be renamed.`);
    const stored = await this.p.catalog.policies.get(name);
    if (!stored) throw notExisting(name);
    const policy: BackupPolicy = { ...given, storage: keepMaskedSecrets(given.storage, stored.policy.storage) };
    await this.checkPolicyStorage(policy, validateConnection);
    const updated = await this.p.catalog.policies.update({ name, policy, uniqueId: this.p.newId(), updatedUtc: this.p.clock.now().toISOString() });
    if (!updated) throw notExisting(name);
    this.p.log.info({ policy: name }, 'backup policy updated');
    await this.orders.protectionChanged();
  }

  /** Policies by name, secrets masked. */
  async listPolicies(): Promise<Array<Record<string, unknown>>> {
    return (await this.p.catalog.policies.list()).map((p) => policyToWire(p.policy));
  }

  async getPolicy(name: string): Promise<Record<string, unknown>> {
    checkPolicyName(name, 'backupPolicyName');
    const p = await this.p.catalog.policies.get(name);
    if (!p) throw notExisting(name);
    return policyToWire(p.policy);
  }

  /** DeleteBackupPolicy: refused with FABRIC_E_BACKUP_IS_ENABLED while an existing entity uses it. */
  async deletePolicy(name: string): Promise<void> {
    checkPolicyName(name, 'backupPolicyName');
    const out = await this.p.catalog.policies.delete(name);
    if (!out.ok) throw refusalError(out);
    this.p.log.info({ policy: name, removedMappings: out.removedMappings.length }, 'backup policy deleted');
    await this.orders.protectionChanged();
  }

  /** GetAllEntitiesBackedUpByPolicy: the entities mapped to the policy, by entity key. */
  async entitiesOfPolicy(name: string): Promise<Array<{ key: string; wire: Record<string, unknown> }>> {
    checkPolicyName(name, 'backupPolicyName');
    if (!(await this.p.catalog.policies.get(name))) throw notExisting(name);
    return entitiesOfPolicy(await this.p.catalog.policies.getProtection(), name).map((e) => ({ key: entityKey(e), wire: entityWire(e) }));
  }
}

/** The policy that applies to a partition now, or FABRIC_E_BACKUP_NOT_ENABLED. */
export async function policyOfPartition(catalog: Catalog, partition: PartitionRecord): Promise<BackupPolicy> {
  const state = await catalog.policies.getProtection();
  const eff = effectivePolicy(state.mappings, { applicationName: applicationOf(partition.serviceName), serviceName: partition.serviceName, partitionId: partition.id });
  const record = eff && await catalog.policies.get(eff.policyName);
  if (!record) throw new LifeboatError('FABRIC_E_BACKUP_NOT_ENABLED', `Partition ${partition.id} has no backup policy; give BackupStorage in the request, or enable a policy for it.`);
  return record.policy;
}

function notExisting(name: string): LifeboatError {
  return new LifeboatError('FABRIC_E_BACKUP_POLICY_NOT_EXISTING', `Backup policy '${name}' does not exist.`);
}

/** The user name or key id a secret belongs to: a secret kept through the mask keeps its owner too. */
const SECRET_OWNER: Readonly<Record<string, string>> = { PrimaryPassword: 'PrimaryUserName', SecondaryPassword: 'SecondaryUserName', SecretAccessKey: 'AccessKeyId' };

/**
 * UpdateBackupPolicy after a GetBackupPolicy: a secret sent back as the mask ("****") keeps the
 * stored secret, when the storage is the same one (kind and storageIdentity, worked out with the
 * kept secrets, since an Azure ConnectionString names the account) and the secret's user name or
 * key id is unchanged. Otherwise the mask is refused (E_INVALIDARG): the secret must be sent again.
 */
function keepMaskedSecrets(given: StorageDescription, stored: StorageDescription): StorageDescription {
  const g = given as Record<string, unknown>;
  const s = stored as Record<string, unknown>;
  const masked = SECRET_FIELDS.filter((f) => g[f] === SECRET_MASK);
  if (masked.length === 0) return given;
  const sendAgain = 'send the secret again: the storage changed';
  if (given.StorageKind !== stored.StorageKind) throw new LifeboatError('E_INVALIDARG', `${masked.join(', ')} is '${SECRET_MASK}' but the StorageKind is not the stored policy's: ${sendAgain}.`);
  const merged: Record<string, unknown> = { ...g };
  for (const f of masked) {
    invalidArgUnless(typeof s[f] === 'string', `${f} is '${SECRET_MASK}' but the stored policy has no ${f}: send the secret itself.`);
    const owner = SECRET_OWNER[f];
    invalidArgUnless(owner === undefined || g[owner] === s[owner], `${f} is '${SECRET_MASK}' but ${owner ?? ''} is not the stored policy's: send the secret again with it.`);
    merged[f] = s[f];
  }
  const out = merged as StorageDescription;
  invalidArgUnless(storageIdentity(out) === storageIdentity(stored), `${masked.join(', ')} is '${SECRET_MASK}' but the storage is not the stored policy's: ${sendAgain}.`);
  return out;
}

/** Backup policies: create, list, get, update, delete, and the entities a policy protects. */
import type { Page, PageQuery } from '../wire/paging.ts';
import type { BackupPolicyWire } from '../wire/policy.ts';
import type { BackupEntityWire } from '../wire/protection.ts';
import { ROUTES, pathOf } from '../wire/routes.ts';
import { type Caller, pageQuery } from './caller.ts';

export interface PolicyWriteOptions {
  /** ValidateConnection: the service checks it can reach the policy's storage first. */
  readonly validateConnection?: boolean;
}

export class PoliciesClient {
  constructor(private readonly c: Caller) {}

  async create(policy: BackupPolicyWire, o: PolicyWriteOptions = {}): Promise<void> {
    await this.c.call('POST', ROUTES.createPolicy, { version: 'backup', query: { ValidateConnection: o.validateConnection }, body: policy });
  }

  /** Secrets of the storages read "****". */
  list(page?: PageQuery): Promise<Page<BackupPolicyWire>> {
    return this.c.call('GET', ROUTES.policies, { version: 'backup', query: pageQuery(page) });
  }

  get(name: string): Promise<BackupPolicyWire> {
    return this.c.call('GET', pathOf(ROUTES.policy, { backupPolicyName: name }), { version: 'backup' });
  }

  /** Replaces the policy `name` (the body's Name must be the same); a "****" secret for the same storage keeps the stored one. */
  async update(name: string, policy: BackupPolicyWire, o: PolicyWriteOptions = {}): Promise<void> {
    await this.c.call('POST', pathOf(ROUTES.updatePolicy, { backupPolicyName: name }), { version: 'backup', query: { ValidateConnection: o.validateConnection }, body: policy });
  }

  /** Refused (FABRIC_E_BACKUP_IS_ENABLED) while an entity maps to it. */
  async delete(name: string): Promise<void> {
    await this.c.call('POST', pathOf(ROUTES.deletePolicy, { backupPolicyName: name }), { version: 'backup' });
  }

  /** GetBackupEnabledEntities: the entities the policy is applied to. */
  enabledEntities(name: string, page?: PageQuery): Promise<Page<BackupEntityWire>> {
    return this.c.call('GET', pathOf(ROUTES.policyEntities, { backupPolicyName: name }), { version: 'backup', query: pageQuery(page) });
  }
}

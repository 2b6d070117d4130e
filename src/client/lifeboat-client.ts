/**
 * LifeboatClient: a typed client of a Lifeboat service's REST API, one method per route, in parts
 * as the service has them. Answers are the wire types (src/wire); a refusal rejects with a
 * LifeboatError carrying the service's code (and `details.status`, the HTTP status), a service
 * that cannot be reached with fetch's TypeError.
 *
 * Several instances of one Lifeboat: give them all as `baseUrls` (`baseUrl` is the first). A call
 * that cannot reach an instance goes on to the next when that is safe (GETs and the host protocol
 * always; other calls only when nothing was sent); the rule is in src/client/caller.ts.
 *
 *   const lb = new LifeboatClient({ baseUrl: 'http://127.0.0.1:19080', token });
 *   await lb.operations.backupPartition(pid, { storage });
 *   const done = await lb.operations.waitForBackup(pid);
 */
import { AccessClient } from './access.ts';
import { Caller, type LifeboatClientOptions } from './caller.ts';
import { HierarchyClient } from './hierarchy.ts';
import { HostProtocolClient } from './hosts.ts';
import { ListingClient } from './listing.ts';
import { OperationsClient } from './operations.ts';
import { PoliciesClient } from './policies.ts';
import { ProtectionClient } from './protection.ts';

export type { LifeboatClientOptions } from './caller.ts';
export { allPages } from './paging.ts';
export type { BackupOptions, BackupRef, WaitOptions } from './operations.ts';
export type { ListBackupsOptions } from './listing.ts';
export type { PolicyWriteOptions } from './policies.ts';
export type { EntityRef } from './protection.ts';

export class LifeboatClient {
  /** Applications, services, partitions, partition health. */
  readonly hierarchy: HierarchyClient;
  /** On-demand backup and restore, their progress, SkipAutoRestore, VerifyBackup. */
  readonly operations: OperationsClient;
  /** Backups of a partition, service, application or storage; retention's plan. */
  readonly listing: ListingClient;
  readonly policies: PoliciesClient;
  /** Enable, disable, suspend, resume, backup configuration. */
  readonly protection: ProtectionClient;
  /** Tokens, the caller, the audit log. */
  readonly access: AccessClient;
  /** The host protocol (for hosts in another process). */
  readonly hosts: HostProtocolClient;

  constructor(readonly options: LifeboatClientOptions) {
    const c = new Caller(options);
    this.hierarchy = new HierarchyClient(c);
    this.operations = new OperationsClient(c);
    this.listing = new ListingClient(c);
    this.policies = new PoliciesClient(c);
    this.protection = new ProtectionClient(c);
    this.access = new AccessClient(c);
    this.hosts = new HostProtocolClient(c);
  }
}

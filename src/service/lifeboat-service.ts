/**
 * The Lifeboat service: its use cases, each a small module over the ports, put together once.
 * Routes, the scheduler and the hosts call the module they need:
 *   hierarchy (applications, services, partitions) · hosts (the host protocol) · orders
 *   (accepting, handing out and ending operations) · backups · restores · listing · policies ·
 *   protection · dataLoss · health · verification (VerifyBackup, key rotation) · inventory (what
 *   the catalog holds, counted for the metrics).
 * I/O only through the catalog and storage ports; time from the clock; what happens is told to
 * `events` (observer.ts).
 */
import { Backups } from './backups.ts';
import { DataLossDesk } from './data-loss.ts';
import { Health } from './health.ts';
import { Hierarchy } from './hierarchy.ts';
import { HostDesk } from './hosts.ts';
import { Inventory } from './inventory.ts';
import { BackupListing } from './listing.ts';
import { OrderBoard } from './orders.ts';
import type { ServiceEvents } from './observer.ts';
import { Policies } from './policies.ts';
import { type ServiceDeps, servicePorts } from './ports.ts';
import { Protection } from './protection.ts';
import { Restores } from './restores.ts';
import { Verification } from './verification.ts';

export type { ServiceDeps } from './ports.ts';
export type { BackupScope } from './protection.ts';
export type { ListFilter } from './listing.ts';
export type { VerifyResult } from './verification.ts';
export type { OperationChange, ServiceEvents } from './observer.ts';
export type { InventorySnapshot, PartitionProtection } from './inventory.ts';
/** The catalog's records the routes read (src/api does not import the catalog). */
export type { PartitionRecord, ServiceRecord } from '../catalog/port.ts';

export class LifeboatService {
  readonly hierarchy: Hierarchy;
  readonly orders: OrderBoard;
  readonly hosts: HostDesk;
  readonly backups: Backups;
  readonly restores: Restores;
  readonly listing: BackupListing;
  readonly policies: Policies;
  readonly protection: Protection;
  readonly dataLoss: DataLossDesk;
  readonly health: Health;
  readonly verification: Verification;
  readonly inventory: Inventory;
  /** The watchers of the service (ServiceDeps.events; nobody by default). */
  readonly events: ServiceEvents;

  constructor(deps: ServiceDeps) {
    const p = servicePorts(deps);
    this.hierarchy = new Hierarchy(p.catalog);
    this.orders = new OrderBoard(p);
    this.backups = new Backups(p, this.hierarchy, this.orders);
    this.restores = new Restores(p, this.hierarchy, this.orders);
    this.dataLoss = new DataLossDesk(p, this.hierarchy, this.orders, this.restores);
    this.hosts = new HostDesk(p, this.orders, this.dataLoss);
    this.listing = new BackupListing(p, this.hierarchy);
    this.policies = new Policies(p, this.orders);
    this.protection = new Protection(p, this.hierarchy, this.orders);
    this.health = new Health(p, this.hierarchy);
    this.verification = new Verification(p, this.hierarchy);
    this.inventory = new Inventory(p);
    this.events = p.events;
  }
}

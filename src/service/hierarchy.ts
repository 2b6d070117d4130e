/** The applications, services and partitions hosts registered, as the routes and use cases look them up. */
import { LifeboatError } from '../core/errors.ts';
import type { Catalog, PartitionRecord, ServiceRecord } from '../catalog/port.ts';

export class Hierarchy {
  constructor(private readonly catalog: Catalog) {}

  async listApplications(): Promise<string[]> {
    return this.catalog.hierarchy.listApplications();
  }

  /** The application's name; FABRIC_E_APPLICATION_NOT_FOUND when no host serves it. */
  async getApplication(name: string): Promise<string> {
    if (!(await this.catalog.hierarchy.listApplications()).includes(name)) throw new LifeboatError('FABRIC_E_APPLICATION_NOT_FOUND', `Application ${name} does not exist.`);
    return name;
  }

  async listServices(application: string): Promise<ServiceRecord[]> {
    await this.getApplication(application);
    return this.catalog.hierarchy.listServices(application);
  }

  async getService(name: string): Promise<ServiceRecord> {
    const s = await this.catalog.hierarchy.getService(name);
    if (!s) throw new LifeboatError('FABRIC_E_SERVICE_DOES_NOT_EXIST', `Service ${name} does not exist.`);
    return s;
  }

  async listPartitions(serviceName: string): Promise<PartitionRecord[]> {
    await this.getService(serviceName);
    return this.catalog.hierarchy.listPartitions(serviceName);
  }

  async getPartition(id: string): Promise<PartitionRecord> {
    const p = await this.catalog.hierarchy.getPartition(id);
    if (!p) throw new LifeboatError('FABRIC_E_PARTITION_NOT_FOUND', `Partition ${id} does not exist.`);
    return p;
  }
}

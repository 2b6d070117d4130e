/**
 * Where backups live in storage — the one module that decides object keys:
 *
 *   <App>/<Service>/<PartitionId>/<yyyy-MM-dd HH.mm.ss>.lbk          the backup data
 *   <App>/<Service>/<PartitionId>/<yyyy-MM-dd HH.mm.ss>.bkmetadata   written last: the commit point
 *
 * `/` inside an application or service name becomes `$` (as Service Fabric does). A backup's
 * BackupLocation is its data key.
 */
import { LifeboatError } from './errors.ts';

export const DATA_EXTENSION = '.lbk';
export const METADATA_EXTENSION = '.bkmetadata';

export function serviceFolder(serviceName: string): string {
  const [app = '', ...service] = serviceName.slice('fabric:/'.length).split('/');
  return `${app}/${service.join('$')}`;
}

export function partitionFolder(serviceName: string, partitionId: string): string {
  return `${serviceFolder(serviceName)}/${partitionId}`;
}

/** `2026-11-21T10:00:05.123Z` → `2026-11-21 10.00.05` (UTC). */
export function backupFileStem(utc: Date): string {
  const iso = utc.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19).replace(/:/g, '.')}`;
}

export function backupDataKey(serviceName: string, partitionId: string, utc: Date): string {
  return `${partitionFolder(serviceName, partitionId)}/${backupFileStem(utc)}${DATA_EXTENSION}`;
}

/** The metadata key of a backup location (accepting `\` separators, as Service Fabric writes them). */
export function metadataKeyOf(backupLocation: string): string {
  const loc = normalizeLocation(backupLocation);
  if (!loc.endsWith(DATA_EXTENSION)) throw new LifeboatError('E_INVALIDARG', `BackupLocation '${backupLocation}' is not a Lifeboat backup (it should end with ${DATA_EXTENSION}).`);
  return loc.slice(0, -DATA_EXTENSION.length) + METADATA_EXTENSION;
}

export function dataKeyOfMetadata(metadataKey: string): string {
  return metadataKey.slice(0, -METADATA_EXTENSION.length) + DATA_EXTENSION;
}

export function normalizeLocation(backupLocation: string): string {
  const loc = backupLocation.replace(/\\/g, '/').replace(/^\/+/, '');
  if (!loc || loc.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new LifeboatError('E_INVALIDARG', `BackupLocation '${backupLocation}' is not a valid relative path.`);
  }
  return loc;
}

/** Which backups a listing covers: a storage's all, an application's, a service's, a partition's, or those under a key prefix (an operator's). */
export type StoredBackupScope =
  | { readonly kind: 'All' }
  | { readonly kind: 'Application'; readonly applicationName: string }
  | { readonly kind: 'Service'; readonly serviceName: string }
  | { readonly kind: 'Partition'; readonly serviceName: string; readonly partitionId: string }
  | { readonly kind: 'Prefix'; readonly prefix: string };

/** The key prefix that holds a scope's backups (`fabric:/App` → `App/`). */
export function scopePrefix(scope: StoredBackupScope): string {
  switch (scope.kind) {
    case 'All': return '';
    case 'Application': return `${scope.applicationName.slice('fabric:/'.length)}/`;
    case 'Service': return `${serviceFolder(scope.serviceName)}/`;
    case 'Partition': return `${partitionFolder(scope.serviceName, scope.partitionId)}/`;
    case 'Prefix': return scope.prefix;
  }
}

/**
 * `backupLocation` normalized, if it names an object directly in the partition's own folder;
 * otherwise E_INVALIDARG (a host reporting a backup cannot index another partition's objects).
 */
export function locationInPartition(serviceName: string, partitionId: string, backupLocation: string): string {
  const folder = `${partitionFolder(serviceName, partitionId)}/`;
  let location: string;
  try {
    location = normalizeLocation(backupLocation);
  } catch {
    throw new LifeboatError('E_INVALIDARG', `BackupLocation '${backupLocation}' is not a valid relative path.`);
  }
  if (!location.startsWith(folder) || location.slice(folder.length).includes('/')) {
    throw new LifeboatError('E_INVALIDARG', `BackupLocation '${backupLocation}' is not in partition ${partitionId}'s folder ${folder}.`);
  }
  return location;
}

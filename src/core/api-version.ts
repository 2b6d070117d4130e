/**
 * api-version rules. The BackupRestore API takes 6.4 and later (Service Fabric answers a missing,
 * malformed or lower version with 400 E_INVALIDARG). Two exceptions keep official clients working
 * unmodified: the hierarchy queries (`/Applications`, `/Services/…/$/GetPartitions`,
 * `/Partitions/{id}`, health) take 6.0 and later as the Service Fabric gateway does, and the
 * BackupRestore preview version `6.2-preview` is taken because the newest `azure-servicefabric`
 * npm client (2.2.0) still sends it for every backup operation.
 */

export type ApiSurface = 'backup' | 'query';

/** The lowest api-version of the BackupRestore routes (and of Lifeboat's own). */
export const BACKUP_API_VERSION = '6.4';
/** The lowest api-version of the hierarchy queries. */
export const QUERY_API_VERSION = '6.0';
/** The preview version the official npm client sends for every backup operation. */
export const PREVIEW_API_VERSION = '6.2-preview';

const PREVIEW_ACCEPTED = new Set([PREVIEW_API_VERSION]);

/** Why this api-version is refused, or undefined when it is accepted. */
export function apiVersionRefusal(value: unknown, surface: ApiSurface, minimum = Number(surface === 'backup' ? BACKUP_API_VERSION : QUERY_API_VERSION)): string | undefined {
  if (value === undefined || value === '') return 'The api-version query parameter is required.';
  if (typeof value !== 'string') return 'Give api-version once.';
  if (surface === 'backup' && minimum <= 6.4 && PREVIEW_ACCEPTED.has(value)) return undefined;
  if (!/^\d+\.\d+$/.test(value)) return `Invalid API Version '${value}': use a version such as 6.4.`;
  if (Number(value) < minimum) return `Invalid API Version '${value}': this operation needs ${minimum.toFixed(1)} or later.`;
  return undefined;
}

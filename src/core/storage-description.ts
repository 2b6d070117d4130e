/**
 * BackupStorageDescription (REST) validation. Service Fabric's kinds: FileShare, AzureBlobStore,
 * DsmsAzureBlobStore, ManagedIdentityAzureBlobStore; ours: S3. Secrets are masked on read.
 */
import { LifeboatError, invalidArgUnless } from './errors.ts';

export type StorageDescription =
  | { StorageKind: 'FileShare'; Path: string; FriendlyName?: string; PrimaryUserName?: string; PrimaryPassword?: string; SecondaryUserName?: string; SecondaryPassword?: string }
  | { StorageKind: 'AzureBlobStore'; ConnectionString: string; ContainerName: string; FriendlyName?: string }
  | { StorageKind: 'ManagedIdentityAzureBlobStore'; ManagedIdentityType: string; BlobServiceUri: string; ContainerName: string; FriendlyName?: string }
  | { StorageKind: 'S3'; Bucket: string; Region?: string; Endpoint?: string; AccessKeyId?: string; SecretAccessKey?: string; ForcePathStyle?: boolean; FriendlyName?: string };

export const STORAGE_KINDS = ['FileShare', 'AzureBlobStore', 'DsmsAzureBlobStore', 'ManagedIdentityAzureBlobStore', 'S3'] as const;
/** The fields of a storage description that hold secrets: masked on read, sealed in the catalog. */
export const SECRET_FIELDS = ['PrimaryPassword', 'SecondaryPassword', 'ConnectionString', 'SecretAccessKey'] as const;
export type SecretField = (typeof SECRET_FIELDS)[number];

/** The mask API callers see in place of a secret (and may send back to keep it, on UpdateBackupPolicy). */
export const SECRET_MASK = '****';

function str(o: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) {
    invalidArgUnless(!required, `${field} is required for StorageKind ${String(o.StorageKind)}.`);
    return undefined;
  }
  invalidArgUnless(typeof v === 'string', `${field} must be a string.`);
  invalidArgUnless(!required || v.length > 0, `${field} must not be empty.`);
  invalidArgUnless(v.length <= 4096, `${field} is too long.`);
  // eslint-disable-next-line no-control-regex
  invalidArgUnless(!/[\u0000-\u001f\u007f]/.test(v), `${field} must not contain control characters.`);
  return v;
}

/** Validates the shape of a storage description (not whether the storage can be reached). */
export function parseStorageDescription(value: unknown): StorageDescription {
  invalidArgUnless(value !== null && typeof value === 'object' && !Array.isArray(value), 'The storage description must be an object.');
  const o = value as Record<string, unknown>;
  invalidArgUnless(o.StorageKind !== undefined, 'StorageKind is required.');
  const kind = o.StorageKind;
  const friendly = str(o, 'FriendlyName', false);
  const f = friendly === undefined ? {} : { FriendlyName: friendly };
  switch (kind) {
    case 'FileShare': {
      const out: StorageDescription = { StorageKind: 'FileShare', Path: str(o, 'Path', true) as string, ...f };
      for (const k of ['PrimaryUserName', 'PrimaryPassword', 'SecondaryUserName', 'SecondaryPassword'] as const) {
        const v = str(o, k, false);
        if (v !== undefined) out[k] = v;
      }
      return out;
    }
    case 'AzureBlobStore':
      return { StorageKind: 'AzureBlobStore', ConnectionString: str(o, 'ConnectionString', true) as string, ContainerName: str(o, 'ContainerName', true) as string, ...f };
    case 'ManagedIdentityAzureBlobStore':
      return {
        StorageKind: 'ManagedIdentityAzureBlobStore', ManagedIdentityType: str(o, 'ManagedIdentityType', true) as string,
        BlobServiceUri: str(o, 'BlobServiceUri', true) as string, ContainerName: str(o, 'ContainerName', true) as string, ...f,
      };
    case 'S3': {
      const out: StorageDescription = { StorageKind: 'S3', Bucket: str(o, 'Bucket', true) as string, ...f };
      for (const k of ['Region', 'Endpoint', 'AccessKeyId', 'SecretAccessKey'] as const) {
        const v = str(o, k, false);
        if (v !== undefined) out[k] = v;
      }
      if (o.ForcePathStyle !== undefined) {
        invalidArgUnless(typeof o.ForcePathStyle === 'boolean', 'ForcePathStyle must be true or false.');
        out.ForcePathStyle = o.ForcePathStyle;
      }
      return out;
    }
    case 'DsmsAzureBlobStore':
      throw new LifeboatError('E_INVALIDARG', 'StorageKind DsmsAzureBlobStore is internal to Microsoft and not supported.');
    default:
      throw new LifeboatError('E_INVALIDARG', `Invalid StorageKind ${JSON.stringify(kind)}: use one of FileShare, AzureBlobStore, ManagedIdentityAzureBlobStore, S3.`);
  }
}

/** The description as API callers may see it: secrets replaced by "****". */
export function maskStorage(d: StorageDescription): Record<string, unknown> {
  const out: Record<string, unknown> = { ...d };
  for (const k of SECRET_FIELDS) if (out[k] !== undefined) out[k] = SECRET_MASK;
  return out;
}

/** Identifies a storage without secrets: equal for two descriptions of the same place. */
export function storageIdentity(d: StorageDescription): string {
  switch (d.StorageKind) {
    case 'FileShare': return `FileShare:${d.Path}`;
    case 'AzureBlobStore': {
      const account = /AccountName=([^;]+)/i.exec(d.ConnectionString)?.[1] ?? /BlobEndpoint=([^;]+)/i.exec(d.ConnectionString)?.[1] ?? 'unknown';
      return `AzureBlobStore:${account}/${d.ContainerName}`;
    }
    case 'ManagedIdentityAzureBlobStore': return `ManagedIdentityAzureBlobStore:${d.BlobServiceUri}/${d.ContainerName}`;
    case 'S3': return `S3:${d.Endpoint ?? 'aws'}/${d.Bucket}`;
  }
}

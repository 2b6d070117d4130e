/**
 * The error catalogue: every refusal Lifeboat makes has one stable code here, with the HTTP status
 * the REST edge answers it with and a hint for the operator. Codes that Service Fabric has keep its
 * spelling (`FABRIC_E_*`, `E_*`); codes of our own start with `LIFEBOAT_E_`. A code, once shipped,
 * is never reused for another meaning. `docs/errors.md` lists the same codes; a test keeps the two
 * in step.
 */

export interface ErrorSpec {
  /** HTTP status the REST edge answers with. */
  readonly status: number;
  /** What went wrong, in one line; the thrown error's message adds the particulars. */
  readonly title: string;
  /** What an operator can do about it. */
  readonly hint: string;
}

export const ERROR_CATALOGUE = {
  E_INVALIDARG: {
    status: 400,
    title: 'An argument is missing or not valid.',
    hint: 'Correct the argument named in the message and try again.',
  },
  FABRIC_E_INVALID_PARTITION_KEY: {
    status: 400,
    title: 'The partition key is not valid for this service.',
    hint: 'Use a key of the service\'s partitioning scheme: an Int64 in range, a string, or a partition name.',
  },
  FABRIC_E_PARTITION_NOT_FOUND: {
    status: 404,
    title: 'The partition does not exist.',
    hint: 'Check the partition id; list the service\'s partitions to find it.',
  },
  FABRIC_E_BACKUP_IN_PROGRESS: {
    status: 409,
    title: 'A backup of this partition is already in progress.',
    hint: 'Wait for the running backup to finish; backups of one partition are never queued.',
  },
  FABRIC_E_RESTORE_IN_PROGRESS: {
    status: 409,
    title: 'A restore of this partition is in progress.',
    hint: 'Wait for the restore to finish.',
  },
  FABRIC_E_MISSING_FULL_BACKUP: {
    status: 400,
    title: 'An incremental backup needs a full backup it can follow.',
    hint: 'Take a full backup; incrementals can follow it while the epoch stays the same.',
  },
  FABRIC_E_RESTORE_SAFE_CHECK_FAILED: {
    status: 400,
    title: 'The backup is not newer than the partition\'s current state.',
    hint: 'Restore with the Force policy to replace newer state with the backup.',
  },
  FABRIC_E_NOT_READY: {
    status: 503,
    title: 'The partition is not ready for this operation.',
    hint: 'The partition is restoring or handling data loss; retry when it is done.',
  },
  FABRIC_E_OBJECT_CLOSED: {
    status: 503,
    title: 'The partition or service is closed.',
    hint: 'Open it again before use.',
  },
  LIFEBOAT_E_BACKUP_CHAIN_BROKEN: {
    status: 400,
    title: 'The backups do not form one chain from a full backup.',
    hint: 'Give the full backup and every incremental after it, from one chain and one DataLossVersion.',
  },
  LIFEBOAT_E_BACKUP_CORRUPT: {
    status: 400,
    title: 'A backup file is damaged: its checksum or structure is wrong.',
    hint: 'Use another copy of the backup, or an older chain.',
  },
  LIFEBOAT_E_ENCRYPTION_KEY_MISSING: {
    status: 400,
    title: 'The backup is encrypted and the key it needs is not available.',
    hint: 'Add the key with the id named in the message to the keyring (keep retired keys while backups wrapped with them remain), and give the backup\'s wrapped data key (Body.Encryption of its .bkmetadata).',
  },
  LIFEBOAT_E_ENCRYPTION_KEY_MISMATCH: {
    status: 400,
    title: 'The backup\'s data key does not unwrap with the configured key, or does not belong to the backup.',
    hint: 'Check that the keyring holds the right key under the id named in the message; if it does, the backup\'s .bkmetadata is damaged or belongs to another backup.',
  },
  LIFEBOAT_E_CODEC_UNAVAILABLE: {
    status: 500,
    title: 'The backup is compressed with an algorithm this installation cannot decode.',
    hint: 'Install the zstd-napi package (npm install builds it), or read the backup on an installation that has it.',
  },
  LIFEBOAT_E_BACKUP_CALLBACK_FAILED: {
    status: 500,
    title: 'The backup callback did not accept the backup.',
    hint: 'The callback returned false or threw; the backup does not count and the chain is unchanged.',
  },
  LIFEBOAT_E_DATA_DIR_MISMATCH: {
    status: 400,
    title: 'The data directory holds another service or partitioning.',
    hint: 'Open the service with the name and partitioning it was created with, or use another data directory.',
  },
  FABRIC_E_APPLICATION_NOT_FOUND: {
    status: 404,
    title: 'The application does not exist.',
    hint: 'Check the application id (fabric:/App is written App); list applications with GET /Applications.',
  },
  FABRIC_E_SERVICE_DOES_NOT_EXIST: {
    status: 404,
    title: 'The service does not exist.',
    hint: 'Check the service id (fabric:/App/Svc is written App~Svc); list an application\'s services.',
  },
  FABRIC_E_BACKUP_POLICY_NOT_EXISTING: {
    status: 404,
    title: 'The backup policy does not exist.',
    hint: 'Check the policy name; list policies with GET /BackupRestore/BackupPolicies.',
  },
  FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING: {
    status: 409,
    title: 'A backup policy with this name already exists.',
    hint: 'Choose another name, or update the existing policy.',
  },
  FABRIC_E_BACKUP_IS_ENABLED: {
    status: 400,
    title: 'The backup policy is still applied to an entity.',
    hint: 'Disable backup on every entity that uses the policy (GetBackupEnabledEntities lists them), then delete it.',
  },
  FABRIC_E_INVALID_FOR_STATELESS_SERVICES: {
    status: 400,
    title: 'Backup applies only to stateful services with persisted state.',
    hint: 'Enable backup on a stateful service that persists its state.',
  },
  FABRIC_E_BACKUP_NOT_ENABLED: {
    status: 404,
    title: 'Backup is not enabled for this entity.',
    hint: 'Give the storage in the request, or enable a backup policy for the partition, its service or application.',
  },
  FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH: {
    status: 400,
    title: 'The backup is of a partition with another kind or key range than the target.',
    hint: 'Restore a backup of a partition with the same partitioning (kind, low and high key, or name).',
  },
  FABRIC_E_VALUE_TOO_LARGE: {
    status: 413,
    title: 'The request body is too large.',
    hint: 'Send a smaller body; request bodies of this API are small JSON documents.',
  },
  FABRIC_E_TIMEOUT: {
    status: 504,
    title: 'The operation did not finish in the time allowed.',
    hint: 'Retry with a longer timeout (BackupTimeout / RestoreTimeout, in minutes).',
  },
  LIFEBOAT_E_STORAGE_NOT_FOUND: {
    status: 404,
    title: 'The object does not exist in the backup storage.',
    hint: 'Check the BackupLocation and the storage; list backups with GetBackups.',
  },
  LIFEBOAT_E_STORAGE_OBJECT_EXISTS: {
    status: 409,
    title: 'An object with this name already exists in the backup storage.',
    hint: 'Backups are never overwritten; this is a naming collision worth reporting.',
  },
  LIFEBOAT_E_STORAGE_UNAVAILABLE: {
    status: 400,
    title: 'The backup storage cannot be reached or used.',
    hint: 'Check the storage description: path or endpoint, container or bucket, and credentials.',
  },
  LIFEBOAT_E_HOST_LOST: {
    status: 503,
    title: 'The host serving the partition stopped while carrying out the operation.',
    hint: 'Start the host again and repeat the request.',
  },
  E_ABORT: {
    status: 503,
    title: 'The operation was cut off before it finished.',
    hint: 'Request it again; Lifeboat or the host restarted while it ran.',
  },
  FABRIC_E_ENDPOINT_NOT_FOUND: {
    status: 404,
    title: 'No such route.',
    hint: 'Check the method and path against docs/api.md; actions are POST …/$/Action.',
  },
  LIFEBOAT_E_UNAUTHENTICATED: {
    status: 401,
    title: 'The request carries no valid credential.',
    hint: 'Send Authorization: Bearer <token> (lifeboat token create; the bootstrap admin token is in <data-dir>/admin.token), or a client certificate mapped to a role.',
  },
  E_ACCESSDENIED: {
    status: 403,
    title: 'The caller may not do this.',
    hint: 'Use a token or certificate with the role the route needs (admin for changes, reader for reads, host for the host protocol as its own host); requests from other sites (Origin) or for other host names (Host) are refused.',
  },
  LIFEBOAT_E_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'The request body is not JSON.',
    hint: 'Send bodies with Content-Type: application/json.',
  },
  LIFEBOAT_E_TOKEN_EXISTS: {
    status: 409,
    title: 'A token with this name already exists.',
    hint: 'Choose another name, or revoke the existing token first (lifeboat token revoke <name>).',
  },
  LIFEBOAT_E_TOKEN_NOT_FOUND: {
    status: 404,
    title: 'No token has this name.',
    hint: 'List tokens with lifeboat token list.',
  },
  LIFEBOAT_E_CATALOG_KEY_MISMATCH: {
    status: 500,
    title: 'A sealed secret in the catalog does not open with the catalog key.',
    hint: 'Start Lifeboat with the catalog key the catalog was written with (<data-dir>/catalog.key or --catalog-key); if the key is lost, recreate the policies named in the log with their secrets.',
  },
  LIFEBOAT_E_NOT_LEADER: {
    status: 503,
    title: 'This instance no longer leads the background work: another took the lease over.',
    hint: 'Nothing to do: the new leader carries the work on; a paused or cut-off instance gives way by itself.',
  },
  LIFEBOAT_E_CATALOG_UNAVAILABLE: {
    status: 503,
    title: 'The catalog database cannot be reached.',
    hint: 'Check that PostgreSQL is up and reachable at --catalog; Lifeboat reconnects by itself. Retry after the number of seconds in the Retry-After header.',
  },
  LIFEBOAT_E_BUSY: {
    status: 503,
    title: 'Lifeboat is at its limit for this kind of request.',
    hint: 'Retry after the number of seconds in the Retry-After header.',
  },
  E_FAIL: {
    status: 500,
    title: 'An unexpected internal error.',
    hint: 'See the service log; this is a bug worth reporting.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The one error type Lifeboat throws on purpose. `code` is stable; `message` is for people. */
export class LifeboatError extends Error {
  override readonly name = 'LifeboatError';
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? ERROR_CATALOGUE[code].title, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }

  get hint(): string {
    return ERROR_CATALOGUE[this.code].hint;
  }
}

export function isLifeboatError(err: unknown, code?: ErrorCode): err is LifeboatError {
  return err instanceof LifeboatError && (code === undefined || err.code === code);
}

/** Throws E_INVALIDARG with `message` unless `condition` holds. */
export function invalidArgUnless(condition: unknown, message: string): asserts condition {
  if (!condition) throw new LifeboatError('E_INVALIDARG', message);
}

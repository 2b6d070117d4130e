/**
 * The REST routes' path templates, as the server registers them (src/api/app.ts) and a client
 * fills them in (`pathOf`). `:name` is a path parameter; `$` is a literal segment, as in Service
 * Fabric's paths. Application and service ids are names without `fabric:/`, `/` written `~`
 * (core/ids.ts); partition ids are GUIDs.
 */

export const ROUTES = {
  // hierarchy
  applications: '/Applications',
  application: '/Applications/:applicationId',
  services: '/Applications/:applicationId/$/GetServices',
  partitions: '/Services/:serviceId/$/GetPartitions',
  partitionHealth: '/Partitions/:partitionId/$/GetHealth',
  partition: '/Partitions/:partitionId',
  // on-demand backup and restore
  backupPartition: '/Partitions/:partitionId/$/Backup',
  backupProgress: '/Partitions/:partitionId/$/GetBackupProgress',
  skipAutoRestore: '/Partitions/:partitionId/$/SkipAutoRestore',
  restorePartition: '/Partitions/:partitionId/$/Restore',
  restoreProgress: '/Partitions/:partitionId/$/GetRestoreProgress',
  verifyBackup: '/Partitions/:partitionId/$/VerifyBackup',
  // listing
  retentionPlan: '/Partitions/:partitionId/$/GetRetentionPlan',
  partitionBackups: '/Partitions/:partitionId/$/GetBackups',
  serviceBackups: '/Services/:serviceId/$/GetBackups',
  applicationBackups: '/Applications/:applicationId/$/GetBackups',
  backupsInStorage: '/BackupRestore/$/GetBackups',
  // backup policies
  createPolicy: '/BackupRestore/BackupPolicies/$/Create',
  policies: '/BackupRestore/BackupPolicies',
  policy: '/BackupRestore/BackupPolicies/:backupPolicyName',
  updatePolicy: '/BackupRestore/BackupPolicies/:backupPolicyName/$/Update',
  deletePolicy: '/BackupRestore/BackupPolicies/:backupPolicyName/$/Delete',
  policyEntities: '/BackupRestore/BackupPolicies/:backupPolicyName/$/GetBackupEnabledEntities',
  // the host protocol (internal)
  hostRegister: '/Lifeboat/Hosts/:hostId/$/Register',
  hostOrders: '/Lifeboat/Hosts/:hostId/$/Orders',
  hostDataLoss: '/Lifeboat/Hosts/:hostId/$/DataLoss',
  hostReport: '/Lifeboat/Hosts/:hostId/$/Report',
  // access (Lifeboat's own)
  createToken: '/Lifeboat/$/Tokens/$/Create',
  tokens: '/Lifeboat/$/Tokens',
  revokeToken: '/Lifeboat/$/Tokens/:tokenName/$/Revoke',
  me: '/Lifeboat/$/Me',
  auditLog: '/Lifeboat/$/AuditLog',
  signIn: '/Lifeboat/$/SignIn',
  // operators (Lifeboat's own): Prometheus metrics, liveness and readiness, the web explorer
  metrics: '/metrics',
  healthz: '/healthz',
  readyz: '/readyz',
  explorer: '/explorer',
  explorerFiles: '/explorer/*',
} as const;

/** Where each entity level's protection routes hang. */
export const ENTITY_PREFIXES = {
  Application: '/Applications/:applicationId',
  Service: '/Services/:serviceId',
  Partition: '/Partitions/:partitionId',
} as const;

export type EntityLevelName = keyof typeof ENTITY_PREFIXES;

/** The protection routes, the same at every entity level. */
export const PROTECTION_ACTIONS = ['EnableBackup', 'DisableBackup', 'SuspendBackup', 'ResumeBackup', 'GetBackupConfigurationInfo'] as const;
export type ProtectionAction = (typeof PROTECTION_ACTIONS)[number];

/** e.g. protectionRoute('Service', 'EnableBackup') = '/Services/:serviceId/$/EnableBackup'. */
export function protectionRoute<L extends EntityLevelName, A extends ProtectionAction>(level: L, action: A): `${(typeof ENTITY_PREFIXES)[L]}/$/${A}` {
  return `${ENTITY_PREFIXES[level]}/$/${action}`;
}

/** The names of a template's `:parameters`. */
export type PathParams<T extends string> =
  T extends `${string}:${infer P}/${infer Rest}` ? P | PathParams<`/${Rest}`>
  : T extends `${string}:${infer P}` ? P
  : never;

/**
 * The path of a template with its parameters filled in, each URI-encoded (a GUID, an id with `~`,
 * a policy or token name come through unchanged).
 */
export function pathOf<T extends string>(template: T, params: Readonly<Record<PathParams<T>, string>>): string {
  return template.replace(/:([A-Za-z]+)/g, (_m, name: string) => encodeURIComponent((params as Record<string, string>)[name] ?? ''));
}

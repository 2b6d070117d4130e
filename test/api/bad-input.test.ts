/**
 * Bad input on every public route in scope, and Lifeboat's VerifyBackup: one table of requests,
 * each with the status and FabricError code Service Fabric's BackupRestore API answers it with
 * (see /work/shared/docs/sf-rest-api.md), sent to one real Lifeboat. Every error answer must be
 * exactly `{"Error":{"Code","Message"}}`; resource 404s carry `X-ServiceFabric: ResourceNotFound`;
 * nothing is ever a 5xx. A few rows are requests that must be accepted (an api-version name in
 * another case, an empty optional body). Then the 409s of a partition that is busy backing up or
 * restoring.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type HttpRequest, assertFabricError, assertSuccess, jsonOf, send } from '../support/api-http.ts';
import { type TestLifeboat, startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { APP_ID, SERVICE_ID, SERVICE_NAME, UNKNOWN_PID } from '../support/sample.ts';

const V = 'api-version=6.4';
const QV = 'api-version=6.0';
const BIG = `{"BackupStorage":"${'x'.repeat(5 * 1024 * 1024)}"}`;

/** What a row needs to know about the running Lifeboat. */
interface Ctx {
  /** The sample service's four partitions, in key order. */
  readonly p: readonly string[];
  /** A FileShare storage inside the allowed root, holding one backup of p[0]. */
  readonly storage: { StorageKind: 'FileShare'; Path: string };
  readonly share: string;
  /** The allowed FileShare root. */
  readonly root: string;
  /** An existing, empty folder inside the root. */
  readonly emptyShare: string;
  /** The backup of p[0] in `storage`. */
  readonly backup: { readonly id: string; readonly location: string };
}

interface Row extends HttpRequest {
  readonly name: string;
  readonly status: number;
  /** The FabricError code; null when the request must succeed. */
  readonly code: string | null;
}

// ---- every route: api-version, timeout, ids --------------------------------------------------

type Entity = 'partition' | 'service' | 'application' | 'none';

interface RouteSpec {
  readonly op: string;
  readonly method: 'GET' | 'POST';
  readonly surface: 'backup' | 'query';
  readonly entity: Entity;
  readonly path: (id: string) => string;
  /** A body that passes validation, where the route takes one (never one that starts work). */
  readonly body?: (c: Ctx) => unknown;
  /** The answer to a well-formed request on the sample entity with `body`. */
  readonly ok: { readonly status: number; readonly code: string | null };
}

const ROUTES: readonly RouteSpec[] = [
  // With no body and no policy, an on-demand backup has nowhere to go.
  { op: 'BackupPartition', method: 'POST', surface: 'backup', entity: 'partition', path: (id) => `/Partitions/${id}/$/Backup`, ok: { status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' } },
  { op: 'GetPartitionBackupProgress', method: 'GET', surface: 'backup', entity: 'partition', path: (id) => `/Partitions/${id}/$/GetBackupProgress`, ok: { status: 200, code: null } },
  // A restore body without BackupStorage, and no policy: nowhere to restore from.
  {
    op: 'RestorePartition', method: 'POST', surface: 'backup', entity: 'partition', path: (id) => `/Partitions/${id}/$/Restore`,
    body: (c) => ({ BackupId: c.backup.id, BackupLocation: c.backup.location }), ok: { status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
  },
  { op: 'GetPartitionRestoreProgress', method: 'GET', surface: 'backup', entity: 'partition', path: (id) => `/Partitions/${id}/$/GetRestoreProgress`, ok: { status: 200, code: null } },
  // Lifeboat's extension: the backup of p[0] and its chain check out.
  {
    op: 'VerifyBackup', method: 'POST', surface: 'backup', entity: 'partition', path: (id) => `/Partitions/${id}/$/VerifyBackup`,
    body: (c) => ({ BackupId: c.backup.id, BackupLocation: c.backup.location, BackupStorage: c.storage }), ok: { status: 200, code: null },
  },
  { op: 'GetPartitionBackupList', method: 'GET', surface: 'backup', entity: 'partition', path: (id) => `/Partitions/${id}/$/GetBackups`, ok: { status: 200, code: null } },
  // Lifeboat's extension; no policy here, so no retention applies.
  { op: 'GetRetentionPlan', method: 'GET', surface: 'backup', entity: 'partition', path: (id) => `/Partitions/${id}/$/GetRetentionPlan`, ok: { status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' } },
  { op: 'GetPartitionHealth', method: 'GET', surface: 'query', entity: 'partition', path: (id) => `/Partitions/${id}/$/GetHealth`, ok: { status: 200, code: null } },
  { op: 'GetServiceBackupList', method: 'GET', surface: 'backup', entity: 'service', path: (id) => `/Services/${id}/$/GetBackups`, ok: { status: 200, code: null } },
  { op: 'GetApplicationBackupList', method: 'GET', surface: 'backup', entity: 'application', path: (id) => `/Applications/${id}/$/GetBackups`, ok: { status: 200, code: null } },
  {
    op: 'GetBackupsFromBackupLocation', method: 'POST', surface: 'backup', entity: 'none', path: () => '/BackupRestore/$/GetBackups',
    body: (c) => ({ Storage: c.storage, BackupEntity: { EntityKind: 'Application', ApplicationName: 'fabric:/SampleApp' } }), ok: { status: 200, code: null },
  },
  { op: 'GetApplicationInfoList', method: 'GET', surface: 'query', entity: 'none', path: () => '/Applications', ok: { status: 200, code: null } },
  { op: 'GetApplicationInfo', method: 'GET', surface: 'query', entity: 'application', path: (id) => `/Applications/${id}`, ok: { status: 200, code: null } },
  { op: 'GetServiceInfoList', method: 'GET', surface: 'query', entity: 'application', path: (id) => `/Applications/${id}/$/GetServices`, ok: { status: 200, code: null } },
  { op: 'GetPartitionInfoList', method: 'GET', surface: 'query', entity: 'service', path: (id) => `/Services/${id}/$/GetPartitions`, ok: { status: 200, code: null } },
  { op: 'GetPartitionInfo', method: 'GET', surface: 'query', entity: 'partition', path: (id) => `/Partitions/${id}`, ok: { status: 200, code: null } },
];

function sampleId(e: Entity, c: Ctx): string {
  return e === 'partition' ? (c.p[0] as string) : e === 'service' ? SERVICE_ID : e === 'application' ? APP_ID : '';
}

/** Bad ids (400 E_INVALIDARG) and an unknown well-formed id (404) for each kind of entity. */
const BAD_IDS: Record<Exclude<Entity, 'none'>, { malformed: readonly string[]; unknown: string; notFound: string }> = {
  partition: { malformed: ['not-a-guid', '~~', '0badc0de-0000-4000-8000-00000000000', 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz'], unknown: UNKNOWN_PID, notFound: 'FABRIC_E_PARTITION_NOT_FOUND' },
  service: { malformed: ['~~', 'SampleApp~', 'SampleApp~~MyStatefulService'], unknown: 'SampleApp~NoSuchService', notFound: 'FABRIC_E_SERVICE_DOES_NOT_EXIST' },
  application: { malformed: ['~~', '~SampleApp', 'SampleApp~'], unknown: 'NoSuchApp', notFound: 'FABRIC_E_APPLICATION_NOT_FOUND' },
};

function commonRows(c: Ctx): Row[] {
  const rows: Row[] = [];
  for (const r of ROUTES) {
    const id = sampleId(r.entity, c);
    const good = r.surface === 'backup' ? '6.4' : '6.0';
    const low = r.surface === 'backup' ? '6.3' : '5.0';
    const base = { method: r.method, ...(r.body ? { body: r.body(c) } : {}) };
    const at = (query: string, entityId = id): string => `${r.path(entityId)}${query ? `?${query}` : ''}`;
    rows.push(
      { name: `${r.op}: no api-version`, ...base, path: at(''), status: 400, code: 'E_INVALIDARG' },
      { name: `${r.op}: empty api-version`, ...base, path: at('api-version='), status: 400, code: 'E_INVALIDARG' },
      { name: `${r.op}: api-version ${low} is lower than allowed`, ...base, path: at(`api-version=${low}`), status: 400, code: 'E_INVALIDARG' },
      { name: `${r.op}: malformed api-version 'abc'`, ...base, path: at('api-version=abc'), status: 400, code: 'E_INVALIDARG' },
      { name: `${r.op}: malformed api-version '${good}.1'`, ...base, path: at(`api-version=${good}.1`), status: 400, code: 'E_INVALIDARG' },
      { name: `${r.op}: api-version given twice`, ...base, path: at(`api-version=${good}&api-version=${good}`), status: 400, code: 'E_INVALIDARG' },
      { name: `${r.op}: timeout=0`, ...base, path: at(`api-version=${good}&timeout=0`), status: 400, code: 'E_INVALIDARG' },
      { name: `${r.op}: timeout=abc`, ...base, path: at(`api-version=${good}&timeout=abc`), status: 400, code: 'E_INVALIDARG' },
      { name: `${r.op}: timeout=4294967296 (above the maximum)`, ...base, path: at(`api-version=${good}&timeout=4294967296`), status: 400, code: 'E_INVALIDARG' },
      // Service Fabric binds query names case-insensitively.
      { name: `${r.op}: API-VERSION=${good} in upper case works`, ...base, path: at(`API-VERSION=${good}`), status: r.ok.status, code: r.ok.code },
      { name: `${r.op}: Api-Version=${good}&TIMEOUT=60 in mixed case works`, ...base, path: at(`Api-Version=${good}&TIMEOUT=60`), status: r.ok.status, code: r.ok.code },
    );
    if (r.surface === 'backup') {
      rows.push(
        { name: `${r.op}: api-version 6.2-preview (the npm client's) works`, ...base, path: at('api-version=6.2-preview'), status: r.ok.status, code: r.ok.code },
        { name: `${r.op}: api-version 9.1 works`, ...base, path: at('api-version=9.1'), status: r.ok.status, code: r.ok.code },
        { name: `${r.op}: api-version 6.3-preview is refused`, ...base, path: at('api-version=6.3-preview'), status: 400, code: 'E_INVALIDARG' },
      );
    } else {
      rows.push({ name: `${r.op}: api-version 6.1 works`, ...base, path: at('api-version=6.1'), status: r.ok.status, code: r.ok.code });
    }
    if (r.entity !== 'none') {
      const ids = BAD_IDS[r.entity];
      for (const bad of ids.malformed) {
        rows.push({ name: `${r.op}: malformed ${r.entity} id '${bad}'`, ...base, path: at(`api-version=${good}`, bad), status: 400, code: 'E_INVALIDARG' });
      }
      // An empty id segment — unless the id ends the path (then the path is another route).
      if (!r.path('ID').endsWith('ID')) rows.push({ name: `${r.op}: empty ${r.entity} id segment`, ...base, path: at(`api-version=${good}`, ''), status: 400, code: 'E_INVALIDARG' });
      rows.push({ name: `${r.op}: unknown ${r.entity} id '${ids.unknown}'`, ...base, path: at(`api-version=${good}`, ids.unknown), status: 404, code: ids.notFound });
    }
  }
  return rows;
}

// ---- route by route --------------------------------------------------------------------------

function backupRows(c: Ctx): Row[] {
  const p0 = c.p[0] as string;
  const path = `/Partitions/${p0}/$/Backup?${V}`;
  const withStorage = (s: unknown): unknown => ({ BackupStorage: s });
  const fs = (extra: Record<string, unknown>): unknown => withStorage({ StorageKind: 'FileShare', Path: c.share, ...extra });
  const E = 'E_INVALIDARG';
  return [
    // The body is optional: absent, empty or null means "no BackupStorage" — then the policy's storage, and there is no policy.
    { name: 'BackupPartition: empty body with Content-Type application/json is accepted (no policy → 404)', method: 'POST', path, raw: '', status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'BackupPartition: empty body with the .NET client\'s Content-Type is accepted', method: 'POST', path, raw: '', headers: { 'content-type': 'application/json; charset=utf-8' }, status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'BackupPartition: no body and no Content-Type is accepted', method: 'POST', path, status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'BackupPartition: whitespace body is accepted', method: 'POST', path, raw: ' \r\n ', status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'BackupPartition: body {} is accepted', method: 'POST', path, body: {}, status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'BackupPartition: JSON null body is accepted', method: 'POST', path, raw: 'null', status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'BackupPartition: BackupStorage null is accepted', method: 'POST', path, body: { BackupStorage: null }, status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'BackupPartition: malformed JSON', method: 'POST', path, raw: '{"BackupStorage":', status: 400, code: E },
    { name: 'BackupPartition: not JSON at all', method: 'POST', path, raw: 'BackupStorage=FileShare', status: 400, code: E },
    { name: 'BackupPartition: body is an array', method: 'POST', path, body: [c.storage], status: 400, code: E },
    { name: 'BackupPartition: body is a string', method: 'POST', path, body: 'FileShare', status: 400, code: E },
    { name: 'BackupPartition: body is a number', method: 'POST', path, body: 5, status: 400, code: E },
    { name: 'BackupPartition: body is a boolean', method: 'POST', path, body: true, status: 400, code: E },
    { name: 'BackupPartition: BackupStorage: 5', method: 'POST', path, body: withStorage(5), status: 400, code: E },
    { name: 'BackupPartition: BackupStorage is a string', method: 'POST', path, body: withStorage('FileShare'), status: 400, code: E },
    { name: 'BackupPartition: BackupStorage is an array', method: 'POST', path, body: withStorage([c.storage]), status: 400, code: E },
    { name: 'BackupPartition: StorageKind: 7', method: 'POST', path, body: fs({ StorageKind: 7 }), status: 400, code: E },
    { name: 'BackupPartition: missing StorageKind', method: 'POST', path, body: withStorage({ Path: c.share }), status: 400, code: E },
    { name: 'BackupPartition: unknown StorageKind Tape', method: 'POST', path, body: fs({ StorageKind: 'Tape' }), status: 400, code: E },
    { name: 'BackupPartition: StorageKind in the wrong case (fileshare)', method: 'POST', path, body: fs({ StorageKind: 'fileshare' }), status: 400, code: E },
    { name: 'BackupPartition: StorageKind Invalid', method: 'POST', path, body: fs({ StorageKind: 'Invalid' }), status: 400, code: E },
    { name: 'BackupPartition: AzureBlobStore without ConnectionString', method: 'POST', path, body: withStorage({ StorageKind: 'AzureBlobStore', ContainerName: 'c' }), status: 400, code: E },
    { name: 'BackupPartition: Path: []', method: 'POST', path, body: fs({ Path: [] }), status: 400, code: E },
    { name: 'BackupPartition: Path: 5', method: 'POST', path, body: fs({ Path: 5 }), status: 400, code: E },
    { name: 'BackupPartition: Path is an object', method: 'POST', path, body: fs({ Path: { p: c.share } }), status: 400, code: E },
    { name: 'BackupPartition: missing Path', method: 'POST', path, body: withStorage({ StorageKind: 'FileShare' }), status: 400, code: E },
    { name: 'BackupPartition: empty Path', method: 'POST', path, body: fs({ Path: '' }), status: 400, code: E },
    { name: 'BackupPartition: relative Path', method: 'POST', path, body: fs({ Path: 'backups/share' }), status: 400, code: E },
    { name: 'BackupPartition: Path /etc (outside the allowed roots)', method: 'POST', path, body: fs({ Path: '/etc' }), status: 400, code: E },
    { name: 'BackupPartition: Path /tmp/elsewhere (outside the allowed roots)', method: 'POST', path, body: fs({ Path: '/tmp/elsewhere' }), status: 400, code: E },
    { name: 'BackupPartition: Path escaping the share with ../', method: 'POST', path, body: fs({ Path: `${c.share}/../../../etc` }), status: 400, code: E },
    { name: 'BackupPartition: Path escaping the root with ../ to a sibling', method: 'POST', path, body: fs({ Path: `${c.root}/../backups-evil` }), status: 400, code: E },
    { name: 'BackupPartition: Path that is a prefix of the root but not inside it', method: 'POST', path, body: fs({ Path: `${c.root}-evil` }), status: 400, code: E },
    // A path that no file system takes must be refused when asked, not accepted and failed later.
    { name: 'BackupPartition: Path with a NUL byte', method: 'POST', path: `/Partitions/${c.p[3] as string}/$/Backup?${V}`, body: fs({ Path: `${c.share}/a\u0000b` }), status: 400, code: E },
    { name: 'BackupPartition: FriendlyName: 5', method: 'POST', path, body: fs({ FriendlyName: 5 }), status: 400, code: E },
    { name: 'BackupPartition: PrimaryUserName is an object', method: 'POST', path, body: fs({ PrimaryUserName: {} }), status: 400, code: E },
    { name: 'BackupPartition: 5 MB body', method: 'POST', path, raw: BIG, status: 413, code: 'FABRIC_E_VALUE_TOO_LARGE' },
    { name: 'BackupPartition: BackupTimeout=0', method: 'POST', path: `${path}&BackupTimeout=0`, status: 400, code: E },
    { name: 'BackupPartition: BackupTimeout=-1', method: 'POST', path: `${path}&BackupTimeout=-1`, status: 400, code: E },
    { name: 'BackupPartition: BackupTimeout=abc', method: 'POST', path: `${path}&BackupTimeout=abc`, status: 400, code: E },
    { name: 'BackupPartition: BackupTimeout=1e9', method: 'POST', path: `${path}&BackupTimeout=1e9`, status: 400, code: E },
    { name: 'BackupPartition: BackupTimeout=1000000000', method: 'POST', path: `${path}&BackupTimeout=1000000000`, status: 400, code: E },
    { name: 'BackupPartition: BackupTimeout=1.5', method: 'POST', path: `${path}&BackupTimeout=1.5`, status: 400, code: E },
    { name: 'BackupPartition: BackupTimeout= (empty)', method: 'POST', path: `${path}&BackupTimeout=`, status: 400, code: E },
    { name: 'BackupPartition: backuptimeout=0 (name in lower case is still read)', method: 'POST', path: `${path}&backuptimeout=0`, status: 400, code: E },
    { name: 'BackupPartition: BackupTimeout given twice', method: 'POST', path: `${path}&BackupTimeout=5&BackupTimeout=6`, status: 400, code: E },
    { name: 'BackupPartition: unknown partition with a valid body', method: 'POST', path: `/Partitions/${UNKNOWN_PID}/$/Backup?${V}`, body: withStorage(c.storage), status: 404, code: 'FABRIC_E_PARTITION_NOT_FOUND' },
  ];
}

function restoreRows(c: Ctx): Row[] {
  const p0 = c.p[0] as string;
  const path = `/Partitions/${p0}/$/Restore?${V}`;
  const full = { BackupId: c.backup.id, BackupLocation: c.backup.location, BackupStorage: c.storage };
  const E = 'E_INVALIDARG';
  const missing = (field: string): Record<string, unknown> => Object.fromEntries(Object.entries(full).filter(([k]) => k !== field));
  const absentLocation = c.backup.location.replace(/[^/]+$/, '2000-01-01 00.00.00.lbk');
  return [
    { name: 'RestorePartition: malformed JSON', method: 'POST', path, raw: '{"BackupId":', status: 400, code: E },
    { name: 'RestorePartition: body is an array', method: 'POST', path, body: [full], status: 400, code: E },
    { name: 'RestorePartition: body is a string', method: 'POST', path, body: c.backup.id, status: 400, code: E },
    { name: 'RestorePartition: body is a number', method: 'POST', path, body: 7, status: 400, code: E },
    // 9.1 made the body optional (restore the newest backup of the partition's policy): with no policy, that is 404.
    { name: 'RestorePartition: empty body at api-version 9.1 is accepted (no policy → 404)', method: 'POST', path: `/Partitions/${p0}/$/Restore?api-version=9.1`, raw: '', status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'RestorePartition: missing BackupId', method: 'POST', path, body: missing('BackupId'), status: 400, code: E },
    { name: 'RestorePartition: malformed BackupId', method: 'POST', path, body: { ...full, BackupId: 'not-a-guid' }, status: 400, code: E },
    { name: 'RestorePartition: BackupId: 5', method: 'POST', path, body: { ...full, BackupId: 5 }, status: 400, code: E },
    { name: 'RestorePartition: empty BackupId', method: 'POST', path, body: { ...full, BackupId: '' }, status: 400, code: E },
    { name: 'RestorePartition: missing BackupLocation', method: 'POST', path, body: missing('BackupLocation'), status: 400, code: E },
    { name: 'RestorePartition: BackupLocation: 5', method: 'POST', path, body: { ...full, BackupLocation: 5 }, status: 400, code: E },
    { name: 'RestorePartition: empty BackupLocation', method: 'POST', path, body: { ...full, BackupLocation: '' }, status: 400, code: E },
    { name: 'RestorePartition: BackupLocation escaping the storage with ../', method: 'POST', path, body: { ...full, BackupLocation: `../../${c.backup.location}` }, status: 400, code: E },
    { name: 'RestorePartition: BackupLocation escaping with ..\\ (Windows separators)', method: 'POST', path, body: { ...full, BackupLocation: '..\\..\\etc\\x.lbk' }, status: 400, code: E },
    { name: 'RestorePartition: BackupLocation that does not exist in the storage', method: 'POST', path, body: { ...full, BackupLocation: absentLocation }, status: 404, code: 'LIFEBOAT_E_STORAGE_NOT_FOUND' },
    { name: 'RestorePartition: BackupLocation in a storage that does not hold it', method: 'POST', path, body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: c.emptyShare } }, status: 404, code: 'LIFEBOAT_E_STORAGE_NOT_FOUND' },
    { name: 'RestorePartition: BackupId that is not the backup at BackupLocation', method: 'POST', path, body: { ...full, BackupId: '0badc0de-0000-4000-8000-0000000000aa' }, status: 400, code: E },
    { name: 'RestorePartition: backup of another partition (other key range)', method: 'POST', path: `/Partitions/${c.p[1] as string}/$/Restore?${V}`, body: full, status: 400, code: 'FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH' },
    { name: 'RestorePartition: BackupStorage: 5', method: 'POST', path, body: { ...full, BackupStorage: 5 }, status: 400, code: E },
    { name: 'RestorePartition: StorageKind: 7', method: 'POST', path, body: { ...full, BackupStorage: { StorageKind: 7, Path: c.share } }, status: 400, code: E },
    { name: 'RestorePartition: missing StorageKind', method: 'POST', path, body: { ...full, BackupStorage: { Path: c.share } }, status: 400, code: E },
    { name: 'RestorePartition: missing Path', method: 'POST', path, body: { ...full, BackupStorage: { StorageKind: 'FileShare' } }, status: 400, code: E },
    { name: 'RestorePartition: Path: []', method: 'POST', path, body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: [] } }, status: 400, code: E },
    { name: 'RestorePartition: relative Path', method: 'POST', path, body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: 'share' } }, status: 400, code: E },
    { name: 'RestorePartition: Path /etc', method: 'POST', path, body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: '/etc' } }, status: 400, code: E },
    { name: 'RestorePartition: Path escaping the share with ../', method: 'POST', path, body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: `${c.share}/../../..` } }, status: 400, code: E },
    { name: 'RestorePartition: 5 MB body', method: 'POST', path, raw: BIG, status: 413, code: 'FABRIC_E_VALUE_TOO_LARGE' },
    { name: 'RestorePartition: RestoreTimeout=0', method: 'POST', path: `${path}&RestoreTimeout=0`, body: full, status: 400, code: E },
    { name: 'RestorePartition: RestoreTimeout=-1', method: 'POST', path: `${path}&RestoreTimeout=-1`, body: full, status: 400, code: E },
    { name: 'RestorePartition: RestoreTimeout=abc', method: 'POST', path: `${path}&RestoreTimeout=abc`, body: full, status: 400, code: E },
    { name: 'RestorePartition: RestoreTimeout=1e9', method: 'POST', path: `${path}&RestoreTimeout=1e9`, body: full, status: 400, code: E },
    { name: 'RestorePartition: RestoreTimeout=1000000000', method: 'POST', path: `${path}&RestoreTimeout=1000000000`, body: full, status: 400, code: E },
    { name: 'RestorePartition: restoretimeout=0 (name in lower case is still read)', method: 'POST', path: `${path}&restoretimeout=0`, body: full, status: 400, code: E },
    { name: 'RestorePartition: Latest=maybe', method: 'POST', path: `${path}&Latest=maybe`, body: full, status: 400, code: E },
    { name: 'RestorePartition: Latest=True without a policy', method: 'POST', path: `${path}&Latest=True`, status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'RestorePartition: unknown partition with a valid body', method: 'POST', path: `/Partitions/${UNKNOWN_PID}/$/Restore?${V}`, body: full, status: 404, code: 'FABRIC_E_PARTITION_NOT_FOUND' },
  ];
}

/** VerifyBackup takes RestorePartition's body (and Latest) and answers at once: 200, or the error. */
function verifyRows(c: Ctx): Row[] {
  const p0 = c.p[0] as string;
  const path = `/Partitions/${p0}/$/VerifyBackup?${V}`;
  const full = { BackupId: c.backup.id, BackupLocation: c.backup.location, BackupStorage: c.storage };
  const E = 'E_INVALIDARG';
  const missing = (field: string): Record<string, unknown> => Object.fromEntries(Object.entries(full).filter(([k]) => k !== field));
  const absentLocation = c.backup.location.replace(/[^/]+$/, '2000-01-01 00.00.00.lbk');
  const post = (name: string, extra: Partial<Row> & Pick<Row, 'status' | 'code'>): Row => ({ name: `VerifyBackup: ${name}`, method: 'POST', path, ...extra });
  return [
    post('the backup named in the body is verified', { body: full, status: 200, code: null }),
    // Without a body: the newest backup in the policy's storage, and there is no policy.
    post('no body and no policy → 404', { status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' }),
    post('empty body and no policy → 404', { raw: '', status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' }),
    post('JSON null body and no policy → 404', { raw: 'null', status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' }),
    post('Latest=true with BackupStorage verifies the newest backup there', { path: `${path}&Latest=true`, body: { BackupStorage: c.storage }, status: 200, code: null }),
    post('Latest=True without a policy', { path: `${path}&Latest=True`, status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' }),
    post('Latest=true in a storage with no backup of the partition', { path: `${path}&Latest=true`, body: { BackupStorage: { StorageKind: 'FileShare', Path: c.emptyShare } }, status: 404, code: 'LIFEBOAT_E_STORAGE_NOT_FOUND' }),
    post('Latest=maybe', { path: `${path}&Latest=maybe`, body: full, status: 400, code: E }),
    post('malformed JSON', { raw: '{"BackupId":', status: 400, code: E }),
    post('body is an array', { body: [full], status: 400, code: E }),
    post('body is a string', { body: c.backup.id, status: 400, code: E }),
    post('body is a number', { body: 7, status: 400, code: E }),
    post('missing BackupId', { body: missing('BackupId'), status: 400, code: E }),
    post('malformed BackupId', { body: { ...full, BackupId: 'not-a-guid' }, status: 400, code: E }),
    post('BackupId: 5', { body: { ...full, BackupId: 5 }, status: 400, code: E }),
    post('missing BackupLocation', { body: missing('BackupLocation'), status: 400, code: E }),
    post('BackupLocation: 5', { body: { ...full, BackupLocation: 5 }, status: 400, code: E }),
    post('empty BackupLocation', { body: { ...full, BackupLocation: '' }, status: 400, code: E }),
    post('BackupLocation that is not a .lbk', { body: { ...full, BackupLocation: c.backup.location.replace(/\.lbk$/, '.bkmetadata') }, status: 400, code: E }),
    post('BackupLocation escaping the storage with ../', { body: { ...full, BackupLocation: `../../${c.backup.location}` }, status: 400, code: E }),
    post('BackupLocation escaping with ..\\ (Windows separators)', { body: { ...full, BackupLocation: '..\\..\\etc\\x.lbk' }, status: 400, code: E }),
    post('BackupLocation that does not exist in the storage', { body: { ...full, BackupLocation: absentLocation }, status: 404, code: 'LIFEBOAT_E_STORAGE_NOT_FOUND' }),
    post('BackupLocation in a storage that does not hold it', { body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: c.emptyShare } }, status: 404, code: 'LIFEBOAT_E_STORAGE_NOT_FOUND' }),
    post('BackupId that is not the backup at BackupLocation', { body: { ...full, BackupId: '0badc0de-0000-4000-8000-0000000000aa' }, status: 400, code: E }),
    { name: 'VerifyBackup: backup of another partition (other key range)', method: 'POST', path: `/Partitions/${c.p[1] as string}/$/VerifyBackup?${V}`, body: full, status: 400, code: 'FABRIC_E_RESTORE_SOURCE_TARGET_PARTITION_MISMATCH' },
    post('BackupStorage: 5', { body: { ...full, BackupStorage: 5 }, status: 400, code: E }),
    post('StorageKind: 7', { body: { ...full, BackupStorage: { StorageKind: 7, Path: c.share } }, status: 400, code: E }),
    post('relative Path', { body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: 'share' } }, status: 400, code: E }),
    post('Path /etc', { body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: '/etc' } }, status: 400, code: E }),
    post('Path escaping the share with ../', { body: { ...full, BackupStorage: { StorageKind: 'FileShare', Path: `${c.share}/../../..` } }, status: 400, code: E }),
    post('5 MB body', { raw: BIG, status: 413, code: 'FABRIC_E_VALUE_TOO_LARGE' }),
    { name: 'VerifyBackup: unknown partition with a valid body', method: 'POST', path: `/Partitions/${UNKNOWN_PID}/$/VerifyBackup?${V}`, body: full, status: 404, code: 'FABRIC_E_PARTITION_NOT_FOUND' },
  ];
}

/** The filters of the three backup-list routes (Latest, dates, paging). */
function listRows(c: Ctx): Row[] {
  const E = 'E_INVALIDARG';
  const lists = [
    { op: 'GetPartitionBackupList', path: `/Partitions/${c.p[0] as string}/$/GetBackups?${V}` },
    { op: 'GetServiceBackupList', path: `/Services/${SERVICE_ID}/$/GetBackups?${V}` },
    { op: 'GetApplicationBackupList', path: `/Applications/${APP_ID}/$/GetBackups?${V}` },
  ];
  const rows: Row[] = [];
  for (const l of lists) {
    const at = (q: string): string => `${l.path}&${q}`;
    rows.push(
      { name: `${l.op}: MaxResults=-1`, method: 'GET', path: at('MaxResults=-1'), status: 400, code: E },
      { name: `${l.op}: MaxResults=x`, method: 'GET', path: at('MaxResults=x'), status: 400, code: E },
      { name: `${l.op}: MaxResults=1.5`, method: 'GET', path: at('MaxResults=1.5'), status: 400, code: E },
      { name: `${l.op}: maxresults=-1 (name in lower case is still read)`, method: 'GET', path: at('maxresults=-1'), status: 400, code: E },
      { name: `${l.op}: Latest=maybe`, method: 'GET', path: at('Latest=maybe'), status: 400, code: E },
      { name: `${l.op}: LATEST=maybe (name in upper case is still read)`, method: 'GET', path: at('LATEST=maybe'), status: 400, code: E },
      { name: `${l.op}: Latest=1`, method: 'GET', path: at('Latest=1'), status: 400, code: E },
      { name: `${l.op}: Latest=True (as .NET writes it) works`, method: 'GET', path: at('Latest=True'), status: 200, code: null },
      { name: `${l.op}: latest=FALSE works`, method: 'GET', path: at('latest=FALSE'), status: 200, code: null },
      { name: `${l.op}: MaxResults=1 with a ContinuationToken works`, method: 'GET', path: at(`MaxResults=1&ContinuationToken=${Buffer.from('["","","",""]').toString('base64url')}`), status: 200, code: null },
      { name: `${l.op}: a ContinuationToken this server did not give`, method: 'GET', path: at('MaxResults=1&ContinuationToken=x'), status: 400, code: E },
      { name: `${l.op}: a ContinuationToken of the wrong shape`, method: 'GET', path: at(`ContinuationToken=${Buffer.from('["a",1]').toString('base64url')}`), status: 400, code: E },
      { name: `${l.op}: StartDateTimeFilter=yesterday`, method: 'GET', path: at('StartDateTimeFilter=yesterday'), status: 400, code: E },
      { name: `${l.op}: StartDateTimeFilter without a time`, method: 'GET', path: at('StartDateTimeFilter=2024-01-01'), status: 400, code: E },
      { name: `${l.op}: StartDateTimeFilter with month 13`, method: 'GET', path: at('StartDateTimeFilter=2024-13-01T00:00:00Z'), status: 400, code: E },
      { name: `${l.op}: EndDateTimeFilter=abc`, method: 'GET', path: at('EndDateTimeFilter=abc'), status: 400, code: E },
      { name: `${l.op}: EndDateTimeFilter with hour 25`, method: 'GET', path: at('EndDateTimeFilter=2024-01-01T25:00:00Z'), status: 400, code: E },
      { name: `${l.op}: StartDateTimeFilter after EndDateTimeFilter`, method: 'GET', path: at('StartDateTimeFilter=2024-02-01T00:00:00Z&EndDateTimeFilter=2024-01-01T00:00:00Z'), status: 400, code: E },
      { name: `${l.op}: date filters in yyyy-MM-ddTHH:mm:ssZ work`, method: 'GET', path: at('StartDateTimeFilter=2024-01-01T00:00:00Z&EndDateTimeFilter=2099-01-01T00:00:00'), status: 200, code: null },
    );
  }
  // .NET would not parse these as dates either.
  rows.push({ name: 'GetPartitionBackupList: StartDateTimeFilter on a day that does not exist (February 30)', method: 'GET', path: `${lists[0]?.path ?? ''}&StartDateTimeFilter=2024-02-30T00:00:00Z`, status: 400, code: E });
  return rows;
}

function storageQueryRows(c: Ctx): Row[] {
  const E = 'E_INVALIDARG';
  const path = `/BackupRestore/$/GetBackups?${V}`;
  const app = { EntityKind: 'Application', ApplicationName: 'fabric:/SampleApp' };
  const ok = { Storage: c.storage, BackupEntity: app };
  const storage = (s: unknown): unknown => ({ Storage: s, BackupEntity: app });
  const entity = (e: unknown): unknown => ({ Storage: c.storage, BackupEntity: e });
  return [
    { name: 'GetBackupsFromBackupLocation: no body', method: 'POST', path, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: empty body', method: 'POST', path, raw: '', status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: JSON null body', method: 'POST', path, raw: 'null', status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: malformed JSON', method: 'POST', path, raw: '{"Storage": {', status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: body is an array', method: 'POST', path, body: [ok], status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: body is a string', method: 'POST', path, body: 'x', status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: body is a number', method: 'POST', path, body: 1, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: missing Storage', method: 'POST', path, body: { BackupEntity: app }, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Storage: 5', method: 'POST', path, body: storage(5), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: missing StorageKind', method: 'POST', path, body: storage({ Path: c.share }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: StorageKind: 7', method: 'POST', path, body: storage({ StorageKind: 7, Path: c.share }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: unknown StorageKind', method: 'POST', path, body: storage({ StorageKind: 'Floppy', Path: c.share }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: missing Path', method: 'POST', path, body: storage({ StorageKind: 'FileShare' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Path: []', method: 'POST', path, body: storage({ StorageKind: 'FileShare', Path: [] }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: relative Path', method: 'POST', path, body: storage({ StorageKind: 'FileShare', Path: 'share' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Path /etc', method: 'POST', path, body: storage({ StorageKind: 'FileShare', Path: '/etc' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Path /tmp/elsewhere', method: 'POST', path, body: storage({ StorageKind: 'FileShare', Path: '/tmp/elsewhere' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Path escaping the share with ../', method: 'POST', path, body: storage({ StorageKind: 'FileShare', Path: `${c.share}/../../../..` }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Path with a NUL byte', method: 'POST', path, body: storage({ StorageKind: 'FileShare', Path: `${c.share}/a\u0000b` }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: missing BackupEntity', method: 'POST', path, body: { Storage: c.storage }, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: BackupEntity: 5', method: 'POST', path, body: entity(5), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: missing EntityKind', method: 'POST', path, body: entity({ ApplicationName: 'fabric:/SampleApp' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: unknown EntityKind Cluster', method: 'POST', path, body: entity({ EntityKind: 'Cluster', ApplicationName: 'fabric:/SampleApp' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: EntityKind: 3', method: 'POST', path, body: entity({ EntityKind: 3, ApplicationName: 'fabric:/SampleApp' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Application without ApplicationName', method: 'POST', path, body: entity({ EntityKind: 'Application' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: ApplicationName: 5', method: 'POST', path, body: entity({ EntityKind: 'Application', ApplicationName: 5 }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: ApplicationName with two segments', method: 'POST', path, body: entity({ EntityKind: 'Application', ApplicationName: 'fabric:/A/B' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: ApplicationName ..', method: 'POST', path, body: entity({ EntityKind: 'Application', ApplicationName: 'fabric:/..' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Service without ServiceName', method: 'POST', path, body: entity({ EntityKind: 'Service' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: ServiceName without a service segment', method: 'POST', path, body: entity({ EntityKind: 'Service', ServiceName: 'fabric:/SampleApp' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: ServiceName escaping with ..', method: 'POST', path, body: entity({ EntityKind: 'Service', ServiceName: 'fabric:/../..' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Partition without PartitionId', method: 'POST', path, body: entity({ EntityKind: 'Partition', ServiceName: SERVICE_NAME }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: malformed PartitionId', method: 'POST', path, body: entity({ EntityKind: 'Partition', ServiceName: SERVICE_NAME, PartitionId: 'abc' }), status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: Latest: "maybe"', method: 'POST', path, body: { ...ok, Latest: 'maybe' }, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: StartDateTimeFilter: "yesterday"', method: 'POST', path, body: { ...ok, StartDateTimeFilter: 'yesterday' }, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: EndDateTimeFilter: 5', method: 'POST', path, body: { ...ok, EndDateTimeFilter: 5 }, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: StartDateTimeFilter after EndDateTimeFilter', method: 'POST', path, body: { ...ok, StartDateTimeFilter: '2024-02-01T00:00:00Z', EndDateTimeFilter: '2024-01-01T00:00:00Z' }, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: MaxResults=-1', method: 'POST', path: `${path}&MaxResults=-1`, body: ok, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: MaxResults=x', method: 'POST', path: `${path}&MaxResults=x`, body: ok, status: 400, code: E },
    { name: 'GetBackupsFromBackupLocation: 5 MB body', method: 'POST', path, raw: BIG, status: 413, code: 'FABRIC_E_VALUE_TOO_LARGE' },
    { name: 'GetBackupsFromBackupLocation: an application the cluster does not know is an empty list', method: 'POST', path, body: entity({ EntityKind: 'Application', ApplicationName: 'fabric:/NoSuchApp' }), status: 200, code: null },
  ];
}

function hierarchyRows(): Row[] {
  const E = 'E_INVALIDARG';
  return [
    { name: 'GetApplicationInfoList: MaxResults=-1', method: 'GET', path: `/Applications?${QV}&MaxResults=-1`, status: 400, code: E },
    { name: 'GetApplicationInfoList: MaxResults=x', method: 'GET', path: `/Applications?${QV}&MaxResults=x`, status: 400, code: E },
    { name: 'GetServiceInfoList: MaxResults=x', method: 'GET', path: `/Applications/${APP_ID}/$/GetServices?${QV}&MaxResults=x`, status: 400, code: E },
    { name: 'GetPartitionInfoList: MaxResults=-1', method: 'GET', path: `/Services/${SERVICE_ID}/$/GetPartitions?${QV}&MaxResults=-1`, status: 400, code: E },
    { name: 'GetServiceInfoList: service id given where the application id goes', method: 'GET', path: `/Applications/${SERVICE_ID}/$/GetServices?${QV}`, status: 404, code: 'FABRIC_E_APPLICATION_NOT_FOUND' },
    { name: 'GetPartitionInfoList: application id given where the service id goes', method: 'GET', path: `/Services/${APP_ID}/$/GetPartitions?${QV}`, status: 404, code: 'FABRIC_E_SERVICE_DOES_NOT_EXIST' },
    { name: 'GetPartitionInfoList: service of an unknown application', method: 'GET', path: `/Services/NoSuchApp~MyStatefulService/$/GetPartitions?${QV}`, status: 404, code: 'FABRIC_E_SERVICE_DOES_NOT_EXIST' },
    { name: 'GetApplicationInfo: URL-encoded ~~', method: 'GET', path: `/Applications/%7E%7E?${QV}`, status: 400, code: E },
  ];
}

/** GetPartitionHealth's filters, and SkipAutoRestore, which only api-version 9.1 has. */
function healthAndSkipRows(c: Ctx): Row[] {
  const p0 = c.p[0] as string;
  const health = (q: string): string => `/Partitions/${p0}/$/GetHealth?${QV}&${q}`;
  const skip = (q: string, id = p0): string => `/Partitions/${id}/$/SkipAutoRestore?${q}`;
  return [
    { name: 'GetHealth: EventsHealthStateFilter=abc', method: 'GET', path: health('EventsHealthStateFilter=abc'), status: 400, code: 'E_INVALIDARG' },
    { name: 'GetHealth: EventsHealthStateFilter=-1', method: 'GET', path: health('EventsHealthStateFilter=-1'), status: 400, code: 'E_INVALIDARG' },
    { name: 'GetHealth: EventsHealthStateFilter=65536', method: 'GET', path: health('EventsHealthStateFilter=65536'), status: 400, code: 'E_INVALIDARG' },
    { name: 'GetHealth: ReplicasHealthStateFilter=x', method: 'GET', path: health('ReplicasHealthStateFilter=x'), status: 400, code: 'E_INVALIDARG' },
    { name: 'GetHealth: ExcludeHealthStatistics=maybe', method: 'GET', path: health('ExcludeHealthStatistics=maybe'), status: 400, code: 'E_INVALIDARG' },
    { name: 'GetHealth: EventsHealthStateFilter=8 works', method: 'GET', path: health('EventsHealthStateFilter=8'), status: 200, code: null },
    { name: 'SkipAutoRestore: no api-version', method: 'POST', path: skip(''), status: 400, code: 'E_INVALIDARG' },
    { name: 'SkipAutoRestore: api-version 6.4 is lower than 9.1', method: 'POST', path: skip('api-version=6.4'), status: 400, code: 'E_INVALIDARG' },
    { name: 'SkipAutoRestore: api-version 6.2-preview is refused', method: 'POST', path: skip('api-version=6.2-preview'), status: 400, code: 'E_INVALIDARG' },
    { name: 'SkipAutoRestore: RestoreTimeout=abc', method: 'POST', path: skip('api-version=9.1&RestoreTimeout=abc'), status: 400, code: 'E_INVALIDARG' },
    { name: 'SkipAutoRestore: RestoreTimeout=0', method: 'POST', path: skip('api-version=9.1&RestoreTimeout=0'), status: 400, code: 'E_INVALIDARG' },
    { name: 'SkipAutoRestore: malformed partition id', method: 'POST', path: skip('api-version=9.1', 'not-a-guid'), status: 400, code: 'E_INVALIDARG' },
    { name: 'SkipAutoRestore: unknown partition', method: 'POST', path: skip('api-version=9.1', UNKNOWN_PID), status: 404, code: 'FABRIC_E_PARTITION_NOT_FOUND' },
    { name: 'SkipAutoRestore with GET', method: 'GET', path: skip('api-version=9.1'), status: 404, code: 'FABRIC_E_ENDPOINT_NOT_FOUND' },
  ];
}

function unknownRouteRows(c: Ctx): Row[] {
  const p0 = c.p[0] as string;
  const N = 'FABRIC_E_ENDPOINT_NOT_FOUND';
  return [
    { name: 'unknown route GET /Nope', method: 'GET', path: `/Nope?${V}`, status: 404, code: N },
    { name: 'unknown route without api-version', method: 'GET', path: '/Nope', status: 404, code: N },
    { name: 'unknown action POST /Partitions/{id}/$/Explode', method: 'POST', path: `/Partitions/${p0}/$/Explode?${V}`, body: {}, status: 404, code: N },
    { name: 'BackupPartition with GET', method: 'GET', path: `/Partitions/${p0}/$/Backup?${V}`, status: 404, code: N },
    { name: 'GetBackupProgress with POST', method: 'POST', path: `/Partitions/${p0}/$/GetBackupProgress?${V}`, raw: '', status: 404, code: N },
    { name: 'VerifyBackup with GET', method: 'GET', path: `/Partitions/${p0}/$/VerifyBackup?${V}`, status: 404, code: N },
    { name: 'GetBackupsFromBackupLocation with GET', method: 'GET', path: `/BackupRestore/$/GetBackups?${V}`, status: 404, code: N },
    { name: 'GET /Partitions without an id', method: 'GET', path: `/Partitions?${QV}`, status: 404, code: N },
    { name: 'GET /Services without an id', method: 'GET', path: `/Services?${QV}`, status: 404, code: N },
    { name: 'DELETE /Applications', method: 'DELETE', path: `/Applications?${QV}`, status: 404, code: N },
  ];
}

function table(c: Ctx): Row[] {
  return [...commonRows(c), ...backupRows(c), ...restoreRows(c), ...verifyRows(c), ...listRows(c), ...storageQueryRows(c), ...hierarchyRows(), ...healthAndSkipRows(c), ...unknownRouteRows(c)];
}

// ---- the tests ---------------------------------------------------------------------------------

async function partitionsOf(lb: TestLifeboat): Promise<string[]> {
  const a = await send(lb.url, { method: 'GET', path: `/Services/${SERVICE_ID}/$/GetPartitions?${QV}` });
  const list = assertSuccess(a, 200, 'GetPartitions') as { Items: Array<{ PartitionInformation: { Id: string } }> };
  assert.equal(list.Items.length, 4);
  return list.Items.map((i) => i.PartitionInformation.Id);
}

async function backupNow(lb: TestLifeboat, pid: string): Promise<{ BackupId: string; BackupLocation: string; BackupState: string }> {
  const a = await send(lb.url, { method: 'POST', path: `/Partitions/${pid}/$/Backup?${V}`, body: { BackupStorage: lb.storage } });
  assertSuccess(a, 202, 'BackupPartition');
  return waitForBackup(lb, pid);
}

async function waitForBackup(lb: TestLifeboat, pid: string): Promise<{ BackupId: string; BackupLocation: string; BackupState: string }> {
  const done = await waitFor(async () => jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetBackupProgress?${V}` })) as { BackupId: string; BackupLocation: string; BackupState: string },
    (v) => v.BackupState !== 'Accepted' && v.BackupState !== 'BackupInProgress', 30_000, 'backup');
  return done;
}

async function waitForRestore(lb: TestLifeboat, pid: string): Promise<{ RestoreState: string }> {
  return waitFor(async () => jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetRestoreProgress?${V}` })) as { RestoreState: string },
    (v) => v.RestoreState !== 'Accepted' && v.RestoreState !== 'RestoreInProgress', 30_000, 'restore');
}

/** Makes a partition's state a few MB so that backing it up or restoring it takes a while. */
function makeBig(lb: TestLifeboat, pid: string, mb = 8): void {
  const p = lb.sample?.service.partition(pid);
  assert.ok(p);
  for (let i = 0; i < mb * 2; i++) p.transact((tx) => { tx.dictionary('kv').set(`big${i}`, String.fromCharCode(97 + (i % 26)).repeat(512 * 1024)); });
}

describe('REST API bad input', () => {
  it('answers every bad request of the table with the right FabricError', async (t) => {
    const lb = await startTestLifeboat(t);
    const p = await partitionsOf(lb);
    const root = lb.fileShareRoots[0];
    assert.ok(root);
    const emptyShare = join(root, 'empty');
    mkdirSync(emptyShare, { recursive: true });
    for (let i = 0; i < 10; i++) await fetch(`${lb.sample?.url ?? ''}/kv/k${i}`, { method: 'PUT', body: `v${i}` });
    const b = await backupNow(lb, p[0] as string);
    assert.equal(b.BackupState, 'Success', JSON.stringify(b));
    const ctx: Ctx = { p, storage: lb.storage, share: lb.share, root, emptyShare, backup: { id: b.BackupId, location: b.BackupLocation } };

    const rows = table(ctx);
    const names = new Set<string>();
    for (const r of rows) {
      assert.ok(!names.has(r.name), `row names are unique: ${r.name}`);
      names.add(r.name);
    }
    t.diagnostic(`${rows.length} rows`);
    for (const row of rows) {
      await t.test(row.name, async () => {
        const a = await send(lb.url, row);
        const what = `${row.method} ${row.path.slice(0, 160)}`;
        if (row.code === null) assertSuccess(a, row.status, what);
        else assertFabricError(a, row.status, row.code, what);
      });
    }

    // None of the table's requests started any work on the partitions it used.
    for (const pid of p.slice(0, 3)) {
      const prog = jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetRestoreProgress?${V}` })) as { RestoreState: string };
      assert.equal(prog.RestoreState, 'Invalid', `no restore of ${pid} was started`);
    }
  });

  it('refuses a second backup, and a restore, while a backup is Accepted or in progress (409 at once)', async (t) => {
    const lb = await startTestLifeboat(t);
    const [pid] = await partitionsOf(lb);
    assert.ok(pid);
    const first = await backupNow(lb, pid);
    assert.equal(first.BackupState, 'Success', JSON.stringify(first));
    makeBig(lb, pid);

    // Two at the same moment: exactly one is taken.
    const req: HttpRequest = { method: 'POST', path: `/Partitions/${pid}/$/Backup?${V}`, body: { BackupStorage: lb.storage } };
    const answers = await Promise.all([send(lb.url, req), send(lb.url, req)]);
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status !== 202);
    assert.equal(accepted.length, 1, answers.map((a) => `${a.status} ${a.text}`).join(' | '));
    for (const a of refused) assertFabricError(a, 409, 'FABRIC_E_BACKUP_IN_PROGRESS', 'second concurrent backup');

    // While it runs: another backup, and a restore, are refused.
    const [again, restore, progress] = await Promise.all([
      send(lb.url, req),
      send(lb.url, { method: 'POST', path: `/Partitions/${pid}/$/Restore?${V}`, body: { BackupId: first.BackupId, BackupLocation: first.BackupLocation, BackupStorage: lb.storage } }),
      send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetBackupProgress?${V}` }),
    ]);
    const state = (jsonOf(progress) as { BackupState: string }).BackupState;
    assert.ok(state === 'Accepted' || state === 'BackupInProgress', `the backup is still running (${state}); otherwise this test proves nothing`);
    assertFabricError(again, 409, 'FABRIC_E_BACKUP_IN_PROGRESS', 'backup during a backup');
    assertFabricError(restore, 409, 'FABRIC_E_BACKUP_IN_PROGRESS', 'restore during a backup');

    const done = await waitForBackup(lb, pid);
    assert.equal(done.BackupState, 'Success', JSON.stringify(done));
    // Once it is done, the partition takes a backup again.
    assertSuccess(await send(lb.url, req), 202, 'backup after the backup');
    assert.equal((await waitForBackup(lb, pid)).BackupState, 'Success');
  });

  it('refuses a backup, and a second restore, while a restore is Accepted or in progress (409 at once)', async (t) => {
    const lb = await startTestLifeboat(t);
    const [pid] = await partitionsOf(lb);
    assert.ok(pid);
    makeBig(lb, pid);
    const b = await backupNow(lb, pid);
    assert.equal(b.BackupState, 'Success', JSON.stringify(b));

    const restoreReq: HttpRequest = { method: 'POST', path: `/Partitions/${pid}/$/Restore?${V}`, body: { BackupId: b.BackupId, BackupLocation: b.BackupLocation, BackupStorage: lb.storage } };
    const answers = await Promise.all([send(lb.url, restoreReq), send(lb.url, restoreReq)]);
    const accepted = answers.filter((a) => a.status === 202);
    assert.equal(accepted.length, 1, answers.map((a) => `${a.status} ${a.text}`).join(' | '));
    for (const a of answers.filter((x) => x.status !== 202)) assertFabricError(a, 409, 'FABRIC_E_RESTORE_IN_PROGRESS', 'second concurrent restore');

    const [backup, again, progress] = await Promise.all([
      send(lb.url, { method: 'POST', path: `/Partitions/${pid}/$/Backup?${V}`, body: { BackupStorage: lb.storage } }),
      send(lb.url, restoreReq),
      send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetRestoreProgress?${V}` }),
    ]);
    const state = (jsonOf(progress) as { RestoreState: string }).RestoreState;
    assert.ok(state === 'Accepted' || state === 'RestoreInProgress', `the restore is still running (${state}); otherwise this test proves nothing`);
    assertFabricError(backup, 409, 'FABRIC_E_RESTORE_IN_PROGRESS', 'backup during a restore');
    assertFabricError(again, 409, 'FABRIC_E_RESTORE_IN_PROGRESS', 'restore during a restore');
    assert.equal((await waitForRestore(lb, pid)).RestoreState, 'Success');
  });
});

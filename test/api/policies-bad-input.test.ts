/**
 * Bad input on the policy and protection routes: one table of requests, each with the status and
 * FabricError code Service Fabric answers (sf-rest-api.md §2.1–2.4, §6), with the reference's
 * messages where it has them. Every error is exactly `{"Error":{"Code","Message"}}`; nothing is a 5xx.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type HttpRequest, assertFabricError, assertSuccess, jsonOf, send } from '../support/api-http.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { APP_ID, SERVICE_ID, UNKNOWN_PID } from '../support/sample.ts';

const VOLATILE_PID = '7e7e7e7e-0000-4000-8000-000000000001';
const V = 'api-version=6.4';
const E = 'E_INVALIDARG';
const BIG = `{"Name":"${'x'.repeat(5 * 1024 * 1024)}"}`;

interface Row extends HttpRequest {
  readonly name: string;
  readonly status: number;
  readonly code: string | null;
  /** A part of the message the answer must carry. */
  readonly message?: string;
}

function table(share: string, p0: string, blocked: string): Row[] {
  const good = {
    Name: 'Good', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 3,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT30M' }, Storage: { StorageKind: 'FileShare', Path: share },
  };
  const create = `/BackupRestore/BackupPolicies/$/Create?${V}`;
  const c = (name: string, body: unknown, status: number, code: string | null, message?: string): Row =>
    ({ name: `Create: ${name}`, method: 'POST', path: create, body, status, code, ...(message ? { message } : {}) });
  const without = (k: string): Record<string, unknown> => Object.fromEntries(Object.entries(good).filter(([f]) => f !== k));
  const sched = (s: unknown): unknown => ({ ...good, Schedule: s });
  const rows: Row[] = [
    c('a valid policy', good, 201, null),
    c('the same name again', good, 409, 'FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING'),
    { name: 'Create: no body', method: 'POST', path: create, status: 400, code: E },
    { name: 'Create: malformed JSON', method: 'POST', path: create, raw: '{"Name":', status: 400, code: E },
    { name: 'Create: 5 MB body', method: 'POST', path: create, raw: BIG, status: 413, code: 'FABRIC_E_VALUE_TOO_LARGE' },
    { name: 'Create: no api-version', method: 'POST', path: '/BackupRestore/BackupPolicies/$/Create', body: good, status: 400, code: E },
    { name: 'Create: api-version 6.3', method: 'POST', path: '/BackupRestore/BackupPolicies/$/Create?api-version=6.3', body: good, status: 400, code: E },
    { name: 'Create: ValidateConnection=maybe', method: 'POST', path: `${create}&ValidateConnection=maybe`, body: { ...good, Name: 'V1' }, status: 400, code: E },
    c('body is an array', [good], 400, E),
    c('missing Name', without('Name'), 400, E, 'The Name field is required.'),
    c('Name: 5', { ...good, Name: 5 }, 400, E),
    c('Name with a slash', { ...good, Name: 'a/b' }, 400, E),
    c('Name of 129 characters', { ...good, Name: 'n'.repeat(129) }, 400, E),
    c('missing AutoRestoreOnDataLoss', without('AutoRestoreOnDataLoss'), 400, E, 'The AutoRestoreOnDataLoss field is required.'),
    c('AutoRestoreOnDataLoss: "true"', { ...good, AutoRestoreOnDataLoss: 'true' }, 400, E),
    c('missing MaxIncrementalBackups', without('MaxIncrementalBackups'), 400, E, 'The MaxIncrementalBackups field is required.'),
    c('MaxIncrementalBackups: 256', { ...good, MaxIncrementalBackups: 256 }, 400, E, 'The field MaxIncrementalBackups must be between 0 and 255.'),
    c('MaxIncrementalBackups: -1', { ...good, MaxIncrementalBackups: -1 }, 400, E, 'The field MaxIncrementalBackups must be between 0 and 255.'),
    c('MaxIncrementalBackups: 1.5', { ...good, MaxIncrementalBackups: 1.5 }, 400, E),
    c('missing Schedule', without('Schedule'), 400, E, 'The Schedule field is required.'),
    c('missing ScheduleKind', sched({ Interval: 'PT1H' }), 400, E, 'ScheduleKind is Required'),
    c('unknown ScheduleKind', sched({ ScheduleKind: 'Hourly' }), 400, E, 'Invalid Schedule Type Hourly'),
    c('Interval of 16 days', sched({ ScheduleKind: 'FrequencyBased', Interval: 'P16D' }), 400, E, 'Allowed maximum time interval between consecutive backups is 15 days.'),
    c('Interval of 30 seconds', sched({ ScheduleKind: 'FrequencyBased', Interval: 'PT30S' }), 400, E, 'Minimum time interval supported is 1 minute and precision in seconds is not supported.'),
    c('Interval "soon"', sched({ ScheduleKind: 'FrequencyBased', Interval: 'soon' }), 400, E),
    c('TimeBased without RunTimes', sched({ ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Daily' }), 400, E, 'The RunTimes field is required.'),
    c('Weekly without RunDays', sched({ ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Weekly', RunTimes: ['0001-01-01T09:00:00Z'] }), 400, E, 'The RunDays field is required.'),
    c('RunTimes entry 25:00', sched({ ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Daily', RunTimes: ['25:00'] }), 400, E),
    c('missing Storage', without('Storage'), 400, E, 'The Storage field is required.'),
    c('unknown StorageKind', { ...good, Storage: { StorageKind: 'Tape' } }, 400, E),
    c('Storage outside the allowed roots', { ...good, Name: 'Etc', Storage: { StorageKind: 'FileShare', Path: '/etc' } }, 400, E),
    c('RetentionPolicy of 30 minutes', { ...good, RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: 'PT30M' } }, 400, E),
    c('RetentionPolicy of an unknown type', { ...good, RetentionPolicy: { RetentionPolicyType: 'Fancy', RetentionDuration: 'P1D' } }, 400, E),
    {
      name: 'Create: ValidateConnection=true with a storage that cannot be written', method: 'POST', path: `${create}&ValidateConnection=true`,
      body: { ...good, Name: 'Blocked', Storage: { StorageKind: 'FileShare', Path: blocked } }, status: 400, code: 'LIFEBOAT_E_STORAGE_UNAVAILABLE',
    },
    { name: 'Create: ValidateConnection=True with a good storage', method: 'POST', path: `${create}&ValidateConnection=True`, body: { ...good, Name: 'Validated' }, status: 201, code: null },

    { name: 'GetBackupPolicyList: MaxResults=-1', method: 'GET', path: `/BackupRestore/BackupPolicies?${V}&MaxResults=-1`, status: 400, code: E },
    { name: 'GetBackupPolicyList: ContinuationToken with bad characters', method: 'GET', path: `/BackupRestore/BackupPolicies?${V}&ContinuationToken=a%20b`, status: 400, code: E },
    { name: 'GetBackupPolicyList: no api-version', method: 'GET', path: '/BackupRestore/BackupPolicies', status: 400, code: E },
    { name: 'GetBackupPolicyByName: unknown', method: 'GET', path: `/BackupRestore/BackupPolicies/Nope?${V}`, status: 404, code: 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING' },
    { name: 'GetBackupPolicyByName: malformed name', method: 'GET', path: `/BackupRestore/BackupPolicies/a%20b?${V}`, status: 400, code: E },
    { name: 'GetBackupPolicyByName: 6.2-preview works', method: 'GET', path: '/BackupRestore/BackupPolicies/Good?api-version=6.2-preview', status: 200, code: null },
    { name: 'GetBackupEnabledEntities: unknown policy', method: 'GET', path: `/BackupRestore/BackupPolicies/Nope/$/GetBackupEnabledEntities?${V}`, status: 404, code: 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING' },
    { name: 'GetBackupEnabledEntities: MaxResults=x', method: 'GET', path: `/BackupRestore/BackupPolicies/Good/$/GetBackupEnabledEntities?${V}&MaxResults=x`, status: 400, code: E },

    { name: 'Update: unknown policy', method: 'POST', path: `/BackupRestore/BackupPolicies/Nope/$/Update?${V}`, body: { ...good, Name: 'Nope' }, status: 404, code: 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING' },
    { name: 'Update: Name in the body differs from the path', method: 'POST', path: `/BackupRestore/BackupPolicies/Good/$/Update?${V}`, body: { ...good, Name: 'Other' }, status: 400, code: E },
    { name: 'Update: no body', method: 'POST', path: `/BackupRestore/BackupPolicies/Good/$/Update?${V}`, status: 400, code: E },
    { name: 'Update: bad MaxIncrementalBackups', method: 'POST', path: `/BackupRestore/BackupPolicies/Good/$/Update?${V}`, body: { ...good, MaxIncrementalBackups: 300 }, status: 400, code: E },
    { name: 'Update: 5 MB body', method: 'POST', path: `/BackupRestore/BackupPolicies/Good/$/Update?${V}`, raw: BIG, status: 413, code: 'FABRIC_E_VALUE_TOO_LARGE' },
    { name: 'Update: a valid update', method: 'POST', path: `/BackupRestore/BackupPolicies/Good/$/Update?${V}`, body: { ...good, MaxIncrementalBackups: 4 }, status: 200, code: null },
    { name: 'Delete: unknown policy', method: 'POST', path: `/BackupRestore/BackupPolicies/Nope/$/Delete?${V}`, status: 404, code: 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING' },
    { name: 'Delete: malformed name', method: 'POST', path: `/BackupRestore/BackupPolicies/..$/$/Delete?${V}`, status: 400, code: E },
    { name: 'Delete: with GET is no route', method: 'GET', path: `/BackupRestore/BackupPolicies/Good/$/Delete?${V}`, status: 404, code: 'FABRIC_E_ENDPOINT_NOT_FOUND' },
  ];

  // Protection routes at each level.
  const levels = [
    { level: 'Application', base: `/Applications/${APP_ID}`, malformed: '/Applications/~~', unknown: '/Applications/NoSuchApp', notFound: 'FABRIC_E_APPLICATION_NOT_FOUND' },
    { level: 'Service', base: `/Services/${SERVICE_ID}`, malformed: '/Services/SampleApp~', unknown: '/Services/SampleApp~Nope', notFound: 'FABRIC_E_SERVICE_DOES_NOT_EXIST' },
    { level: 'Partition', base: `/Partitions/${p0}`, malformed: '/Partitions/not-a-guid', unknown: `/Partitions/${UNKNOWN_PID}`, notFound: 'FABRIC_E_PARTITION_NOT_FOUND' },
  ];
  for (const l of levels) {
    const at = (base: string, action: string, q = V): string => `${base}/$/${action}?${q}`;
    rows.push(
      { name: `${l.level} EnableBackup: no body`, method: 'POST', path: at(l.base, 'EnableBackup'), status: 400, code: E },
      { name: `${l.level} EnableBackup: body is a string`, method: 'POST', path: at(l.base, 'EnableBackup'), body: 'Good', status: 400, code: E },
      { name: `${l.level} EnableBackup: missing BackupPolicyName`, method: 'POST', path: at(l.base, 'EnableBackup'), body: {}, status: 400, code: E },
      { name: `${l.level} EnableBackup: BackupPolicyName: 5`, method: 'POST', path: at(l.base, 'EnableBackup'), body: { BackupPolicyName: 5 }, status: 400, code: E },
      { name: `${l.level} EnableBackup: unknown policy`, method: 'POST', path: at(l.base, 'EnableBackup'), body: { BackupPolicyName: 'Nope' }, status: 404, code: 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING' },
      { name: `${l.level} EnableBackup: malformed id`, method: 'POST', path: at(l.malformed, 'EnableBackup'), body: { BackupPolicyName: 'Good' }, status: 400, code: E },
      { name: `${l.level} EnableBackup: unknown id`, method: 'POST', path: at(l.unknown, 'EnableBackup'), body: { BackupPolicyName: 'Good' }, status: 404, code: l.notFound },
      { name: `${l.level} EnableBackup: no api-version`, method: 'POST', path: `${l.base}/$/EnableBackup`, body: { BackupPolicyName: 'Good' }, status: 400, code: E },
      { name: `${l.level} EnableBackup: 5 MB body`, method: 'POST', path: at(l.base, 'EnableBackup'), raw: BIG, status: 413, code: 'FABRIC_E_VALUE_TOO_LARGE' },
      { name: `${l.level} DisableBackup: nothing enabled`, method: 'POST', path: at(l.base, 'DisableBackup'), status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
      { name: `${l.level} DisableBackup: CleanBackup: "yes"`, method: 'POST', path: at(l.base, 'DisableBackup'), body: { CleanBackup: 'yes' }, status: 400, code: E },
      { name: `${l.level} DisableBackup: body without CleanBackup`, method: 'POST', path: at(l.base, 'DisableBackup'), body: {}, status: 400, code: E },
      { name: `${l.level} DisableBackup: unknown id`, method: 'POST', path: at(l.unknown, 'DisableBackup'), status: 404, code: l.notFound },
      { name: `${l.level} SuspendBackup: nothing enabled`, method: 'POST', path: at(l.base, 'SuspendBackup'), status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
      { name: `${l.level} SuspendBackup: malformed id`, method: 'POST', path: at(l.malformed, 'SuspendBackup'), status: 400, code: E },
      { name: `${l.level} ResumeBackup: nothing enabled`, method: 'POST', path: at(l.base, 'ResumeBackup'), status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
      { name: `${l.level} ResumeBackup: unknown id`, method: 'POST', path: at(l.unknown, 'ResumeBackup'), status: 404, code: l.notFound },
      { name: `${l.level} GetBackupConfigurationInfo: unknown id`, method: 'GET', path: at(l.unknown, 'GetBackupConfigurationInfo'), status: 404, code: l.notFound },
      { name: `${l.level} GetBackupConfigurationInfo: malformed id`, method: 'GET', path: at(l.malformed, 'GetBackupConfigurationInfo'), status: 400, code: E },
      { name: `${l.level} GetBackupConfigurationInfo: api-version 6.3`, method: 'GET', path: at(l.base, 'GetBackupConfigurationInfo', 'api-version=6.3'), status: 400, code: E },
      { name: `${l.level} GetBackupConfigurationInfo: works`, method: 'GET', path: at(l.base, 'GetBackupConfigurationInfo'), status: 200, code: null },
    );
  }
  rows.push(
    { name: 'Service GetBackupConfigurationInfo: MaxResults=-1', method: 'GET', path: `/Services/${SERVICE_ID}/$/GetBackupConfigurationInfo?${V}&MaxResults=-1`, status: 400, code: E },
    { name: 'Partition EnableBackup: a service without persisted state', method: 'POST', path: `/Partitions/${VOLATILE_PID}/$/EnableBackup?${V}`, body: { BackupPolicyName: 'Good' }, status: 400, code: 'FABRIC_E_INVALID_FOR_STATELESS_SERVICES' },
    { name: 'Service EnableBackup: a service without persisted state', method: 'POST', path: `/Services/Volatile~Svc/$/EnableBackup?${V}`, body: { BackupPolicyName: 'Good' }, status: 400, code: 'FABRIC_E_INVALID_FOR_STATELESS_SERVICES' },
    // Now something is enabled: the state rules.
    { name: 'Service EnableBackup: accepted', method: 'POST', path: `/Services/${SERVICE_ID}/$/EnableBackup?${V}`, body: { BackupPolicyName: 'Good' }, status: 202, code: null },
    { name: 'Delete: refused while enabled', method: 'POST', path: `/BackupRestore/BackupPolicies/Good/$/Delete?${V}`, status: 400, code: 'FABRIC_E_BACKUP_IS_ENABLED' },
    { name: 'Partition DisableBackup: inherited, not enabled there', method: 'POST', path: `/Partitions/${p0}/$/DisableBackup?${V}`, status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'Application DisableBackup: enabled below only', method: 'POST', path: `/Applications/${APP_ID}/$/DisableBackup?${V}`, raw: '', status: 404, code: 'FABRIC_E_BACKUP_NOT_ENABLED' },
    { name: 'Partition SuspendBackup: accepted (inherits a policy)', method: 'POST', path: `/Partitions/${p0}/$/SuspendBackup?${V}`, status: 202, code: null },
    { name: 'Partition ResumeBackup: accepted', method: 'POST', path: `/Partitions/${p0}/$/ResumeBackup?${V}`, status: 202, code: null },
    { name: 'Partition ResumeBackup: again, idempotent', method: 'POST', path: `/Partitions/${p0}/$/ResumeBackup?${V}`, status: 202, code: null },
    { name: 'Service DisableBackup: empty body is no body', method: 'POST', path: `/Services/${SERVICE_ID}/$/DisableBackup?${V}`, raw: '', headers: { 'content-type': 'application/json; charset=utf-8' }, status: 202, code: null },
    { name: 'Delete: accepted once nothing uses it', method: 'POST', path: `/BackupRestore/BackupPolicies/Good/$/Delete?${V}`, status: 200, code: null },
  );
  return rows;
}

describe('REST API bad input: policies and protection', () => {
  it('answers every request of the table as Service Fabric does', async (t) => {
    const lb = await startTestLifeboat(t);
    const root = lb.fileShareRoots[0] as string;
    // A FileShare path where a file stands: inside the roots, but it cannot be written.
    const blocked = join(root, 'blocked');
    writeFileSync(blocked, 'not a folder');
    // A service without persisted state, registered by a second host.
    assertSuccess(await send(lb.url, {
      method: 'POST', path: '/Lifeboat/Hosts/volatile/$/Register',
      body: { Services: [{ Name: 'fabric:/Volatile/Svc', Scheme: { kind: 'Singleton' }, HasPersistedState: false, Partitions: [{ Id: VOLATILE_PID, Info: { kind: 'Singleton' }, Epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, Lsn: '0' }] }] },
    }), 200, 'register');
    const parts = jsonOf(await send(lb.url, { method: 'GET', path: `/Services/${SERVICE_ID}/$/GetPartitions?api-version=6.0` })) as { Items: Array<{ PartitionInformation: { Id: string } }> };
    const p0 = parts.Items[0]?.PartitionInformation.Id ?? '';
    const rows = table(join(root, 'good'), p0, blocked);
    assert.equal(new Set(rows.map((r) => r.name)).size, rows.length, 'row names are unique');
    for (const row of rows) {
      await t.test(row.name, async () => {
        const a = await send(lb.url, row);
        const what = `${row.method} ${row.path.slice(0, 160)}`;
        if (row.code === null) {
          assertSuccess(a, row.status, what);
          return;
        }
        assertFabricError(a, row.status, row.code, what);
        if (row.message) assert.ok((jsonOf(a) as { Error: { Message: string } }).Error.Message.includes(row.message), `${what}: ${a.text}`);
      });
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE } from './duration.ts';
import { isLifeboatError } from './errors.ts';
import {
  MAX_INTERVAL_MESSAGE, MIN_INTERVAL_MESSAGE, parseBackupPolicy, parseRunTime, policyToWire, type BackupPolicy,
} from './policy.ts';

type Body = Record<string, unknown>;

const base = (): Body => ({
  Name: 'DailyAzure',
  AutoRestoreOnDataLoss: false,
  MaxIncrementalBackups: 3,
  Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT15M' },
  Storage: { StorageKind: 'AzureBlobStore', ConnectionString: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=secret', ContainerName: 'backups' },
  RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: 'P10D', MinimumNumberOfBackups: 20 },
});

/** `base()` with `path` (dotted) set to `value`; `undefined` removes the member. */
function withField(path: string, value: unknown): Body {
  const body = base();
  const keys = path.split('.');
  let o: Body = body;
  for (const k of keys.slice(0, -1)) o = o[k] as Body;
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return body;
}

const timeBased = (extra: Body): Body => withField('Schedule', { ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Weekly', RunTimes: ['0001-01-01T09:00:00Z'], RunDays: ['Monday'], ...extra });

const expectInvalid = (body: unknown, message: string | RegExp): void => {
  assert.throws(() => parseBackupPolicy(body), (err: unknown) => {
    assert.ok(isLifeboatError(err, 'E_INVALIDARG'), `expected E_INVALIDARG, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
};

describe('parseBackupPolicy: bad bodies and their messages', () => {
  const table: Array<[string, unknown, string | RegExp]> = [
    ['not an object', [], 'The request body must be a BackupPolicyDescription object.'],
    ['null body', null, 'The request body must be a BackupPolicyDescription object.'],
    ['Name missing', withField('Name', undefined), 'The Name field is required.'],
    ['Name empty', withField('Name', ''), 'The Name field is required.'],
    ['Name not a string', withField('Name', 5), 'Name must be a string.'],
    ['Name too long', withField('Name', 'a'.repeat(129)), 'Name must be at most 128 characters long.'],
    ['Name with a slash', withField('Name', 'a/b'), /^Name 'a\/b' may contain only letters, digits/],
    ['Name with a space', withField('Name', 'Daily policy'), /may contain only letters/],
    ['Name with a tilde', withField('Name', 'a~b'), /may contain only letters/],
    ['Name starting with a dot', withField('Name', '..'), /must start with a letter or digit/],
    ['AutoRestoreOnDataLoss missing', withField('AutoRestoreOnDataLoss', undefined), 'The AutoRestoreOnDataLoss field is required.'],
    ['AutoRestoreOnDataLoss a string', withField('AutoRestoreOnDataLoss', 'true'), 'AutoRestoreOnDataLoss must be true or false.'],
    ['MaxIncrementalBackups missing', withField('MaxIncrementalBackups', undefined), 'The MaxIncrementalBackups field is required.'],
    ['MaxIncrementalBackups a string', withField('MaxIncrementalBackups', '3'), 'MaxIncrementalBackups must be an integer.'],
    ['MaxIncrementalBackups fractional', withField('MaxIncrementalBackups', 1.5), 'MaxIncrementalBackups must be an integer.'],
    ['MaxIncrementalBackups 256', withField('MaxIncrementalBackups', 256), 'The field MaxIncrementalBackups must be between 0 and 255.'],
    ['MaxIncrementalBackups −1', withField('MaxIncrementalBackups', -1), 'The field MaxIncrementalBackups must be between 0 and 255.'],
    ['Schedule missing', withField('Schedule', undefined), 'The Schedule field is required.'],
    ['Schedule a string', withField('Schedule', 'daily'), 'Schedule must be an object.'],
    ['ScheduleKind missing', withField('Schedule.ScheduleKind', undefined), 'ScheduleKind is Required'],
    ['ScheduleKind unknown', withField('Schedule.ScheduleKind', 'Hourly'), 'Invalid Schedule Type Hourly'],
    ['ScheduleKind in another case', withField('Schedule.ScheduleKind', 'frequencybased'), 'Invalid Schedule Type frequencybased'],
    ['Interval missing', withField('Schedule.Interval', undefined), 'The Interval field is required.'],
    ['Interval not a duration', withField('Schedule.Interval', '15 minutes'), "Interval '15 minutes' is not an ISO-8601 duration such as PT15M, P1DT2H or P30D."],
    ['Interval a number', withField('Schedule.Interval', 15), /^Interval must be an ISO-8601 duration string/],
    ['Interval in seconds', withField('Schedule.Interval', 'PT30S'), MIN_INTERVAL_MESSAGE],
    ['Interval zero', withField('Schedule.Interval', 'PT0S'), MIN_INTERVAL_MESSAGE],
    ['Interval negative', withField('Schedule.Interval', '-PT15M'), MIN_INTERVAL_MESSAGE],
    ['Interval over 15 days', withField('Schedule.Interval', 'P16D'), MAX_INTERVAL_MESSAGE],
    ['Interval 15 days and 30 s', withField('Schedule.Interval', 'P15DT30S'), MAX_INTERVAL_MESSAGE],
    ['Interval of a month', withField('Schedule.Interval', 'P1M'), MAX_INTERVAL_MESSAGE],
    ['ScheduleFrequencyType missing', timeBased({ ScheduleFrequencyType: undefined }), 'The ScheduleFrequencyType field is required.'],
    ['ScheduleFrequencyType unknown', timeBased({ ScheduleFrequencyType: 'Monthly' }), 'Invalid ScheduleFrequencyType "Monthly": use Daily or Weekly.'],
    ['RunTimes missing', timeBased({ RunTimes: undefined }), 'The RunTimes field is required.'],
    ['RunTimes not a list', timeBased({ RunTimes: '09:00' }), 'RunTimes must be a list of date-times.'],
    ['RunTimes empty', timeBased({ RunTimes: [] }), 'RunTimes must list at least one time of day.'],
    ['RunTimes entry not a date-time', timeBased({ RunTimes: ['nine'] }), /^RunTimes entry "nine" is not a date-time/],
    ['RunTimes entry 24:00', timeBased({ RunTimes: ['0001-01-01T24:00:00Z'] }), /^RunTimes entry "0001-01-01T24:00:00Z" is not a date-time/],
    ['RunTimes entry with a bad date', timeBased({ RunTimes: ['2023-02-29T09:00:00Z'] }), /is not a date-time/],
    ['RunTimes entry a number', timeBased({ RunTimes: [900] }), /^RunTimes entry 900 is not a date-time/],
    ['RunDays missing for Weekly', timeBased({ RunDays: undefined }), 'The RunDays field is required.'],
    ['RunDays empty for Weekly', timeBased({ RunDays: [] }), 'The RunDays field is required.'],
    ['RunDays not a list', timeBased({ RunDays: 'Monday' }), 'RunDays must be a list of days of the week.'],
    ['RunDays entry unknown', timeBased({ RunDays: ['Funday'] }), /^Invalid RunDays entry "Funday": use Sunday, Monday/],
    ['RunDays entry 7', timeBased({ RunDays: [7] }), /^Invalid RunDays entry 7/],
    ['Storage missing', withField('Storage', undefined), 'The Storage field is required.'],
    ['StorageKind unknown', withField('Storage', { StorageKind: 'Tape' }), /^Invalid StorageKind "Tape"/],
    ['ContainerName missing', withField('Storage.ContainerName', undefined), 'ContainerName is required for StorageKind AzureBlobStore.'],
    ['RetentionPolicy not an object', withField('RetentionPolicy', 'P10D'), 'RetentionPolicy must be an object.'],
    ['RetentionPolicyType missing', withField('RetentionPolicy.RetentionPolicyType', undefined), 'RetentionPolicyType is Required'],
    ['RetentionPolicyType unknown', withField('RetentionPolicy.RetentionPolicyType', 'Advanced'), 'Invalid RetentionPolicyType Advanced: use Basic.'],
    ['RetentionDuration missing', withField('RetentionPolicy.RetentionDuration', undefined), 'The RetentionDuration field is required.'],
    ['RetentionDuration not a duration', withField('RetentionPolicy.RetentionDuration', '10 days'), /^RetentionDuration '10 days' is not an ISO-8601 duration/],
    ['RetentionDuration under an hour', withField('RetentionPolicy.RetentionDuration', 'PT59M'), "RetentionDuration must be at least 1 hour (PT1H); it is counted in whole hours, and 'PT59M' is less."],
    ['RetentionDuration negative', withField('RetentionPolicy.RetentionDuration', '-P1D'), /^RetentionDuration must be at least 1 hour/],
    ['MinimumNumberOfBackups negative', withField('RetentionPolicy.MinimumNumberOfBackups', -1), 'MinimumNumberOfBackups must be an integer from 0 to 2147483647.'],
    ['MinimumNumberOfBackups a string', withField('RetentionPolicy.MinimumNumberOfBackups', '5'), 'MinimumNumberOfBackups must be an integer.'],
    ['MinimumNumberOfBackups over Int32', withField('RetentionPolicy.MinimumNumberOfBackups', 2 ** 31), 'MinimumNumberOfBackups must be an integer from 0 to 2147483647.'],
  ];
  for (const [name, body, message] of table) {
    it(name, () => expectInvalid(body, message));
  }
});

describe('parseBackupPolicy: what it accepts and how it normalizes', () => {
  it('parses a full body', () => {
    const p = parseBackupPolicy(base());
    assert.deepEqual(p, {
      name: 'DailyAzure', autoRestoreOnDataLoss: false, maxIncrementalBackups: 3,
      schedule: { kind: 'FrequencyBased', intervalUnit: 'Minutes', intervalCount: 15, intervalMs: 15 * MS_PER_MINUTE },
      storage: { StorageKind: 'AzureBlobStore', ConnectionString: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=secret', ContainerName: 'backups' },
      retention: { kind: 'Basic', retentionMs: 10 * MS_PER_DAY, minimumNumberOfBackups: 20 },
    } satisfies BackupPolicy);
  });

  it('stores an Interval as Service Fabric does: minutes if the minutes component is non-zero, else hours; seconds dropped', () => {
    const interval = (text: string): unknown => {
      const s = parseBackupPolicy(withField('Schedule.Interval', text)).schedule;
      return s.kind === 'FrequencyBased' ? [s.intervalUnit, s.intervalCount] : s;
    };
    assert.deepEqual(interval('PT1M'), ['Minutes', 1]);
    assert.deepEqual(interval('PT90S'), ['Minutes', 1]);
    assert.deepEqual(interval('PT1H30M'), ['Minutes', 90]);
    assert.deepEqual(interval('PT90M'), ['Minutes', 90]);
    assert.deepEqual(interval('PT60M'), ['Hours', 1]);
    assert.deepEqual(interval('PT1H30S'), ['Hours', 1]);
    assert.deepEqual(interval('P1D'), ['Hours', 24]);
    assert.deepEqual(interval('P1DT1M'), ['Minutes', 1441]);
    assert.deepEqual(interval('P15D'), ['Hours', 360]);
  });

  it('truncates RetentionDuration to whole hours, accepts months as 30 days, and defaults MinimumNumberOfBackups to 0', () => {
    const retention = (r: Body): unknown => parseBackupPolicy(withField('RetentionPolicy', { RetentionPolicyType: 'Basic', ...r })).retention;
    assert.deepEqual(retention({ RetentionDuration: 'PT1H59M' }), { kind: 'Basic', retentionMs: MS_PER_HOUR, minimumNumberOfBackups: 0 });
    assert.deepEqual(retention({ RetentionDuration: 'P3M', MinimumNumberOfBackups: 0 }), { kind: 'Basic', retentionMs: 90 * MS_PER_DAY, minimumNumberOfBackups: 0 });
    assert.deepEqual(retention({ RetentionDuration: 'P30D', MinimumNumberOfBackups: null }), { kind: 'Basic', retentionMs: 30 * MS_PER_DAY, minimumNumberOfBackups: 0 });
  });

  it('treats an absent or null RetentionPolicy as none', () => {
    assert.equal(parseBackupPolicy(withField('RetentionPolicy', undefined)).retention, undefined);
    assert.equal('retention' in parseBackupPolicy(withField('RetentionPolicy', null)), false);
  });

  it('removes duplicate RunTimes and RunDays and sorts them; days in any case or as numbers', () => {
    const p = parseBackupPolicy(timeBased({
      RunTimes: ['0001-01-01T21:00:00Z', '2024-06-01T09:00:00Z', '09:00', '0001-01-01T21:00:00.000Z'],
      RunDays: ['thursday', 'Monday', 1, 'THURSDAY', 0],
    }));
    assert.deepEqual(p.schedule, { kind: 'TimeBased', frequency: 'Weekly', runTimesMs: [9 * MS_PER_HOUR, 21 * MS_PER_HOUR], runDays: ['Sunday', 'Monday', 'Thursday'] });
  });

  it('accepts Daily without RunDays, and ScheduleFrequencyType in any case', () => {
    const p = parseBackupPolicy(timeBased({ ScheduleFrequencyType: 'daily', RunDays: undefined }));
    assert.deepEqual(p.schedule, { kind: 'TimeBased', frequency: 'Daily', runTimesMs: [9 * MS_PER_HOUR], runDays: [] });
  });

  it('ignores unknown members, as Json.NET does', () => {
    assert.equal(parseBackupPolicy({ ...base(), Extra: 1 }).name, 'DailyAzure');
  });
});

describe('parseRunTime', () => {
  it('uses the UTC time of day and ignores the date', () => {
    assert.equal(parseRunTime('0001-01-01T09:00:00Z'), 9 * MS_PER_HOUR);
    assert.equal(parseRunTime('2024-02-29T09:30:15.250Z'), 9 * MS_PER_HOUR + 30 * MS_PER_MINUTE + 15_250);
    assert.equal(parseRunTime('0001-01-01T09:00:00'), 9 * MS_PER_HOUR, 'no zone: UTC');
    assert.equal(parseRunTime('09:00'), 9 * MS_PER_HOUR);
    assert.equal(parseRunTime('0001-01-01 09:00:00z'), 9 * MS_PER_HOUR);
  });

  it('moves a time with an offset to UTC, across midnight if need be', () => {
    assert.equal(parseRunTime('2024-01-01T09:00:00+02:00'), 7 * MS_PER_HOUR);
    assert.equal(parseRunTime('2024-01-01T01:00:00+02:00'), 23 * MS_PER_HOUR);
    assert.equal(parseRunTime('2024-01-01T23:30:00-0100'), 30 * MS_PER_MINUTE);
  });
});

describe('policyToWire', () => {
  it('masks secrets and writes durations as .NET does', () => {
    const wire = policyToWire(parseBackupPolicy(withField('Schedule.Interval', 'PT90M')));
    assert.deepEqual(wire, {
      Name: 'DailyAzure',
      AutoRestoreOnDataLoss: false,
      MaxIncrementalBackups: 3,
      Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H30M' },
      Storage: { StorageKind: 'AzureBlobStore', ConnectionString: '****', ContainerName: 'backups' },
      RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: 'P10D', MinimumNumberOfBackups: 20 },
    });
    assert.deepEqual(Object.keys(wire), ['Name', 'AutoRestoreOnDataLoss', 'MaxIncrementalBackups', 'Schedule', 'Storage', 'RetentionPolicy']);
  });

  it('masks file-share passwords but not user names', () => {
    const p = parseBackupPolicy(withField('Storage', { StorageKind: 'FileShare', Path: '\\\\server\\backups', PrimaryUserName: 'u1', PrimaryPassword: 'p1', SecondaryUserName: 'u2', SecondaryPassword: 'p2' }));
    assert.deepEqual(policyToWire(p).Storage, { StorageKind: 'FileShare', Path: '\\\\server\\backups', PrimaryUserName: 'u1', PrimaryPassword: '****', SecondaryUserName: 'u2', SecondaryPassword: '****' });
  });

  it('omits RetentionPolicy when there is none, and writes TimeBased schedules with RunDays and RunTimes', () => {
    const p = parseBackupPolicy({ ...timeBased({ RunTimes: ['21:00', '09:00:00.5'], RunDays: ['Thursday', 'Monday'] }), RetentionPolicy: undefined });
    const wire = policyToWire(p);
    assert.equal('RetentionPolicy' in wire, false);
    assert.deepEqual(wire.Schedule, {
      ScheduleKind: 'TimeBased', ScheduleFrequencyType: 'Weekly', RunDays: ['Monday', 'Thursday'],
      RunTimes: ['0001-01-01T09:00:00.5Z', '0001-01-01T21:00:00Z'],
    });
  });

  it('round-trips unmasked: parse(toWire(p)) is p', () => {
    for (const body of [base(), timeBased({ RunTimes: ['09:00', '21:00:00.125'], RunDays: ['Monday', 'Thursday'] }), timeBased({ ScheduleFrequencyType: 'Daily', RunDays: undefined }),
      withField('Schedule.Interval', 'P1DT30S'), withField('RetentionPolicy.RetentionDuration', 'P1Y')]) {
      const p = parseBackupPolicy(body);
      assert.deepEqual(parseBackupPolicy(policyToWire(p, { maskSecrets: false })), p);
    }
  });
});

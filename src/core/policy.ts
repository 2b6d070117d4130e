/**
 * Backup policies: validation of a `BackupPolicyDescription` body into a normalized policy, and its
 * REST shape back. Follows Service Fabric's model and validators (sf-behaviour.md §2.2, rule 11;
 * sf-rest-api.md §3.1, §6), read from the BRS sources: `BackupRestoreTypes/BackupPolicy.cs`,
 * `…/CustomValidation/RunDaysValidation.cs`, `…/JsonConverter/RunTimesConverter.cs`,
 * `Common/Model/FrequencyBasedBackupSchedule.cs`, `Common/Model/BasicRetentionPolicy.cs`.
 * Where the reference's message is known it is used word for word; where Service Fabric accepts
 * something it cannot use (an empty RunTimes list, a zero or negative duration) we refuse it and say so.
 */
import { formatDuration, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, parseDuration } from './duration.ts';
import { LifeboatError, invalidArgUnless } from './errors.ts';
import { maskStorage, parseStorageDescription, type StorageDescription } from './storage-description.ts';

/** .NET `DayOfWeek` order: the index is also JavaScript's `getUTCDay()`. */
export const DAYS_OF_WEEK = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
export type DayOfWeek = (typeof DAYS_OF_WEEK)[number];

export interface FrequencyBasedSchedule {
  readonly kind: 'FrequencyBased';
  /**
   * Stored as Service Fabric stores it: whole minutes when the duration's minutes component is
   * non-zero (`PT1H30M` → 90 Minutes), else whole hours (`P1D` → 24 Hours); seconds are dropped.
   */
  readonly intervalUnit: 'Minutes' | 'Hours';
  readonly intervalCount: number;
  /** `intervalCount` in milliseconds: what the scheduler uses. */
  readonly intervalMs: number;
}

export interface TimeBasedSchedule {
  readonly kind: 'TimeBased';
  readonly frequency: 'Daily' | 'Weekly';
  /** Times of day in milliseconds after UTC midnight: ascending, no duplicates, at least one. */
  readonly runTimesMs: readonly number[];
  /** Ascending (Sunday first), no duplicates. Required for Weekly; kept but unused for Daily. */
  readonly runDays: readonly DayOfWeek[];
}

export type BackupSchedule = FrequencyBasedSchedule | TimeBasedSchedule;

export interface BasicRetentionPolicy {
  readonly kind: 'Basic';
  /** Whole hours, at least one (Service Fabric truncates RetentionDuration to hours). */
  readonly retentionMs: number;
  /** Never delete below this many backups of a partition; 0 = no floor. */
  readonly minimumNumberOfBackups: number;
}

export interface BackupPolicy {
  readonly name: string;
  readonly autoRestoreOnDataLoss: boolean;
  /** 0–255; a chain is one full backup and at most this many incrementals. */
  readonly maxIncrementalBackups: number;
  readonly schedule: BackupSchedule;
  readonly storage: StorageDescription;
  readonly retention?: BasicRetentionPolicy;
}

/** Interval bounds of a frequency-based schedule (`FrequencyBasedBackupSchedule.cs`). */
export const MAX_INTERVAL_MS = 15 * MS_PER_DAY;
export const MIN_INTERVAL_MESSAGE = 'Minimum time interval supported is 1 minute and precision in seconds is not supported.';
export const MAX_INTERVAL_MESSAGE = 'Allowed maximum time interval between consecutive backups is 15 days.';

/** Longest policy name we accept. Service Fabric sets none; 128 is ample and keeps URLs and logs sane. */
export const MAX_POLICY_NAME_LENGTH = 128;
const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const INT32_MAX = 2_147_483_647;

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const present = (v: unknown): boolean => v !== undefined && v !== null;

/** DataAnnotations' `[Required]` text, which BRS returns for a missing member. */
const required = (field: string): string => `The ${field} field is required.`;

/**
 * A policy name travels in URL paths (`/BackupRestore/BackupPolicies/{name}/$/Update`), so we accept
 * 1–128 ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit: nothing that needs
 * URL encoding, no `~` (the REST id separator), no `.`/`..` path segments. Service Fabric accepts
 * any non-empty string; names outside this set are refused with a message saying why.
 */
export function checkPolicyName(name: unknown, field = 'Name'): string {
  invalidArgUnless(present(name), required(field));
  invalidArgUnless(typeof name === 'string', `${field} must be a string.`);
  invalidArgUnless(name.length > 0, required(field));
  invalidArgUnless(name.length <= MAX_POLICY_NAME_LENGTH, `${field} must be at most ${MAX_POLICY_NAME_LENGTH} characters long.`);
  invalidArgUnless(POLICY_NAME.test(name), `${field} '${name}' may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit.`);
  return name;
}

function integer(o: Obj, field: string, min: number, max: number, rangeMessage: string): number {
  const v = o[field];
  invalidArgUnless(typeof v === 'number' && Number.isInteger(v), `${field} must be an integer.`);
  invalidArgUnless(v >= min && v <= max, rangeMessage);
  return v;
}

/**
 * A frequency-based Interval, as `FrequencyBasedBackupSchedule.FromFrequencyBasedBackupScheduleView`:
 * more than 15 days (before truncation) is refused; a non-zero minutes component stores whole
 * minutes, otherwise whole hours. Service Fabric stores `PT30S` as "0 hours" (a bug, §3); we refuse
 * it with the reference's minimum-interval message, as we do zero and negative intervals.
 */
export function parseInterval(value: unknown): FrequencyBasedSchedule {
  invalidArgUnless(present(value), required('Interval'));
  const ms = parseDuration(value, 'Interval');
  invalidArgUnless(ms <= MAX_INTERVAL_MS, MAX_INTERVAL_MESSAGE);
  invalidArgUnless(ms >= MS_PER_MINUTE, MIN_INTERVAL_MESSAGE);
  const minutesComponent = Math.floor(ms / MS_PER_MINUTE) % 60;
  if (minutesComponent !== 0) {
    const n = Math.floor(ms / MS_PER_MINUTE);
    return { kind: 'FrequencyBased', intervalUnit: 'Minutes', intervalCount: n, intervalMs: n * MS_PER_MINUTE };
  }
  const n = Math.floor(ms / MS_PER_HOUR);
  return { kind: 'FrequencyBased', intervalUnit: 'Hours', intervalCount: n, intervalMs: n * MS_PER_HOUR };
}

const RUN_TIME = /^(?:(\d{4})-(\d{2})-(\d{2})[T ])?(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?$/i;

const daysInMonth = (year: number, month: number): number =>
  month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;

/**
 * One RunTimes entry → milliseconds after UTC midnight. Like BRS's `RunTimesConverter`
 * (`DateTime.Parse(…).ToUniversalTime().TimeOfDay`) the date is ignored and an offset moves the time
 * to UTC (`09:00+02:00` → 07:00). Accepted: an ISO date-time (`0001-01-01T09:00:00Z`) or a bare
 * time (`09:00`, `09:00:00.5Z`). Without a zone the time is taken as UTC, where .NET would take the
 * server's local zone: a Lifeboat is not supposed to behave differently by where it runs.
 * The time of day is therefore always < 24 h, the reference's only check on RunTimes.
 */
export function parseRunTime(value: unknown, field = 'RunTimes'): number {
  const bad = `${field} entry ${JSON.stringify(value)} is not a date-time: use e.g. "0001-01-01T09:00:00Z" (only the UTC time of day is used).`;
  invalidArgUnless(typeof value === 'string', bad);
  const m = RUN_TIME.exec(value.trim());
  invalidArgUnless(m, bad);
  const [, y, mo, d, hh, mm, ss, frac, zone] = m;
  if (y !== undefined) {
    const month = Number(mo);
    invalidArgUnless(Number(y) >= 1 && month >= 1 && month <= 12 && Number(d) >= 1 && Number(d) <= daysInMonth(Number(y), month), bad);
  }
  const h = Number(hh);
  const min = Number(mm);
  const s = Number(ss ?? '0');
  invalidArgUnless(h <= 23 && min <= 59 && s <= 59, bad);
  let offsetMinutes = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2));
    invalidArgUnless(oh <= 14 && om <= 59, bad);
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const ms = ((h * 60 + min) * 60 + s) * 1000 + Number((frac ?? '').slice(0, 3).padEnd(3, '0')) - offsetMinutes * MS_PER_MINUTE;
  return ((ms % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY;
}

/** A DayOfWeek as Json.NET's StringEnumConverter reads it: the name in any case, or its number 0–6. */
function parseDay(value: unknown): DayOfWeek {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 6) return DAYS_OF_WEEK[value] as DayOfWeek;
  const day = typeof value === 'string' ? DAYS_OF_WEEK.find((d) => d.toLowerCase() === value.trim().toLowerCase()) : undefined;
  invalidArgUnless(day, `Invalid RunDays entry ${JSON.stringify(value)}: use ${DAYS_OF_WEEK.join(', ')}.`);
  return day;
}

/**
 * A time-based schedule: `ScheduleFrequencyType` Daily|Weekly (any case, as StringEnumConverter),
 * `RunTimes` required and — our addition — non-empty (Service Fabric accepts `[]` and then never runs
 * the schedule), `RunDays` required and non-empty unless Daily (`RunDaysValidation`). Duplicates
 * are removed and both lists sorted, as the agent sorts them before use (`BackupTimer`).
 */
export function parseTimeBasedSchedule(o: Obj): TimeBasedSchedule {
  const f = o.ScheduleFrequencyType;
  invalidArgUnless(present(f), required('ScheduleFrequencyType'));
  const frequency = typeof f === 'string' ? (['Daily', 'Weekly'] as const).find((k) => k.toLowerCase() === f.toLowerCase()) : undefined;
  invalidArgUnless(frequency, `Invalid ScheduleFrequencyType ${JSON.stringify(f)}: use Daily or Weekly.`);

  invalidArgUnless(present(o.RunTimes), required('RunTimes'));
  invalidArgUnless(Array.isArray(o.RunTimes), 'RunTimes must be a list of date-times.');
  invalidArgUnless(o.RunTimes.length > 0, 'RunTimes must list at least one time of day.');
  const runTimesMs = [...new Set(o.RunTimes.map((t) => parseRunTime(t)))].sort((a, b) => a - b);

  let runDays: DayOfWeek[] = [];
  if (present(o.RunDays)) {
    invalidArgUnless(Array.isArray(o.RunDays), 'RunDays must be a list of days of the week.');
    const days = new Set(o.RunDays.map(parseDay));
    runDays = DAYS_OF_WEEK.filter((d) => days.has(d));
  }
  invalidArgUnless(frequency === 'Daily' || runDays.length > 0, required('RunDays'));
  return { kind: 'TimeBased', frequency, runTimesMs, runDays };
}

/** `Schedule`: discriminated by `ScheduleKind`, compared case-sensitively with BRS's messages (`BackupScheduleJsonConverter`). */
export function parseSchedule(value: unknown): BackupSchedule {
  invalidArgUnless(present(value), required('Schedule'));
  invalidArgUnless(isObject(value), 'Schedule must be an object.');
  invalidArgUnless(present(value.ScheduleKind), 'ScheduleKind is Required');
  switch (value.ScheduleKind) {
    case 'FrequencyBased': return parseInterval(value.Interval);
    case 'TimeBased': return parseTimeBasedSchedule(value);
    default: throw new LifeboatError('E_INVALIDARG', `Invalid Schedule Type ${String(value.ScheduleKind)}`);
  }
}

/**
 * `RetentionPolicy` (optional; null = none). Basic only. `RetentionDuration` is truncated to whole
 * hours (`Common/Model/BasicRetentionPolicy.cs`); under one hour is refused — Service Fabric answers
 * that with its *interval* message, which misleads, so we name the field. Service Fabric does not
 * check `MinimumNumberOfBackups`; we require an integer 0 … 2^31−1 (a .NET int). Long durations are
 * fine here: whoever waits on them must chunk timers (schedule.ts `timerDelayMs`, SF #269).
 */
export function parseRetentionPolicy(value: unknown): BasicRetentionPolicy | undefined {
  if (!present(value)) return undefined;
  invalidArgUnless(isObject(value), 'RetentionPolicy must be an object.');
  invalidArgUnless(present(value.RetentionPolicyType), 'RetentionPolicyType is Required');
  invalidArgUnless(value.RetentionPolicyType === 'Basic', `Invalid RetentionPolicyType ${String(value.RetentionPolicyType)}: use Basic.`);
  invalidArgUnless(present(value.RetentionDuration), required('RetentionDuration'));
  const ms = parseDuration(value.RetentionDuration, 'RetentionDuration');
  const hours = Math.floor(ms / MS_PER_HOUR);
  invalidArgUnless(hours >= 1, `RetentionDuration must be at least 1 hour (PT1H); it is counted in whole hours, and '${String(value.RetentionDuration)}' is less.`);
  const minimumNumberOfBackups = present(value.MinimumNumberOfBackups)
    ? integer(value, 'MinimumNumberOfBackups', 0, INT32_MAX, `MinimumNumberOfBackups must be an integer from 0 to ${INT32_MAX}.`)
    : 0;
  return { kind: 'Basic', retentionMs: hours * MS_PER_HOUR, minimumNumberOfBackups };
}

/**
 * Validates a `BackupPolicyDescription` body (CreateBackupPolicy / UpdateBackupPolicy) into a
 * normalized policy, or throws E_INVALIDARG with the reference's message. Members are checked in the
 * model's order: Name, AutoRestoreOnDataLoss, MaxIncrementalBackups, Schedule, Storage,
 * RetentionPolicy. Unknown members are ignored, as Json.NET ignores them. Types are strict: `"5"`
 * is not an integer and `"true"` not a boolean. Name uniqueness is a store rule: see protection.ts
 * `policyNameRefusal`.
 */
export function parseBackupPolicy(value: unknown): BackupPolicy {
  invalidArgUnless(isObject(value), 'The request body must be a BackupPolicyDescription object.');
  const name = checkPolicyName(value.Name);
  invalidArgUnless(present(value.AutoRestoreOnDataLoss), required('AutoRestoreOnDataLoss'));
  invalidArgUnless(typeof value.AutoRestoreOnDataLoss === 'boolean', 'AutoRestoreOnDataLoss must be true or false.');
  invalidArgUnless(present(value.MaxIncrementalBackups), required('MaxIncrementalBackups'));
  const maxIncrementalBackups = integer(value, 'MaxIncrementalBackups', 0, 255, 'The field MaxIncrementalBackups must be between 0 and 255.');
  const schedule = parseSchedule(value.Schedule);
  invalidArgUnless(present(value.Storage), required('Storage'));
  const storage = parseStorageDescription(value.Storage);
  const retention = parseRetentionPolicy(value.RetentionPolicy);
  return {
    name, autoRestoreOnDataLoss: value.AutoRestoreOnDataLoss, maxIncrementalBackups, schedule, storage,
    ...(retention === undefined ? {} : { retention }),
  };
}

/** A time of day as BRS writes RunTimes: `DateTime.MinValue` plus the time, UTC (`0001-01-01T09:00:00Z`). */
export function formatRunTime(ms: number): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const h = Math.floor(ms / MS_PER_HOUR);
  const m = Math.floor(ms / MS_PER_MINUTE) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const f = ms % 1000;
  return `0001-01-01T${pad(h)}:${pad(m)}:${pad(s)}${f ? `.${pad(f, 3).replace(/0+$/, '')}` : ''}Z`;
}

export function scheduleToWire(s: BackupSchedule): Record<string, unknown> {
  if (s.kind === 'FrequencyBased') return { ScheduleKind: 'FrequencyBased', Interval: formatDuration(s.intervalMs) };
  return { ScheduleKind: 'TimeBased', ScheduleFrequencyType: s.frequency, RunDays: [...s.runDays], RunTimes: s.runTimesMs.map(formatRunTime) };
}

/**
 * The REST `BackupPolicyDescription` of a policy, members in the reference's order. Secrets are
 * `"****"` unless `maskSecrets` is false (for storing the policy, never for answering a request);
 * `RetentionPolicy` is left out when there is none (BRS: `EmitDefaultValue = false`); durations are
 * written as .NET writes a TimeSpan, so `PT90M` comes back as `PT1H30M`.
 * `parseBackupPolicy(policyToWire(p, { maskSecrets: false }))` gives `p` back.
 */
export function policyToWire(p: BackupPolicy, options: { readonly maskSecrets: boolean } = { maskSecrets: true }): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Name: p.name,
    AutoRestoreOnDataLoss: p.autoRestoreOnDataLoss,
    MaxIncrementalBackups: p.maxIncrementalBackups,
    Schedule: scheduleToWire(p.schedule),
    Storage: options.maskSecrets ? maskStorage(p.storage) : { ...p.storage },
  };
  if (p.retention) {
    out.RetentionPolicy = {
      RetentionPolicyType: 'Basic',
      RetentionDuration: formatDuration(p.retention.retentionMs),
      MinimumNumberOfBackups: p.retention.minimumNumberOfBackups,
    };
  }
  return out;
}

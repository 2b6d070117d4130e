/**
 * ISO-8601 durations as Service Fabric reads and writes them. BRS (de)serializes `Interval` and
 * `RetentionDuration` with .NET `XmlConvert.ToTimeSpan` / `XmlConvert.ToString(TimeSpan)`
 * (`BackupRestoreTypes/JsonConverter/TimeSpanConverter.cs`), so these follow `XsdDuration`:
 *
 * - Form `[-]P[nY][nM][nD][T[nH][nM][n[.f]S]]`, upper-case designators, surrounding white space
 *   ignored, at least one component, a `T` must be followed by a time component. Each component is
 *   an Int32 (overflow is refused); the seconds may carry a fraction (`PT1.5S`, even `PT.5S`).
 * - **Months and years are accepted, as .NET does**: a year is 365 days, a month 30 days, 12 months
 *   one year (`XsdDuration.TryToTimeSpan`). Refusing them would break clients that work against
 *   Service Fabric — the REST reference's own create example uses `P3M`. They are echoed as days,
 *   as .NET writes a TimeSpan (`P1M` → `P30D`, `P1Y` → `P365D`).
 * - The result is whole milliseconds (a TimeSpan counts 100 ns ticks; finer fractions are dropped)
 *   and must fit a TimeSpan (±10,675,199 days).
 *
 * Formatting writes what `XmlConvert.ToString(TimeSpan)` writes: days, hours, minutes and seconds
 * with the fraction's trailing zeros removed, zero as `PT0S`, e.g. `P1DT2H`, `PT15M`, `PT1.5S`.
 */
import { LifeboatError } from './errors.ts';

export const MS_PER_SECOND = 1_000;
export const MS_PER_MINUTE = 60 * MS_PER_SECOND;
export const MS_PER_HOUR = 60 * MS_PER_MINUTE;
export const MS_PER_DAY = 24 * MS_PER_HOUR;

/** TimeSpan.MaxValue (2^63 − 1 ticks of 100 ns) in whole milliseconds. */
export const MAX_DURATION_MS = 922_337_203_685_477;

const INT32_MAX = 2_147_483_647n;
const TICKS_PER_MS = 10_000n;
const TICKS_MAX = 9_223_372_036_854_775_807n;

const DURATION = /^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(T(?:(\d+)H)?(?:(\d+)M)?(?:(?:(\d+)|(\d*)\.(\d*))S)?)?$/;

/**
 * Parses an ISO-8601 duration the way .NET `XmlConvert.ToTimeSpan` does, into milliseconds
 * (negative for `-P…`). Throws E_INVALIDARG naming `field` when the text is not a duration or does
 * not fit a TimeSpan.
 */
export function parseDuration(text: unknown, field = 'Duration'): number {
  if (typeof text !== 'string') throw new LifeboatError('E_INVALIDARG', `${field} must be an ISO-8601 duration string such as PT15M, P1DT2H or P30D.`);
  const m = DURATION.exec(text.trim());
  const bad = (): LifeboatError => new LifeboatError('E_INVALIDARG', `${field} '${text}' is not an ISO-8601 duration such as PT15M, P1DT2H or P30D.`);
  if (!m) throw bad();
  const [, minus, y, mo, d, t, h, mi, s, sInt, sFrac] = m;
  const hasSeconds = s !== undefined || sFrac !== undefined;
  if (y === undefined && mo === undefined && d === undefined && h === undefined && mi === undefined && !hasSeconds) throw bad();
  if (t !== undefined && h === undefined && mi === undefined && !hasSeconds) throw bad();

  const component = (digits: string | undefined): bigint => {
    const v = BigInt(digits === undefined || digits === '' ? '0' : digits);
    if (v > INT32_MAX) throw new LifeboatError('E_INVALIDARG', `${field} '${text}' has a component larger than ${INT32_MAX}.`);
    return v;
  };
  const years = component(y);
  const months = component(mo);
  let ticks = (years + months / 12n) * 365n + (months % 12n) * 30n + component(d);
  ticks = ((ticks * 24n + component(h)) * 60n + component(mi)) * 60n + component(s ?? sInt);
  // The fraction: XmlConvert keeps 9 digits (ns) and a TimeSpan 7 (100 ns); we keep 3 (ms).
  const frac = (sFrac ?? '').slice(0, 3).padEnd(3, '0');
  ticks = ticks * 1000n * TICKS_PER_MS + BigInt(frac) * TICKS_PER_MS;
  if (ticks > TICKS_MAX) throw new LifeboatError('E_INVALIDARG', `${field} '${text}' is longer than the largest duration (about 29,227 years).`);
  const ms = Number(ticks / TICKS_PER_MS);
  return minus && ms !== 0 ? -ms : ms;
}

/**
 * Writes milliseconds as .NET writes a TimeSpan (`XmlConvert.ToString`): `[-]P[nD][T[nH][nM][n[.fff]S]]`,
 * zero as `PT0S`. Fractions of a millisecond are dropped.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_DURATION_MS) {
    throw new LifeboatError('E_INVALIDARG', `A duration of ${ms} ms cannot be written as a TimeSpan.`);
  }
  const total = Math.trunc(Math.abs(ms));
  const days = Math.floor(total / MS_PER_DAY);
  const hours = Math.floor(total / MS_PER_HOUR) % 24;
  const minutes = Math.floor(total / MS_PER_MINUTE) % 60;
  const seconds = Math.floor(total / MS_PER_SECOND) % 60;
  const millis = total % MS_PER_SECOND;
  let out = ms < 0 && total > 0 ? '-P' : 'P';
  if (days) out += `${days}D`;
  if (hours || minutes || seconds || millis) {
    out += 'T';
    if (hours) out += `${hours}H`;
    if (minutes) out += `${minutes}M`;
    if (seconds || millis) out += `${seconds}${millis ? `.${String(millis).padStart(3, '0').replace(/0+$/, '')}` : ''}S`;
  }
  return out.endsWith('P') ? `${out}T0S` : out;
}

/** A short human form for reasons and messages, rounded down: `12 s`, `45 min`, `3 h`, `24 h 30 min`, `4 d 4 h`, `30 d`. */
export function humanDuration(ms: number): string {
  const a = Math.abs(ms);
  const sign = ms < 0 ? '-' : '';
  if (a < MS_PER_MINUTE) return `${sign}${Math.floor(a / MS_PER_SECOND)} s`;
  if (a < MS_PER_HOUR) return `${sign}${Math.floor(a / MS_PER_MINUTE)} min`;
  if (a < 2 * MS_PER_DAY) {
    const minutes = Math.floor(a / MS_PER_MINUTE) % 60;
    return `${sign}${Math.floor(a / MS_PER_HOUR)} h${minutes ? ` ${minutes} min` : ''}`;
  }
  const hours = Math.floor(a / MS_PER_HOUR) % 24;
  return `${sign}${Math.floor(a / MS_PER_DAY)} d${hours ? ` ${hours} h` : ''}`;
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDuration, humanDuration, MAX_DURATION_MS, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, parseDuration } from './duration.ts';
import { isLifeboatError } from './errors.ts';

const invalid = (fn: () => unknown, pattern?: RegExp): void => {
  assert.throws(fn, (err: unknown) => isLifeboatError(err, 'E_INVALIDARG') && (!pattern || pattern.test(err.message)));
};

describe('parseDuration', () => {
  const cases: Array<[string, number]> = [
    ['PT15M', 15 * MS_PER_MINUTE],
    ['PT4H5M', 4 * MS_PER_HOUR + 5 * MS_PER_MINUTE],
    ['P1DT2H', MS_PER_DAY + 2 * MS_PER_HOUR],
    ['P20D', 20 * MS_PER_DAY],
    ['PT0S', 0],
    ['P0D', 0],
    ['-P1D', -MS_PER_DAY],
    ['-PT0S', 0],
    ['PT1.5S', 1500],
    ['PT0.001S', 1],
    ['PT0.0009S', 0],
    ['PT1.123456789123S', 1123],
    ['PT.5S', 500],
    ['PT1.S', 1000],
    ['PT90M', 90 * MS_PER_MINUTE],
    ['PT36H', 36 * MS_PER_HOUR],
    ['  P1D  ', MS_PER_DAY],
    // Months and years as .NET XmlConvert counts them: 30 and 365 days, 12 months = 365 days.
    ['P1M', 30 * MS_PER_DAY],
    ['P3M', 90 * MS_PER_DAY],
    ['P12M', 365 * MS_PER_DAY],
    ['P13M', 395 * MS_PER_DAY],
    ['P1Y', 365 * MS_PER_DAY],
    ['P1Y2M3DT4H5M6.7S', (365 + 60 + 3) * MS_PER_DAY + 4 * MS_PER_HOUR + 5 * MS_PER_MINUTE + 6700],
  ];
  for (const [text, ms] of cases) {
    it(`${JSON.stringify(text)} → ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  it('refuses what XmlConvert refuses', () => {
    for (const text of ['', 'P', 'PT', 'P1DT', '1D', 'P1', 'PT1', 'P1H', 'PT1D', 'p1d', 'P1d', 'P-1D', 'P1.5D', 'PT1.5M', 'PTS', 'P1D1H', 'P1M1Y', 'PT1S1M', 'x']) {
      invalid(() => parseDuration(text), /not an ISO-8601 duration/);
    }
    invalid(() => parseDuration(15), /must be an ISO-8601 duration string/);
    invalid(() => parseDuration(null, 'Interval'), /^Interval must be/);
  });

  it('refuses a component over Int32 and a total over TimeSpan.MaxValue', () => {
    invalid(() => parseDuration('PT2147483648S'), /larger than 2147483647/);
    assert.equal(parseDuration('PT2147483647S'), 2147483647000);
    invalid(() => parseDuration('P10675200D'), /longer than the largest duration/);
    assert.equal(parseDuration('P10675199D'), 10675199 * MS_PER_DAY);
  });
});

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, 'PT0S'],
    [15 * MS_PER_MINUTE, 'PT15M'],
    [MS_PER_DAY + 2 * MS_PER_HOUR, 'P1DT2H'],
    [90 * MS_PER_MINUTE, 'PT1H30M'],
    [30 * MS_PER_DAY, 'P30D'],
    [1500, 'PT1.5S'],
    [1, 'PT0.001S'],
    [1010, 'PT1.01S'],
    [-MS_PER_DAY, '-P1D'],
    [MS_PER_DAY + 1, 'P1DT0.001S'],
  ];
  for (const [ms, text] of cases) {
    it(`${ms} ms → ${text}`, () => assert.equal(formatDuration(ms), text));
  }

  it('writes months and years back as days, as .NET does', () => {
    assert.equal(formatDuration(parseDuration('P3M')), 'P90D');
    assert.equal(formatDuration(parseDuration('P1Y')), 'P365D');
  });

  it('refuses what a TimeSpan cannot hold', () => {
    invalid(() => formatDuration(Number.NaN));
    invalid(() => formatDuration(MAX_DURATION_MS + 1));
  });

  it('round-trips every whole number of milliseconds (property)', () => {
    fc.assert(fc.property(fc.integer({ min: -MAX_DURATION_MS, max: MAX_DURATION_MS }), (ms) => {
      assert.equal(parseDuration(formatDuration(ms)), ms === 0 ? 0 : ms);
    }));
  });

  it('is canonical: formatting a parsed duration and parsing it again changes nothing (property)', () => {
    const part = fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined });
    fc.assert(fc.property(part, part, part, part, part, part, (y, mo, d, h, mi, s) => {
      const date = `${y === undefined ? '' : `${y}Y`}${mo === undefined ? '' : `${mo}M`}${d === undefined ? '' : `${d}D`}`;
      const tm = `${h === undefined ? '' : `${h}H`}${mi === undefined ? '' : `${mi}M`}${s === undefined ? '' : `${s}S`}`;
      if (!date && !tm) return;
      const text = `P${date}${tm ? `T${tm}` : ''}`;
      const once = formatDuration(parseDuration(text));
      assert.equal(formatDuration(parseDuration(once)), once);
      assert.equal(parseDuration(once), parseDuration(text));
    }));
  });
});

describe('humanDuration', () => {
  it('writes short forms for reasons', () => {
    assert.equal(humanDuration(12_000), '12 s');
    assert.equal(humanDuration(45 * MS_PER_MINUTE), '45 min');
    assert.equal(humanDuration(3 * MS_PER_HOUR), '3 h');
    assert.equal(humanDuration(24 * MS_PER_HOUR), '24 h');
    assert.equal(humanDuration(36 * MS_PER_HOUR), '36 h');
    assert.equal(humanDuration(24.5 * MS_PER_HOUR + 10_000), '24 h 30 min');
    assert.equal(humanDuration(30 * MS_PER_DAY), '30 d');
    assert.equal(humanDuration(3 * MS_PER_DAY + MS_PER_HOUR + 5 * MS_PER_MINUTE), '3 d 1 h');
  });
});

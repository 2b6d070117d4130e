/** Reading Prometheus' text exposition format (version 0.0.4) in tests: scrape, parse, pick samples. */
import assert from 'node:assert/strict';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly samples: readonly Sample[];
  /** `# TYPE` of each metric family. */
  readonly types: ReadonlyMap<string, string>;
  /** `# HELP` of each metric family. */
  readonly help: ReadonlyMap<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** As Prometheus reads values (Go's ParseFloat: NaN and Inf in any case; prom-client writes `Nan`). */
function parseValue(v: string): number {
  if (/^\+?inf$/i.test(v)) return Infinity;
  if (/^-inf$/i.test(v)) return -Infinity;
  if (/^nan$/i.test(v)) return NaN;
  const n = Number(v);
  assert.ok(v !== '' && !Number.isNaN(n), `'${v}' is not a sample value`);
  return n;
}

/** Parses the text format strictly: a malformed line fails the test. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const [i, line] of text.split('\n').entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (TYPE|HELP) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (m?.[1] === 'TYPE') {
        assert.match(m[3] ?? '', /^(counter|gauge|histogram|summary|untyped)$/, where);
        types.set(m[2] as string, m[3] as string);
      } else if (m?.[1] === 'HELP') {
        help.set(m[2] as string, m[3] as string);
      }
      continue;
    }
    const name = NAME.exec(line)?.[0];
    assert.ok(name, `a sample starts with a metric name; ${where}`);
    let at = name.length;
    const labels: Record<string, string> = {};
    if (line[at] === '{') {
      at++;
      while (line[at] !== '}') {
        const label = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at))?.[0];
        assert.ok(label, `a label name; ${where}`);
        at += label.length;
        assert.equal(line.slice(at, at + 2), '="', `a label's ="; ${where}`);
        at += 2;
        let value = '';
        for (;;) {
          const c = line[at];
          assert.ok(c !== undefined, `an unterminated label value; ${where}`);
          at++;
          if (c === '"') break;
          if (c === '\\') {
            const e = line[at++];
            value += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : assert.fail(`a bad escape; ${where}`);
          } else {
            value += c;
          }
        }
        labels[label] = value;
        if (line[at] === ',') at++;
      }
      at++;
    }
    const rest = line.slice(at).trim().split(/\s+/);
    assert.ok(rest.length === 1 || rest.length === 2, `a value and at most a timestamp; ${where}`);
    samples.push({ name, labels, value: parseValue(rest[0] as string) });
  }
  return { samples, types, help };
}

/** GET `url` with the bearer token and parse it; asserts 200 and Prometheus' content type. */
export async function scrape(url: string, token: string): Promise<Exposition> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text.slice(0, 300));
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(text);
}

/** The samples of `name` whose labels include `labels`. */
export function samplesOf(e: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): Sample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The sum of the samples of `name` whose labels include `labels` (0 when there is none). */
export function valueOf(e: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): number {
  return samplesOf(e, name, labels).reduce((n, s) => n + s.value, 0);
}

/** Whether the exposition has a series of the metric `name` (a histogram's by its _bucket, _sum or _count). */
export function hasMetric(e: Exposition, name: string): boolean {
  return e.samples.some((s) => s.name === name || [`${name}_bucket`, `${name}_sum`, `${name}_count`].includes(s.name));
}

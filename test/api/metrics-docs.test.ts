/**
 * The operator documents agree with what Lifeboat serves: every metric name the sample alerts
 * (docs/prometheus-alerts.yml) and the Grafana dashboard (docs/grafana-dashboard.json) use, and
 * every metric docs/metrics.md describes, is in a real scrape — of a running Lifeboat after a
 * backup and a restore, or of a host's metrics server for the lifeboat_host_* ones — and every
 * lifeboat_* metric served is described. Both files are checked for their shape too.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { startHostMetrics } from '../../src/main/host-metrics.ts';
import { StorageRegistry } from '../../src/storage/open.ts';
import type { Partition } from '../../src/state/index.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { type Exposition, hasMetric, scrape } from '../support/prometheus.ts';
import { tempDir } from '../support/tmp.ts';

const DOCS = new URL('../../docs/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, DOCS), 'utf8');

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly fields: ReadonlyMap<string, string>;
}

/**
 * The rules of a Prometheus rule file, read as the file is written (groups → rules → keys, block
 * scalars for long expressions): enough to check it without a YAML library. Fails on lines it
 * does not understand, so a malformed file fails the test.
 */
function alertRules(yaml: string): AlertRule[] {
  const rules: Array<{ alert: string; expr: string; fields: Map<string, string> }> = [];
  const lines = yaml.split('\n');
  let current: { alert: string; expr: string; fields: Map<string, string> } | undefined;
  let section = '';
  assert.match(lines.find((l) => l.trim() !== '' && !l.trim().startsWith('#')) ?? '', /^groups:$/, 'the file starts with groups:');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '' || line.trim().startsWith('#') || line === 'groups:') continue;
    assert.ok(!line.includes('\t'), `no tabs in YAML (line ${i + 1})`);
    let m = /^ {2}- name: (\S+)$/.exec(line);
    if (m) continue;
    if (/^ {4}rules:$/.test(line)) continue;
    m = /^ {6}- alert: ([A-Za-z][A-Za-z0-9]*)$/.exec(line);
    if (m) {
      current = { alert: m[1] as string, expr: '', fields: new Map() };
      rules.push(current);
      section = '';
      continue;
    }
    assert.ok(current, `line ${i + 1} is inside a rule: ${line}`);
    m = /^ {8}(expr|for|labels|annotations): ?(.*)$/.exec(line);
    if (m) {
      const [, key, rest] = m as unknown as [string, string, string];
      section = key;
      if (key === 'expr') {
        if (rest === '|' || rest === '>-' || rest === '|-') {
          const block: string[] = [];
          while (i + 1 < lines.length && /^ {10}\S/.test(lines[i + 1] as string)) block.push((lines[++i] as string).trim());
          current.expr = block.join('\n');
        } else {
          current.expr = rest;
        }
      } else if (key === 'for') {
        assert.match(rest, /^\d+[smhd]$/, `for: of ${current.alert}`);
        current.fields.set('for', rest);
      } else {
        assert.equal(rest, '', `${key}: opens a map in ${current.alert}`);
      }
      continue;
    }
    m = /^ {10}([a-z_]+): (.+)$/.exec(line);
    assert.ok(m && (section === 'labels' || section === 'annotations'), `line ${i + 1} is a label or an annotation: ${line}`);
    current.fields.set(`${section}.${m[1] as string}`, m[2] as string);
  }
  return rules;
}

/** Metric names in a PromQL expression (label values, quoted, left out). */
function metricNames(expr: string, prefix: RegExp): string[] {
  const unquoted = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...unquoted.matchAll(/\b[a-z_:][a-z0-9_:]*\b/g)].map((m) => m[0]).filter((n) => prefix.test(n));
}

interface Panel { id?: number; type?: string; title?: string; gridPos?: { x: number; y: number; w: number; h: number }; targets?: Array<{ expr?: string; refId?: string }> }

it('the alerts, the dashboard and docs/metrics.md name only metrics a running Lifeboat and a host serve, and describe every one served', async (t) => {
  // What they use.
  const rules = alertRules(read('prometheus-alerts.yml'));
  assert.ok(rules.length >= 8, `the sample rules (${rules.length})`);
  assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique');
  for (const r of rules) {
    assert.ok(r.expr.length > 0, `${r.alert} has an expression`);
    assert.match(r.fields.get('labels.severity') ?? '', /^(critical|warning|info)$/, `${r.alert} has a severity`);
    assert.ok(r.fields.has('annotations.summary') && r.fields.has('annotations.description'), `${r.alert} has a summary and a description`);
  }
  const doc = read('metrics.md');
  for (const r of rules) assert.ok(doc.includes(`\`${r.alert}\``), `docs/metrics.md lists the alert ${r.alert}`);
  for (const must of ['lifeboat_partition_last_successful_backup_timestamp_seconds', 'lifeboat_backup_total', 'lifeboat_scheduler_lag_seconds_bucket', 'lifeboat_partitions', 'lifeboat_storage_requests_total']) {
    assert.ok(rules.some((r) => metricNames(r.expr, /^lifeboat_/).includes(must)), `an alert uses ${must}`);
  }

  const dashboard = JSON.parse(read('grafana-dashboard.json')) as { title: string; uid: string; panels: Panel[]; templating: { list: Array<{ name: string }> } };
  assert.equal(dashboard.title, 'Lifeboat');
  assert.ok(dashboard.templating.list.some((v) => v.name === 'datasource'), 'the data source is a variable');
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 15, `the dashboard's panels (${panels.length})`);
  assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids are unique');
  const exprs: string[] = [];
  for (const p of panels) {
    assert.ok(p.title && p.gridPos && p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id ?? '?'} has a title and fits the grid`);
    assert.ok(p.targets && p.targets.length > 0, `${p.title} has queries`);
    for (const q of p.targets) {
      assert.ok(q.expr && q.refId, `${p.title}: each query has an expression and a refId`);
      exprs.push(q.expr);
    }
  }

  const used = new Set([...rules.map((r) => r.expr), ...exprs].flatMap((e) => metricNames(e, /^(lifeboat|process|nodejs)_/)));
  const documented = new Set([...doc.matchAll(/`(lifeboat_[a-z0-9_]+)`/g)].map((m) => m[1] as string));

  // What a running Lifeboat serves after a backup and a restore.
  const lb = await startTestLifeboat(t);
  const token = (await lb.client.access.createToken({ Role: 'metrics', Name: 'docs' })).Token;
  const p = lb.sample?.service.partitionList[0] as Partition;
  p.transact((tx) => tx.dictionary('kv').set('k', 'v'));
  await lb.client.operations.backupPartition(p.id, { storage: lb.storage });
  const b = await lb.client.operations.waitForBackup(p.id);
  assert.equal(b.BackupState, 'Success');
  await lb.client.operations.restorePartition(p.id, { backupId: b.BackupId, backupLocation: b.BackupLocation, storage: lb.storage });
  assert.equal((await lb.client.operations.waitForRestore(p.id)).RestoreState, 'Success');
  const service = await scrape(`${lb.url}/metrics`, token);

  // And what a host's metrics server serves once its storage was used.
  const dir = tempDir(t);
  const host = await startHostMetrics({ hostId: 'docs-host', port: 0, token });
  t.after(() => host.close());
  const stores = new StorageRegistry({ fileShareRoots: [dir], meter: host.storage });
  t.after(() => stores.close());
  await stores.open({ StorageKind: 'FileShare', Path: join(dir, 's') }).put('A/b', Buffer.from('x'));
  const hostScrape = await scrape(`${host.url}/metrics`, token);

  const served = (name: string): boolean => [service, hostScrape].some((e: Exposition) => hasMetric(e, name));
  for (const name of used) assert.ok(served(name), `${name}, used by the alerts or the dashboard, is served`);
  for (const name of documented) assert.ok(served(name), `${name}, described in docs/metrics.md, is served`);
  const lifeboatFamilies = [...service.types.keys(), ...hostScrape.types.keys()].filter((n) => n.startsWith('lifeboat_'));
  for (const name of lifeboatFamilies) assert.ok(documented.has(name), `${name} is described in docs/metrics.md`);
});

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { MS_PER_HOUR, MS_PER_MINUTE, parseDuration } from './duration.ts';
import { deletionSteps, planRetention, type RetentionBackup, type RetentionDecision, type RetentionRule, retentionReasonText } from './retention.ts';

// ---------------------------------------------------------------------------------------------
// Golden files: test/fixtures/retention/*.json hold an input and the decisions expected for it.
// LIFEBOAT_UPDATE_GOLDEN=1 rewrites the expected decisions from the current code (then review the diff).

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/retention/', import.meta.url));
const UPDATE = process.env.LIFEBOAT_UPDATE_GOLDEN === '1';

interface WireBackup {
  readonly backupId: string;
  readonly backupChainId: string;
  readonly parentBackupId: string;
  readonly type: 'Full' | 'Incremental';
  readonly creationUtc: string;
}

interface Fixture {
  readonly description: string;
  readonly now: string;
  readonly policy: { readonly RetentionDuration: string; readonly MinimumNumberOfBackups: number };
  readonly backups: readonly WireBackup[];
  expected?: { keep: Array<{ backupId: string; reason: string }>; delete: Array<{ backupId: string; reason: string }> };
}

function decide(f: Fixture): NonNullable<Fixture['expected']> {
  const backups = f.backups.map((b) => ({ ...b, creationUtc: new Date(b.creationUtc) }));
  const rule = { retentionMs: parseDuration(f.policy.RetentionDuration), minimumNumberOfBackups: f.policy.MinimumNumberOfBackups };
  const plan = planRetention(backups, rule, new Date(f.now));
  const out = (d: RetentionDecision<RetentionBackup>): { backupId: string; reason: string } => ({ backupId: d.backup.backupId, reason: retentionReasonText(d.reason) });
  return { keep: plan.keep.map(out), delete: plan.delete.map(out) };
}

describe('planRetention: golden files', () => {
  const files = readdirSync(FIXTURES).filter((n) => n.endsWith('.json')).sort();
  it('has fixtures', () => assert.ok(files.length >= 5, `golden files expected in ${FIXTURES}`));
  for (const name of files) {
    it(name.replace(/\.json$/, ''), () => {
      const path = join(FIXTURES, name);
      const fixture = JSON.parse(readFileSync(path, 'utf8')) as Fixture;
      const actual = decide(fixture);
      if (UPDATE) {
        fixture.expected = actual;
        writeFileSync(path, `${JSON.stringify(fixture, null, 2)}\n`);
        return;
      }
      assert.ok(fixture.expected, `${name} has no expected decisions: run with LIFEBOAT_UPDATE_GOLDEN=1 and review them`);
      assert.deepEqual(actual, fixture.expected);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Examples.

interface B extends RetentionBackup {
  readonly creationUtc: Date;
}
const NOW = new Date('2024-01-10T12:00:00Z');
const hoursAgo = (h: number): Date => new Date(NOW.getTime() - h * MS_PER_HOUR);
const full = (id: string, h: number): B => ({ backupId: id, backupChainId: id, parentBackupId: id, type: 'Full', creationUtc: hoursAgo(h) });
const inc = (id: string, parent: B, h: number): B => ({ backupId: id, backupChainId: parent.backupChainId, parentBackupId: parent.backupId, type: 'Incremental', creationUtc: hoursAgo(h) });
const ids = (ds: ReadonlyArray<{ backup: B }>): string[] => ds.map((d) => d.backup.backupId);
const texts = (ds: ReadonlyArray<RetentionDecision<B>>): Array<[string, string]> => ds.map((d) => [d.backup.backupId, retentionReasonText(d.reason)]);
const rules = (ds: ReadonlyArray<RetentionDecision<B>>): Array<[string, string]> => ds.map((d) => [d.backup.backupId, d.reason.rule]);
const DAY = { retentionMs: 24 * MS_PER_HOUR, minimumNumberOfBackups: 0 };

describe('planRetention: examples', () => {
  it('states its reasons', () => {
    const f0 = full('F0', 100);
    const f1 = full('F1', 30);
    const i1 = inc('I1', f1, 3);
    const plan = planRetention([f0, f1, i1], DAY, NOW);
    assert.deepEqual(texts(plan.keep), [
      ['I1', 'kept: within retention (3 h old, retention 24 h)'],
      ['F1', 'kept: newest full backup older than 24 h (30 h old), base of the chain at the start of the retention window'],
    ]);
    assert.deepEqual(texts(plan.delete), [['F0', 'deleted: older than 24 h (4 d 4 h old) and not needed by a kept backup']]);
    assert.deepEqual(plan.keep.map((d) => d.reason), [
      { rule: 'within-retention', detail: { ageMs: 3 * MS_PER_HOUR, retentionMs: 24 * MS_PER_HOUR } },
      { rule: 'window-base', detail: { ageMs: 30 * MS_PER_HOUR, retentionMs: 24 * MS_PER_HOUR } },
    ]);
    assert.deepEqual(plan.delete.map((d) => d.reason), [{ rule: 'expired', detail: { ageMs: 100 * MS_PER_HOUR, retentionMs: 24 * MS_PER_HOUR, restorable: true } }]);
    assert.equal(plan.cutoffUtc.toISOString(), '2024-01-09T12:00:00.000Z');
  });

  it('keeps a backup created exactly at the cutoff', () => {
    const f = full('F', 24);
    const g = full('G', 48);
    const plan = planRetention([f, g, full('H', 72)], DAY, NOW);
    assert.deepEqual(ids(plan.keep), ['F', 'G']);
    assert.match(plan.keep[0] ? retentionReasonText(plan.keep[0].reason) : '', /^kept: within retention/);
    assert.deepEqual(rules(plan.keep), [['F', 'within-retention'], ['G', 'window-base']]);
  });

  it('keeps everything when nothing is older than the retention', () => {
    const f = full('F', 1);
    assert.deepEqual(planRetention([f, inc('I', f, 0.5)], DAY, NOW).delete, []);
    assert.deepEqual(planRetention([], DAY, NOW), { cutoffUtc: hoursAgo(24), keep: [], delete: [] });
  });

  it('applies the policy it is given: a shorter retention deletes more at the next run', () => {
    const backups = [full('A', 80), full('B', 50), full('C', 20), full('D', 2)];
    assert.deepEqual(ids(planRetention(backups, { retentionMs: 72 * MS_PER_HOUR, minimumNumberOfBackups: 0 }, NOW).delete), []);
    assert.deepEqual(ids(planRetention(backups, { retentionMs: 24 * MS_PER_HOUR, minimumNumberOfBackups: 0 }, NOW).delete), ['A']);
    assert.deepEqual(ids(planRetention(backups, { retentionMs: 1 * MS_PER_HOUR, minimumNumberOfBackups: 0 }, NOW).delete), ['C', 'B', 'A']);
    assert.deepEqual(ids(planRetention(backups, { retentionMs: 1 * MS_PER_HOUR, minimumNumberOfBackups: 3 }, NOW).delete), ['C']);
  });

  it('follows the chain named by BackupChainId as well as parent links', () => {
    const fa = full('FA', 60);
    const lost = { ...inc('I-lost-parent', fa, 2), parentBackupId: 'GONE' };
    const plan = planRetention([fa, full('FB', 40), lost], DAY, NOW);
    assert.deepEqual(ids(plan.delete), []);
    const fa2 = plan.keep.find((d) => d.backup.backupId === 'FA');
    assert.equal(fa2 && retentionReasonText(fa2.reason), 'kept: full backup of a kept chain (needed by I-lost-parent)');
    assert.deepEqual(fa2?.reason, { rule: 'needed-by-chain', detail: { role: 'full', neededBy: 'I-lost-parent' } });
  });

  it('terminates on a loop of parent links (corrupt metadata), and deletes the loop when it is old', () => {
    const f = full('F', 200);
    const a = { ...inc('A', f, 150), parentBackupId: 'B' };
    const b = { ...inc('B', f, 140), parentBackupId: 'A' };
    const plan = planRetention([f, a, b, full('G', 30), full('H', 1)], DAY, NOW);
    assert.deepEqual(ids(plan.keep), ['H', 'G']);
    assert.deepEqual(new Set(ids(plan.delete)), new Set(['A', 'B', 'F']));
    assert.equal(plan.delete.at(-1)?.backup.backupId, 'F');
  });

  it('names the rule behind each decision: the minimum, the window, the chain', () => {
    const few = planRetention([full('A', 80), full('B', 50)], { retentionMs: MS_PER_HOUR, minimumNumberOfBackups: 2 }, NOW);
    assert.deepEqual(few.keep.map((d) => d.reason), [
      { rule: 'not-above-minimum', detail: { backups: 2, minimum: 2 } }, { rule: 'not-above-minimum', detail: { backups: 2, minimum: 2 } },
    ]);
    assert.equal(few.keep[0] && retentionReasonText(few.keep[0].reason), 'kept: 2 backups, not more than the minimum number of backups (2)');

    const backups = [full('A', 80), full('B', 50), full('C', 20), full('D', 2)];
    const plan = planRetention(backups, { retentionMs: MS_PER_HOUR, minimumNumberOfBackups: 3 }, NOW);
    assert.deepEqual(rules(plan.keep), [['D', 'window-base'], ['B', 'minimum-count'], ['A', 'minimum-count']]);
    assert.deepEqual(texts(plan.keep).slice(1), [['B', 'kept: minimum number of backups (3)'], ['A', 'kept: minimum number of backups (3)']]);
    assert.deepEqual(rules(plan.delete), [['C', 'expired']]);

    const f = full('F', 50);
    const i = inc('I', f, 40);
    const j = inc('J', i, 2);
    const chain = planRetention([f, i, j, inc('K', f, 45)], DAY, NOW);
    assert.deepEqual(rules(chain.keep), [['J', 'within-retention'], ['I', 'newer-than-window-base'], ['K', 'newer-than-window-base'], ['F', 'window-base']]);
    assert.deepEqual(chain.keep[1]?.reason, { rule: 'newer-than-window-base', detail: { ageMs: 40 * MS_PER_HOUR, retentionMs: 24 * MS_PER_HOUR, baseBackupId: 'F' } });

    const orphan = planRetention([inc('L', full('GONE', 60), 30), full('N', 1)], DAY, NOW);
    assert.deepEqual(rules(orphan.keep), [['N', 'within-retention'], ['L', 'no-older-full']]);
    assert.deepEqual(texts(orphan.keep).slice(1), [['L', 'kept: 30 h old but no full backup is older than 24 h: older backups are kept until one is']]);
  });

  it('renders every rule as the REST plan and the log show it', () => {
    const H = MS_PER_HOUR;
    assert.equal(retentionReasonText({ rule: 'not-above-minimum', detail: { backups: 1, minimum: 3 } }), 'kept: 1 backup, not more than the minimum number of backups (3)');
    assert.equal(retentionReasonText({ rule: 'within-retention', detail: { ageMs: -5, retentionMs: 24 * H } }), 'kept: within retention (dated in the future, retention 24 h)');
    assert.equal(retentionReasonText({ rule: 'newer-than-window-base', detail: { ageMs: 30 * H, retentionMs: 24 * H, baseBackupId: 'F9' } }),
      'kept: 30 h old but newer than F9, the newest full backup older than 24 h: restore point at the start of the retention window');
    assert.equal(retentionReasonText({ rule: 'needed-by-chain', detail: { role: 'link', neededBy: 'I7' } }), 'kept: link of a kept chain (needed by I7)');
    assert.equal(retentionReasonText({ rule: 'expired', detail: { ageMs: 50 * H, retentionMs: 24 * H, restorable: false } }),
      "deleted: older than 24 h (2 d 2 h old), not needed by a kept backup, and not restorable: its chain's full backup is gone");
    assert.equal(retentionReasonText({ rule: 'interrupted-deletion', detail: {} }), 'deleted: finishing the deletion a previous run began');
  });

  it('refuses a negative retention or minimum', () => {
    assert.throws(() => planRetention([], { retentionMs: -1, minimumNumberOfBackups: 0 }, NOW), /retention duration/);
    assert.throws(() => planRetention([], { retentionMs: 1, minimumNumberOfBackups: -1 }, NOW), /MinimumNumberOfBackups/);
  });
});

describe('deletionSteps', () => {
  const f = full('F', 100);
  const i = inc('I', f, 90);
  const plan = planRetention([f, i, full('G', 30)], DAY, NOW);

  it('deletes metadata before data, backup by backup, in plan order', () => {
    assert.deepEqual(deletionSteps(plan.delete).map((s) => `${s.backup.backupId}:${s.object}`), ['I:metadata', 'I:data', 'F:metadata', 'F:data']);
  });

  it('finishes an interrupted deletion first, even when the listing no longer shows it', () => {
    const interrupted = inc('X', f, 95);
    assert.deepEqual(deletionSteps(plan.delete, interrupted).map((s) => `${s.backup.backupId}:${s.object}`),
      ['X:metadata', 'X:data', 'I:metadata', 'I:data', 'F:metadata', 'F:data']);
    assert.deepEqual(deletionSteps(plan.delete, i).map((s) => `${s.backup.backupId}:${s.object}`), ['I:metadata', 'I:data', 'F:metadata', 'F:data']);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over random chains and policies.

interface Shape {
  readonly chains: ReadonlyArray<{ readonly gapMin: number; readonly incs: ReadonlyArray<{ readonly gapMin: number; readonly skewMin: number; readonly branch: boolean }> }>;
  readonly drop: readonly boolean[];
  readonly foreignParent: readonly number[];
}

const T0 = Date.UTC(2024, 0, 1);

/**
 * Chains one after another (a full, then incrementals), optionally messy: clocks skewed, branches
 * (two incrementals with one parent), backups missing, an incremental whose parent is an earlier
 * backup of another chain. (Never a loop of parent links: see the example for that.)
 */
function build(shape: Shape, messy: boolean): B[] {
  const out: B[] = [];
  let t = T0;
  let n = 0;
  for (const c of shape.chains) {
    t += c.gapMin * MS_PER_MINUTE;
    const f: B = { backupId: `F${n}`, backupChainId: `F${n}`, parentBackupId: `F${n}`, type: 'Full', creationUtc: new Date(t) };
    n++;
    out.push(f);
    const members: B[] = [f];
    for (const i of c.incs) {
      t += i.gapMin * MS_PER_MINUTE;
      const parent = messy && i.branch && members.length > 1 ? members[members.length - 2] as B : members[members.length - 1] as B;
      const b: B = { backupId: `I${n}`, backupChainId: f.backupId, parentBackupId: parent.backupId, type: 'Incremental', creationUtc: new Date(t + (messy ? i.skewMin * MS_PER_MINUTE : 0)) };
      n++;
      out.push(b);
      members.push(b);
    }
  }
  if (!messy) return out;
  const ids = out.map((b) => b.backupId);
  return out
    .map((b, k) => {
      const p = shape.foreignParent[k % Math.max(shape.foreignParent.length, 1)];
      return b.type === 'Incremental' && p !== undefined && p % 7 === 0 && k > 0 ? { ...b, parentBackupId: ids[p % k] as string } : b;
    })
    .filter((_, k) => !shape.drop[k]);
}

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  chains: fc.array(fc.record({
    gapMin: fc.integer({ min: 1, max: 3 * 24 * 60 }),
    incs: fc.array(fc.record({ gapMin: fc.integer({ min: 1, max: 12 * 60 }), skewMin: fc.integer({ min: -180, max: 180 }), branch: fc.boolean() }), { maxLength: 6 }),
  }), { minLength: 0, maxLength: 6 }),
  drop: fc.array(fc.integer({ min: 0, max: 9 }).map((x) => x < 2), { maxLength: 50 }),
  foreignParent: fc.array(fc.nat(100), { maxLength: 50 }),
});

const ruleArb: fc.Arbitrary<RetentionRule> = fc.record({
  retentionMs: fc.integer({ min: 1, max: 240 }).map((h) => h * MS_PER_HOUR),
  minimumNumberOfBackups: fc.integer({ min: 0, max: 12 }),
});

const nowArb = fc.integer({ min: 0, max: 40 * 24 * 60 }).map((m) => new Date(T0 + m * MS_PER_MINUTE));

/** What each backup needs in the list: the backups named by its parent link and its chain's full. */
function needs(all: readonly B[], b: B): B[] {
  if (b.type === 'Full') return [];
  return all.filter((x) => x !== b && (x.backupId === b.parentBackupId || (x.backupId === b.backupChainId && x.type === 'Full')));
}

/** Service Fabric's `DeleteFilesForPartition`, literally (sf-behaviour.md §2.13): the reference model. */
function serviceFabricDeletes(all: readonly B[], rule: RetentionRule, now: Date): string[] {
  let count = all.length;
  if (count <= rule.minimumNumberOfBackups) return [];
  const cutoff = now.getTime() - rule.retentionMs;
  const old = [...all].sort((a, b) => a.creationUtc.getTime() - b.creationUtc.getTime()).filter((b) => b.creationUtc.getTime() < cutoff).reverse();
  let fullFound = false;
  const deleted: string[] = [];
  for (const b of old) {
    if (!fullFound) {
      if (b.type === 'Full') fullFound = true;
    } else {
      if (count <= rule.minimumNumberOfBackups) break;
      deleted.push(b.backupId);
      count--;
    }
  }
  return deleted;
}

describe('planRetention: properties', () => {
  const runs = { numRuns: 400 };
  const inputs = fc.tuple(shapeArb, fc.boolean(), ruleArb, nowArb).map(([shape, messy, rule, now]) => ({ backups: build(shape, messy), rule, now }));

  it('every backup is decided once; every kept backup keeps what it needs; never below the minimum; nothing newer than the cutoff deleted', () => {
    fc.assert(fc.property(inputs, ({ backups, rule, now }) => {
      const plan = planRetention(backups, rule, now);
      const kept = new Set(plan.keep.map((d) => d.backup));
      const deleted = new Set(plan.delete.map((d) => d.backup));
      assert.equal(kept.size + deleted.size, backups.length);
      for (const b of backups) assert.ok(kept.has(b) !== deleted.has(b));
      for (const b of kept) for (const n of needs(backups, b)) assert.ok(kept.has(n), `${b.backupId} is kept but ${n.backupId}, which it needs, is not`);
      assert.ok(kept.size >= Math.min(backups.length, rule.minimumNumberOfBackups));
      if (backups.length <= rule.minimumNumberOfBackups) assert.equal(deleted.size, 0);
      for (const b of deleted) assert.ok(b.creationUtc.getTime() < plan.cutoffUtc.getTime());
      for (const d of plan.keep) assert.match(retentionReasonText(d.reason), /^kept: /);
      for (const d of plan.delete) assert.match(retentionReasonText(d.reason), /^deleted: /);
      for (const d of plan.delete) assert.equal(d.reason.rule, 'expired');
    }), runs);
  });

  it('deletion order: a run cut short anywhere leaves no kept backup without what it needs', () => {
    fc.assert(fc.property(inputs, ({ backups, rule, now }) => {
      const order = planRetention(backups, rule, now).delete.map((d) => d.backup);
      for (let k = 0; k <= order.length; k++) {
        const gone = new Set(order.slice(0, k));
        for (const b of backups) {
          if (gone.has(b)) continue;
          for (const n of needs(backups, b)) assert.ok(!gone.has(n), `after ${k} deletions ${b.backupId} remains but ${n.backupId} is gone`);
        }
      }
    }), runs);
  });

  it('is idempotent, and a run resumed after a crash deletes exactly the rest', () => {
    fc.assert(fc.property(inputs, fc.nat(), ({ backups, rule, now }, cut) => {
      const plan = planRetention(backups, rule, now);
      const kept = plan.keep.map((d) => d.backup);
      assert.deepEqual(planRetention(kept, rule, now).delete, []);
      const k = plan.delete.length === 0 ? 0 : cut % (plan.delete.length + 1);
      const gone = new Set(plan.delete.slice(0, k).map((d) => d.backup));
      const resumed = planRetention(backups.filter((b) => !gone.has(b)), rule, now);
      assert.deepEqual(resumed.delete.map((d) => d.backup.backupId), plan.delete.slice(k).map((d) => d.backup.backupId));
    }), runs);
  });

  it('on well-formed chains one after another, deletes exactly what Service Fabric deletes, in the same order', () => {
    const tidy = fc.tuple(shapeArb, ruleArb, nowArb).map(([shape, rule, now]) => ({ backups: build(shape, false), rule, now }));
    fc.assert(fc.property(tidy, ({ backups, rule, now }) => {
      assert.deepEqual(planRetention(backups, rule, now).delete.map((d) => d.backup.backupId), serviceFabricDeletes(backups, rule, now));
    }), runs);
  });
});

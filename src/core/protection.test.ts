import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cleanBackupTargets, deletePolicy, disableBackup, EMPTY_PROTECTION, effectivePolicy, effectivePolicyOf, enableBackup, entitiesOfPolicy,
  entityKey, entityUri, isBelow, overridesBelow, periodicBackupPolicy, policyNameRefusal, resumeBackup, suspendBackup, suspension, suspensionOf,
  type BackupEntity, type Outcome, type PartitionRef, type ProtectionState,
} from './protection.ts';

const P1 = '11111111-1111-1111-1111-111111111111';
const P2 = '22222222-2222-2222-2222-222222222222';
const Q1 = '33333333-3333-3333-3333-333333333333';

const app: BackupEntity = { kind: 'Application', applicationName: 'fabric:/App' };
const svc: BackupEntity = { kind: 'Service', serviceName: 'fabric:/App/Svc' };
const other: BackupEntity = { kind: 'Service', serviceName: 'fabric:/App/Other' };
const part1: BackupEntity = { kind: 'Partition', serviceName: 'fabric:/App/Svc', partitionId: P1 };
const part2: BackupEntity = { kind: 'Partition', serviceName: 'fabric:/App/Svc', partitionId: P2 };
const p1: PartitionRef = { applicationName: 'fabric:/App', serviceName: 'fabric:/App/Svc', partitionId: P1 };
const p2: PartitionRef = { applicationName: 'fabric:/App', serviceName: 'fabric:/App/Svc', partitionId: P2 };
const q1: PartitionRef = { applicationName: 'fabric:/App', serviceName: 'fabric:/App/Other', partitionId: Q1 };

const policies = new Set(['Daily', 'Hourly', 'Weekly', 'ElsewhereDaily']);

/** Unwraps a successful outcome, failing the test with the refusal otherwise. */
function ok<T>(o: Outcome<T>): { readonly ok: true } & T {
  if (!o.ok) assert.fail(`refused: ${o.code}: ${o.message}`);
  return o;
}

function refused<T>(o: Outcome<T>, code: string, message?: RegExp): void {
  assert.equal(o.ok, false);
  if (o.ok) return;
  assert.equal(o.code, code);
  if (message) assert.match(o.message, message);
}

/** Enables each [entity, policy] in turn. */
function enabled(...pairs: Array<[BackupEntity, string]>): ProtectionState {
  let s = EMPTY_PROTECTION;
  for (const [e, name] of pairs) s = ok(enableBackup(s, e, name, policies)).state;
  return s;
}

describe('entities', () => {
  it('keys applications and services by name, partitions by their id (lower-cased)', () => {
    assert.equal(entityKey(app), 'fabric:/App');
    assert.equal(entityKey(svc), 'fabric:/App/Svc');
    assert.equal(entityKey({ ...part1, partitionId: P1.toUpperCase() }), P1);
    assert.equal(entityUri(part1), `fabric:/App/Svc/${P1}`);
  });

  it('knows what is below what, also for services with more segments', () => {
    assert.ok(isBelow(part1, svc));
    assert.ok(isBelow(part1, app));
    assert.ok(isBelow(svc, app));
    assert.ok(!isBelow(svc, svc));
    assert.ok(!isBelow(part1, other));
    const deep: BackupEntity = { kind: 'Service', serviceName: 'fabric:/App/Group/Svc' };
    assert.ok(isBelow(deep, app));
    assert.ok(!isBelow(deep, { kind: 'Service', serviceName: 'fabric:/App/Group' }));
    assert.ok(!isBelow(svc, { kind: 'Application', applicationName: 'fabric:/Ap' }));
  });
});

describe('effectivePolicy: inheritance', () => {
  it('nothing enabled: no policy', () => {
    assert.equal(effectivePolicy(EMPTY_PROTECTION.mappings, p1), undefined);
  });

  it('inherits from the application, then the service, then its own mapping: the most specific wins', () => {
    let s = enabled([app, 'Daily']);
    assert.deepEqual([effectivePolicy(s.mappings, p1)?.policyName, effectivePolicy(s.mappings, p1)?.inheritedFrom], ['Daily', 'Application']);
    s = ok(enableBackup(s, svc, 'Hourly', policies)).state;
    assert.deepEqual([effectivePolicy(s.mappings, p1)?.policyName, effectivePolicy(s.mappings, p1)?.inheritedFrom], ['Hourly', 'Service']);
    assert.deepEqual([effectivePolicy(s.mappings, q1)?.policyName, effectivePolicy(s.mappings, q1)?.inheritedFrom], ['Daily', 'Application'], 'a sibling service keeps the application policy');
    s = ok(enableBackup(s, part1, 'Weekly', policies)).state;
    assert.deepEqual([effectivePolicy(s.mappings, p1)?.policyName, effectivePolicy(s.mappings, p1)?.inheritedFrom], ['Weekly', 'Partition']);
    assert.deepEqual([effectivePolicy(s.mappings, p2)?.policyName, effectivePolicy(s.mappings, p2)?.inheritedFrom], ['Hourly', 'Service']);
  });

  it('a change at the application never overrides a mapping below', () => {
    let s = enabled([app, 'Daily'], [svc, 'Hourly']);
    s = ok(enableBackup(s, app, 'Weekly', policies)).state;
    assert.equal(effectivePolicy(s.mappings, p1)?.policyName, 'Hourly');
    assert.equal(effectivePolicy(s.mappings, q1)?.policyName, 'Weekly');
  });

  it('reports the effective policy of services and applications too', () => {
    const s = enabled([app, 'Daily'], [part1, 'Weekly']);
    assert.equal(effectivePolicyOf(s.mappings, svc)?.inheritedFrom, 'Application');
    assert.equal(effectivePolicyOf(s.mappings, app)?.inheritedFrom, 'Application');
  });
});

describe('enableBackup', () => {
  it('replaces a mapping at the same level and says which', () => {
    const s = enabled([svc, 'Daily']);
    const r = ok(enableBackup(s, svc, 'Hourly', policies));
    assert.equal(r.replaced, 'Daily');
    assert.equal(r.changed, true);
    assert.equal(effectivePolicy(r.state.mappings, p1)?.policyName, 'Hourly');
    const again = ok(enableBackup(r.state, svc, 'Hourly', policies));
    assert.equal(again.changed, false);
    assert.equal(again.state, r.state);
  });

  it('refuses an unknown policy', () => {
    refused(enableBackup(EMPTY_PROTECTION, svc, 'Nope', policies), 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING', /'Nope' does not exist/);
  });

  it('does not change the state it was given', () => {
    const s = enabled([svc, 'Daily']);
    ok(enableBackup(s, part1, 'Hourly', policies));
    assert.equal(s.mappings.size, 1);
  });
});

describe('disableBackup', () => {
  it('removes the mapping where it was made; partitions fall back to what they inherit', () => {
    const s = enabled([app, 'Daily'], [svc, 'Hourly']);
    const r = ok(disableBackup(s, svc));
    assert.deepEqual(r.removed, { entity: svc, policyName: 'Hourly' });
    assert.deepEqual([effectivePolicy(r.state.mappings, p1)?.policyName, effectivePolicy(r.state.mappings, p1)?.inheritedFrom], ['Daily', 'Application']);
  });

  it('is refused where the policy is only inherited, and names where to disable it', () => {
    const s = enabled([app, 'Daily']);
    refused(disableBackup(s, svc), 'FABRIC_E_BACKUP_NOT_ENABLED', /inherits policy 'Daily' from Application fabric:\/App; disable it there/);
    refused(disableBackup(s, part1), 'FABRIC_E_BACKUP_NOT_ENABLED');
    refused(disableBackup(EMPTY_PROTECTION, app), 'FABRIC_E_BACKUP_NOT_ENABLED', /^Backup is not enabled for Application fabric:\/App\.$/);
  });

  it('twice: the second is refused', () => {
    const once = ok(disableBackup(enabled([part1, 'Daily']), part1)).state;
    refused(disableBackup(once, part1), 'FABRIC_E_BACKUP_NOT_ENABLED');
  });
});

describe('suspend and resume', () => {
  it('a suspension applies to everything below it', () => {
    const s = ok(suspendBackup(enabled([app, 'Daily']), app)).state;
    for (const p of [p1, p2, q1]) assert.deepEqual(suspension(s.suspensions, p), { isSuspended: true, inheritedFrom: 'Application' });
    assert.deepEqual(suspensionOf(s.suspensions, svc), { isSuspended: true, inheritedFrom: 'Application' });
  });

  it('a service suspension: its partitions, not the sibling service', () => {
    const s = ok(suspendBackup(enabled([app, 'Daily']), svc)).state;
    assert.deepEqual(suspension(s.suspensions, p1), { isSuspended: true, inheritedFrom: 'Service' });
    assert.deepEqual(suspension(s.suspensions, q1), { isSuspended: false, inheritedFrom: 'Invalid' });
  });

  it('reports the most specific suspended level', () => {
    let s = enabled([app, 'Daily']);
    s = ok(suspendBackup(s, app)).state;
    s = ok(suspendBackup(s, part1)).state;
    assert.equal(suspension(s.suspensions, p1).inheritedFrom, 'Partition');
    assert.equal(suspension(s.suspensions, p2).inheritedFrom, 'Application');
  });

  it('is idempotent', () => {
    const s = ok(suspendBackup(enabled([svc, 'Daily']), svc)).state;
    const again = ok(suspendBackup(s, svc));
    assert.equal(again.changed, false);
    assert.equal(again.state, s);
  });

  it('needs backup enabled at, above or below the entity', () => {
    refused(suspendBackup(EMPTY_PROTECTION, app), 'FABRIC_E_BACKUP_NOT_ENABLED', /nothing to suspend/);
    refused(suspendBackup(enabled([svc, 'Daily']), other), 'FABRIC_E_BACKUP_NOT_ENABLED', /Service fabric:\/App\/Other/);
    assert.ok(ok(suspendBackup(enabled([part1, 'Daily']), app)).changed, 'an application with one protected partition');
    assert.ok(ok(suspendBackup(enabled([app, 'Daily']), part2)).changed, 'a partition protected by inheritance');
    refused(resumeBackup(EMPTY_PROTECTION, svc), 'FABRIC_E_BACKUP_NOT_ENABLED', /nothing to resume/);
  });

  it('resumes only where it was suspended', () => {
    let s = enabled([app, 'Daily']);
    s = ok(suspendBackup(s, svc)).state;
    const atPartition = ok(resumeBackup(s, part1));
    assert.equal(atPartition.changed, false);
    assert.deepEqual(atPartition.stillSuspendedFrom, svc);
    assert.equal(suspension(atPartition.state.suspensions, p1).isSuspended, true);
    const atApp = ok(resumeBackup(s, app));
    assert.equal(atApp.changed, false);
    assert.equal(suspension(atApp.state.suspensions, p1).isSuspended, true, 'resuming above leaves a suspension below');
    const atService = ok(resumeBackup(s, svc));
    assert.equal(atService.changed, true);
    assert.equal(atService.stillSuspendedFrom, undefined);
    assert.equal(suspension(atService.state.suspensions, p1).isSuspended, false);
  });

  it('resume is idempotent', () => {
    const s = ok(resumeBackup(ok(suspendBackup(enabled([svc, 'Daily']), svc)).state, svc)).state;
    const again = ok(resumeBackup(s, svc));
    assert.equal(again.changed, false);
    assert.equal(again.state, s);
  });

  it('a suspended partition keeps its policy but takes no periodic backups', () => {
    let s = enabled([svc, 'Daily']);
    assert.deepEqual(periodicBackupPolicy(s, p1), { run: true, policyName: 'Daily' });
    s = ok(suspendBackup(s, svc)).state;
    assert.deepEqual(periodicBackupPolicy(s, p1), { run: false, why: 'Suspended' });
    assert.equal(effectivePolicy(s.mappings, p1)?.policyName, 'Daily');
    assert.deepEqual(periodicBackupPolicy(s, q1), { run: false, why: 'NotEnabled' });
  });

  it('disabling keeps suspensions, as Service Fabric does', () => {
    let s = enabled([part1, 'Daily']);
    s = ok(suspendBackup(s, part1)).state;
    s = ok(disableBackup(s, part1)).state;
    s = ok(enableBackup(s, part1, 'Hourly', policies)).state;
    assert.equal(suspension(s.suspensions, p1).isSuspended, true);
  });
});

describe('listing', () => {
  it('lists overrides below an entity, by key', () => {
    let s = enabled([app, 'Daily'], [svc, 'Hourly'], [part2, 'Weekly'], [part1, 'Weekly'], [other, 'Daily']);
    s = ok(suspendBackup(s, part1)).state;
    const below = overridesBelow(s, svc);
    assert.deepEqual(below.mappings.map((m) => m.entity), [part1, part2]);
    assert.deepEqual(below.suspended, [part1]);
    assert.deepEqual(overridesBelow(s, app).mappings.map((m) => entityKey(m.entity)), [P1, P2, 'fabric:/App/Other', 'fabric:/App/Svc']);
  });

  it('lists the entities of a policy', () => {
    const s = enabled([app, 'Daily'], [svc, 'Hourly'], [part1, 'Daily']);
    assert.deepEqual(entitiesOfPolicy(s, 'Daily'), [part1, app]);
  });
});

describe('policy names and deletePolicy', () => {
  it('create refuses an existing name; the others refuse an unknown one', () => {
    assert.equal(policyNameRefusal(policies, 'Daily', 'create')?.code, 'FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING');
    assert.equal(policyNameRefusal(policies, 'New', 'create'), undefined);
    assert.equal(policyNameRefusal(policies, 'daily', 'create'), undefined, 'names are compared exactly');
    for (const op of ['get', 'update', 'delete', 'enable'] as const) {
      assert.equal(policyNameRefusal(policies, 'New', op)?.code, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING');
      assert.equal(policyNameRefusal(policies, 'Daily', op), undefined);
    }
  });

  it('refuses to delete a policy in use, naming where', () => {
    const s = enabled([svc, 'Daily'], [part1, 'Daily']);
    refused(deletePolicy(s, 'Daily', policies, () => true), 'FABRIC_E_BACKUP_IS_ENABLED', new RegExp(`enabled for Partition fabric:/App/Svc/${P1} and 1 more; disable backup there first`));
    refused(deletePolicy(s, 'Nope', policies, () => true), 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING');
  });

  it('deletes an unused policy, removing mappings and suspensions of entities that are gone', () => {
    let s = enabled([svc, 'Daily'], [other, 'Hourly']);
    s = ok(suspendBackup(s, part1)).state;
    s = ok(suspendBackup(s, other)).state;
    const r = ok(deletePolicy(s, 'Daily', policies, (e) => e.kind !== 'Service' || e.serviceName !== 'fabric:/App/Svc'));
    assert.deepEqual(r.removedMappings, [{ entity: svc, policyName: 'Daily' }]);
    assert.deepEqual(r.removedSuspensions, [part1]);
    assert.deepEqual([...r.state.mappings.keys()], ['fabric:/App/Other']);
    assert.deepEqual([...r.state.suspensions.keys()], ['fabric:/App/Other']);
    assert.equal(ok(deletePolicy(EMPTY_PROTECTION, 'Weekly', policies, () => true)).removedMappings.length, 0);
  });
});

describe('cleanBackupTargets (DisableBackup with CleanBackup)', () => {
  const storage: Record<string, string> = { Daily: 'FileShare:\\\\nas\\backups', Hourly: 'FileShare:\\\\nas\\backups', Weekly: 'AzureBlobStore:acct/weekly' };
  const storageOf = (name: string): string | undefined => storage[name];

  it('a partition left with no policy is cleaned', () => {
    const s = enabled([svc, 'Daily']);
    assert.deepEqual(cleanBackupTargets(s, svc, [p1, p2], storageOf).map((t) => [t.partition.partitionId, t.clean, t.reason]), [
      [P1, true, "cleaned: no policy applies any more (was 'Daily')"],
      [P2, true, "cleaned: no policy applies any more (was 'Daily')"],
    ]);
  });

  it('a partition with its own mapping is not touched', () => {
    const s = enabled([svc, 'Daily'], [part1, 'Weekly']);
    const t = cleanBackupTargets(s, svc, [p1, p2], storageOf);
    assert.deepEqual(t.map((x) => x.clean), [false, true]);
    assert.equal(t[0]?.reason, "not cleaned: has its own policy 'Weekly' at Partition level");
  });

  it('not cleaned when it still inherits a policy writing to the same storage (the intended rule; Service Fabric inverts it)', () => {
    const s = enabled([app, 'Hourly'], [svc, 'Daily']);
    const [t] = cleanBackupTargets(s, svc, [p1], storageOf);
    assert.deepEqual(t, { partition: p1, clean: false, reason: "not cleaned: still inherits policy 'Hourly' from Application level, which writes to the same storage" });
  });

  it('cleaned when it now inherits a policy writing to another storage', () => {
    const s = enabled([app, 'Weekly'], [svc, 'Daily']);
    const [t] = cleanBackupTargets(s, svc, [p1], storageOf);
    assert.deepEqual(t, { partition: p1, clean: true, reason: "cleaned: now inherits policy 'Weekly' from Application level, which writes to another storage" });
  });

  it('a partition-level disable falls back to the service, then the application', () => {
    const s = enabled([app, 'Weekly'], [svc, 'Hourly'], [part1, 'Daily']);
    assert.equal(cleanBackupTargets(s, part1, [p1], storageOf)[0]?.clean, false);
    const noService = enabled([app, 'Weekly'], [part1, 'Daily']);
    assert.equal(cleanBackupTargets(noService, part1, [p1], storageOf)[0]?.clean, true);
  });

  it('an application-level disable: partitions under service mappings are untouched', () => {
    const s = enabled([app, 'Daily'], [other, 'Weekly']);
    assert.deepEqual(cleanBackupTargets(s, app, [p1, p2, q1], storageOf).map((t) => t.clean), [true, true, false]);
  });

  it('deletes nothing when a storage is unknown, or the entity was not enabled', () => {
    const s = enabled([app, 'ElsewhereDaily'], [svc, 'Daily']);
    assert.deepEqual(cleanBackupTargets(s, svc, [p1], storageOf)[0], { partition: p1, clean: false, reason: "not cleaned: the storage of policy 'ElsewhereDaily' is unknown" });
    assert.equal(cleanBackupTargets(enabled([app, 'Daily']), svc, [p1], storageOf)[0]?.clean, false);
  });
});

/**
 * `lifeboat catalog migrate --from <data-dir> --to postgres://…` on a real embedded installation
 * and a real PostgreSQL: an instance on the new catalog (with the old catalog key) answers what
 * the old one did — policies (secrets still sealed, still usable), protection, the backup index,
 * operations and their history, tokens, the audit log — and a second migration into the now
 * full catalog is refused and changes nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import pg from 'pg';
import { LifeboatClient } from '../../src/client/lifeboat-client.ts';
import { lifeboatCli } from '../support/cli.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { postgresForTests } from '../support/postgres.ts';
import { tempDir } from '../support/tmp.ts';

const pgs = postgresForTests();

it('moves an embedded catalog into PostgreSQL, all of it; a second migration into it is refused', { skip: pgs.skip }, async (t) => {
  const dir = tempDir(t);
  const lb = await startTestLifeboat(t, { scheduler: { manual: true, jitterMs: 0 } }, dir);
  const c = lb.client;
  const app = 'SampleApp';
  const partitions = (await c.hierarchy.listPartitions('SampleApp~MyStatefulService')).Items.map((p) => p.PartitionInformation.Id as string);
  const [p0, p1] = partitions as [string, string];
  await c.policies.create({
    Name: 'nightly', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 3,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' },
    Storage: { StorageKind: 'FileShare', Path: lb.share, PrimaryUserName: 'backup', PrimaryPassword: 'the-secret' },
    RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: 'P7D', MinimumNumberOfBackups: 2 },
  } as never);
  await c.protection.enableBackup({ kind: 'Application', id: app }, 'nightly');
  await c.protection.suspendBackup({ kind: 'Partition', id: p1 });
  await c.operations.backupPartition(p0, { storage: lb.storage });
  const done = await c.operations.waitForBackup(p0);
  assert.equal(done.BackupState, 'Success');
  const reader = await c.access.createToken({ Name: 'dashboards', Role: 'reader' } as never);
  const before = {
    policies: (await c.policies.list()).Items,
    backups: (await c.listing.partitionBackups(p0)).Items,
    progress: await c.operations.backupProgress(p0),
    configuration: [await c.protection.partitionConfiguration(p0), await c.protection.partitionConfiguration(p1)],
    tokens: (await c.access.listTokens()).Items,
    audit: (await c.access.auditLog({ maxResults: 1000 })).Items.length,
  };
  await lb.close();

  const url = await pgs.database(t);
  const first = await lifeboatCli(['catalog', 'migrate', '--from', dir, '--to', url, '--json'], { ...process.env });
  assert.equal(first.code, 0, first.stderr);
  const tables = new Map((JSON.parse(first.stdout) as { Tables: Array<{ Table: string; Rows: number }> }).Tables.map((x) => [x.Table, x.Rows]));
  assert.equal(tables.get('policies'), 1);
  assert.equal(tables.get('backups'), 1);
  assert.equal(tables.get('tokens'), 1);
  assert.ok((tables.get('operations') ?? 0) >= 1);
  assert.ok((tables.get('audit_log') ?? 0) >= before.audit);
  // The secret went over sealed: the clear text is nowhere in the new catalog.
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // the database is dropped (connections ended) after the test
  await client.connect();
  t.after(() => client.end().catch(() => undefined));
  const stored = (await client.query('SELECT policy FROM policies')).rows.map((r: { policy: string }) => r.policy).join('');
  assert.ok(stored.includes('lbsealed:v1:') && !stored.includes('the-secret'));

  // An instance on the new catalog, with the old key: the same answers.
  const next = await startTestLifeboat(t, { catalogUrl: url, catalogKeyFile: join(dir, 'catalog.key'), sample: false, scheduler: { manual: true }, fileShareRoots: [join(dir, 'backups')] });
  const n = next.client;
  assert.deepEqual((await n.policies.list()).Items, before.policies);
  assert.deepEqual((await n.listing.partitionBackups(p0)).Items, before.backups);
  assert.deepEqual(await n.operations.backupProgress(p0), before.progress);
  assert.deepEqual([await n.protection.partitionConfiguration(p0), await n.protection.partitionConfiguration(p1)], before.configuration);
  assert.deepEqual((await n.access.listTokens()).Items, before.tokens);
  assert.ok((await n.access.auditLog({ maxResults: 1000 })).Items.length >= before.audit);
  assert.equal((await new LifeboatClient({ baseUrl: next.url, token: reader.Token }).hierarchy.listApplications()).Items.length, 1, 'the reader token still works');
  // The sealed secret opens with the old key: the policy's storage is usable (an on-demand backup
  // to the policy's storage would need a host; VerifyBackup reads it from the service itself).
  const verified = await n.operations.verifyBackup(p0, { latest: true });
  assert.equal(verified.Ok, true);
  assert.equal(verified.BackupId, before.backups[0]?.BackupId);

  // Again into the full catalog: refused, nothing changed.
  const second = await lifeboatCli(['catalog', 'migrate', '--from', dir, '--to', url], { ...process.env });
  assert.notEqual(second.code, 0);
  assert.match(second.stderr, /not empty/);
  assert.equal((await n.policies.list()).Items.length, 1);
  assert.equal(Number((await client.query('SELECT count(*) AS n FROM backups')).rows[0].n), 1);
});

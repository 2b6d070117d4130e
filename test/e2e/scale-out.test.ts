/**
 * Lifeboat past one machine, with real processes on loopback: a private PostgreSQL, three
 * `lifeboat start --catalog postgres://…` instances (started at once: they migrate the empty
 * catalog once, under its lock) and three `lifeboat host` processes given all three instances'
 * URLs. Each phase kills something for real and checks what a user would see:
 * concurrent requests across instances; an instance killed under a client's requests; the leader
 * killed just before periodic backups fall due; a host killed mid-backup (down after its grace,
 * then restarted); PostgreSQL itself stopped and started.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import pg from 'pg';
import { LifeboatClient } from '../../src/client/lifeboat-client.ts';
import type { BackupInfoWire } from '../../src/wire/backups.ts';
import { TEST_ADMIN_TOKEN, assertFabricError, send } from '../support/api-http.ts';
import { waitFor } from '../support/lifeboat.ts';
import { postgresForTests } from '../support/postgres.ts';
import { Children, type HostProcess, type ServiceProcess, startHostProcess, startServiceProcess } from '../support/process-children.ts';
import { KvClient } from '../support/process-api.ts';
import { tempDir } from '../support/tmp.ts';

const pgs = postgresForTests();
const GRACE_S = 6;

interface Cluster {
  readonly instances: ServiceProcess[];
  readonly dataDirs: string[];
  readonly hosts: HostProcess[];
  readonly hostDirs: string[];
  readonly env: NodeJS.ProcessEnv;
  readonly url: string;
  readonly share: string;
}

const client = (url: string): LifeboatClient => new LifeboatClient({ baseUrl: url, token: TEST_ADMIN_TOKEN });

/** The leader lease as the catalog holds it now (a connection of its own: PostgreSQL restarts in a phase). */
async function leaseHolder(url: string): Promise<{ holder: string; token: number; untilUtc: string } | undefined> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const r = await db.query<{ holder: string; token: number; until_utc: string }>("SELECT holder, token, until_utc FROM leases WHERE name = 'background-work'");
    const row = r.rows[0];
    return row && new Date(row.until_utc) > new Date() ? { holder: row.holder, token: Number(row.token), untilUtc: row.until_utc } : undefined;
  } finally {
    await db.end();
  }
}

/** Which instance prints this holder as itself. */
function instanceOf(c: Cluster, holder: string): number {
  return c.instances.findIndex((s) => s.child.lines.some((l) => l.includes(`this instance is ${holder}`)));
}

function hostUrls(c: Pick<Cluster, 'instances'>): string {
  return c.instances.map((s) => s.url).join(',');
}

async function startHost(children: Children, c: Pick<Cluster, 'instances'>, i: number, dataDir: string): Promise<HostProcess> {
  return startHostProcess(children, { serviceUrl: hostUrls(c), hostId: `host${i}`, dataDir, service: `fabric:/App${i}/Kv`, partitioning: 'singleton' });
}

it('runs on PostgreSQL with three instances and three hosts, through kills of each part', { skip: pgs.skip, timeout: 900_000 }, async (t) => {
  const children = new Children(t);
  const url = await pgs.database(t);
  const keyFile = join(tempDir(t), 'catalog.key');
  writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const share = join(tempDir(t), 'share');
  mkdirSync(share, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    LIFEBOAT_CATALOG_URL: url, LIFEBOAT_CATALOG_KEY_FILE: keyFile, LIFEBOAT_HOST_GRACE_SECONDS: String(GRACE_S), LIFEBOAT_LEADER_LEASE_SECONDS: '5',
    LIFEBOAT_BACKUP_JITTER_SECONDS: '0', LIFEBOAT_FILESHARE_ROOTS: tmpdir(),
  };
  const dataDirs = [tempDir(t), tempDir(t), tempDir(t)];
  // All three at once: the empty catalog is migrated once, under its lock.
  const instances = await Promise.all(dataDirs.map((dataDir) => startServiceProcess(children, { dataDir, sample: false, env })));
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const versions = (await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => Number(r.version));
  await db.end();
  assert.ok(versions.length > 0);
  assert.deepEqual(versions, [...new Set(versions)], 'each migration applied once');
  const hostDirs = [tempDir(t), tempDir(t), tempDir(t)];
  const hosts = await Promise.all([0, 1, 2].map((i) => startHost(children, { instances }, i, hostDirs[i] as string)));
  const c: Cluster = { instances, dataDirs, hosts, hostDirs, env, url, share };
  const storage = { StorageKind: 'FileShare' as const, Path: share };
  const pid = (i: number): string => c.hosts[i]?.info.partitions[0] as string;

  await t.test('answers every request the same on every instance, and keeps the one-operation and one-name rules across them', async () => {
    const p0 = pid(0);
    await new KvClient(c.hosts[0]?.info.kv as string).put('k', 'v1');
    const backups = await Promise.all(Array.from({ length: 9 }, (_, i) => send(c.instances[i % 3]?.url as string, {
      method: 'POST', path: `/Partitions/${p0}/$/Backup?api-version=6.4`, body: { BackupStorage: storage },
    })));
    assert.deepEqual(backups.map((r) => r.status).sort(), [202, 409, 409, 409, 409, 409, 409, 409, 409], backups.map((r) => r.text).join('\n'));
    const policy = {
      Name: 'every-minute', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 2, Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1M' },
      Storage: { StorageKind: 'FileShare', Path: share },
    };
    const creates = await Promise.all(c.instances.map((s) => send(s.url, { method: 'POST', path: '/BackupRestore/BackupPolicies/$/Create?api-version=6.4', body: policy })));
    assert.deepEqual(creates.map((r) => r.status).sort(), [201, 409, 409], creates.map((r) => r.text).join('\n'));
    const done = await client(c.instances[1]?.url as string).operations.waitForBackup(p0, { timeoutMs: 60_000 });
    assert.equal(done.BackupState, 'Success', JSON.stringify(done));
    const answers = await Promise.all(c.instances.map(async (s) => {
      const lb = client(s.url);
      return { progress: await lb.operations.backupProgress(p0), backups: (await lb.listing.partitionBackups(p0)).Items, policies: (await lb.policies.list()).Items };
    }));
    for (const a of answers.slice(1)) assert.deepEqual(a, answers[0]);
  });

  await t.test('an instance killed under a client\'s reads and a host\'s backup: both go on through the others', async () => {
    // Hosts were given the instances in order, so they talk to the first: kill that one (leader or not).
    const victim = 0;
    const order = c.instances.map((s) => s.url);
    const lb = new LifeboatClient({ baseUrl: order[0] as string, baseUrls: order, token: TEST_ADMIN_TOKEN });
    const p2 = pid(2);
    const kv = new KvClient(c.hosts[2]?.info.kv as string);
    const big = (i: number): string => `${i}:`.padEnd(512 * 1024, String.fromCharCode(97 + (i % 26)));
    for (let i = 0; i < 40; i++) await kv.put(`big${i}`, big(i));
    await lb.operations.backupPartition(p2, { storage });
    await waitFor(() => lb.operations.backupProgress(p2), (p) => p.BackupState !== 'Accepted', 30_000, 'the backup to start');
    let answered = 0;
    const reads = (async () => {
      for (let i = 0; i < 200; i++) {
        assert.equal((await lb.listing.partitionBackups(pid(0))).Items.length, 1);
        answered++;
      }
    })();
    await waitFor(async () => answered, (n) => n >= 20, 30_000, 'reads under way');
    const during = (await lb.operations.backupProgress(p2)).BackupState;
    await c.instances[victim]?.child.kill('SIGKILL');
    await reads;
    assert.equal(answered, 200, 'every read answered, across the kill');
    // The host's reports went to another instance: the backup ends as it would have.
    const done = await lb.operations.waitForBackup(p2, { timeoutMs: 60_000 });
    t.diagnostic(`backup of a 20 MiB partition was ${during} at the instance's kill; it ended ${done.BackupState}`);
    assert.equal(done.BackupState, 'Success', JSON.stringify(done));
    assert.equal((await lb.listing.partitionBackups(p2)).Items.length, 1);
    // The killed instance comes back (same data dir); hosts and clients find it again by its new URL later.
    c.instances[victim] = await startServiceProcess(children, { dataDir: c.dataDirs[victim] as string, sample: false, env: c.env });
  });

  await t.test('the leader killed just before periodic backups fall due: another takes over within 15 s, and each backup is taken once', async () => {
    const admin = client(c.instances[0]?.url as string);
    const enabledAt = Date.now();
    // Three protection changes at once, one per instance: none loses another's.
    await Promise.all([0, 1, 2].map((i) => client(c.instances[i]?.url as string).protection.enableBackup({ kind: 'Application', id: `App${i}` }, 'every-minute')));
    for (const i of [0, 1, 2]) assert.equal((await admin.protection.partitionConfiguration(pid(i))).PolicyName, 'every-minute');
    const before = await Promise.all([0, 1, 2].map(async (i) => (await admin.listing.partitionBackups(pid(i))).Items.length));
    // Due a minute after the schedule started; the leader dies two seconds before.
    await new Promise((r) => setTimeout(r, Math.max(0, enabledAt + 58_000 - Date.now())));
    const leader = await leaseHolder(c.url);
    assert.ok(leader);
    const li = instanceOf(c, leader.holder);
    assert.ok(li >= 0, `the leader ${leader.holder} is one of ours`);
    const killedAt = Date.now();
    await c.instances[li]?.child.kill('SIGKILL');
    const next = await waitFor(() => leaseHolder(c.url), (h) => h !== undefined && h.holder !== leader.holder, 20_000, 'a new leader');
    const takeoverMs = Date.now() - killedAt;
    t.diagnostic(`leader failover: ${takeoverMs} ms (token ${leader.token} → ${next?.token})`);
    assert.ok(takeoverMs < 15_000, `taken over in ${takeoverMs} ms`);
    assert.ok((next?.token ?? 0) > leader.token, 'a greater fencing token');
    const alive = c.instances.find((_, i) => i !== li) as ServiceProcess;
    const lb = client(alive.url);
    await waitFor(async () => Promise.all([0, 1, 2].map(async (i) => (await lb.listing.partitionBackups(pid(i))).Items)),
      (lists) => lists.every((l, i) => l.length > (before[i] ?? 0)), 45_000, 'the periodic backups of the slot');
    // Until the next slot (a minute after this one), no second backup of this one.
    await new Promise((r) => setTimeout(r, Math.max(0, enabledAt + 110_000 - Date.now())));
    const settled: BackupInfoWire[][] = await Promise.all([0, 1, 2].map(async (i) => (await lb.listing.partitionBackups(pid(i))).Items));
    settled.forEach((l, i) => assert.equal(l.length, (before[i] ?? 0) + 1, `partition ${i}: one backup for the slot, not ${l.length - (before[i] ?? 0)}`));
    c.instances[li] = await startServiceProcess(children, { dataDir: c.dataDirs[li] as string, sample: false, env: c.env });
    for (const i of [0, 1, 2]) await admin.protection.disableBackup({ kind: 'Application', id: `App${i}` }).catch(() => undefined);
  });

  await t.test('a host killed mid-backup: down after its grace (its operation fails, health says so), then restarted, it serves again', async () => {
    const lb = client(c.instances[2]?.url as string);
    const p1 = pid(1);
    const kv = new KvClient(c.hosts[1]?.info.kv as string);
    const big = (i: number): string => `${i}:`.padEnd(512 * 1024, String.fromCharCode(97 + (i % 26)));
    for (let i = 0; i < 24; i++) await kv.put(`big${i}`, big(i));
    // Killed once the backup is under way, when we catch it there (a small backup may end first: then again).
    let during = 'Success';
    for (let attempt = 0; attempt < 3 && during === 'Success'; attempt++) {
      assert.equal((await send(c.instances[0]?.url as string, { method: 'POST', path: `/Partitions/${p1}/$/Backup?api-version=6.4`, body: { BackupStorage: storage } })).status, 202);
      during = (await waitFor(() => lb.operations.backupProgress(p1), (p) => p.BackupState !== 'Accepted', 30_000, 'the backup to start')).BackupState;
    }
    t.diagnostic(`the host was killed with its backup ${during}`);
    await c.hosts[1]?.child.kill('SIGKILL');
    const failed = await waitFor(() => lb.operations.backupProgress(p1), (p) => p.BackupState !== 'Accepted' && p.BackupState !== 'BackupInProgress', 60_000, 'the backup to end');
    assert.equal(failed.BackupState, 'Failure', JSON.stringify(failed));
    assert.equal(failed.FailureError?.Code, 'LIFEBOAT_E_HOST_LOST', JSON.stringify(failed));
    assert.match(failed.FailureError?.Message ?? '', /host host1/);
    const health = await lb.hierarchy.partitionHealth(p1);
    assert.equal(health.AggregatedHealthState, 'Error');
    assert.ok(health.HealthEvents.some((e) => e.Property === 'Host'));
    assertFabricError(await send(c.instances[1]?.url as string, { method: 'POST', path: `/Partitions/${p1}/$/Backup?api-version=6.4`, body: { BackupStorage: storage } }), 503, 'LIFEBOAT_E_HOST_LOST');
    // Restarted on the same data dir: it registers again and serves its partition.
    c.hosts[1] = await startHost(children, c, 1, c.hostDirs[1] as string);
    assert.equal(c.hosts[1].info.partitions[0], p1);
    assert.equal((await send(c.instances[1]?.url as string, { method: 'POST', path: `/Partitions/${p1}/$/Backup?api-version=6.4`, body: { BackupStorage: storage } })).status, 202);
    const ok = await lb.operations.waitForBackup(p1, { timeoutMs: 60_000 });
    assert.equal(ok.BackupState, 'Success', JSON.stringify(ok));
    assert.equal(await new KvClient(c.hosts[1].info.kv).get('big3'), big(3));
  });

  await t.test('PostgreSQL stopped: a clear 503 while it is down; started again, every instance goes on with nothing lost', async (tt) => {
    const server = pgs.server();
    if (!server) {
      tt.skip('LIFEBOAT_TEST_PG_URL names a server this test may not stop');
      return;
    }
    const lb = client(c.instances[0]?.url as string);
    const listed = (await lb.listing.partitionBackups(pid(0))).Items;
    await server.kill();
    const down = await send(c.instances[0]?.url as string, { method: 'GET', path: `/Partitions/${pid(0)}/$/GetBackups?api-version=6.4` });
    assertFabricError(down, 503, 'LIFEBOAT_E_CATALOG_UNAVAILABLE');
    await server.restart();
    for (const s of c.instances) {
      const back = await waitFor(async () => send(s.url, { method: 'GET', path: `/Partitions/${pid(0)}/$/GetBackups?api-version=6.4` }), (r) => r.status === 200, 30_000, 'the catalog back');
      assert.deepEqual((JSON.parse(back.text) as { Items: unknown[] }).Items, listed);
    }
    // Hosts, signals and the lease all came back: a new backup is carried out.
    assert.equal((await send(c.instances[2]?.url as string, { method: 'POST', path: `/Partitions/${pid(2)}/$/Backup?api-version=6.4`, body: { BackupStorage: storage } })).status, 202);
    const done = await client(c.instances[1]?.url as string).operations.waitForBackup(pid(2), { timeoutMs: 60_000 });
    assert.equal(done.BackupState, 'Success', JSON.stringify(done));
    await waitFor(() => leaseHolder(c.url).catch(() => undefined), (h) => h !== undefined, 30_000, 'a leader again');
  });
});

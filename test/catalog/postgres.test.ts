/**
 * The PostgreSQL catalog: the catalog contract (bare and under SealedCatalog) on a real server, and
 * what only several instances on one server show: migrations at once, signals across instances,
 * races of inserts, leases and sign-in codes across pools, and a PostgreSQL restart.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { describe, it } from 'node:test';
import pg from 'pg';
import { PostgresCatalog } from '../../src/catalog/postgres.ts';
import type { CatalogSignal, OperationRecord } from '../../src/catalog/port.ts';
import { SealedCatalog } from '../../src/catalog/sealed.ts';
import { isLifeboatError } from '../../src/core/errors.ts';
import { runCatalogContract } from '../contract/catalog.contract.ts';
import { postgresForTests } from '../support/postgres.ts';

const pgt = postgresForTests();
const skip = pgt.skip === undefined ? {} : { skip: pgt.skip };

type T = { after(fn: () => unknown): void };

async function open(t: T, url: string): Promise<PostgresCatalog> {
  const c = await PostgresCatalog.open(url, { poolSize: 4 });
  t.after(() => c.close().catch(() => undefined));
  return c;
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const P1 = '11111111-1111-4111-8111-111111111111';
const epoch = { DataLossVersion: '1', ConfigurationVersion: '1' };

function operation(id: string): OperationRecord {
  return {
    id, kind: 'Backup', partitionId: P1, state: 'Accepted', acceptedUtc: '2026-01-01T00:00:00.000Z', deadlineUtc: '2026-01-01T00:10:00.000Z',
    updatedUtc: '2026-01-01T00:00:00.000Z', request: {}, result: {}, failure: undefined,
  };
}

if (pgt.skip === undefined) {
  let url = '';
  runCatalogContract({
    name: 'PostgreSQL',
    create: async (t) => {
      url = await pgt.database(t);
      return open(t, url);
    },
    reopen: async (t) => open(t, url),
    access: (c) => (c as PostgresCatalog).access,
  });

  const key = randomBytes(32);
  let sealedUrl = '';
  runCatalogContract({
    name: 'SealedCatalog over PostgreSQL',
    create: async (t) => {
      sealedUrl = await pgt.database(t);
      const c = new SealedCatalog(await PostgresCatalog.open(sealedUrl, { poolSize: 4 }), key);
      t.after(() => c.close().catch(() => undefined));
      return c;
    },
    reopen: async (t) => {
      const c = new SealedCatalog(await PostgresCatalog.open(sealedUrl, { poolSize: 4 }), key);
      t.after(() => c.close().catch(() => undefined));
      return c;
    },
  });
}

describe('PostgreSQL catalog: several instances on one database', skip, () => {
  it('migrates once when two instances open an empty database at once', async (t) => {
    const url = await pgt.database(t);
    const [a, b] = await Promise.all([open(t, url), open(t, url)]);
    await a.hierarchy.upsertHost('h1', 'i1', '2026-01-01T00:00:00.000Z');
    assert.equal((await b.hierarchy.getHost('h1'))?.incarnation, 'i1');
    assert.ok(await a.sizeBytes() > 0, 'the database has a size');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const rows = (await c.query<{ version: number; n: string }>('SELECT version, count(*) AS n FROM schema_migrations GROUP BY version ORDER BY version')).rows;
      assert.deepEqual(rows.map((r) => [r.version, Number(r.n)]), [1, 2, 3, 4, 5, 6, 7].map((v) => [v, 1]));
    } finally {
      await c.end();
    }
  });

  it('delivers a signal published on one instance to the subscribers of another', async (t) => {
    const url = await pgt.database(t);
    const [a, b] = [await open(t, url), await open(t, url)];
    const got: CatalogSignal[] = [];
    b.signals.subscribe((s) => got.push(s));
    await a.signals.publish({ kind: 'orders', hostId: 'h9' });
    await until('the signal on the other instance', () => got.length > 0);
    assert.deepEqual(got, [{ kind: 'orders', hostId: 'h9' }]);
    // A payload that is no signal (someone else's NOTIFY on the channel) is ignored.
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    await raw.query('SELECT pg_notify(\'lifeboat\', \'not json\'), pg_notify(\'lifeboat\', \'{"kind":"bogus"}\')');
    await raw.end();
    await a.signals.publish({ kind: 'protection' });
    await until('the next signal', () => got.length > 1);
    assert.deepEqual(got, [{ kind: 'orders', hostId: 'h9' }, { kind: 'protection' }]);
  });

  it('accepts one active operation per partition across instances, 20 rounds', async (t) => {
    const url = await pgt.database(t);
    const [a, b] = [await open(t, url), await open(t, url)];
    await a.hierarchy.upsertHost('h1', 'i1', '2026-01-01T00:00:00.000Z');
    await a.hierarchy.registerService('h1', { name: 'fabric:/A/S', application: 'fabric:/A', scheme: { kind: 'Singleton' }, hasPersistedState: true },
      [{ id: P1, info: { kind: 'Singleton' }, epoch, lastLsn: '0' }]);
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all([a, b, a, b].map((c, i) => c.operations.insert(operation(`r${round}-${i}`))));
      assert.equal(results.filter((r) => r.inserted).length, 1, `round ${round}`);
      const active = await b.operations.active();
      assert.equal(active.length, 1);
      for (const r of results) if (!r.inserted) assert.equal(r.active.id, active[0]?.id);
      assert.equal(await a.operations.update(active[0]?.id as string, { state: 'Success', updatedUtc: '2026-01-01T00:01:00.000Z' }), true);
    }
  });

  it('gives a lease to one holder across instances, the token growing with each taking', async (t) => {
    const url = await pgt.database(t);
    const [a, b] = [await open(t, url), await open(t, url)];
    const at = (s: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    let last = 0;
    for (let round = 0; round < 10; round++) {
      // Each round the lease expired (the previous holder's until is past): exactly one of the racers takes it.
      const now = at(round * 10);
      const got = await Promise.all([a, b, a, b].map((c, i) => c.leases.acquire('leader', `holder-${i}`, now, at(round * 10 + 5))));
      const holders = got.filter((g) => g !== undefined);
      assert.equal(holders.length, 1, `round ${round}`);
      assert.ok((holders[0]?.token ?? 0) > last, 'the token grows');
      last = holders[0]?.token ?? 0;
      assert.equal((await b.leases.get('leader'))?.holder, holders[0]?.holder);
    }
  });

  it('takes a sign-in code once across instances, and keeps tokens and the audit log in the database', async (t) => {
    const url = await pgt.database(t);
    const [a, b] = [await open(t, url), await open(t, url)];
    await a.access.insertSignInCode('code', '2026-01-01T00:10:00.000Z');
    const takes = await Promise.all([a, b, a, b, a, b].map((c) => c.access.takeSignInCode('code', '2026-01-01T00:05:00.000Z')));
    assert.equal(takes.filter(Boolean).length, 1);
    // Tokens: by name, refused twice, found by hash on the other instance, gone once deleted.
    assert.equal(await a.access.insertToken({ name: 'ops', role: 'admin', hash: 'h-ops', createdUtc: '2026-01-01T00:00:00.000Z' }), true);
    assert.equal(await b.access.insertToken({ name: 'ops', role: 'reader', hash: 'h-other', createdUtc: '2026-01-01T00:00:00.000Z' }), false);
    assert.equal(await a.access.insertToken({ name: 'host-1', role: 'host', hostId: 'h1', hash: 'h-host', createdUtc: '2026-01-01T00:00:00.000Z' }), true);
    assert.deepEqual((await b.access.listTokens()).map((x) => [x.name, x.role, x.hostId]), [['host-1', 'host', 'h1'], ['ops', 'admin', undefined]]);
    assert.equal((await b.access.tokenByHash('h-ops'))?.name, 'ops');
    assert.equal(await b.access.deleteToken('ops'), true);
    assert.equal(await a.access.tokenByHash('h-ops'), undefined);
    assert.equal(await a.access.deleteToken('ops'), false);
    // The audit log: appended from both instances, paged by seq.
    const entry = { timeUtc: '2026-01-01T00:00:00.000Z', principal: 'ops', role: 'admin', via: 'token', method: 'POST', route: '/x', entity: '', status: 200, outcome: 'allowed' as const };
    for (let i = 0; i < 7; i++) await (i % 2 ? a : b).access.appendAudit({ ...entry, entity: `e${i}` });
    const first = await a.access.listAudit(0, 4);
    const rest = await b.access.listAudit(first.at(-1)?.seq ?? 0, 4);
    assert.deepEqual([...first, ...rest].map((x) => x.entity), ['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6']);
    assert.ok(first.every((x, i) => i === 0 || x.seq > (first[i - 1]?.seq ?? 0)));
    assert.deepEqual(rest[0] && { ...rest[0], seq: 0 }, { ...entry, entity: 'e4', seq: 0 });
  });

  it('refuses to open a catalog no server answers for, naming where without the password', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const err = await PostgresCatalog.open(`postgres://lifeboat:sekret@127.0.0.1:${port}/catalog`).then((c) => c.close(), (e: unknown) => e);
    assert.ok(isLifeboatError(err, 'LIFEBOAT_E_CATALOG_UNAVAILABLE'), String(err));
    assert.match((err as Error).message, new RegExp(`^The catalog database at 127\\.0\\.0\\.1:${port} cannot be reached: .*ECONNREFUSED`));
    assert.doesNotMatch((err as Error).message, /sekret/);
  });

  it('is unavailable while PostgreSQL restarts, then works again without reopening, signals included', async (t) => {
    const server = pgt.server();
    if (!server) {
      t.skip('LIFEBOAT_TEST_PG_URL names a server this test may not restart');
      return;
    }
    const url = await pgt.database(t);
    const [a, b] = [await open(t, url), await open(t, url)];
    await a.hierarchy.upsertHost('h1', 'i1', '2026-01-01T00:00:00.000Z');
    const got: CatalogSignal[] = [];
    b.signals.subscribe((s) => got.push(s));
    await server.kill();
    const err = await a.hierarchy.getHost('h1').then(() => undefined, (e: unknown) => e);
    assert.ok(isLifeboatError(err, 'LIFEBOAT_E_CATALOG_UNAVAILABLE'), `unavailable, not ${String(err)}`);
    assert.match((err as Error).message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
    await assert.rejects(a.operations.insert(operation('down')), (e) => isLifeboatError(e, 'LIFEBOAT_E_CATALOG_UNAVAILABLE'));
    await server.restart();
    // The pool opens new connections by itself; a call may still meet one that the kill broke.
    await until('the catalog to answer again', async () => (await a.hierarchy.getHost('h1').catch(() => undefined))?.incarnation === 'i1');
    assert.deepEqual((await a.operations.insert(operation('up'))).inserted, true);
    assert.equal((await b.operations.get('up'))?.state, 'Accepted');
    // The LISTEN connection came back: a signal published now reaches the other instance.
    await until('the LISTEN connection to come back', () => b.listening, 20_000);
    // Signals are hints: one sent before the listener is back is lost, so it is sent until one arrives.
    await until('the signal after the restart', async () => {
      await a.signals.publish({ kind: 'ended', operationId: 'up' });
      await new Promise((r) => setTimeout(r, 100));
      return got.length > 0;
    }, 20_000);
    assert.deepEqual(got[0], { kind: 'ended', operationId: 'up' });
    // A clean restart (pg_ctl stop -m fast: sessions end with 57P01) while calls keep coming: every failure is "unavailable".
    let restarted = false;
    const restarting = server.restart().finally(() => { restarted = true; });
    const failures: unknown[] = [];
    while (!restarted) {
      await a.hierarchy.getHost('h1').catch((e: unknown) => failures.push(e));
      await new Promise((r) => setTimeout(r, 10));
    }
    await restarting;
    assert.ok(failures.length > 0, 'the calls met the downtime');
    assert.deepEqual(failures.filter((e) => !isLifeboatError(e, 'LIFEBOAT_E_CATALOG_UNAVAILABLE')), []);
    await until('the catalog to answer after the clean restart', async () => (await a.hierarchy.getHost('h1').catch(() => undefined))?.incarnation === 'i1');
    await until('the LISTEN connection to come back again', () => b.listening, 20_000);
    const before = got.length;
    await until('the signal after the clean restart', async () => {
      await a.signals.publish({ kind: 'protection' });
      await new Promise((r) => setTimeout(r, 100));
      return got.length > before;
    }, 20_000);
    assert.deepEqual(got.at(-1), { kind: 'protection' });
  });
});

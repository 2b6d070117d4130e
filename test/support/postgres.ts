/**
 * PostgreSQL for tests: `postgresForTests()` starts one private cluster per test file (from
 * bench/emulators/postgres.ts, which the benchmarks share), or uses the server LIFEBOAT_TEST_PG_URL
 * names, and gives each test a fresh database (dropped after it). PostgreSQL missing and not
 * installable is a reason to skip, which CI refuses (LIFEBOAT_REQUIRE_ALL_BACKENDS=1: every test of
 * the file fails instead); a server that is installed but does not start fails the tests.
 */
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import pg from 'pg';
import { type Postgres, postgresMissing, startPostgres } from '../../bench/emulators/postgres.ts';

export { type Postgres, postgresMissing, startPostgres } from '../../bench/emulators/postgres.ts';

export interface PostgresForTests {
  /** Why the PostgreSQL tests cannot run here, or undefined. */
  readonly skip: string | undefined;
  /** The server this file started; undefined with LIFEBOAT_TEST_PG_URL (a server we may not restart). Only inside tests. */
  server(): Postgres | undefined;
  /** A new empty database, dropped after the test: its URL. */
  database(t: { after(fn: () => unknown): void }): Promise<string>;
}

export function postgresForTests(): PostgresForTests {
  const external = process.env.LIFEBOAT_TEST_PG_URL || undefined;
  let skip = external === undefined ? postgresMissing() : undefined;
  if (skip !== undefined && process.env.LIFEBOAT_REQUIRE_ALL_BACKENDS === '1') {
    const why = skip;
    skip = undefined;
    before(() => { throw new Error(`PostgreSQL is required (LIFEBOAT_REQUIRE_ALL_BACKENDS=1) but ${why}.`); });
  }
  let server: Postgres | undefined;
  if (skip === undefined && external === undefined) {
    before(async () => { server = await startPostgres(); });
    after(async () => { await server?.stop(); });
  }
  const adminUrl = (): string => {
    if (external !== undefined) return external;
    if (!server) throw new Error(skip ?? 'PostgreSQL is not running (its before hook failed or has not run)');
    return server.url;
  };
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: adminUrl() });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  return {
    skip,
    server: () => server,
    database: async (t) => {
      const name = `lb_${randomBytes(8).toString('hex')}`;
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      // FORCE: a catalog the test left open (or a killed server's half-open pool) does not keep it.
      t.after(() => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => undefined));
      const url = new URL(adminUrl());
      url.pathname = `/${name}`;
      return url.toString();
    },
  };
}

/**
 * `lifeboat catalog migrate --from <data-dir> --to postgres://…`: moves an embedded installation's
 * catalog (the SQLite file in its data dir) into a PostgreSQL one, so that several instances can
 * share it. Everything that lasts goes over, table by table, unchanged (the adapters keep the same
 * tables and columns): hosts, services, partitions, operations with their history, the backup
 * index, policies (secrets stay sealed under the same catalog key), protection, the scheduler's
 * and the retention sweeper's states, tokens and the audit log. Leases and sign-in codes are of
 * running processes and stay behind.
 *
 * The source is read in one read transaction (one consistent moment; stop Lifeboat first, so
 * nothing changes after it), and the target is written in one transaction, refused unless it is
 * empty, and checked row for row before it commits: a migration is all or nothing.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LifeboatError } from '../core/errors.ts';
import { SqliteCatalog } from '../catalog/sqlite.ts';

/** Of running processes, not of the installation. */
const LEFT_BEHIND = new Set(['leases', 'sign_in_codes', 'schema_migrations']);
const BATCH_ROWS = 500;

export interface MigratedTable {
  readonly table: string;
  readonly rows: number;
}

interface PgColumn {
  readonly name: string;
  readonly type: string;
  /** GENERATED ALWAYS AS IDENTITY: inserted with OVERRIDING SYSTEM VALUE, its sequence moved past the copied values. */
  readonly identity: boolean;
}

/** Copies the catalog of `fromDataDir` into the (empty) PostgreSQL catalog at `toUrl`; what was copied, per table. */
export async function migrateCatalog(fromDataDir: string, toUrl: string): Promise<MigratedTable[]> {
  const file = join(resolve(fromDataDir), 'catalog.sqlite');
  if (!existsSync(file)) throw new LifeboatError('E_INVALIDARG', `${file} does not exist: --from takes the data dir of an embedded Lifeboat (where catalog.sqlite is).`);
  // Both brought to the newest schema by their adapters first, so their tables match.
  await new SqliteCatalog(file).close();
  const { PostgresCatalog } = await import('../catalog/postgres.ts');
  await (await PostgresCatalog.open(toUrl)).close();

  const source = new Database(file, { readonly: true, fileMustExist: true });
  const target = new pg.Client({ connectionString: toUrl });
  await target.connect();
  try {
    const tables = (source.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>)
      .map((r) => r.name).filter((t) => !LEFT_BEHIND.has(t));
    await target.query('BEGIN');
    source.prepare('BEGIN').run(); // one consistent moment of the source
    const copied: MigratedTable[] = [];
    for (const table of tables) {
      const columns = await pgColumns(target, table);
      if (columns.length === 0) throw new LifeboatError('E_INVALIDARG', `The PostgreSQL catalog has no table ${table}: it is older than this catalog; upgrade Lifeboat there first.`);
      const existing = Number((await target.query(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n ?? 0);
      if (existing > 0) throw new LifeboatError('E_INVALIDARG', `The PostgreSQL catalog is not empty (table ${table} has ${existing} rows): a migration goes into a new, empty catalog only.`);
      const sqliteColumns = (source.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name);
      const byName = new Map(columns.map((c) => [c.name, c]));
      const missing = sqliteColumns.filter((c) => !byName.has(c));
      if (missing.length > 0) throw new LifeboatError('E_INVALIDARG', `The PostgreSQL table ${table} lacks the columns ${missing.join(', ')}: it is older than this catalog.`);
      const cols = sqliteColumns.map((c) => byName.get(c) as PgColumn);
      const rows = source.prepare(`SELECT ${sqliteColumns.join(', ')} FROM ${table}`).raw().iterate() as IterableIterator<unknown[]>;
      let n = 0;
      let batch: unknown[][] = [];
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        const values: unknown[] = [];
        const tuples = batch.map((row) => `(${row.map((v, i) => {
          values.push(pgValue(v, (cols[i] as PgColumn).type));
          return `$${values.length}`;
        }).join(', ')})`);
        const overriding = cols.some((c) => c.identity) ? ' OVERRIDING SYSTEM VALUE' : '';
        await target.query(`INSERT INTO ${table} (${sqliteColumns.join(', ')})${overriding} VALUES ${tuples.join(', ')}`, values);
        n += batch.length;
        batch = [];
      };
      for (const row of rows) {
        batch.push(row);
        if (batch.length >= BATCH_ROWS) await flush();
      }
      await flush();
      for (const c of cols.filter((x) => x.identity)) {
        await target.query(`SELECT setval(pg_get_serial_sequence('${table}', '${c.name}'), GREATEST(coalesce(max(${c.name}), 0), 1), max(${c.name}) IS NOT NULL) FROM ${table}`);
      }
      const there = Number((await target.query(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n ?? 0);
      const here = (source.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      if (there !== here || n !== here) throw new LifeboatError('E_FAIL', `Table ${table}: ${here} rows in the source, ${there} in the target after copying; nothing was committed.`);
      copied.push({ table, rows: n });
    }
    await target.query('COMMIT');
    return copied;
  } catch (err) {
    await target.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    source.close();
    await target.end();
  }
}

async function pgColumns(client: pg.Client, table: string): Promise<PgColumn[]> {
  const r = await client.query<{ column_name: string; data_type: string; is_identity: string }>(
    'SELECT column_name, data_type, is_identity FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position', [table]);
  return r.rows.map((c) => ({ name: c.column_name, type: c.data_type, identity: c.is_identity === 'YES' }));
}

/** A SQLite value as the PostgreSQL column takes it: SQLite keeps booleans as 0 and 1. */
function pgValue(v: unknown, type: string): unknown {
  if (type === 'boolean' && typeof v === 'number') return v !== 0;
  if (typeof v === 'bigint') return v.toString();
  return v;
}

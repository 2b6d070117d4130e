/**
 * One partition's SQLite database (one generation of it): schema, prepared statements and the
 * row-level operations the partition builds on. A partition's state is the `entries` of its
 * dictionaries; every committed change is also appended to `changes` in the same SQLite
 * transaction, numbered by LSN, so incremental backups can read what happened since a backup.
 */
import { chmodSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Epoch } from '../core/epoch.ts';
import { CHANGE_RECORD_OVERHEAD, ChangeOp, type ChangeRecord } from './changelog-codec.ts';

export const STORE_FORMAT = 1;

export type Durability = 'full' | 'normal';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS partition_meta (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  format INTEGER NOT NULL,
  partition_id TEXT NOT NULL,
  data_loss_version INTEGER NOT NULL,
  configuration_version INTEGER NOT NULL,
  write_dlv INTEGER NOT NULL,            -- epoch of the last commit; 0:0 before the first
  write_cv INTEGER NOT NULL,
  base_lsn INTEGER NOT NULL,
  log_truncated_through INTEGER NOT NULL,
  last_backup_id TEXT,
  last_backup_chain_id TEXT,
  last_backup_dlv INTEGER,
  last_backup_cv INTEGER,
  last_backup_lsn INTEGER,
  chain_log_bytes INTEGER
);
CREATE TABLE IF NOT EXISTS dictionaries (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS entries (
  dict INTEGER NOT NULL, key TEXT NOT NULL, value NOT NULL, PRIMARY KEY (dict, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
  lsn INTEGER NOT NULL, seq INTEGER NOT NULL, op INTEGER NOT NULL, dict INTEGER NOT NULL, key TEXT, value,
  PRIMARY KEY (lsn, seq)
) WITHOUT ROWID;
`;

export interface MetaRow {
  partition_id: string;
  data_loss_version: bigint;
  configuration_version: bigint;
  write_dlv: bigint;
  write_cv: bigint;
  base_lsn: bigint;
  log_truncated_through: bigint;
  last_backup_id: string | null;
  last_backup_chain_id: string | null;
  last_backup_dlv: bigint | null;
  last_backup_cv: bigint | null;
  last_backup_lsn: bigint | null;
  chain_log_bytes: bigint | null;
}

/** Opens a database file with the pragmas every connection of ours uses. */
export function openDatabase(file: string, opts: { readonly?: boolean; durability?: Durability; create?: boolean } = {}): Database.Database {
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: !(opts.create ?? false) });
  try {
    db.defaultSafeIntegers(true);
    if (!opts.readonly) {
      // The partition's data is the owner's only. Before WAL mode: SQLite gives the -wal and -shm
      // files the database file's mode (those an older version left are made private too).
      privateFile(file);
      privateFile(`${file}-wal`);
      privateFile(`${file}-shm`);
      db.pragma('journal_mode = WAL');
      // A long backup lets the WAL grow (it cannot be checkpointed meanwhile); shrink it afterwards.
      db.pragma('journal_size_limit = 67108864');
      db.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function privateFile(file: string): void {
  try {
    chmodSync(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export function initSchema(db: Database.Database, partitionId: string, epoch: Epoch): void {
  db.transaction(() => {
    db.exec(SCHEMA);
    db.prepare(`INSERT INTO partition_meta (singleton, format, partition_id, data_loss_version, configuration_version,
        write_dlv, write_cv, base_lsn, log_truncated_through) VALUES (1, ?, ?, ?, ?, 0, 0, 0, 0)`)
      .run(STORE_FORMAT, partitionId, epoch.dataLossVersion, epoch.configurationVersion);
  })();
}

/** Prepared statements over one open database. */
export class Store {
  readonly db: Database.Database;
  private readonly s;

  /** Runs `fn` in one SQLite transaction (built once: wrapping per call costs more than a small commit). */
  readonly inTransaction: (fn: () => void) => void;

  constructor(db: Database.Database) {
    this.db = db;
    this.inTransaction = db.transaction((fn: () => void) => fn());
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      meta: p('SELECT * FROM partition_meta WHERE singleton = 1'),
      maxLsn: p('SELECT max(lsn) AS lsn FROM changes'),
      dicts: p('SELECT id, name FROM dictionaries'),
      get: p('SELECT value FROM entries WHERE dict = ? AND key = ?'),
      count: p('SELECT count(*) AS n FROM entries WHERE dict = ?'),
      upsert: p('INSERT INTO entries (dict, key, value) VALUES (?, ?, ?) ON CONFLICT (dict, key) DO UPDATE SET value = excluded.value'),
      delete: p('DELETE FROM entries WHERE dict = ? AND key = ?'),
      clearDict: p('DELETE FROM entries WHERE dict = ?'),
      createDict: p('INSERT INTO dictionaries (id, name) VALUES (?, ?)'),
      dropDict: p('DELETE FROM dictionaries WHERE id = ?'),
      log: p('INSERT INTO changes (lsn, seq, op, dict, key, value) VALUES (?, ?, ?, ?, ?, ?)'),
      setWriteEpoch: p('UPDATE partition_meta SET write_dlv = ?, write_cv = ? WHERE singleton = 1'),
      logBytesAfter: p(`SELECT coalesce(sum(${CHANGE_RECORD_OVERHEAD} + coalesce(length(CAST(key AS BLOB)), 0) + coalesce(length(CAST(value AS BLOB)), 0)), 0) AS bytes
        FROM changes WHERE lsn > ?`),
      deleteLogUpTo: p('DELETE FROM changes WHERE (lsn, seq) IN (SELECT lsn, seq FROM changes WHERE lsn <= ? ORDER BY lsn, seq LIMIT ?)'),
    };
  }

  meta(): MetaRow {
    return this.s.meta.get() as MetaRow;
  }

  /** LSN of the last committed change: the newest logged change, or the base when the log is empty. */
  lastLsn(meta: MetaRow = this.meta()): bigint {
    const row = this.s.maxLsn.get() as { lsn: bigint | null };
    return row.lsn !== null && row.lsn > meta.base_lsn ? row.lsn : meta.base_lsn;
  }

  dictionaries(): Map<string, number> {
    const out = new Map<string, number>();
    for (const r of this.s.dicts.all() as Array<{ id: bigint; name: string }>) out.set(r.name, Number(r.id));
    return out;
  }

  get(dict: number, key: string): string | Buffer | undefined {
    const row = this.s.get.get(dict, key) as { value: string | Buffer } | undefined;
    return row?.value;
  }

  count(dict: number): number {
    return Number((this.s.count.get(dict) as { n: bigint }).n);
  }

  /** Rows of one dictionary in key order, within optional bounds. */
  range(dict: number, b: { lower?: string; lowerInclusive?: boolean; upper?: string; limit?: number; reverse?: boolean }): Array<{ key: string; value: string | Buffer }> {
    const where = ['dict = ?'];
    const args: unknown[] = [dict];
    if (b.lower !== undefined) {
      where.push(b.lowerInclusive === false ? 'key > ?' : 'key >= ?');
      args.push(b.lower);
    }
    if (b.upper !== undefined) {
      where.push('key < ?');
      args.push(b.upper);
    }
    let sql = `SELECT key, value FROM entries WHERE ${where.join(' AND ')} ORDER BY key ${b.reverse ? 'DESC' : 'ASC'}`;
    if (b.limit !== undefined) {
      sql += ' LIMIT ?';
      args.push(b.limit);
    }
    return this.db.prepare(sql).all(...args) as Array<{ key: string; value: string | Buffer }>;
  }

  upsert(dict: number, key: string, value: string | Uint8Array): void {
    this.s.upsert.run(dict, key, value);
  }

  /** Returns whether an entry was deleted. */
  delete(dict: number, key: string): boolean {
    return this.s.delete.run(dict, key).changes > 0;
  }

  createDictionary(id: number, name: string): void {
    this.s.createDict.run(id, name);
  }

  dropDictionary(id: number): void {
    this.s.clearDict.run(id);
    this.s.dropDict.run(id);
  }

  log(lsn: bigint, seq: number, op: ChangeOp, dict: number, key: string | null, value: string | Uint8Array | null): void {
    this.s.log.run(lsn, seq, op, dict, key, value);
  }

  setWriteEpoch(epoch: Epoch): void {
    this.s.setWriteEpoch.run(epoch.dataLossVersion, epoch.configurationVersion);
  }

  logBytesAfter(lsn: bigint): number {
    return Number((this.s.logBytesAfter.get(lsn) as { bytes: bigint }).bytes);
  }

  /** Deletes at most `limit` of the oldest logged changes with LSN ≤ `through`; returns how many. */
  deleteLogUpTo(through: bigint, limit: number): number {
    return this.s.deleteLogUpTo.run(through, limit).changes;
  }

  /** Applies one logged change to the entries, as a restore replays an incremental backup. */
  apply(r: ChangeRecord): void {
    switch (r.op) {
      case ChangeOp.Set:
        if (r.key === null || r.value === null) throw new Error(`set at LSN ${r.lsn} without key or value`);
        this.upsert(r.dict, r.key, r.value);
        break;
      case ChangeOp.Delete:
        if (r.key === null) throw new Error(`delete at LSN ${r.lsn} without key`);
        this.delete(r.dict, r.key);
        break;
      case ChangeOp.CreateDictionary:
        if (r.key === null) throw new Error(`dictionary creation at LSN ${r.lsn} without a name`);
        this.createDictionary(r.dict, r.key);
        break;
      case ChangeOp.DropDictionary:
        this.dropDictionary(r.dict);
        break;
    }
  }
}

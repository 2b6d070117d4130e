/**
 * The catalog on SQLite (the embedded default): one file, WAL mode, synchronous=FULL. One process
 * serves it: its signals go between that process's parts (an EventEmitter); leases, claims and
 * fences still hold in the file, so the rules are the same as on PostgreSQL.
 */
import { EventEmitter } from 'node:events';
import { chmodSync } from 'node:fs';
import Database from 'better-sqlite3';
import { applicationOf } from '../core/ids.ts';
import { partitionInfoToJson, schemeFromJson, schemeToJson } from '../core/partitioning.ts';
import {
  type BackupEntity, type Outcome, type PolicyNames, type ProtectionMapping, type ProtectionState, deletePolicy, entityKey,
} from '../core/protection.ts';
import type {
  BackupFilter, BackupIndex, BackupPageQuery, BackupRecord, Catalog, CatalogSignal, Fence, HierarchyStore, HostRecord, EndOutcome, HostReportRecords, HostSighting, LeaseRecord, LeaseStore,
  OperationKind, OperationPatch, OperationRecord, OperationStore, PartitionRecord, PeriodicScheduleRecord, PolicyDeletion, PolicyRecord, PolicyStore, ProtectionChange,
  RetentionStateRecord, ScheduleStore, ServiceRecord, SignalBus,
} from './port.ts';
import { AUDIT_KEEP, type AccessStore, type AuditRecord, type TokenRecord } from './access-port.ts';
import { ACTIVE, type BackupRow, type OpRow, type PartRow, type PolicyRow, RELEASED_UTC, type TokenRow, backup, notLeader, op, part, policyRecord, token } from './rows.ts';

const MIGRATIONS = [
  `CREATE TABLE hosts (id TEXT PRIMARY KEY, registered_utc TEXT NOT NULL, last_seen_utc TEXT NOT NULL);
   CREATE TABLE services (name TEXT PRIMARY KEY, application TEXT NOT NULL, scheme TEXT NOT NULL, has_persisted_state INTEGER NOT NULL);
   CREATE INDEX services_by_app ON services (application, name);
   CREATE TABLE partitions (id TEXT PRIMARY KEY, service_name TEXT NOT NULL, ordinal INTEGER NOT NULL, info TEXT NOT NULL, host_id TEXT NOT NULL,
     dlv TEXT NOT NULL, cv TEXT NOT NULL, last_lsn TEXT NOT NULL);
   CREATE INDEX partitions_by_service ON partitions (service_name, ordinal);
   CREATE TABLE operations (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, partition_id TEXT NOT NULL, state TEXT NOT NULL,
     active INTEGER NOT NULL, accepted_utc TEXT NOT NULL, deadline_utc TEXT NOT NULL, updated_utc TEXT NOT NULL,
     request TEXT NOT NULL, result TEXT NOT NULL, failure TEXT);
   CREATE UNIQUE INDEX one_active_operation ON operations (partition_id) WHERE active = 1;
   CREATE INDEX operations_by_partition ON operations (partition_id, kind, seq);
   CREATE TABLE backups (backup_id TEXT PRIMARY KEY, chain_id TEXT NOT NULL, parent_id TEXT NOT NULL, application_name TEXT NOT NULL,
     service_name TEXT NOT NULL, partition_id TEXT NOT NULL, partition_info TEXT NOT NULL, location TEXT NOT NULL, backup_type TEXT NOT NULL,
     dlv TEXT NOT NULL, cv TEXT NOT NULL, lsn TEXT NOT NULL, creation_utc TEXT NOT NULL, storage_key TEXT NOT NULL);
   CREATE INDEX backups_by_partition ON backups (service_name, partition_id, creation_utc);
   CREATE INDEX backups_by_app ON backups (application_name, service_name, partition_id, creation_utc);`,
  // 2: backup policies and protection (issue 4).
  `CREATE TABLE policies (name TEXT PRIMARY KEY, policy TEXT NOT NULL, unique_id TEXT NOT NULL, created_utc TEXT NOT NULL, updated_utc TEXT NOT NULL);
   CREATE TABLE protection_mappings (entity_key TEXT PRIMARY KEY, entity TEXT NOT NULL, policy_name TEXT NOT NULL);
   CREATE INDEX protection_mappings_by_policy ON protection_mappings (policy_name, entity_key);
   CREATE TABLE protection_suspensions (entity_key TEXT PRIMARY KEY, entity TEXT NOT NULL);`,
  // 3: the periodic scheduler's state per partition (issue 4).
  'CREATE TABLE periodic_schedules (partition_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_utc TEXT NOT NULL);',
  // 4: the retention sweeper's state per partition (issue 4).
  'CREATE TABLE retention_states (partition_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_utc TEXT NOT NULL);',
  // 5: API tokens (hashes only) and the audit log (issue 19).
  `CREATE TABLE tokens (name TEXT PRIMARY KEY, role TEXT NOT NULL, host_id TEXT, hash TEXT NOT NULL UNIQUE, created_utc TEXT NOT NULL);
   CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, time_utc TEXT NOT NULL, principal TEXT NOT NULL, role TEXT NOT NULL, via TEXT NOT NULL,
     method TEXT NOT NULL, route TEXT NOT NULL, entity TEXT NOT NULL, status INTEGER NOT NULL, outcome TEXT NOT NULL);`,
  // 6: scale-out (issue 22): host incarnations and sightings, order claims, leases, sign-in codes;
  // the backup index in its paging order (keyset paging needs backup_id in the index).
  `ALTER TABLE hosts ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
   ALTER TABLE hosts ADD COLUMN polling INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE hosts ADD COLUMN hung_up INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE operations ADD COLUMN claimed_host TEXT;
   ALTER TABLE operations ADD COLUMN claimed_utc TEXT;
   ALTER TABLE partitions ADD COLUMN skip_auto_restore_until TEXT;
   CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, token INTEGER NOT NULL, until_utc TEXT NOT NULL);
   CREATE TABLE sign_in_codes (hash TEXT PRIMARY KEY, expires_utc TEXT NOT NULL);
   DROP INDEX backups_by_partition;
   DROP INDEX backups_by_app;
   CREATE INDEX backups_in_order ON backups (service_name, partition_id, creation_utc, backup_id);
   CREATE INDEX backups_by_app ON backups (application_name, service_name, partition_id, creation_utc, backup_id);
   CREATE INDEX backups_by_partition ON backups (partition_id, creation_utc, backup_id);`,
  // 7: the next operation's seq is max(seq) + 1, read from an index, not a scan of every operation
  // ever; a host's partitions (its orders, a registration's checks) without a scan of them all.
  `CREATE INDEX operations_by_seq ON operations (seq);
   CREATE INDEX partitions_by_host ON partitions (host_id);`,
];

/** Throws unless the fence's token is still the lease's (call inside the write's transaction). */
function checkFence(db: Database.Database, fence: Fence | undefined): void {
  if (!fence) return;
  const r = db.prepare('SELECT holder, token FROM leases WHERE name = ?').get(fence.lease) as { holder: string; token: number } | undefined;
  if (!r || r.holder !== fence.holder || r.token !== fence.token) throw notLeader(fence);
}

interface HostRow { id: string; registered_utc: string; last_seen_utc: string; incarnation: string; polling: number; hung_up: number }
const hostRecord = (r: HostRow): HostRecord => ({
  id: r.id, registeredUtc: r.registered_utc, lastSeenUtc: r.last_seen_utc, incarnation: r.incarnation, polling: r.polling === 1, hungUp: r.hung_up === 1,
});

/** Hosts, services and partitions. */
class SqliteHierarchy implements HierarchyStore {
  constructor(private readonly db: Database.Database) {}

  async upsertHost(id: string, incarnation: string, nowUtc: string): Promise<{ previousIncarnation: string | undefined }> {
    return this.db.transaction(() => {
      const before = this.db.prepare('SELECT incarnation FROM hosts WHERE id = ?').get(id) as { incarnation: string } | undefined;
      this.db.prepare(`INSERT INTO hosts (id, registered_utc, last_seen_utc, incarnation, polling, hung_up) VALUES (?, ?, ?, ?, 0, 0)
        ON CONFLICT (id) DO UPDATE SET last_seen_utc = excluded.last_seen_utc, incarnation = excluded.incarnation, polling = 0, hung_up = 0`).run(id, nowUtc, nowUtc, incarnation);
      return { previousIncarnation: before?.incarnation };
    }).immediate();
  }

  async hostSeen(id: string, sighting: HostSighting, nowUtc: string): Promise<void> {
    const flags = { 'poll-started': 'polling = 1, hung_up = 0', 'poll-ended': 'polling = 0, hung_up = 0', 'hung-up': 'polling = 0, hung_up = 1' }[sighting];
    this.db.prepare(`UPDATE hosts SET last_seen_utc = ?, ${flags} WHERE id = ?`).run(nowUtc, id);
  }

  async getHost(id: string): Promise<HostRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM hosts WHERE id = ?').get(id) as HostRow | undefined;
    return r && hostRecord(r);
  }

  async listHosts(): Promise<HostRecord[]> {
    return (this.db.prepare('SELECT * FROM hosts ORDER BY id').all() as HostRow[]).map(hostRecord);
  }

  async registerService(hostId: string, s: ServiceRecord, partitions: ReadonlyArray<Omit<PartitionRecord, 'hostId' | 'serviceName'>>): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO services (name, application, scheme, has_persisted_state) VALUES (?, ?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET application = excluded.application, scheme = excluded.scheme, has_persisted_state = excluded.has_persisted_state`)
        .run(s.name, s.application, JSON.stringify(schemeToJson(s.scheme)), s.hasPersistedState ? 1 : 0);
      const ids = partitions.map((p) => p.id);
      // A service re-created with new partitions: the old ones this host served are gone. Other
      // hosts' partitions stay: one host's registration never drops another's.
      this.db.prepare('DELETE FROM partitions WHERE service_name = ? AND host_id = ? AND id NOT IN (SELECT value FROM json_each(?))').run(s.name, hostId, JSON.stringify(ids));
      const upsert = this.db.prepare(`INSERT INTO partitions (id, service_name, ordinal, info, host_id, dlv, cv, last_lsn) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET service_name = excluded.service_name, ordinal = excluded.ordinal, info = excluded.info, host_id = excluded.host_id,
        dlv = excluded.dlv, cv = excluded.cv, last_lsn = excluded.last_lsn`);
      partitions.forEach((p, i) => upsert.run(p.id, s.name, i, JSON.stringify(partitionInfoToJson(p.info)), hostId, p.epoch.DataLossVersion, p.epoch.ConfigurationVersion, p.lastLsn));
    })();
  }

  async updatePartitionState(id: string, epoch: { DataLossVersion: string; ConfigurationVersion: string }, lastLsn: string): Promise<void> {
    this.db.prepare('UPDATE partitions SET dlv = ?, cv = ?, last_lsn = ? WHERE id = ?').run(epoch.DataLossVersion, epoch.ConfigurationVersion, lastLsn, id);
  }

  async setSkipAutoRestore(partitionId: string, untilUtc: string): Promise<void> {
    this.db.prepare('UPDATE partitions SET skip_auto_restore_until = ? WHERE id = ?').run(untilUtc, partitionId);
  }

  async takeSkipAutoRestore(partitionId: string): Promise<string | undefined> {
    return this.db.transaction((): string | undefined => {
      const r = this.db.prepare('SELECT skip_auto_restore_until AS until FROM partitions WHERE id = ?').get(partitionId) as { until: string | null } | undefined;
      if (r?.until == null) return undefined;
      this.db.prepare('UPDATE partitions SET skip_auto_restore_until = NULL WHERE id = ?').run(partitionId);
      return r.until;
    }).immediate();
  }

  async listApplications(): Promise<string[]> {
    return (this.db.prepare('SELECT DISTINCT application FROM services ORDER BY application').all() as Array<{ application: string }>).map((r) => r.application);
  }

  async listServices(application?: string): Promise<ServiceRecord[]> {
    const rows = (application === undefined
      ? this.db.prepare('SELECT * FROM services ORDER BY name').all()
      : this.db.prepare('SELECT * FROM services WHERE application = ? ORDER BY name').all(application)) as Array<{ name: string; application: string; scheme: string; has_persisted_state: number }>;
    return rows.map((r) => ({ name: r.name, application: r.application, scheme: schemeFromJson(JSON.parse(r.scheme)), hasPersistedState: r.has_persisted_state === 1 }));
  }

  async getService(name: string): Promise<ServiceRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM services WHERE name = ?').get(name) as { name: string; application: string; scheme: string; has_persisted_state: number } | undefined;
    return r && { name: r.name, application: r.application, scheme: schemeFromJson(JSON.parse(r.scheme)), hasPersistedState: r.has_persisted_state === 1 };
  }

  async listPartitions(serviceName: string): Promise<PartitionRecord[]> {
    return (this.db.prepare('SELECT * FROM partitions WHERE service_name = ? ORDER BY ordinal').all(serviceName) as PartRow[]).map(part);
  }

  async getPartition(id: string): Promise<PartitionRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM partitions WHERE id = ?').get(id) as PartRow | undefined;
    return r && part(r);
  }
}

/** Operations: one active per partition (a unique index), changed only while active. */
class SqliteOperations implements OperationStore {
  constructor(private readonly db: Database.Database) {}

  async insert(o: OperationRecord, fence?: Fence): Promise<{ inserted: true } | { inserted: false; active: OperationRecord }> {
    return this.db.transaction((): { inserted: true } | { inserted: false; active: OperationRecord } => {
      checkFence(this.db, fence);
      return this.insertOne(o);
    }).immediate();
  }

  async insertMany(ops: readonly OperationRecord[], fence?: Fence): Promise<Set<string>> {
    return this.db.transaction((): Set<string> => {
      checkFence(this.db, fence);
      return new Set(ops.filter((o) => this.insertOne(o).inserted).map((o) => o.id));
    }).immediate();
  }

  /** In a transaction: the insert, unless the partition has an active operation. */
  private insertOne(o: OperationRecord): { inserted: true } | { inserted: false; active: OperationRecord } {
    const active = this.db.prepare('SELECT * FROM operations WHERE partition_id = ? AND active = 1').get(o.partitionId) as OpRow | undefined;
    if (active) return { inserted: false, active: op(active) };
    const seq = ((this.db.prepare('SELECT coalesce(max(seq), 0) AS s FROM operations').get() as { s: number }).s) + 1;
    this.db.prepare(`INSERT INTO operations (id, seq, kind, partition_id, state, active, accepted_utc, deadline_utc, updated_utc, request, result, failure)
      VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`).run(o.id, seq, o.kind, o.partitionId, o.state, o.acceptedUtc, o.deadlineUtc, o.updatedUtc,
      JSON.stringify(o.request), JSON.stringify(o.result), o.failure ? JSON.stringify(o.failure) : null);
    return { inserted: true };
  }

  async update(id: string, patch: OperationPatch): Promise<boolean> {
    return this.db.transaction((): boolean => this.write(id, patch) !== undefined).immediate();
  }

  async end(id: string, patch: OperationPatch, report: HostReportRecords): Promise<EndOutcome> {
    const b = report.backup;
    return this.db.transaction((): EndOutcome => {
      if (b) {
        const other = this.db.prepare('SELECT partition_id FROM backups WHERE backup_id = ?').get(b.backupId) as { partition_id: string } | undefined;
        if (other && other.partition_id !== b.partitionId) return 'foreign-backup';
      }
      const partitionId = this.write(id, patch);
      if (partitionId === undefined) return 'not-active';
      const s = report.partitionState;
      if (s) this.db.prepare('UPDATE partitions SET dlv = ?, cv = ?, last_lsn = ? WHERE id = ?').run(s.epoch.DataLossVersion, s.epoch.ConfigurationVersion, s.lastLsn, partitionId);
      if (b) {
        const service = this.db.prepare('SELECT application FROM services WHERE name = ?').get(b.serviceName) as { application: string } | undefined;
        insertBackup(this.db, { ...b, applicationName: service?.application ?? applicationOf(b.serviceName) });
      }
      return 'ended';
    }).immediate();
  }

  /** `update`'s write, inside the caller's transaction: the operation's partition, or undefined if it is not active. */
  private write(id: string, patch: OperationPatch): string | undefined {
    const row = this.db.prepare('SELECT * FROM operations WHERE id = ? AND active = 1').get(id) as OpRow | undefined;
    if (!row) return undefined;
    const result = { ...(JSON.parse(row.result) as Record<string, unknown>), ...(patch.result ?? {}) };
    this.db.prepare('UPDATE operations SET state = ?, active = ?, updated_utc = ?, result = ?, failure = ? WHERE id = ?')
      .run(patch.state, ACTIVE.has(patch.state) ? 1 : 0, patch.updatedUtc, JSON.stringify(result), patch.failure ? JSON.stringify(patch.failure) : row.failure, id);
    return row.partition_id;
  }

  async get(id: string): Promise<OperationRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM operations WHERE id = ?').get(id) as OpRow | undefined;
    return r && op(r);
  }

  async latest(partitionId: string, kind: 'Backup' | 'Restore'): Promise<OperationRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM operations WHERE partition_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1').get(partitionId, kind) as OpRow | undefined;
    return r && op(r);
  }

  async latestOf(partitionIds: readonly string[], kind: OperationKind): Promise<Map<string, OperationRecord>> {
    const one = this.db.prepare('SELECT * FROM operations WHERE partition_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1');
    const out = new Map<string, OperationRecord>();
    for (const id of partitionIds) {
      const r = one.get(id, kind) as OpRow | undefined;
      if (r) out.set(id, op(r));
    }
    return out;
  }

  async latestEnded(partitionId: string, kinds: readonly OperationKind[]): Promise<OperationRecord | undefined> {
    if (kinds.length === 0) return undefined;
    const r = this.db.prepare(`SELECT * FROM operations WHERE partition_id = ? AND active = 0 AND kind IN (${kinds.map(() => '?').join(', ')}) ORDER BY seq DESC LIMIT 1`)
      .get(partitionId, ...kinds) as OpRow | undefined;
    return r && op(r);
  }

  async activeIds(): Promise<Set<string>> {
    return new Set((this.db.prepare('SELECT id FROM operations WHERE active = 1').all() as Array<{ id: string }>).map((r) => r.id));
  }

  async getMany(ids: readonly string[]): Promise<Map<string, OperationRecord>> {
    const get = this.db.prepare('SELECT * FROM operations WHERE id = ?');
    const out = new Map<string, OperationRecord>();
    for (const id of ids) {
      const r = get.get(id) as OpRow | undefined;
      if (r) out.set(id, op(r));
    }
    return out;
  }

  async active(hostId?: string): Promise<OperationRecord[]> {
    const rows = (hostId === undefined
      ? this.db.prepare('SELECT * FROM operations WHERE active = 1 ORDER BY seq').all()
      : this.db.prepare('SELECT o.* FROM operations o JOIN partitions p ON p.id = o.partition_id WHERE o.active = 1 AND p.host_id = ? ORDER BY o.seq').all(hostId)) as OpRow[];
    return rows.map(op);
  }

  async claimOrders(hostId: string, nowUtc: string, againBeforeUtc: string): Promise<OperationRecord[]> {
    const rows = this.db.prepare(`UPDATE operations SET claimed_host = ?, claimed_utc = ?
      WHERE active = 1 AND EXISTS (SELECT 1 FROM partitions p WHERE p.id = operations.partition_id AND p.host_id = ?)
        AND (claimed_host IS NULL OR claimed_host <> ? OR claimed_utc < ?)
      RETURNING *`).all(hostId, nowUtc, hostId, hostId, againBeforeUtc) as OpRow[];
    return rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map(op);
  }

  async releaseOrders(hostId: string): Promise<void> {
    this.db.prepare('UPDATE operations SET claimed_host = NULL, claimed_utc = NULL WHERE active = 1 AND claimed_host = ?').run(hostId);
  }
}

/** Indexes a backup (a new one, or the same id again: its row is replaced). */
function insertBackup(db: Database.Database, b: BackupRecord): void {
  db.prepare(`INSERT OR REPLACE INTO backups (backup_id, chain_id, parent_id, application_name, service_name, partition_id, partition_info, location,
    backup_type, dlv, cv, lsn, creation_utc, storage_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    .run(b.backupId, b.backupChainId, b.parentBackupId, b.applicationName, b.serviceName, b.partitionId, JSON.stringify(partitionInfoToJson(b.partitionInfo)),
      b.backupLocation, b.backupType, b.epoch.DataLossVersion, b.epoch.ConfigurationVersion, b.lsn, b.creationTimeUtc, b.storageKey);
}

/** The backup index. */
class SqliteBackups implements BackupIndex {
  constructor(private readonly db: Database.Database) {}

  async insert(b: BackupRecord): Promise<void> {
    insertBackup(this.db, b);
  }

  async get(backupId: string): Promise<BackupRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM backups WHERE backup_id = ?').get(backupId) as BackupRow | undefined;
    return r && backup(r);
  }

  async list(f: BackupFilter): Promise<BackupRecord[]> {
    return this.page(f, { limit: 0 });
  }

  async page(f: BackupFilter, q: BackupPageQuery): Promise<BackupRecord[]> {
    if (q.latest) return this.newestPage(f, q);
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (f.applicationName !== undefined) { where.push('application_name = ?'); args.push(f.applicationName); }
    if (f.serviceName !== undefined) { where.push('service_name = ?'); args.push(f.serviceName); }
    if (f.partitionId !== undefined) { where.push('partition_id = ?'); args.push(f.partitionId); }
    if (f.startUtc !== undefined) { where.push('creation_utc >= ?'); args.push(f.startUtc); }
    if (f.endUtc !== undefined) { where.push('creation_utc <= ?'); args.push(f.endUtc); }
    if (q.after) { where.push('(service_name, partition_id, creation_utc, backup_id) > (?, ?, ?, ?)'); args.push(...q.after); }
    const limit = q.limit > 0 ? 'LIMIT ?' : '';
    if (q.limit > 0) args.push(q.limit);
    const sql = `SELECT * FROM backups ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY service_name, partition_id, creation_utc, backup_id ${limit}`;
    return (this.db.prepare(sql).all(...args) as BackupRow[]).map(backup);
  }

  /**
   * Latest: the newest backup of each partition. The partitions are walked in order by a loose
   * index scan (one index probe per partition, from the page's start), and each one's newest is one
   * more probe: a page costs its own partitions, not the whole index. Without a time filter every
   * partition has its newest, so the walk stops after `limit` of them.
   */
  // CROSS JOIN: SQLite then keeps the tables in the order written, so each join is a rowid lookup.
  private newestPage(f: BackupFilter, q: BackupPageQuery): BackupRecord[] {
    const scope: string[] = [];
    if (f.applicationName !== undefined) scope.push('application_name = @app');
    if (f.serviceName !== undefined) scope.push('service_name = @svc');
    if (f.partitionId !== undefined) scope.push('partition_id = @pid');
    const time: string[] = [];
    if (f.startUtc !== undefined) time.push('creation_utc >= @start');
    if (f.endUtc !== undefined) time.push('creation_utc <= @end');
    const inScope = (t: string): string => scope.map((c) => `${t}.${c} AND `).join('');
    const walkStops = q.limit > 0 && time.length === 0 ? 'AND parts.n < @limit' : '';
    // The next partition after (svc, pid): in the same service, else the first of a later one. Two
    // lookups, since SQLite ranges an index on a row value only when it is not correlated.
    const next = (svc: string, pid: string): string => `coalesce(
        (SELECT x.rowid FROM backups x WHERE ${inScope('x')}x.service_name = ${svc} AND x.partition_id > ${pid} ORDER BY x.partition_id LIMIT 1),
        (SELECT x.rowid FROM backups x WHERE ${inScope('x')}x.service_name > ${svc} ORDER BY x.service_name, x.partition_id LIMIT 1))`;
    const sql = `WITH RECURSIVE parts (rid, svc, pid, n) AS (
        SELECT b.rowid, b.service_name, b.partition_id, 1 FROM backups b WHERE b.rowid = ${next('@afterSvc', '@afterPid')}
        UNION ALL
        SELECT b.rowid, b.service_name, b.partition_id, parts.n + 1 FROM parts CROSS JOIN backups b ON b.rowid = ${next('parts.svc', 'parts.pid')}
        ${walkStops ? `WHERE ${walkStops.replace(/^AND /, '')}` : ''})
      , newest (rid) AS (
        SELECT (SELECT y.rowid FROM backups y WHERE y.partition_id = parts.pid AND y.service_name = parts.svc${time.map((c) => ` AND y.${c}`).join('')}
          ORDER BY y.creation_utc DESC, y.backup_id DESC LIMIT 1)
        FROM parts)
      SELECT b.* FROM newest CROSS JOIN backups b ON b.rowid = newest.rid
      ORDER BY b.service_name, b.partition_id ${q.limit > 0 ? 'LIMIT @limit' : ''}`;
    const params: Record<string, string | number> = { afterSvc: q.after?.[0] ?? '', afterPid: q.after?.[1] ?? '' };
    if (f.applicationName !== undefined) params.app = f.applicationName;
    if (f.serviceName !== undefined) params.svc = f.serviceName;
    if (f.partitionId !== undefined) params.pid = f.partitionId;
    if (f.startUtc !== undefined) params.start = f.startUtc;
    if (f.endUtc !== undefined) params.end = f.endUtc;
    if (q.limit > 0) params.limit = q.limit;
    return (this.db.prepare(sql).all(params) as BackupRow[]).map(backup);
  }

  async count(): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM backups').get() as { n: number }).n;
  }

  async delete(backupId: string): Promise<void> {
    this.db.prepare('DELETE FROM backups WHERE backup_id = ?').run(backupId);
  }
}

/** Policies and protection: changes of both, and deletes, each one transaction. */
class SqlitePolicies implements PolicyStore {
  constructor(private readonly db: Database.Database) {}

  async insert(p: PolicyRecord): Promise<boolean> {
    const r = this.db.prepare(`INSERT INTO policies (name, policy, unique_id, created_utc, updated_utc) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (name) DO NOTHING`).run(p.name, JSON.stringify(p.policy), p.uniqueId, p.createdUtc, p.updatedUtc);
    return r.changes === 1;
  }

  async update(p: Omit<PolicyRecord, 'createdUtc'>): Promise<boolean> {
    const r = this.db.prepare('UPDATE policies SET policy = ?, unique_id = ?, updated_utc = ? WHERE name = ?')
      .run(JSON.stringify(p.policy), p.uniqueId, p.updatedUtc, p.name);
    return r.changes === 1;
  }

  async get(name: string): Promise<PolicyRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM policies WHERE name = ?').get(name) as PolicyRow | undefined;
    return r && policyRecord(r);
  }

  async list(): Promise<PolicyRecord[]> {
    return (this.db.prepare('SELECT * FROM policies ORDER BY name').all() as PolicyRow[]).map(policyRecord);
  }

  private readonly policyNames: PolicyNames = {
    has: (name: string) => this.db.prepare('SELECT 1 FROM policies WHERE name = ?').get(name) !== undefined,
  };

  private loadProtection(): ProtectionState {
    const mappings = new Map<string, ProtectionMapping>();
    for (const r of this.db.prepare('SELECT * FROM protection_mappings ORDER BY entity_key').all() as Array<{ entity_key: string; entity: string; policy_name: string }>) {
      mappings.set(r.entity_key, { entity: JSON.parse(r.entity) as BackupEntity, policyName: r.policy_name });
    }
    const suspensions = new Map<string, BackupEntity>();
    for (const r of this.db.prepare('SELECT * FROM protection_suspensions ORDER BY entity_key').all() as Array<{ entity_key: string; entity: string }>) {
      suspensions.set(r.entity_key, JSON.parse(r.entity) as BackupEntity);
    }
    return { mappings, suspensions };
  }

  /** Writes the difference between two states. */
  private saveProtection(before: ProtectionState, after: ProtectionState): void {
    const delMapping = this.db.prepare('DELETE FROM protection_mappings WHERE entity_key = ?');
    const putMapping = this.db.prepare(`INSERT INTO protection_mappings (entity_key, entity, policy_name) VALUES (?, ?, ?)
      ON CONFLICT (entity_key) DO UPDATE SET entity = excluded.entity, policy_name = excluded.policy_name`);
    for (const k of before.mappings.keys()) if (!after.mappings.has(k)) delMapping.run(k);
    for (const [k, m] of after.mappings) {
      const old = before.mappings.get(k);
      if (old !== m) putMapping.run(k, JSON.stringify(m.entity), m.policyName);
    }
    const delSusp = this.db.prepare('DELETE FROM protection_suspensions WHERE entity_key = ?');
    const putSusp = this.db.prepare('INSERT OR REPLACE INTO protection_suspensions (entity_key, entity) VALUES (?, ?)');
    for (const k of before.suspensions.keys()) if (!after.suspensions.has(k)) delSusp.run(k);
    for (const [k, e] of after.suspensions) if (before.suspensions.get(k) !== e) putSusp.run(k, JSON.stringify(e));
  }

  async getProtection(): Promise<ProtectionState> {
    return this.db.transaction(() => this.loadProtection())();
  }

  async changeProtection<T extends { state: ProtectionState }>(change: ProtectionChange<T>): Promise<Outcome<T>> {
    return this.db.transaction((): Outcome<T> => {
      const before = this.loadProtection();
      const out = change(before, this.policyNames);
      if (out.ok) this.saveProtection(before, out.state);
      return out;
    }).immediate();
  }

  async delete(name: string): Promise<Outcome<PolicyDeletion>> {
    const exists = (e: BackupEntity): boolean => {
      switch (e.kind) {
        case 'Application': return this.db.prepare('SELECT 1 FROM services WHERE application = ? LIMIT 1').get(e.applicationName) !== undefined;
        case 'Service': return this.db.prepare('SELECT 1 FROM services WHERE name = ?').get(e.serviceName) !== undefined;
        case 'Partition': return this.db.prepare('SELECT 1 FROM partitions WHERE id = ?').get(entityKey(e)) !== undefined;
      }
    };
    return this.db.transaction((): Outcome<PolicyDeletion> => {
      const before = this.loadProtection();
      const out = deletePolicy(before, name, this.policyNames, exists);
      if (!out.ok) return out;
      this.saveProtection(before, out.state);
      this.db.prepare('DELETE FROM policies WHERE name = ?').run(name);
      return { ok: true, removedMappings: out.removedMappings, removedSuspensions: out.removedSuspensions };
    }).immediate();
  }
}

/** The scheduler's and the retention sweeper's state per partition. */
class SqliteSchedules implements ScheduleStore {
  constructor(private readonly db: Database.Database) {}

  async listPeriodic(): Promise<PeriodicScheduleRecord[]> {
    return (this.db.prepare('SELECT state FROM periodic_schedules ORDER BY partition_id').all() as Array<{ state: string }>).map((r) => JSON.parse(r.state) as PeriodicScheduleRecord);
  }

  async getPeriodic(partitionId: string): Promise<PeriodicScheduleRecord | undefined> {
    const r = this.db.prepare('SELECT state FROM periodic_schedules WHERE partition_id = ?').get(partitionId) as { state: string } | undefined;
    return r && (JSON.parse(r.state) as PeriodicScheduleRecord);
  }

  async putPeriodic(records: readonly PeriodicScheduleRecord[], updatedUtc: string, fence?: Fence): Promise<void> {
    this.db.transaction(() => {
      checkFence(this.db, fence);
      const put = this.db.prepare(`INSERT INTO periodic_schedules (partition_id, state, updated_utc) VALUES (?, ?, ?)
        ON CONFLICT (partition_id) DO UPDATE SET state = excluded.state, updated_utc = excluded.updated_utc`);
      for (const r of records) put.run(r.partitionId, JSON.stringify(r), updatedUtc);
    }).immediate();
  }

  async getRetention(partitionId: string): Promise<RetentionStateRecord | undefined> {
    const r = this.db.prepare('SELECT state FROM retention_states WHERE partition_id = ?').get(partitionId) as { state: string } | undefined;
    return r && (JSON.parse(r.state) as RetentionStateRecord);
  }

  async putRetention(r: RetentionStateRecord, updatedUtc: string, fence?: Fence): Promise<void> {
    this.db.transaction(() => {
      checkFence(this.db, fence);
      this.db.prepare(`INSERT INTO retention_states (partition_id, state, updated_utc) VALUES (?, ?, ?)
        ON CONFLICT (partition_id) DO UPDATE SET state = excluded.state, updated_utc = excluded.updated_utc`).run(r.partitionId, JSON.stringify(r), updatedUtc);
    }).immediate();
  }
}

/** Leases: a row per lease, kept when released so that tokens only grow. */
class SqliteLeases implements LeaseStore {
  constructor(private readonly db: Database.Database) {}

  async acquire(name: string, holder: string, nowUtc: string, untilUtc: string): Promise<LeaseRecord | undefined> {
    return this.db.transaction((): LeaseRecord | undefined => {
      const r = this.db.prepare('SELECT * FROM leases WHERE name = ?').get(name) as { holder: string; token: number; until_utc: string } | undefined;
      let token: number;
      if (!r) token = 1;
      else if (r.until_utc > nowUtc) {
        if (r.holder !== holder) return undefined;
        token = r.token;
      } else token = r.token + 1;
      this.db.prepare(`INSERT INTO leases (name, holder, token, until_utc) VALUES (?, ?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = excluded.token, until_utc = excluded.until_utc`).run(name, holder, token, untilUtc);
      return { name, holder, token, untilUtc };
    }).immediate();
  }

  async release(name: string, holder: string): Promise<void> {
    this.db.prepare('UPDATE leases SET until_utc = ? WHERE name = ? AND holder = ?').run(RELEASED_UTC, name, holder);
  }

  async get(name: string): Promise<LeaseRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM leases WHERE name = ?').get(name) as { name: string; holder: string; token: number; until_utc: string } | undefined;
    return r && { name: r.name, holder: r.holder, token: r.token, untilUtc: r.until_utc };
  }
}

/** Signals within the one process that serves a SQLite catalog. */
class LocalSignals implements SignalBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  async publish(signal: CatalogSignal): Promise<void> {
    this.emitter.emit('signal', signal);
  }

  subscribe(listener: (signal: CatalogSignal) => void): () => void {
    this.emitter.on('signal', listener);
    return () => this.emitter.off('signal', listener);
  }
}

/** API tokens and the audit log. */
class SqliteAccess implements AccessStore {
  private auditAppends = 0;

  constructor(private readonly db: Database.Database) {}

  async insertToken(t: TokenRecord): Promise<boolean> {
    const r = this.db.prepare('INSERT INTO tokens (name, role, host_id, hash, created_utc) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
      .run(t.name, t.role, t.hostId ?? null, t.hash, t.createdUtc);
    return r.changes === 1;
  }

  async tokenByHash(hash: string): Promise<TokenRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM tokens WHERE hash = ?').get(hash) as TokenRow | undefined;
    return r && token(r);
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (this.db.prepare('SELECT * FROM tokens ORDER BY name').all() as TokenRow[]).map(token);
  }

  async deleteToken(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM tokens WHERE name = ?').run(name).changes === 1;
  }

  async insertSignInCode(hash: string, expiresUtc: string): Promise<void> {
    this.db.prepare('INSERT OR REPLACE INTO sign_in_codes (hash, expires_utc) VALUES (?, ?)').run(hash, expiresUtc);
  }

  async takeSignInCode(hash: string, nowUtc: string): Promise<boolean> {
    return this.db.transaction((): boolean => {
      this.db.prepare('DELETE FROM sign_in_codes WHERE expires_utc <= ? AND hash <> ?').run(nowUtc, hash);
      const r = this.db.prepare('DELETE FROM sign_in_codes WHERE hash = ? RETURNING expires_utc').get(hash) as { expires_utc: string } | undefined;
      return r !== undefined && r.expires_utc > nowUtc;
    }).immediate();
  }

  async appendAudit(a: Omit<AuditRecord, 'seq'>): Promise<void> {
    this.db.prepare('INSERT INTO audit_log (time_utc, principal, role, via, method, route, entity, status, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(a.timeUtc, a.principal, a.role, a.via, a.method, a.route, a.entity, a.status, a.outcome);
    // Trimmed now and then, not per call: the log is bounded without a delete per request.
    if (++this.auditAppends % 1000 === 0) {
      this.db.prepare('DELETE FROM audit_log WHERE seq <= (SELECT MAX(seq) FROM audit_log) - ?').run(AUDIT_KEEP);
    }
  }

  async listAudit(afterSeq: number, limit: number): Promise<AuditRecord[]> {
    const rows = this.db.prepare('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit) as Array<Record<string, unknown>>;
    return rows.map((r) => ({
      seq: Number(r.seq), timeUtc: String(r.time_utc), principal: String(r.principal), role: String(r.role), via: String(r.via), method: String(r.method),
      route: String(r.route), entity: String(r.entity), status: Number(r.status), outcome: r.outcome as AuditRecord['outcome'],
    }));
  }
}

/** The catalog's parts over one database, and the access store kept in it (`access`). */
export class SqliteCatalog implements Catalog {
  readonly hierarchy: HierarchyStore;
  readonly operations: OperationStore;
  readonly backups: BackupIndex;
  readonly policies: PolicyStore;
  readonly schedules: ScheduleStore;
  readonly leases: LeaseStore;
  readonly signals: SignalBus;
  readonly access: AccessStore;

  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    // Before WAL mode: SQLite gives the -wal and -shm files the database file's mode.
    if (file !== ':memory:') chmodSync(file, 0o600);
    this.db.pragma('journal_mode = WAL');
    // Deleted rows (a replaced policy's sealed secret, a revoked token's hash) are zeroed, not left in free pages.
    this.db.pragma('secure_delete = ON');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.hierarchy = new SqliteHierarchy(this.db);
    this.operations = new SqliteOperations(this.db);
    this.backups = new SqliteBackups(this.db);
    this.policies = new SqlitePolicies(this.db);
    this.schedules = new SqliteSchedules(this.db);
    this.leases = new SqliteLeases(this.db);
    this.signals = new LocalSignals();
    this.access = new SqliteAccess(this.db);
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

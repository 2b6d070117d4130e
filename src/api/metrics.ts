/**
 * Lifeboat's Prometheus metrics (prom-client), served by `GET /metrics` (operator.ts) and, for an
 * out-of-process host, by src/main/host-metrics.ts. Every metric, its labels and its meaning are
 * in docs/metrics.md; names follow Prometheus' conventions (a unit suffix, `_total` on counters).
 *
 * Two kinds of figures:
 * - Events of this process, counted as they happen: operations ended (ServiceEvents from
 *   src/service/observer.ts, which OrderBoard.apply tells of every change), scheduler lag, storage
 *   requests and retries (the storage meter: src/storage/metered.ts, structurally — src/api does
 *   not import src/storage).
 * - What the catalog holds (partitions and their protection, each one's newest backup, operations
 *   under way, the index's size), read at scrape time by the gauges' collect() through the
 *   service's inventory: right after a restart, and the same from every instance over one catalog.
 *   One catalog read per scrape, shared by every gauge (and by concurrent scrapes).
 *
 * Each LifeboatMetrics has its own registry (several Lifeboats may run in one process, as in the
 * tests); the process's own metrics (CPU, memory, event loop, GC: collectDefaultMetrics) are
 * collected once per process in a shared registry and served with each.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InventorySnapshot, OperationChange, ServiceEvents } from '../service/lifeboat-service.ts';

export interface MetricsText {
  readonly contentType: string;
  readonly body: string;
}

let processRegistry: Registry | undefined;

/** The process's own metrics (process_*, nodejs_*), made once per process, whoever asks first. */
export function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** The registries' texts as one exposition (metric names never overlap between them). */
export async function exposition(registries: readonly Registry[]): Promise<MetricsText> {
  const texts = await Promise.all(registries.map((r) => r.metrics()));
  return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: texts.filter((t) => t.trim() !== '').join('\n') };
}

const STORAGE_OPERATIONS = ['put', 'get', 'head', 'list', 'delete', 'validate'] as const;
const STORAGE_OUTCOMES = ['success', 'not_found', 'exists', 'transient', 'error'] as const;

/**
 * `lifeboat_storage_requests_total{backend,operation,outcome}` and
 * `lifeboat_storage_retries_total{backend,operation}`: a StorageMeter (src/storage/metered.ts)
 * for the StorageRegistry of a Lifeboat or a host. A backend's series all start at 0 when it is
 * first used, so rate() and alerts see a failure's first occurrence.
 */
export class StorageMetrics {
  private readonly requests: Counter<'backend' | 'operation' | 'outcome'>;
  private readonly retries: Counter<'backend' | 'operation'>;
  private readonly backends = new Set<string>();

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'lifeboat_storage_requests_total', help: 'Storage requests by backend (StorageKind), operation and outcome (success, not_found, exists, transient, error); each retry attempt is a request.',
      labelNames: ['backend', 'operation', 'outcome'], registers: [registry],
    });
    this.retries = new Counter({
      name: 'lifeboat_storage_retries_total', help: 'Storage requests tried again after a transient failure, by backend and operation.',
      labelNames: ['backend', 'operation'], registers: [registry],
    });
  }

  request(backend: string, operation: string, outcome: string): void {
    this.known(backend);
    this.requests.inc({ backend, operation, outcome });
  }

  retry(backend: string, operation: string): void {
    this.known(backend);
    this.retries.inc({ backend, operation });
  }

  private known(backend: string): void {
    if (this.backends.has(backend)) return;
    this.backends.add(backend);
    for (const operation of STORAGE_OPERATIONS) {
      this.retries.inc({ backend, operation }, 0);
      for (const outcome of STORAGE_OUTCOMES) this.requests.inc({ backend, operation, outcome }, 0);
    }
  }
}

export interface LifeboatMetricsOptions {
  /** The catalog's figures, read at scrape time (LifeboatService.inventory.snapshot); none: those gauges are absent. */
  readonly inventory?: () => Promise<InventorySnapshot>;
  /** The catalog's size on disk in bytes (the database and its journal), when it has a file. */
  readonly catalogBytes?: () => Promise<number | undefined>;
  /** Serve the process's own metrics too (default true). */
  readonly processMetrics?: boolean;
}

type Outcome = 'success' | 'failure' | 'timeout';
const OUTCOMES: readonly Outcome[] = ['success', 'failure', 'timeout'];
const OUTCOME_OF: Readonly<Record<string, Outcome>> = { Success: 'success', Failure: 'failure', Timeout: 'timeout' };

/** Backups and restores take seconds to hours. */
const DURATION_BUCKETS = [0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];
/** Periodic backups start within the jitter (10 s by default) of their due moment when all is well. */
const LAG_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 300, 900, 3600];

const byteCount = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
const seconds = (fromUtc: string, toUtc: string): number => Math.max(0, (new Date(toUtc).getTime() - new Date(fromUtc).getTime()) / 1000);

/** The metrics of one Lifeboat service: it hears the service's events and reads its inventory at scrape time. */
export class LifeboatMetrics implements ServiceEvents {
  readonly registry = new Registry();
  /** The StorageMeter of the service's StorageRegistry. */
  readonly storage: StorageMetrics;
  private readonly o: LifeboatMetricsOptions;
  private readonly backups: Counter<'kind' | 'trigger' | 'outcome'>;
  private readonly restores: Counter<'trigger' | 'outcome'>;
  private readonly backupDuration: Histogram<'kind' | 'outcome'>;
  private readonly restoreDuration: Histogram<'outcome'>;
  private readonly backupBytes: Counter<'kind' | 'type'>;
  private readonly lag: Histogram;
  /** The catalog read of the scrape under way, shared by every gauge's collect(). */
  private pending: Promise<InventorySnapshot | undefined> | undefined;

  constructor(o: LifeboatMetricsOptions = {}) {
    this.o = o;
    const registers = [this.registry];
    this.storage = new StorageMetrics(this.registry);
    this.backups = new Counter({
      name: 'lifeboat_backup_total', help: 'Backups ended, by kind (full, incremental), trigger (on_demand, periodic) and outcome (success, failure, timeout).',
      labelNames: ['kind', 'trigger', 'outcome'], registers,
    });
    this.restores = new Counter({
      name: 'lifeboat_restore_total', help: 'Restores ended, by trigger (on_demand: RestorePartition; data_loss: the auto-restore) and outcome (success, failure, timeout).',
      labelNames: ['trigger', 'outcome'], registers,
    });
    this.backupDuration = new Histogram({
      name: 'lifeboat_backup_duration_seconds', help: 'Time from a backup\'s acceptance to its end (queueing, the host\'s work, the report), by kind and outcome.',
      labelNames: ['kind', 'outcome'], buckets: DURATION_BUCKETS, registers,
    });
    this.restoreDuration = new Histogram({
      name: 'lifeboat_restore_duration_seconds', help: 'Time from a restore\'s acceptance to its end, by outcome.',
      labelNames: ['outcome'], buckets: DURATION_BUCKETS, registers,
    });
    this.backupBytes = new Counter({
      name: 'lifeboat_backup_bytes_total', help: 'Bytes of successful backups, by kind and type: logical (read from the partition) or stored (written to storage, after compression and encryption).',
      labelNames: ['kind', 'type'], registers,
    });
    this.lag = new Histogram({
      name: 'lifeboat_scheduler_lag_seconds', help: 'How late the scheduler started each periodic backup after it was due (jitter included).',
      buckets: LAG_BUCKETS, registers,
    });
    for (const outcome of OUTCOMES) {
      for (const [kind, trigger] of [['full', 'on_demand'], ['full', 'periodic'], ['incremental', 'periodic']] as const) this.backups.inc({ kind, trigger, outcome }, 0);
      for (const trigger of ['on_demand', 'data_loss']) this.restores.inc({ trigger, outcome }, 0);
      for (const kind of ['full', 'incremental']) this.backupDuration.zero({ kind, outcome });
      this.restoreDuration.zero({ outcome });
    }
    for (const kind of ['full', 'incremental']) for (const type of ['logical', 'stored']) this.backupBytes.inc({ kind, type }, 0);
    if (o.inventory) this.inventoryGauges();
  }

  operationChanged(c: OperationChange): void {
    const outcome = OUTCOME_OF[c.to];
    if (!outcome) return;
    const duration = seconds(c.acceptedUtc, c.changedUtc);
    if (c.kind === 'Restore') {
      this.restores.inc({ trigger: c.autoRestore ? 'data_loss' : 'on_demand', outcome });
      this.restoreDuration.observe({ outcome }, duration);
      return;
    }
    const kind = c.backupType === 'Incremental' ? 'incremental' : 'full';
    this.backups.inc({ kind, trigger: c.kind === 'PeriodicBackup' ? 'periodic' : 'on_demand', outcome });
    this.backupDuration.observe({ kind, outcome }, duration);
    if (outcome !== 'success') return;
    const logical = byteCount(c.result?.BytesTransferred);
    const stored = byteCount(c.result?.StoredBytes);
    if (logical !== undefined) this.backupBytes.inc({ kind, type: 'logical' }, logical);
    if (stored !== undefined) this.backupBytes.inc({ kind, type: 'stored' }, stored);
  }

  periodicBackupStarted(e: { readonly lagMs: number }): void {
    this.lag.observe(Math.max(0, e.lagMs) / 1000);
  }

  /** The exposition: this service's metrics, and the process's unless turned off. */
  metrics(): Promise<MetricsText> {
    return exposition(this.o.processMetrics === false ? [this.registry] : [processMetricsRegistry(), this.registry]);
  }

  /** The catalog read of this scrape: one for every gauge that asks while it runs; undefined when the catalog did not answer. */
  private snapshot(): Promise<InventorySnapshot | undefined> {
    const read = this.o.inventory;
    if (!read) return Promise.resolve(undefined);
    this.pending ??= read().catch(() => undefined).finally(() => { this.pending = undefined; });
    return this.pending;
  }

  private inventoryGauges(): void {
    const registers = [this.registry];
    const snapshot = (): Promise<InventorySnapshot | undefined> => this.snapshot();
    new Gauge({
      name: 'lifeboat_catalog_reachable', help: '1 when the catalog answered this scrape\'s read, 0 when it did not (the catalog\'s other figures are then absent).',
      registers, async collect() { this.set((await snapshot()) ? 1 : 0); },
    });
    new Gauge({
      name: 'lifeboat_partitions', help: 'Partitions of stateful services by protection: protected (a policy applies), suspended (one applies, suspended), unprotected (none applies).',
      labelNames: ['protection'], registers,
      async collect() {
        this.reset();
        const s = await snapshot();
        if (!s) return;
        const n = { protected: 0, suspended: 0, unprotected: 0 };
        for (const p of s.partitions) n[p.protection]++;
        for (const [protection, count] of Object.entries(n)) this.set({ protection }, count);
      },
    });
    new Gauge({
      name: 'lifeboat_partition_protected', help: 'Per partition: 1 when a backup policy applies and is not suspended, else 0.',
      labelNames: ['service', 'partition'], registers,
      async collect() {
        this.reset();
        for (const p of (await snapshot())?.partitions ?? []) this.set({ service: p.serviceName, partition: p.partitionId }, p.protection === 'protected' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lifeboat_partition_last_successful_backup_timestamp_seconds', help: 'Per partition: the creation time (Unix seconds) of its newest backup in the index; absent for a partition with none.',
      labelNames: ['service', 'partition'], registers,
      async collect() {
        this.reset();
        for (const p of (await snapshot())?.partitions ?? []) {
          if (p.lastBackupUtc !== undefined) this.set({ service: p.serviceName, partition: p.partitionId }, new Date(p.lastBackupUtc).getTime() / 1000);
        }
      },
    });
    new Gauge({
      name: 'lifeboat_operations_in_flight', help: 'Operations under way, by operation (backup, restore), trigger (on_demand, periodic, data_loss) and state (accepted: waiting for its host; in_progress).',
      labelNames: ['operation', 'trigger', 'state'], registers,
      async collect() {
        this.reset();
        const s = await snapshot();
        if (!s) return;
        const series = [['backup', 'on_demand'], ['backup', 'periodic'], ['restore', 'on_demand'], ['restore', 'data_loss']] as const;
        const counts = new Map<string, number>();
        for (const [operation, trigger] of series) for (const state of ['accepted', 'in_progress']) counts.set(`${operation} ${trigger} ${state}`, 0);
        for (const o of s.activeOperations) {
          const operation = o.kind === 'Restore' ? 'restore' : 'backup';
          const trigger = o.kind === 'PeriodicBackup' ? 'periodic' : o.kind === 'Restore' && o.autoRestore ? 'data_loss' : 'on_demand';
          const key = `${operation} ${trigger} ${o.state === 'Accepted' ? 'accepted' : 'in_progress'}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        for (const [key, count] of counts) {
          const [operation, trigger, state] = key.split(' ') as [string, string, string];
          this.set({ operation, trigger, state }, count);
        }
      },
    });
    new Gauge({
      name: 'lifeboat_catalog_backups', help: 'Backups in the catalog\'s index (what the listing routes answer from).',
      registers,
      async collect() {
        this.reset();
        const s = await snapshot();
        if (s) this.set(s.backupsIndexed);
      },
    });
    const bytes = this.o.catalogBytes;
    if (bytes) {
      new Gauge({
        name: 'lifeboat_catalog_size_bytes', help: 'The catalog\'s size on disk: the database file and its write-ahead log.',
        registers,
        async collect() {
          this.reset();
          const n = await bytes().catch(() => undefined);
          if (n !== undefined) this.set(n);
        },
      });
    }
  }
}

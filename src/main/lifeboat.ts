/**
 * Composition root of the embedded default: the catalog on SQLite, the service, the REST API, the
 * operation timer, and one host in the same process serving the sample application.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.ts';
import { SqliteCatalog } from '../catalog/sqlite.ts';
import type { Compression, Keyring } from '../format/lbk2.ts';
import { Host } from '../host/host.ts';
import { type SampleApp, startSampleApp } from '../host/sample-app.ts';
import { LifeboatService, systemClock, type Clock } from '../service/lifeboat-service.ts';
import { RetentionSweeper } from '../service/retention-sweeper.ts';
import { Scheduler, type SchedulerTimer } from '../service/scheduler.ts';
import { openStorage } from '../storage/open.ts';
import type { BlobStore } from '../storage/port.ts';

export interface LifeboatConfig {
  readonly dataDir: string;
  readonly bind?: string;
  /** REST port; 0 picks a free one. */
  readonly port?: number;
  readonly sample?: boolean;
  readonly samplePort?: number;
  /** Folders FileShare paths must be inside; default `<dataDir>/backups`. */
  readonly fileShareRoots?: readonly string[];
  readonly logger?: boolean | object;
  readonly clock?: Clock;
  /** How often operation deadlines are checked. */
  readonly timeoutSweepMs?: number;
  /** How often a partition in data loss asks again what to do (default 15 s, as Service Fabric). */
  readonly dataLossRetryMs?: number;
  /**
   * Encryption keys (`--encryption-keys`): new backups are encrypted under the current key; any
   * key of the ring reads. Without it backups are not encrypted. Key bytes are never logged.
   */
  readonly encryptionKeys?: Keyring;
  /** Compression of new backups (default zstd); `none` suits data that is already compressed. */
  readonly compression?: Compression;
  /** The in-process host's HostOptions.directIo (default true: O_DIRECT where the file system takes it). */
  readonly directIo?: boolean;
  /** Wraps every store the service and the in-process host open (tests inject faults with it). */
  readonly wrapStorage?: (store: BlobStore) => BlobStore;
  /**
   * The periodic backup scheduler. Its loop runs unless `manual: true`, when a caller (a test on a
   * fake clock) calls `scheduler.tick()` itself; `timer` replaces setTimeout; `idleTickMs` is the longest sleep between ticks.
   */
  readonly scheduler?: { readonly manual?: boolean; readonly timer?: SchedulerTimer; readonly idleTickMs?: number; readonly jitterMs?: number };
}

export interface RunningLifeboat {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly service: LifeboatService;
  readonly host: Host;
  readonly scheduler: Scheduler;
  readonly retention: RetentionSweeper;
  readonly sample: SampleApp | undefined;
  readonly fileShareRoots: readonly string[];
  close(): Promise<void>;
}

export async function startLifeboat(cfg: LifeboatConfig): Promise<RunningLifeboat> {
  const dataDir = resolve(cfg.dataDir);
  await mkdir(dataDir, { recursive: true });
  const fileShareRoots = (cfg.fileShareRoots?.length ? cfg.fileShareRoots : [join(dataDir, 'backups')]).map((r) => resolve(r));
  for (const r of fileShareRoots) await mkdir(r, { recursive: true });
  const storage = (d: Parameters<typeof openStorage>[0]): BlobStore => {
    const store = openStorage(d, {
      fileShareRoots,
      retry: { onRetry: (r) => log.warn({ key: r.key, operation: r.operation, attempt: r.attempt, delayMs: r.delayMs }, `storage: retrying after a transient failure: ${r.reason}`) },
    });
    return cfg.wrapStorage ? cfg.wrapStorage(store) : store;
  };
  const catalog = new SqliteCatalog(join(dataDir, 'catalog.sqlite'));
  // The service logs through the API's logger, built just after it.
  const log = {
    warn: (obj: unknown, msg?: string) => api.log.warn(obj, msg),
    info: (obj: unknown, msg?: string) => api.log.info(obj, msg),
  };
  const clock = cfg.clock ?? systemClock;
  const service = new LifeboatService({ catalog, clock, openStorage: storage, log, keyring: cfg.encryptionKeys });
  await service.recoverAfterRestart();
  const retention = new RetentionSweeper({
    catalog, clock, openStorage: storage, log,
    ...(cfg.scheduler?.timer ? { timer: cfg.scheduler.timer } : {}),
  });
  const api = buildApp({ service, retention, logger: cfg.logger ?? false });
  await api.listen({ port: cfg.port ?? 19080, host: cfg.bind ?? '127.0.0.1' });
  const address = api.server.address();
  const url = typeof address === 'object' && address ? `http://${cfg.bind ?? '127.0.0.1'}:${address.port}` : String(address);
  const sweep = setInterval(() => {
    service.expireOperations().catch((err: unknown) => api.log.error({ err }, 'checking operation deadlines failed'));
  }, cfg.timeoutSweepMs ?? 1000);
  sweep.unref();

  // The in-process host and the sample app run on the service's clock, so that a test's clock
  // dates backups too (retention and schedules read CreationTimeUtc).
  const host = new Host({
    id: 'local', channel: service, workDir: join(dataDir, 'hosts', 'local', 'work'), openStorage: storage, log: api.log, now: () => clock.now(),
    ...(cfg.dataLossRetryMs !== undefined ? { dataLossRetryMs: cfg.dataLossRetryMs } : {}),
    ...(cfg.compression ? { compression: cfg.compression } : {}),
    ...(cfg.directIo !== undefined ? { directIo: cfg.directIo } : {}),
    keyring: cfg.encryptionKeys,
  });
  let sample: SampleApp | undefined;
  if (cfg.sample !== false) {
    sample = await startSampleApp({
      dataDir: join(dataDir, 'hosts', 'local', 'SampleApp', 'MyStatefulService'), port: cfg.samplePort ?? 8080, onDataLoss: host.onDataLoss, now: () => clock.now().getTime(), deferDataLoss: true,
    });
    host.addService(sample.service);
  }
  await host.start();
  // Data loss found at open is handled now that the host can take restore orders; a partition
  // that waits for a restore must not hold up the rest.
  sample?.service.handlePendingDataLoss().catch((err: unknown) => log.warn({ err: String(err) }, 'data loss of a sample partition was not resolved'));
  const scheduler = new Scheduler({
    catalog, service, clock, log,
    ...(cfg.scheduler?.timer ? { timer: cfg.scheduler.timer } : {}),
    ...(cfg.scheduler?.idleTickMs !== undefined ? { idleTickMs: cfg.scheduler.idleTickMs } : {}),
    ...(cfg.scheduler?.jitterMs !== undefined ? { jitterMs: cfg.scheduler.jitterMs } : {}),
  });
  if (cfg.scheduler?.manual !== true) {
    scheduler.start();
    retention.start();
  }
  return {
    url, app: api, service, host, scheduler, retention, sample, fileShareRoots,
    close: async () => {
      await scheduler.stop();
      await retention.stop();
      const lag = scheduler.lagStats();
      if (lag.count > 0) api.log.info({ lag }, 'periodic backup scheduler lag (ms)');
      clearInterval(sweep);
      await host.stop();
      service.wakeAll();
      await host.stopped();
      await api.close();
      await sample?.close();
      await catalog.close();
    },
  };
}

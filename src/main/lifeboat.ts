/**
 * Composition root of a service instance. The embedded default: the catalog on SQLite, the
 * service, the REST API, the operation timer, and one host in the same process serving the sample
 * application. Past one machine (`catalogUrl`, PostgreSQL): any number of such instances on one
 * catalog, no in-process host, and the background work (scheduler, retention, deadline and
 * host-down sweeps) on the one instance holding the leader lease (src/service/leadership.ts). The
 * metrics (src/api/metrics.ts) hear the service's events and meter its storage, and the operator
 * routes serve them with /healthz and /readyz.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.ts';
import { LifeboatMetrics } from '../api/metrics.ts';
import type { Catalog } from '../catalog/port.ts';
import { loadOrCreateCatalogKey, readCatalogKey } from '../catalog/catalog-key.ts';
import { SealedCatalog } from '../catalog/sealed.ts';
import { SqliteCatalog } from '../catalog/sqlite.ts';
import type { AccessStore } from '../catalog/access-port.ts';
import { hostIsLive } from '../core/host-liveness.ts';
import { type BackgroundWork, Leadership, SOLE_INSTANCE } from '../service/leadership.ts';
import type { Compression, Keyring } from '../format/lbk2/index.ts';
import { Host } from '../host/host.ts';
import { type SampleApp, startSampleApp } from '../host/sample-app.ts';
import { LifeboatService } from '../service/lifeboat-service.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from './clock.ts';
import type { Role } from '../core/access.ts';
import { LifeboatError } from '../core/errors.ts';
import { AccessService, newToken } from '../service/access.ts';
import { RetentionSweeper } from '../service/retention-sweeper.ts';
import { Scheduler, type SchedulerTimer } from '../service/scheduler.ts';
import { DEFAULT_ENDPOINT_RULES, type EndpointRules, checkEndpointEntries } from '../storage/endpoints.ts';
import { StorageRegistry } from '../storage/open.ts';
import type { BlobStore } from '../storage/port.ts';

const isLoopback = (bind: string): boolean => bind === 'localhost' || bind === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bind);

/** The names a Host header may carry for this bind: the address itself; for a wildcard, every local address and the host name. */
function allowedHostsFor(bind: string): string[] {
  if (bind !== '0.0.0.0' && bind !== '::') return [bind.includes(':') ? `[${bind}]` : bind];
  const out = [hostname()];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(a.family === 'IPv6' ? `[${a.address.split('%')[0] ?? ''}]` : a.address);
  }
  return out;
}

/**
 * The bootstrap admin token kept in `<dataDir>/admin.token`: made on first start (256 random
 * bits, mode 0600, created exclusively so two starts cannot both write one), read after. A file
 * others may read is refused: it is an admin credential.
 */
async function adminTokenFromDataDir(dataDir: string): Promise<string> {
  const file = join(dataDir, 'admin.token');
  try {
    await writeFile(file, `${newToken()}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = await stat(file);
  if ((st.mode & 0o077) !== 0) throw new LifeboatError('E_INVALIDARG', `${file} may be read by other users (mode ${(st.mode & 0o777).toString(8)}); make it 0600 (chmod 600).`);
  const token = (await readFile(file, 'utf8')).trim();
  if (!/^[\x21-\x7e]{16,256}$/.test(token)) throw new LifeboatError('E_INVALIDARG', `${file} does not hold a token; delete it to have a new one made.`);
  return token;
}

export interface LifeboatConfig {
  readonly dataDir: string;
  readonly bind?: string;
  /** REST port; 0 picks a free one. */
  readonly port?: number;
  readonly sample?: boolean;
  readonly samplePort?: number;
  /**
   * Endpoints storage descriptions may name (`--storage-endpoints`; src/storage/endpoints.ts);
   * default the public Azure and AWS suffixes. The list replaces the default.
   */
  readonly storageEndpoints?: readonly string[];
  /** Endpoints (or `s3://bucket`s) that may get the machine's managed identity or ambient AWS credentials; default none. */
  readonly ambientCredentialEndpoints?: readonly string[];
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
  /**
   * The key that seals storage secrets in the catalog: a file of 32 base64 bytes, mode 0600
   * (`--catalog-key`), e.g. on a secrets mount apart from the data dir. Default
   * `<dataDir>/catalog.key`, made on first start.
   */
  readonly catalogKeyFile?: string;
  /** With encryptionKeys: refuse to restore a chain that holds an unencrypted backup. */
  readonly requireEncryptedRestores?: boolean;
  /** Compression of new backups (default zstd); `none` suits data that is already compressed. */
  readonly compression?: Compression;
  /** The in-process host's HostOptions.directIo (default true: O_DIRECT where the file system takes it). */
  readonly directIo?: boolean;
  /**
   * Who may call the API. By default every route needs a credential: the bootstrap admin token
   * (`adminToken`, else `<dataDir>/admin.token`, made on first start with mode 0600), tokens made
   * with it, or client certificates mapped to roles. `insecureNoAuth` turns authentication off
   * (every caller is an admin); refused on a bind that is not loopback.
   */
  readonly auth?: {
    readonly adminToken?: string;
    readonly insecureNoAuth?: boolean;
    /** Client-certificate thumbprint (SHA-1 or SHA-256 hex) or `CN=subject` → role; needs `tls.clientCa`. */
    readonly clientCertRoles?: ReadonlyMap<string, Role>;
    /** Host names the Host header may carry besides loopback and the bound address. */
    readonly allowedHosts?: readonly string[];
  };
  /** HTTPS; with `clientCa`, client certificates signed by it authenticate (mutual TLS). */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly clientCa?: Buffer };
  /**
   * The catalog: undefined for the embedded SQLite one in the data dir; a `postgres://` URL for a
   * catalog shared by several instances (`--catalog`, LIFEBOAT_CATALOG_URL). Instances on one
   * catalog need the same catalog key (`catalogKeyFile`) and admin token.
   */
  readonly catalogUrl?: string;
  /** A shared catalog's leader lease: how long it is good and how often it is renewed (default 10 s and 2 s). */
  readonly leaderLease?: { readonly ttlMs?: number; readonly renewMs?: number };
  /** How long a host may be unseen before it is down and its operations fail (default 90 s). */
  readonly hostGraceMs?: number;
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
  /** The in-process host (the embedded default); none on a shared catalog, where hosts run as `lifeboat host`. */
  readonly host: Host | undefined;
  /** Leadership of the background work on a shared catalog; undefined when this is the only instance. */
  readonly leadership: Leadership | undefined;
  readonly scheduler: Scheduler;
  readonly retention: RetentionSweeper;
  readonly sample: SampleApp | undefined;
  readonly fileShareRoots: readonly string[];
  readonly access: AccessService;
  readonly catalog: Catalog;
  /** Where the bootstrap admin token was written, when it came from the data dir (not from config). */
  readonly adminTokenFile: string | undefined;
  /** A one-time sign-in link of the web explorer (valid 10 minutes); undefined without authentication. */
  explorerSignInLink(): Promise<string | undefined>;
  /** The Prometheus metrics /metrics serves. */
  readonly metrics: LifeboatMetrics;
  /** What /readyz answers: the catalog answers, the scheduler and the retention sweeper run, a host registered or polled. */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

export async function startLifeboat(cfg: LifeboatConfig): Promise<RunningLifeboat> {
  const dataDir = resolve(cfg.dataDir);
  const bind = cfg.bind ?? '127.0.0.1';
  if (cfg.auth?.insecureNoAuth && !isLoopback(bind)) {
    throw new LifeboatError('E_INVALIDARG', `--insecure-no-auth is for local experiments: it is refused on the non-loopback bind ${bind}.`);
  }
  if (cfg.auth?.clientCertRoles?.size && !cfg.tls?.clientCa) throw new LifeboatError('E_INVALIDARG', 'Client-certificate roles need TLS with a client CA (--tls-cert, --tls-key, --client-ca).');
  const shared = cfg.catalogUrl !== undefined;
  if (shared && cfg.sample !== false) {
    throw new LifeboatError('E_INVALIDARG', 'The sample application runs only on the embedded catalog: with --catalog, start with --no-sample and run hosts with lifeboat host.');
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const fileShareRoots = (cfg.fileShareRoots?.length ? cfg.fileShareRoots : [join(dataDir, 'backups')]).map((r) => resolve(r));
  for (const r of fileShareRoots) await mkdir(r, { recursive: true });
  const endpoints: EndpointRules = {
    allowed: cfg.storageEndpoints ?? DEFAULT_ENDPOINT_RULES.allowed, ambient: cfg.ambientCredentialEndpoints ?? DEFAULT_ENDPOINT_RULES.ambient,
  };
  checkEndpointEntries([...endpoints.allowed, ...endpoints.ambient]);
  const catalogFile = join(dataDir, 'catalog.sqlite');
  const opened = await openCatalog(cfg.catalogUrl, catalogFile);
  // The catalog's figures are read when Prometheus scrapes (service is made below, before any scrape).
  const metrics: LifeboatMetrics = new LifeboatMetrics({ inventory: () => service.inventory.snapshot(), catalogBytes: opened.bytes });
  // One registry for the service, the retention sweeper and the in-process host: it keeps their
  // cloud stores between requests and closes them at shutdown; every request is metered.
  const stores = new StorageRegistry({
    fileShareRoots, endpoints, meter: metrics.storage,
    retry: { onRetry: (r) => log.warn({ key: r.key, operation: r.operation, attempt: r.attempt, delayMs: r.delayMs }, `storage: retrying after a transient failure: ${r.reason}`) },
  });
  const storage = (d: Parameters<StorageRegistry['open']>[0]): BlobStore => {
    const store = stores.open(d);
    return cfg.wrapStorage ? cfg.wrapStorage(store) : store;
  };
  // Storage secrets are sealed under a key kept out of the catalog: a copy of catalog.sqlite
  // (a backup of Lifeboat itself, a stolen disk image of it) holds no usable secret.
  const catalogKey = cfg.catalogKeyFile !== undefined ? readCatalogKey(cfg.catalogKeyFile) : loadOrCreateCatalogKey(dataDir);
  const catalog = new SealedCatalog(opened.catalog, catalogKey);
  const sealed = await catalog.sealExisting();
  if (sealed.policies > 0 || sealed.operationsLeftClear > 0) {
    console.warn(`catalog: sealed the secrets of ${sealed.policies} policies; ${sealed.operationsLeftClear} operations still hold clear ones until they end`);
  }
  // The service logs through the API's logger, built just after it.
  const log = {
    warn: (obj: unknown, msg?: string) => api.log.warn(obj, msg),
    info: (obj: unknown, msg?: string) => api.log.info(obj, msg),
  };
  const clock = cfg.clock ?? systemClock;
  const service: LifeboatService = new LifeboatService({
    catalog, clock, openStorage: storage, log, keyring: cfg.encryptionKeys, requireEncryptedRestores: cfg.requireEncryptedRestores === true, events: metrics,
    ...(cfg.hostGraceMs !== undefined ? { hostGraceMs: cfg.hostGraceMs } : {}),
  });
  // One instance does the background work: on a shared catalog, the holder of the leader lease
  // (tried for at once, so a lone instance leads from its start); on the embedded one, this one.
  const leadership = shared
    ? new Leadership({
        leases: catalog.leases, holder: `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`, clock: systemClock, log,
        ...(cfg.leaderLease?.ttlMs !== undefined ? { ttlMs: cfg.leaderLease.ttlMs } : {}),
        ...(cfg.leaderLease?.renewMs !== undefined ? { renewMs: cfg.leaderLease.renewMs } : {}),
        onChange: (leading) => {
          if (!leading) return;
          scheduler.wake();
          retention.wake();
        },
      })
    : undefined;
  const work: BackgroundWork = leadership ?? SOLE_INSTANCE;
  const retention = new RetentionSweeper({
    catalog, clock, openStorage: storage, log, work,
    ...(cfg.scheduler?.timer ? { timer: cfg.scheduler.timer } : {}),
  });
  const bootstrap = cfg.auth?.adminToken !== undefined
    ? { token: cfg.auth.adminToken, file: undefined }
    : { token: await adminTokenFromDataDir(dataDir), file: join(dataDir, 'admin.token') };
  const access = new AccessService({
    store: opened.access, clock, bootstrap: [{ name: 'bootstrap-admin', token: bootstrap.token }],
    ...(cfg.auth?.clientCertRoles ? { certificateRoles: cfg.auth.clientCertRoles } : {}),
  });
  const listening: { port?: number } = {};
  // Ready: the catalog answers, both background loops run (the scheduler is made below: until
  // then reading it throws, which /readyz takes for not ready; a manual scheduler, driven by a
  // test, has no loop), and a host registered or polled since the start.
  const ready = async (): Promise<boolean> => {
    if (service.orders.isShuttingDown || !scheduler.isRunning || !retention.isRunning) return false;
    await service.inventory.probe();
    // Behind a load balancer a host may poll another instance: one live in the catalog counts too.
    if (service.orders.hostsSeen > 0) return true;
    const now = new Date();
    return (await catalog.hierarchy.listHosts()).some((h) => hostIsLive(h, now));
  };
  const api = buildApp({
    service, retention, access, logger: cfg.logger ?? false,
    gate: {
      noAuth: cfg.auth?.insecureNoAuth === true, allowedHosts: [...allowedHostsFor(bind), ...(cfg.auth?.allowedHosts ?? [])],
      port: () => listening.port, tls: cfg.tls !== undefined,
    },
    ...(cfg.tls ? { https: { key: cfg.tls.key, cert: cfg.tls.cert, ...(cfg.tls.clientCa ? { ca: cfg.tls.clientCa } : {}) } } : {}),
    operator: { metrics: () => metrics.metrics(), ready },
  });
  await api.listen({ port: cfg.port ?? 19080, host: bind });
  const address = api.server.address();
  if (typeof address === 'object' && address) listening.port = address.port;
  const url = `${cfg.tls ? 'https' : 'http'}://${bind.includes(':') ? `[${bind}]` : bind}:${listening.port ?? ''}`;
  if (cfg.auth?.insecureNoAuth) api.log.warn('AUTHENTICATION IS OFF (--insecure-no-auth): every local process and web page can restore over, or delete, every backup. For local experiments only.');
  else if (!isLoopback(bind) && !cfg.tls) api.log.warn(`Listening on ${bind} without TLS: tokens cross the network in clear. Use --tls-cert and --tls-key.`);
  // Deadlines and hosts that are down, swept by the leader (any instance could: each end is
  // written once, by the catalog's rule; one is enough).
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping || !work.turn()) return;
    sweeping = true;
    void Promise.all([
      service.orders.expireOperations().catch((err: unknown) => api.log.error({ err }, 'checking operation deadlines failed')),
      service.orders.failOperationsOfDownHosts().catch((err: unknown) => api.log.error({ err }, 'checking for hosts that are down failed')),
    ]).finally(() => { sweeping = false; });
  }, cfg.timeoutSweepMs ?? 1000);
  sweep.unref();

  // The in-process host and the sample app run on the service's clock, so that a test's clock
  // dates backups too (retention and schedules read CreationTimeUtc).
  const host = shared ? undefined : new Host({
    id: 'local', channel: service.hosts, workDir: join(dataDir, 'hosts', 'local', 'work'), openStorage: storage, log: api.log, clock,
    ...(cfg.dataLossRetryMs !== undefined ? { dataLossRetryMs: cfg.dataLossRetryMs } : {}),
    ...(cfg.compression ? { compression: cfg.compression } : {}),
    ...(cfg.directIo !== undefined ? { directIo: cfg.directIo } : {}),
    keyring: cfg.encryptionKeys,
  });
  let sample: SampleApp | undefined;
  if (host && cfg.sample !== false) {
    sample = await startSampleApp({
      dataDir: join(dataDir, 'hosts', 'local', 'SampleApp', 'MyStatefulService'), port: cfg.samplePort ?? 8080, onDataLoss: host.onDataLoss, clock, deferDataLoss: true,
    });
    host.addService(sample.service);
  }
  await host?.start();
  // Data loss found at open is handled now that the host can take restore orders; a partition
  // that waits for a restore must not hold up the rest.
  sample?.service.handlePendingDataLoss().catch((err: unknown) => log.warn({ err: String(err) }, 'data loss of a sample partition was not resolved'));
  const scheduler = new Scheduler({
    catalog, service, clock, log, work,
    ...(cfg.scheduler?.timer ? { timer: cfg.scheduler.timer } : {}),
    ...(cfg.scheduler?.idleTickMs !== undefined ? { idleTickMs: cfg.scheduler.idleTickMs } : {}),
    ...(cfg.scheduler?.jitterMs !== undefined ? { jitterMs: cfg.scheduler.jitterMs } : {}),
  });
  await leadership?.start();
  if (cfg.scheduler?.manual !== true) {
    scheduler.start();
    retention.start();
  }
  return {
    url, app: api, service, host, leadership, scheduler, retention, sample, fileShareRoots, access, catalog, adminTokenFile: bootstrap.file,
    explorerSignInLink: async () => {
      const code = cfg.auth?.insecureNoAuth ? undefined : await access.createSignInCode();
      return code === undefined ? undefined : `${url}/explorer/#code=${code}`;
    }, metrics, ready,
    close: async () => {
      await scheduler.stop();
      await retention.stop();
      // Given up at once: another instance takes the background work over without waiting for the lease to run out.
      await leadership?.stop();
      const lag = scheduler.lagStats();
      if (lag.count > 0) api.log.info({ lag }, 'periodic backup scheduler lag (ms)');
      clearInterval(sweep);
      await host?.stop();
      service.orders.wakeAll();
      await host?.stopped();
      await api.close();
      await sample?.close();
      // Nothing opens storage now: the loops, the host and the API have stopped.
      await stores.close();
      await catalog.close();
    },
  };
}

/** The catalog this instance works on: the embedded SQLite file, or a shared PostgreSQL database. */
async function openCatalog(url: string | undefined, file: string): Promise<{ catalog: Catalog; access: AccessStore; bytes: () => Promise<number> }> {
  if (url === undefined) {
    const sqlite = new SqliteCatalog(file);
    return { catalog: sqlite, access: sqlite.access, bytes: () => fileBytes([file, `${file}-wal`]) };
  }
  // Loaded only for a shared catalog: the embedded default never loads the pg driver.
  const { PostgresCatalog } = await import('../catalog/postgres.ts');
  const pg = await PostgresCatalog.open(url);
  return { catalog: pg, access: pg.access, bytes: () => pg.sizeBytes() };
}

/** The bytes of the files that exist among `files`. */
async function fileBytes(files: readonly string[]): Promise<number> {
  let n = 0;
  for (const f of files) n += await stat(f).then((st) => st.size, () => 0);
  return n;
}

/**
 * The `lifeboat` command. Composition root: the only place that turns flags and environment into
 * configuration.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { migrateCatalog } from './catalog-migrate.ts';
import { type Role, isRole } from '../core/access.ts';
import { LifeboatClient, allPages } from '../client/lifeboat-client.ts';
import { isLifeboatError } from '../core/errors.ts';
import { INT64_MAX, INT64_MIN, type PartitionScheme } from '../core/partitioning.ts';
import { parseStorageDescription } from '../core/storage-description.ts';
import { type Keyring, parseKeyring } from '../format/lbk2/index.ts';
import { Host } from '../host/host.ts';
import { startSampleApp } from '../host/sample-app.ts';
import { BackupRepository } from '../repository/backup-repository.ts';
import { DEFAULT_ENDPOINT_RULES, checkEndpointEntries } from '../storage/endpoints.ts';
import { StorageRegistry } from '../storage/open.ts';
import { registerBackups } from '../cli/backups.ts';
import { type CliContext, type CommonOptions, runAction, withCommonOptions } from '../cli/common.ts';
import { serviceUrlArgument, serviceUrlOptions } from '../cli/connection.ts';
import { registerExplorer } from '../cli/explorer.ts';
import { registerLs } from '../cli/ls.ts';
import { registerOperations } from '../cli/operations.ts';
import { EXIT } from '../cli/output.ts';
import { registerPolicy } from '../cli/policy.ts';
import { registerProtection } from '../cli/protection.ts';
import { startHostMetrics } from './host-metrics.ts';
import { startLifeboat } from './lifeboat.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is a whole number from 0 to 65535');
  return n;
}

function roots(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => resolve(s));
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 86_400) throw new InvalidArgumentError('a whole number of seconds from 1 to 86400');
  return n;
}

function wholeSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 3600) throw new InvalidArgumentError('a whole number of seconds from 0 to 3600');
  return n;
}

/** A URL as it may be printed: without its password. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '****';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** `--client-cert-role <thumbprint|CN=subject>=<role>`, repeatable. */
function certRole(value: string, previous: Map<string, Role>): Map<string, Role> {
  const at = value.lastIndexOf('=');
  const key = value.slice(0, at).trim();
  const role = value.slice(at + 1).trim();
  if (at <= 0 || key === '' || !isRole(role) || role === 'host') throw new InvalidArgumentError('use <thumbprint>=admin|reader or CN=<subject>=admin|reader');
  return new Map([...previous, [key, role]]);
}

function fileOf(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    program.error(`error: cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** `singleton`, `named:a,b,c`, or `range:<count>[:<low>:<high>]`. */
function partitioning(value: string): PartitionScheme {
  const [kind, ...rest] = value.split(':');
  if (kind === 'singleton') return { kind: 'Singleton' };
  if (kind === 'named' && rest[0]) return { kind: 'Named', names: rest.join(':').split(',') };
  if (kind === 'range' && rest[0]) {
    try {
      return { kind: 'UniformInt64Range', count: Number(rest[0]), lowKey: rest[1] ? BigInt(rest[1]) : INT64_MIN, highKey: rest[2] ? BigInt(rest[2]) : INT64_MAX };
    } catch {
      throw new InvalidArgumentError('range keys are whole numbers');
    }
  }
  throw new InvalidArgumentError('use singleton, named:<a,b,…> or range:<count>[:<low>:<high>]');
}

function onSignal(stop: () => Promise<void>): void {
  const handler = (): void => {
    stop().then(() => process.exit(0), (err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

const env = process.env;
const program: Command = new Command('lifeboat').description('Backup and restore for partitioned stateful services')
  .addHelpText('after', '\nExit codes: 0 success, 1 operation failed or timed out, 2 usage, 3 busy (409), 4 not found, 5 auth (401/403), 130 detached with Ctrl-C. docs/cli.md has every command.');
// Usage mistakes exit 2; program.error's own exit codes (1 unless given) and help (0) stay as they are.
program.exitOverride((err) => process.exit(err.code === 'commander.error' || err.exitCode === 0 ? err.exitCode : EXIT.usage));

const KEYS_HELP = 'JSON file of encryption keys, {"current":"<id>","keys":{"<id>":"<base64 of 32 bytes>"}} (env LIFEBOAT_ENCRYPTION_KEYS_FILE)';

/** The keyring in `file`; a file that cannot be read or parsed ends the command with a message (never key bytes). */
function keyringFrom(file: string | undefined): Keyring | undefined {
  if (file === undefined || file === '') return undefined;
  let text: string;
  try {
    // An encryption key others may read is no secret: refuse it, as ssh refuses such a key.
    const mode = statSync(file).mode;
    if ((mode & 0o077) !== 0) program.error(`error: the encryption keys file ${file} may be read by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it.`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    program.error(`error: cannot read the encryption keys file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return parseKeyring(text, `The encryption keys file ${file}`);
  } catch (err) {
    program.error(`error: ${isLifeboatError(err) ? err.message : String(err)}`);
  }
}

/** `--no-direct-io`, or LIFEBOAT_DIRECT_IO=0: through the page cache. */
const directIoOf = (o: { directIo: boolean }): boolean => o.directIo && env.LIFEBOAT_DIRECT_IO !== '0';

program
  .command('start')
  .description('start Lifeboat on its embedded default: the REST service, and a host with the sample application fabric:/SampleApp')
  .option('--port <port>', 'REST API port (env LIFEBOAT_PORT)', port, port(env.LIFEBOAT_PORT ?? '19080'))
  .option('--bind <address>', 'address to listen on (env LIFEBOAT_BIND)', env.LIFEBOAT_BIND ?? '127.0.0.1')
  .option('--data-dir <dir>', 'where data is kept (env LIFEBOAT_DATA_DIR)', env.LIFEBOAT_DATA_DIR ?? './.lifeboat')
  .option('--sample-port <port>', 'port of the sample application\'s HTTP endpoint (env LIFEBOAT_SAMPLE_PORT)', port, port(env.LIFEBOAT_SAMPLE_PORT ?? '8080'))
  .option('--no-sample', 'start without the sample application')
  .option('--fileshare-roots <dirs>', 'comma-separated folders FileShare backup paths must be inside (env LIFEBOAT_FILESHARE_ROOTS; default <data-dir>/backups)', roots,
    env.LIFEBOAT_FILESHARE_ROOTS ? roots(env.LIFEBOAT_FILESHARE_ROOTS) : undefined)
  .option('--encryption-keys <file>', `${KEYS_HELP}; without it backups are not encrypted`, env.LIFEBOAT_ENCRYPTION_KEYS_FILE)
  .option('--no-direct-io', 'read a partition\'s database file for a backup, and write it in a restore, through the page cache (default: O_DIRECT where the file system takes it; env LIFEBOAT_DIRECT_IO=0)')
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (env LIFEBOAT_TLS_CERT)', env.LIFEBOAT_TLS_CERT)
  .option('--tls-key <file>', 'the PEM private key of --tls-cert (env LIFEBOAT_TLS_KEY)', env.LIFEBOAT_TLS_KEY)
  .option('--client-ca <file>', 'PEM CA certificates client certificates must be signed by (mutual TLS; env LIFEBOAT_CLIENT_CA)', env.LIFEBOAT_CLIENT_CA)
  .option('--client-cert-role <thumbprint=role>', 'a client certificate\'s role: SHA-1 or SHA-256 thumbprint (or CN=subject) = admin|reader; repeatable', certRole, new Map<string, Role>())
  .option('--allowed-hosts <names>', 'comma-separated host names the Host header may carry besides loopback and the bound address (env LIFEBOAT_ALLOWED_HOSTS)', list, env.LIFEBOAT_ALLOWED_HOSTS ? list(env.LIFEBOAT_ALLOWED_HOSTS) : [])
  .option('--storage-endpoints <list>', 'comma-separated endpoints storage descriptions may name: .suffix, host or host:port (env LIFEBOAT_STORAGE_ENDPOINTS; default the public Azure and AWS suffixes; the list replaces the default)',
    list, env.LIFEBOAT_STORAGE_ENDPOINTS ? list(env.LIFEBOAT_STORAGE_ENDPOINTS) : undefined)
  .option('--ambient-credential-endpoints <list>', 'endpoints (or s3://bucket) that may be sent this machine\'s managed identity or ambient AWS credentials (env LIFEBOAT_AMBIENT_CREDENTIAL_ENDPOINTS; default none)',
    list, env.LIFEBOAT_AMBIENT_CREDENTIAL_ENDPOINTS ? list(env.LIFEBOAT_AMBIENT_CREDENTIAL_ENDPOINTS) : undefined)
  .option('--catalog-key <file>', 'the key sealing storage secrets in the catalog (32 bytes, base64, mode 0600; env LIFEBOAT_CATALOG_KEY_FILE; default <data-dir>/catalog.key, made on first start)', env.LIFEBOAT_CATALOG_KEY_FILE)
  .option('--require-encrypted-restores', 'with --encryption-keys: refuse to restore a backup that is not encrypted')
  .option('--insecure-no-auth', 'turn authentication off: every caller is an admin. For local experiments only; refused on a non-loopback --bind')
  .option('--catalog <url>', 'a catalog shared by several instances: postgres://user@host:port/db (env LIFEBOAT_CATALOG_URL; default the embedded SQLite one in <data-dir>); '
    + 'instances on one catalog need the same --catalog-key and admin token; they run no sample application', env.LIFEBOAT_CATALOG_URL || undefined)
  .option('--host-grace <seconds>', 'how long a host may be unseen before it is down: its operations fail and health shows its partitions unreachable (env LIFEBOAT_HOST_GRACE_SECONDS)',
    seconds, env.LIFEBOAT_HOST_GRACE_SECONDS ? seconds(env.LIFEBOAT_HOST_GRACE_SECONDS) : 90)
  .option('--backup-jitter <seconds>', 'spread of periodic backups around their due moment, so partitions sharing a schedule do not all start at once (Service Fabric\'s JitterInBackupsInSeconds; env LIFEBOAT_BACKUP_JITTER_SECONDS)',
    wholeSeconds, env.LIFEBOAT_BACKUP_JITTER_SECONDS ? wholeSeconds(env.LIFEBOAT_BACKUP_JITTER_SECONDS) : 10)
  .option('--leader-lease <seconds>', 'with --catalog: how long the leader lease of the background work is good; renewed every fifth of it (env LIFEBOAT_LEADER_LEASE_SECONDS)',
    seconds, env.LIFEBOAT_LEADER_LEASE_SECONDS ? seconds(env.LIFEBOAT_LEADER_LEASE_SECONDS) : 10)
  .action(async (o: {
    port: number; bind: string; dataDir: string; samplePort: number; sample: boolean; fileshareRoots?: string[]; encryptionKeys?: string; directIo: boolean;
    tlsCert?: string; tlsKey?: string; clientCa?: string; clientCertRole: Map<string, Role>; allowedHosts: string[]; insecureNoAuth?: boolean;
    requireEncryptedRestores?: boolean; catalogKey?: string; storageEndpoints?: string[]; ambientCredentialEndpoints?: string[];
    catalog?: string; hostGrace: number; leaderLease: number; backupJitter: number;
  }) => {
    if (o.catalog !== undefined && !/^postgres(ql)?:\/\//.test(o.catalog)) program.error('error: --catalog takes a postgres:// URL (the embedded SQLite catalog needs none).');
    process.umask(0o077); // what Lifeboat writes (catalog, partitions, backups, tokens, keys) is its own
    const keyring = keyringFrom(o.encryptionKeys);
    if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) program.error('error: --tls-cert and --tls-key go together.');
    if (o.clientCa !== undefined && o.tlsCert === undefined) program.error('error: --client-ca needs --tls-cert and --tls-key.');
    const tls = o.tlsCert !== undefined && o.tlsKey !== undefined
      ? { cert: fileOf(o.tlsCert, '--tls-cert'), key: fileOf(o.tlsKey, '--tls-key'), ...(o.clientCa !== undefined ? { clientCa: fileOf(o.clientCa, '--client-ca') } : {}) }
      : undefined;
    const adminToken = env.LIFEBOAT_ADMIN_TOKEN;
    let running;
    try {
      running = await startLifeboat({
        // On a shared catalog hosts run as `lifeboat host`: no sample application in the instance.
        dataDir: o.dataDir, port: o.port, bind: o.bind, sample: o.catalog === undefined && o.sample, samplePort: o.samplePort, directIo: directIoOf(o),
        ...(o.fileshareRoots ? { fileShareRoots: o.fileshareRoots } : {}),
        ...(keyring ? { encryptionKeys: keyring } : {}),
        ...(tls ? { tls } : {}),
        requireEncryptedRestores: o.requireEncryptedRestores === true,
        ...(o.catalogKey ? { catalogKeyFile: o.catalogKey } : {}),
        ...(o.storageEndpoints ? { storageEndpoints: o.storageEndpoints } : {}),
        ...(o.ambientCredentialEndpoints ? { ambientCredentialEndpoints: o.ambientCredentialEndpoints } : {}),
        auth: {
          ...(adminToken ? { adminToken } : {}), insecureNoAuth: o.insecureNoAuth === true, clientCertRoles: o.clientCertRole, allowedHosts: o.allowedHosts,
        },
        logger: { level: env.LIFEBOAT_LOG_LEVEL ?? 'info' },
        ...(o.catalog !== undefined ? { catalogUrl: o.catalog, leaderLease: { ttlMs: o.leaderLease * 1000, renewMs: o.leaderLease * 200 } } : {}),
        hostGraceMs: o.hostGrace * 1000, scheduler: { jitterMs: o.backupJitter * 1000 },
      });
    } catch (err) {
      if (isLifeboatError(err)) program.error(`error: ${err.message}`);
      throw err;
    }
    console.log(`Lifeboat REST API: ${running.url} (Service Fabric BackupRestore API, api-version 6.4)`);
    const link = await running.explorerSignInLink();
    console.log(link === undefined ? `web explorer: ${running.url}/explorer`
      : `web explorer: ${link} (a one-time sign-in link, valid 10 minutes; then sign in with the admin token, or \`lifeboat explorer\` prints a link)`);
    if (o.insecureNoAuth) console.log('WARNING: authentication is off (--insecure-no-auth): anyone who can reach the port controls every backup.');
    else if (running.adminTokenFile) console.log(`admin token in ${running.adminTokenFile}: curl -H "Authorization: Bearer $(cat ${running.adminTokenFile})" ${running.url}/...; the lifeboat CLI reads it from there`);
    else console.log('admin token: the one in LIFEBOAT_ADMIN_TOKEN');
    if (running.sample) console.log(`sample application fabric:/SampleApp: ${running.sample.url}/kv/{key}`);
    console.log(keyring ? `backups encrypted under key '${keyring.current.id}'` : 'backups not encrypted (no --encryption-keys)');
    if (o.catalog !== undefined) console.log(`catalog shared on ${redactedUrl(o.catalog)}; this instance is ${running.leadership?.holder ?? ''}`);
    console.log(`data in ${resolve(o.dataDir)}; FileShare backups allowed under ${running.fileShareRoots.join(', ')}`);
    onSignal(() => running.close());
  });

program
  .command('host')
  .description('run a host in its own process: it serves a key-value stateful service and carries out the service\'s orders')
  // .env(): commander checks the environment's value with the same parser as the flag's.
  .addOption(new Option('--service-url <url[,url…]>', 'the Lifeboat service, e.g. http://127.0.0.1:19080; several instances of one comma-separated, '
    + 'the host moving to the next when one cannot be reached').env('LIFEBOAT_SERVICE_URL').argParser(serviceUrlArgument).makeOptionMandatory())
  .option('--host-id <id>', 'this host\'s name, unique per service (default: the host id of a host token, else <hostname>-<pid>)')
  .option('--token <token>', 'a host token bound to this host id (lifeboat token create --role host --host-id <id>; env LIFEBOAT_TOKEN)', env.LIFEBOAT_TOKEN)
  .option('--data-dir <dir>', 'where this host keeps its partitions', './.lifeboat-host')
  .option('--service <name>', 'the stateful service it serves', 'fabric:/HostApp/KvService')
  .option('--partitioning <scheme>', 'singleton, named:<a,b,…> or range:<count>[:<low>:<high>] (default: range:2, the whole Int64 range)', partitioning)
  .option('--kv-port <port>', 'port of the service\'s key-value HTTP endpoint (0 = any free port)', port, 0)
  .option('--fileshare-roots <dirs>', 'folders this host may read and write FileShare backups in (default: <data-dir>/backups)', roots)
  .option('--storage-endpoints <list>', 'endpoints storage descriptions may name, as for lifeboat start (env LIFEBOAT_STORAGE_ENDPOINTS)', list, env.LIFEBOAT_STORAGE_ENDPOINTS ? list(env.LIFEBOAT_STORAGE_ENDPOINTS) : undefined)
  .option('--ambient-credential-endpoints <list>', 'endpoints that may get this machine\'s own credentials (env LIFEBOAT_AMBIENT_CREDENTIAL_ENDPOINTS)', list, env.LIFEBOAT_AMBIENT_CREDENTIAL_ENDPOINTS ? list(env.LIFEBOAT_AMBIENT_CREDENTIAL_ENDPOINTS) : undefined)
  .option('--encryption-keys <file>', `${KEYS_HELP}; without it backups are not encrypted`, env.LIFEBOAT_ENCRYPTION_KEYS_FILE)
  .option('--no-direct-io', 'read a partition\'s database file for a backup, and write it in a restore, through the page cache (default: O_DIRECT where the file system takes it; env LIFEBOAT_DIRECT_IO=0)')
  .option('--metrics-port <port>', 'serve this host\'s Prometheus metrics on this port (GET /metrics with --metrics-token as bearer; GET /healthz); off when absent (env LIFEBOAT_METRICS_PORT)',
    port, env.LIFEBOAT_METRICS_PORT ? port(env.LIFEBOAT_METRICS_PORT) : undefined)
  .option('--metrics-bind <address>', 'address the metrics port listens on (env LIFEBOAT_METRICS_BIND)', env.LIFEBOAT_METRICS_BIND ?? '127.0.0.1')
  .option('--metrics-token <token>', 'bearer token scrapers must send to the metrics port: a metrics token (lifeboat token create --role metrics), never this host\'s own token (env LIFEBOAT_METRICS_TOKEN)',
    env.LIFEBOAT_METRICS_TOKEN)
  .action(async (o: {
    serviceUrl: string; hostId?: string; token?: string; dataDir: string; service: string; partitioning?: PartitionScheme; kvPort: number;
    fileshareRoots?: string[]; encryptionKeys?: string; directIo: boolean;
    storageEndpoints?: string[]; ambientCredentialEndpoints?: string[]; metricsPort?: number; metricsBind: string; metricsToken?: string;
  }) => {
    process.umask(0o077);
    const scheme = o.partitioning ?? { kind: 'UniformInt64Range', count: 2, lowKey: INT64_MIN, highKey: INT64_MAX };
    const fileShareRoots = o.fileshareRoots ?? [join(resolve(o.dataDir), 'backups')];
    for (const r of fileShareRoots) mkdirSync(r, { recursive: true, mode: 0o700 });
    const keyring = keyringFrom(o.encryptionKeys);
    const endpoints = { allowed: o.storageEndpoints ?? DEFAULT_ENDPOINT_RULES.allowed, ambient: o.ambientCredentialEndpoints ?? DEFAULT_ENDPOINT_RULES.ambient };
    try {
      checkEndpointEntries([...endpoints.allowed, ...endpoints.ambient]);
    } catch (err) {
      program.error(`error: ${isLifeboatError(err) ? err.message : String(err)}`);
    }
    if (!o.token) program.error('error: a host needs a token: --token or LIFEBOAT_TOKEN (lifeboat token create --role host --host-id <id>).');
    // The host protocol through the typed client, with the host's token (bound to its host id).
    const client = new LifeboatClient({ ...serviceUrlOptions(o.serviceUrl), token: o.token });
    const channel = client.hosts;
    let hostId = o.hostId;
    if (hostId === undefined) {
      try {
        hostId = (await client.access.me()).HostId ?? `${hostname()}-${process.pid}`;
      } catch (err) {
        program.error(`error: ${isLifeboatError(err) ? err.message : String(err)}`);
      }
    }
    if (o.metricsPort !== undefined && !o.metricsToken) program.error('error: --metrics-port needs --metrics-token (or LIFEBOAT_METRICS_TOKEN): a metrics token (lifeboat token create --role metrics).');
    let hostMetrics;
    try {
      hostMetrics = o.metricsPort !== undefined ? await startHostMetrics({ hostId, bind: o.metricsBind, port: o.metricsPort, token: o.metricsToken as string }) : undefined;
    } catch (err) {
      program.error(`error: ${isLifeboatError(err) ? err.message : String(err)}`);
    }
    // The host opens a store per order; the registry keeps its cloud stores and closes them on the way out.
    const stores = new StorageRegistry({ fileShareRoots, endpoints, ...(hostMetrics ? { meter: hostMetrics.storage } : {}) });
    const host = new Host({
      id: hostId, channel: hostMetrics ? hostMetrics.observe(channel) : channel, workDir: join(resolve(o.dataDir), 'work'), keyring, directIo: directIoOf(o),
      openStorage: (d) => stores.open(d),
      log: { warn: (obj, msg) => console.warn(msg ?? '', JSON.stringify(obj)), info: (obj, msg) => console.log(msg ?? '', JSON.stringify(obj)) },
    });
    const app = await startSampleApp({ dataDir: join(resolve(o.dataDir), 'service'), port: o.kvPort, serviceName: o.service, partitioning: scheme, onDataLoss: host.onDataLoss, deferDataLoss: true });
    host.addService(app.service);
    await host.start();
    app.service.handlePendingDataLoss().catch((err: unknown) => console.warn('data loss of a partition was not resolved', String(err)));
    console.log(JSON.stringify({ host: hostId, service: o.service, kv: app.url, partitions: app.service.partitionList.map((p) => p.id), ...(hostMetrics ? { metrics: hostMetrics.url } : {}) }));
    onSignal(async () => {
      await host.stop();
      await app.close();
      await stores.close();
      await hostMetrics?.close();
    });
  });

// ---- the operator commands (src/cli): talk to the running service ------------------------------

const ctx: CliContext = { term: { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env }, env };

const tokens = program.command('token').description('API tokens of the running service (admin): create, list, revoke');
withCommonOptions(tokens.command('create'), ctx)
  .description('make a token; prints what it is, then the token itself as the last line (shown once: only its hash is kept)')
  .requiredOption('--role <role>', 'admin, reader (reads only), host (the host protocol, as one host) or metrics (scrapes /metrics only)')
  .option('--name <name>', 'its name, for list and revoke (default: <role>-<random>)')
  .option('--host-id <id>', 'for --role host: the host id it may act as')
  .action((o: CommonOptions & { role: string; name?: string; hostId?: string }) => runAction(ctx, o, async (lb, out) => {
    // The role goes as given: the service says what it takes.
    const r = await lb.access.createToken({
      Role: o.role as Role, ...(o.name !== undefined ? { Name: o.name } : {}), ...(o.hostId !== undefined ? { HostId: o.hostId } : {}),
    });
    if (out.json) {
      out.data(r);
      return;
    }
    out.line(`token '${r.Name}' (role ${r.Role}${r.HostId !== undefined ? `, host ${r.HostId}` : ''}); send it as Authorization: Bearer <token>:`);
    out.line(r.Token);
  }));
withCommonOptions(tokens.command('list'), ctx)
  .description('the tokens (names, roles, hosts, when made; never the tokens themselves)')
  .action((o: CommonOptions) => runAction(ctx, o, async (lb, out) => {
    const items = await allPages((t) => lb.access.listTokens(t ? { continuationToken: t } : {}));
    if (out.json) out.data(items);
    else out.table(['NAME', 'ROLE', 'HOST', 'CREATED'], items.map((t) => [t.Name, t.Role, t.HostId ?? '', t.CreatedUtc]));
  }));
withCommonOptions(tokens.command('revoke'), ctx)
  .description('revoke a token by name: requests with it are refused at once')
  .argument('<name>', 'the token\'s name')
  .action((name: string, o: CommonOptions) => runAction(ctx, o, async (lb, out) => {
    await lb.access.revokeToken(name);
    if (out.json) out.data({ Name: name, Revoked: true });
    else out.line(`token '${name}' revoked`);
  }));

registerLs(program, ctx);
registerOperations(program, ctx);
registerBackups(program, ctx);
registerPolicy(program, ctx);
registerProtection(program, ctx);
registerExplorer(program, ctx);

const keys = program.command('keys').description('encryption keys of stored backups');
keys
  .command('rewrap')
  .description('key rotation: re-wrap the data key of every encrypted backup in a storage under the keyring\'s current key, without touching the data '
    + '(each .bkmetadata is replaced atomically; safe to run again, or to resume after an interruption). Prints the counts as JSON; exits 1 if any backup failed.')
  .requiredOption('--storage <json>', 'the storage, as a BackupStorage JSON description, e.g. \'{"StorageKind":"FileShare","Path":"/backups"}\'')
  .option('--prefix <prefix>', 'only backups under this key prefix, e.g. SampleApp/MyStatefulService/', '')
  .option('--encryption-keys <file>', `${KEYS_HELP}: the current key wraps; the old keys must still be in it`, env.LIFEBOAT_ENCRYPTION_KEYS_FILE)
  .action(async (o: { storage: string; prefix: string; encryptionKeys?: string }) => {
    const keyring = keyringFrom(o.encryptionKeys);
    if (!keyring) program.error('error: --encryption-keys (or LIFEBOAT_ENCRYPTION_KEYS_FILE) is required: its current key is the one to re-wrap under.');
    // One run, one store; the registry closes its client when the run is done.
    const stores = new StorageRegistry({ fileShareRoots: ['/'] });
    let store;
    try {
      store = stores.open(parseStorageDescription(JSON.parse(o.storage) as unknown));
    } catch (err) {
      program.error(`error: --storage: ${isLifeboatError(err) ? err.message : 'not a JSON storage description'}`);
    }
    let report;
    try {
      report = await new BackupRepository(store).rewrapKeys({ kind: 'Prefix', prefix: o.prefix }, keyring);
    } catch (err) {
      // The storage itself failed (listing); what one backup meets is in the report instead.
      program.error(`error: ${isLifeboatError(err) ? err.message : String(err)}`);
    } finally {
      await stores.close();
    }
    console.log(JSON.stringify(report));
    if (report.failed.length > 0) process.exitCode = 1;
  });

const catalogCommand = program.command('catalog').description('the service\'s catalog');
catalogCommand
  .command('migrate')
  .description('move an embedded installation\'s catalog (SQLite, in its data dir) into an empty PostgreSQL catalog, all or nothing: policies, protection, '
    + 'the backup index, operations and their history, schedules, tokens and the audit log. Stop Lifeboat first. Prints what it copied; '
    + 'then start every instance with --catalog <url> and the data dir\'s catalog key (--catalog-key <data-dir>/catalog.key): the policies\' secrets stay sealed under it.')
  .requiredOption('--from <data-dir>', 'the data dir of the embedded installation (where catalog.sqlite is)')
  .requiredOption('--to <url>', 'the PostgreSQL catalog: postgres://user@host:port/db (an empty database; its schema is made)')
  .option('--json', 'print the counts as JSON')
  .action(async (o: { from: string; to: string; json?: boolean }) => {
    if (!/^postgres(ql)?:\/\//.test(o.to)) program.error('error: --to takes a postgres:// URL.');
    let copied;
    try {
      copied = await migrateCatalog(o.from, o.to);
    } catch (err) {
      program.error(`error: ${isLifeboatError(err) ? err.message : String(err)}`);
    }
    if (o.json) {
      console.log(JSON.stringify({ Tables: copied.map((t) => ({ Table: t.table, Rows: t.rows })) }));
      return;
    }
    for (const t of copied) console.log(`${t.table.padEnd(24)} ${t.rows}`);
    console.log(`catalog moved to ${redactedUrl(o.to)}; start instances with --catalog and --catalog-key ${join(resolve(o.from), 'catalog.key')}`);
  });

await program.parseAsync(process.argv);

/**
 * The `lifeboat` command. Composition root: the only place that turns flags and environment into
 * configuration.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { isLifeboatError } from '../core/errors.ts';
import { INT64_MAX, INT64_MIN, type PartitionScheme } from '../core/partitioning.ts';
import { parseStorageDescription } from '../core/storage-description.ts';
import { type Keyring, parseKeyring } from '../format/lbk2.ts';
import { Host } from '../host/host.ts';
import { HttpHostChannel } from '../host/http-channel.ts';
import { startSampleApp } from '../host/sample-app.ts';
import { rewrapKeys } from '../service/key-rotation.ts';
import { openStorage } from '../storage/open.ts';
import { startLifeboat } from './lifeboat.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is a whole number from 0 to 65535');
  return n;
}

function roots(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => resolve(s));
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
const program: Command = new Command('lifeboat').description('Backup and restore for partitioned stateful services');

const KEYS_HELP = 'JSON file of encryption keys, {"current":"<id>","keys":{"<id>":"<base64 of 32 bytes>"}} (env LIFEBOAT_ENCRYPTION_KEYS_FILE)';

/** The keyring in `file`; a file that cannot be read or parsed ends the command with a message (never key bytes). */
function keyringFrom(file: string | undefined): Keyring | undefined {
  if (file === undefined || file === '') return undefined;
  let text: string;
  try {
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
  .action(async (o: { port: number; bind: string; dataDir: string; samplePort: number; sample: boolean; fileshareRoots?: string[]; encryptionKeys?: string; directIo: boolean }) => {
    const keyring = keyringFrom(o.encryptionKeys);
    const running = await startLifeboat({
      dataDir: o.dataDir, port: o.port, bind: o.bind, sample: o.sample, samplePort: o.samplePort, directIo: directIoOf(o),
      ...(o.fileshareRoots ? { fileShareRoots: o.fileshareRoots } : {}),
      ...(keyring ? { encryptionKeys: keyring } : {}),
      logger: { level: env.LIFEBOAT_LOG_LEVEL ?? 'info' },
    });
    console.log(`Lifeboat REST API: ${running.url} (Service Fabric BackupRestore API, api-version 6.4)`);
    if (running.sample) console.log(`sample application fabric:/SampleApp: ${running.sample.url}/kv/{key}`);
    console.log(keyring ? `backups encrypted under key '${keyring.current.id}'` : 'backups not encrypted (no --encryption-keys)');
    console.log(`data in ${resolve(o.dataDir)}; FileShare backups allowed under ${running.fileShareRoots.join(', ')}`);
    onSignal(() => running.close());
  });

program
  .command('host')
  .description('run a host in its own process: it serves a key-value stateful service and carries out the service\'s orders')
  .requiredOption('--service-url <url>', 'the Lifeboat service, e.g. http://127.0.0.1:19080 (env LIFEBOAT_SERVICE_URL)', env.LIFEBOAT_SERVICE_URL)
  .option('--host-id <id>', 'this host\'s name, unique per service', `${hostname()}-${process.pid}`)
  .option('--data-dir <dir>', 'where this host keeps its partitions', './.lifeboat-host')
  .option('--service <name>', 'the stateful service it serves', 'fabric:/HostApp/KvService')
  .option('--partitioning <scheme>', 'singleton, named:<a,b,…> or range:<count>[:<low>:<high>] (default: range:2, the whole Int64 range)', partitioning)
  .option('--kv-port <port>', 'port of the service\'s key-value HTTP endpoint (0 = any free port)', port, 0)
  .option('--fileshare-roots <dirs>', 'folders this host may write FileShare backups to (default: any; the service checks paths)', roots)
  .option('--encryption-keys <file>', `${KEYS_HELP}; without it backups are not encrypted`, env.LIFEBOAT_ENCRYPTION_KEYS_FILE)
  .option('--no-direct-io', 'read a partition\'s database file for a backup, and write it in a restore, through the page cache (default: O_DIRECT where the file system takes it; env LIFEBOAT_DIRECT_IO=0)')
  .action(async (o: { serviceUrl: string; hostId: string; dataDir: string; service: string; partitioning?: PartitionScheme; kvPort: number; fileshareRoots?: string[]; encryptionKeys?: string; directIo: boolean }) => {
    const scheme = o.partitioning ?? { kind: 'UniformInt64Range', count: 2, lowKey: INT64_MIN, highKey: INT64_MAX };
    const fileShareRoots = o.fileshareRoots ?? ['/'];
    const keyring = keyringFrom(o.encryptionKeys);
    const host = new Host({
      id: o.hostId, channel: new HttpHostChannel(o.serviceUrl), workDir: join(resolve(o.dataDir), 'work'), keyring, directIo: directIoOf(o),
      openStorage: (d) => openStorage(d, { fileShareRoots }),
      log: { warn: (obj, msg) => console.warn(msg ?? '', JSON.stringify(obj)), info: (obj, msg) => console.log(msg ?? '', JSON.stringify(obj)) },
    });
    const app = await startSampleApp({ dataDir: join(resolve(o.dataDir), 'service'), port: o.kvPort, serviceName: o.service, partitioning: scheme, onDataLoss: host.onDataLoss, deferDataLoss: true });
    host.addService(app.service);
    await host.start();
    app.service.handlePendingDataLoss().catch((err: unknown) => console.warn('data loss of a partition was not resolved', String(err)));
    console.log(JSON.stringify({ host: o.hostId, service: o.service, kv: app.url, partitions: app.service.partitionList.map((p) => p.id) }));
    onSignal(async () => {
      await host.stop();
      await app.close();
    });
  });

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
    let store;
    try {
      store = openStorage(parseStorageDescription(JSON.parse(o.storage) as unknown), { fileShareRoots: ['/'] });
    } catch (err) {
      program.error(`error: --storage: ${isLifeboatError(err) ? err.message : 'not a JSON storage description'}`);
    }
    let report;
    try {
      report = await rewrapKeys(store, o.prefix, keyring);
    } catch (err) {
      // The storage itself failed (listing); what one backup meets is in the report instead.
      program.error(`error: ${isLifeboatError(err) ? err.message : String(err)}`);
    }
    console.log(JSON.stringify(report));
    if (report.failed.length > 0) process.exitCode = 1;
  });

await program.parseAsync(process.argv);

/**
 * The `lifeboat` command. Composition root: the only place that turns flags and environment into
 * configuration.
 */
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { INT64_MAX, INT64_MIN, type PartitionScheme } from '../core/partitioning.ts';
import { Host } from '../host/host.ts';
import { HttpHostChannel } from '../host/http-channel.ts';
import { startSampleApp } from '../host/sample-app.ts';
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
const program = new Command('lifeboat').description('Backup and restore for partitioned stateful services');

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
  .action(async (o: { port: number; bind: string; dataDir: string; samplePort: number; sample: boolean; fileshareRoots?: string[] }) => {
    const running = await startLifeboat({
      dataDir: o.dataDir, port: o.port, bind: o.bind, sample: o.sample, samplePort: o.samplePort,
      ...(o.fileshareRoots ? { fileShareRoots: o.fileshareRoots } : {}),
      logger: { level: env.LIFEBOAT_LOG_LEVEL ?? 'info' },
    });
    console.log(`Lifeboat REST API: ${running.url} (Service Fabric BackupRestore API, api-version 6.4)`);
    if (running.sample) console.log(`sample application fabric:/SampleApp: ${running.sample.url}/kv/{key}`);
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
  .action(async (o: { serviceUrl: string; hostId: string; dataDir: string; service: string; partitioning?: PartitionScheme; kvPort: number; fileshareRoots?: string[] }) => {
    const scheme = o.partitioning ?? { kind: 'UniformInt64Range', count: 2, lowKey: INT64_MIN, highKey: INT64_MAX };
    const fileShareRoots = o.fileshareRoots ?? ['/'];
    const host = new Host({
      id: o.hostId, channel: new HttpHostChannel(o.serviceUrl), workDir: join(resolve(o.dataDir), 'work'),
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

await program.parseAsync(process.argv);

/**
 * The `lifeboat` command. Composition root: the only place that turns flags and environment into
 * concrete parts.
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { startSampleApp } from '../host/sample-app.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is a whole number from 0 to 65535');
  return n;
}

const program = new Command('lifeboat').description('Backup and restore for partitioned stateful services');

program
  .command('start')
  .description('start Lifeboat on its embedded default, with the sample application fabric:/SampleApp')
  .option('--data-dir <dir>', 'where data is kept (env LIFEBOAT_DATA_DIR)', process.env.LIFEBOAT_DATA_DIR ?? './.lifeboat')
  .option('--sample-port <port>', 'port of the sample application\'s HTTP endpoint (env LIFEBOAT_SAMPLE_PORT)', port, port(process.env.LIFEBOAT_SAMPLE_PORT ?? '8080'))
  .option('--no-sample', 'start without the sample application')
  .action(async (o: { dataDir: string; samplePort: number; sample: boolean }) => {
    const dataDir = resolve(o.dataDir);
    const closers: Array<() => Promise<void>> = [];
    if (o.sample) {
      const app = await startSampleApp({ dataDir: resolve(dataDir, 'hosts', 'local', 'SampleApp', 'MyStatefulService'), port: o.samplePort });
      closers.push(() => app.close());
      console.log(`sample application fabric:/SampleApp: ${app.url}/kv/{key}  (data in ${dataDir})`);
    }
    console.log('The Lifeboat REST service is not built yet (issue 3); the state library and the sample application run.');
    const stop = async (): Promise<void> => {
      for (const close of closers) await close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop());
    process.once('SIGTERM', () => void stop());
  });

await program.parseAsync(process.argv);

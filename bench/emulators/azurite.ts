/**
 * Azurite, Microsoft's Azure Storage emulator, for the tests and the benchmarks: `startAzurite()`
 * runs its blob service on a free loopback port, in memory or in a folder. (The tests' per-file
 * harness and fault proxy are test/support/azurite.ts.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The emulator's well-known account and key (public; published in Azurite's documentation). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const AZURITE_BIN = fileURLToPath(new URL('../../node_modules/.bin/azurite-blob', import.meta.url));

const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export interface Azurite {
  readonly connectionString: string;
  /** e.g. http://127.0.0.1:PORT/devstoreaccount1 */
  readonly blobEndpoint: string;
  readonly accountName: string;
  readonly accountKey: string;
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** Serve HTTPS with this certificate and key (PEM files); Azurite accepts OAuth only over HTTPS. */
  readonly https?: { readonly certPath: string; readonly keyPath: string };
  /** Accept bearer tokens (Azurite's "basic" check: shape, issuer, audience and lifetime, no signature). */
  readonly oauth?: boolean;
  /** Keep the blobs in this folder (which must exist) instead of memory: for more than memory holds, e.g. a benchmark's backups. */
  readonly location?: string;
}

/** Why Azurite cannot run here, or undefined when it can. */
export function azuriteMissing(): string | undefined {
  return existsSync(AZURITE_BIN) ? undefined : `azurite is not installed (${AZURITE_BIN} is missing; run npm install)`;
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  // Azurite writes nothing with --inMemoryPersistence, but runs in a scratch folder in case it does.
  const scratch = options.location === undefined ? mkdtempSync(join(tmpdir(), 'lifeboat-azurite-')) : undefined;
  const cwd = options.location ?? scratch as string;
  const storage = options.location === undefined ? ['--inMemoryPersistence', '--extentMemoryLimit', '1024'] : ['--location', options.location];
  const args = [AZURITE_BIN, '--blobHost', '127.0.0.1', '--blobPort', '0', ...storage,
    '--skipApiVersionCheck', '--disableTelemetry', '--loose', '--silent'];
  if (options.https) args.push('--cert', options.https.certPath, '--key', options.https.keyPath);
  if (options.oauth) args.push('--oauth', 'basic');
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  // The test process may end without calling stop() (a failed before hook): leave no server behind.
  const reap = (): void => { child.kill('SIGKILL'); };
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanUp = (): void => {
    process.removeListener('exit', reap);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  };
  let origin: string;
  try {
    origin = await listening(child);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    cleanUp();
    throw err;
  }
  // Keep draining its output so a full pipe never blocks it.
  child.stdout?.resume();
  child.stderr?.resume();
  const blobEndpoint = `${origin}/${AZURITE_ACCOUNT}`;
  let stopping: Promise<void> | undefined;
  return {
    connectionString: `DefaultEndpointsProtocol=${origin.startsWith('https') ? 'https' : 'http'};AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`,
    blobEndpoint,
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    stop: () => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
          await exited;
          clearTimeout(timer);
        }
        cleanUp();
      })();
      return stopping;
    },
  };
}

/** Waits for Azurite's "successfully listens on http://127.0.0.1:PORT" line. */
function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(new Error(`Azurite did not start: ${why}. Its output:\n${output.slice(-4000)}`));
    };
    const timer = setTimeout(() => fail(`no "listens on" line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const onData = (d: Buffer): void => {
      output += d.toString('utf8');
      const m = /successfully listens on (https?:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m?.[1]) {
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        resolve(m[1]);
      }
    };
    const onExit = (code: number | null, signal: string | null): void => fail(`it exited (code ${code}, signal ${signal})`);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => { output += d.toString('utf8'); });
    child.once('error', (err) => fail(err.message));
    child.once('exit', onExit);
  });
}

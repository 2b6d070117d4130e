/**
 * A private PostgreSQL cluster for the tests and the benchmarks: `startPostgres()` runs initdb in a
 * throwaway folder and starts the server on a free loopback port (its socket in that folder too),
 * so it never meets the machine's own clusters. Debian's server binaries are used
 * (/usr/lib/postgresql/<newest>/bin, else PATH); as root they run as the `postgres` user (initdb
 * refuses root) and, when missing, Debian's `postgresql` package is installed first. (The tests'
 * per-file harness is test/support/postgres.ts.)
 */
import { execFile, execFileSync } from 'node:child_process';
import { accessSync, appendFileSync, chownSync, constants, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const START_TIMEOUT_S = 60;
const PG_LIB = '/usr/lib/postgresql';

export interface Postgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication: no password). */
  readonly url: string;
  readonly port: number;
  /** A new empty database; its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
  /** Stops (if running) and starts the same cluster on the same port: a PostgreSQL restart. */
  restart(): Promise<void>;
  /** Stops the server at once (pg_ctl -m immediate: a crash, as far as clients can tell); restart() brings it back. */
  kill(): Promise<void>;
}

export interface PostgresOptions {
  /** Extra postgresql.conf settings, e.g. { max_connections: '300' }. */
  readonly settings?: Readonly<Record<string, string>>;
}

interface Binaries { readonly initdb: string; readonly pgCtl: string }

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The newest version's initdb and pg_ctl under /usr/lib/postgresql, else those on PATH. */
function findBinaries(): Binaries | undefined {
  const versions = existsSync(PG_LIB) ? readdirSync(PG_LIB).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const bin = join(PG_LIB, v, 'bin');
    if (executable(join(bin, 'initdb')) && executable(join(bin, 'pg_ctl'))) return { initdb: join(bin, 'initdb'), pgCtl: join(bin, 'pg_ctl') };
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (executable(join(dir, 'initdb')) && executable(join(dir, 'pg_ctl'))) return { initdb: join(dir, 'initdb'), pgCtl: join(dir, 'pg_ctl') };
  }
  return undefined;
}

const isRoot = (): boolean => process.getuid?.() === 0;

function install(): string | undefined {
  if (!isRoot()) return 'the PostgreSQL server is not installed (no initdb under /usr/lib/postgresql or on PATH) and we do not run as root to install it (apt-get install -y postgresql)';
  try {
    // Lock::Timeout: another apt-get (a second test file, the machine's own) may hold dpkg's lock for a while.
    execFileSync('sh', ['-c', 'apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 postgresql'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 15 * 60_000 });
    return findBinaries() ? undefined : 'apt-get install postgresql did not install initdb and pg_ctl';
  } catch (err) {
    return `apt-get install postgresql failed: ${String((err as { stderr?: Buffer }).stderr ?? err).slice(0, 500)}`;
  }
}

let missing: { why: string | undefined } | undefined;

/** Why PostgreSQL cannot run here (not installed, and cannot be installed), or undefined when it can; installs it when it can. */
export function postgresMissing(): string | undefined {
  missing ??= { why: findBinaries() ? undefined : install() };
  return missing.why;
}

/** A free loopback port (the server binds it a moment later; a clash fails the start loudly). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** The command line that runs `cmd` as the server's user: `postgres` when we are root, else ourselves. */
function asServerUser(cmd: string, args: string[]): [string, string[]] {
  if (!isRoot()) return [cmd, args];
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find(executable);
  if (runuser) return [runuser, ['-u', 'postgres', '--', cmd, ...args]];
  const quoted = [cmd, ...args].map((a) => `'${a.replace(/'/g, '\'\\\'\'')}'`).join(' ');
  return ['su', ['postgres', '-s', '/bin/sh', '-c', quoted]];
}

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const [c, a] = asServerUser(cmd, args);
  return new Promise((resolve, reject) => {
    execFile(c, a, { cwd, timeout: (START_TIMEOUT_S + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`.slice(0, 4000)));
      else resolve();
    });
  });
}

function ownerIds(): { uid: number; gid: number } | undefined {
  if (!isRoot()) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export async function startPostgres(options: PostgresOptions = {}): Promise<Postgres> {
  const why = postgresMissing();
  if (why !== undefined) throw new Error(`PostgreSQL cannot run: ${why}`);
  const bin = findBinaries() as Binaries;
  const root = mkdtempSync(join(tmpdir(), 'lifeboat-pg-'));
  const data = join(root, 'data');
  const log = join(root, 'server.log');
  const owner = ownerIds();
  if (owner) chownSync(root, owner.uid, owner.gid);
  let running = false;
  const pgCtl = (...args: string[]): Promise<void> => run(bin.pgCtl, ['-D', data, ...args], root);
  const start = async (): Promise<void> => {
    try {
      await pgCtl('-l', log, '-w', '-t', String(START_TIMEOUT_S), 'start');
    } catch (err) {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-3000) : '';
      throw new Error(`PostgreSQL did not start: ${(err as Error).message}\nIts log:\n${tail}`);
    }
    running = true;
  };
  // The test process may end without calling stop() (a failed before hook): leave no server behind.
  const reap = (): void => {
    if (!running) return;
    try {
      const [c, a] = asServerUser(bin.pgCtl, ['-D', data, '-m', 'immediate', 'stop']);
      execFileSync(c, a, { cwd: root, stdio: 'ignore', timeout: 10_000 });
    } catch { /* best effort */ }
    rmSync(root, { recursive: true, force: true });
  };
  let port = 0;
  try {
    await run(bin.initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '--encoding=UTF8', '--locale=C', '--no-sync'], root);
    const settings: Record<string, string> = {
      listen_addresses: '\'127.0.0.1\'', unix_socket_directories: `'${root}'`, max_connections: '300', ...options.settings,
    };
    appendFileSync(join(data, 'postgresql.conf'), `\n# lifeboat: a private test cluster\n${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`);
    process.once('exit', reap);
    // The free port may be taken between our look and the server's bind: then another one (the last `port` line wins).
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      appendFileSync(join(data, 'postgresql.conf'), `port = ${port}\n`);
      try {
        await start();
        break;
      } catch (err) {
        if (attempt >= 3 || !/could not bind|already in use|could not create any TCP\/IP sockets/i.test((err as Error).message)) throw err;
      }
    }
  } catch (err) {
    reap();
    process.removeListener('exit', reap);
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const halt = async (mode: 'fast' | 'immediate'): Promise<void> => {
    if (!running) return;
    await pgCtl('-m', mode, '-w', 'stop');
    running = false;
  };
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    createDatabase: async () => {
      const name = `lb_${randomBytes(8).toString('hex')}`;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop: () => {
      stopping ??= (async () => {
        try {
          await halt('fast');
        } finally {
          process.removeListener('exit', reap);
          rmSync(root, { recursive: true, force: true });
        }
      })();
      return stopping;
    },
    restart: async () => {
      await halt('fast');
      await start();
    },
    kill: () => halt('immediate'),
  };
}

/**
 * Lifeboat processes for tests: `lifeboat host` and `lifeboat start` run as child processes
 * (`node --import tsx src/main/cli.ts …`), their stdout read line by line, killed for real.
 *
 * Create the `Children` of a test BEFORE starting an in-process Lifeboat with startTestLifeboat:
 * node:test runs `t.after` hooks in the order they were registered, so the children are then
 * killed before the in-process service closes (a host polling a closing service only spins).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { TEST_ADMIN_TOKEN } from './api-http.ts';

/** The repository root: children run `src/main/cli.ts` from it. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const START_TIMEOUT_MS = 45_000;

export class ChildLifeboat {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  private stderrText = '';
  private readonly waiters = new Set<() => void>();
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(name: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.name = name;
    this.proc = spawn(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], {
      cwd: REPO_ROOT,
      // Services start with the test admin token; hosts and CLI commands use it (an admin may act as any host).
      env: { ...process.env, LIFEBOAT_ADMIN_TOKEN: TEST_ADMIN_TOKEN, LIFEBOAT_TOKEN: TEST_ADMIN_TOKEN, LIFEBOAT_STORAGE_ENDPOINTS: '.blob.core.windows.net,.amazonaws.com,127.0.0.1,localhost', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        resolve({ code, signal });
        for (const w of this.waiters) w();
      });
    });
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      this.lines.push(line);
      for (const w of this.waiters) w();
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (s: string) => {
      // Keep the tail only: enough to explain a failure.
      this.stderrText = (this.stderrText + s).slice(-20_000);
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  stderr(): string {
    return this.stderrText;
  }

  /** The first stdout line (from the start) that `pick` maps to a value. */
  async waitForLine<T>(pick: (line: string) => T | undefined, what: string, ms = START_TIMEOUT_MS): Promise<T> {
    const until = Date.now() + ms;
    let seen = 0;
    for (;;) {
      for (; seen < this.lines.length; seen++) {
        const v = pick(this.lines[seen] as string);
        if (v !== undefined) return v;
      }
      if (!this.alive) {
        throw new Error(`${this.name} (pid ${this.pid}) exited (${this.proc.exitCode ?? this.proc.signalCode}) before ${what}.\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderrText}`);
      }
      const left = until - Date.now();
      if (left <= 0) throw new Error(`${this.name} (pid ${this.pid}): timed out waiting for ${what}.\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderrText}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1000));
        this.waiters.add(done);
      });
    }
  }

  /** Sends `signal` (SIGKILL by default) to this process only, and waits for it to end. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.proc.kill(signal);
    return this.exited;
  }
}

/** The child processes of one test; all are killed (SIGKILL, by pid) when the test ends. */
export class Children {
  private readonly all: ChildLifeboat[] = [];

  constructor(t: Pick<TestContext, 'after'>) {
    t.after(() => this.killAll());
  }

  spawn(name: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): ChildLifeboat {
    const c = new ChildLifeboat(name, args, env);
    this.all.push(c);
    return c;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.all.map((c) => c.kill('SIGKILL')));
  }
}

/** The JSON line `lifeboat host` prints once registered. */
export interface HostLine {
  readonly host: string;
  readonly service: string;
  readonly kv: string;
  readonly partitions: readonly string[];
}

export interface HostProcess {
  readonly child: ChildLifeboat;
  readonly info: HostLine;
}

export interface HostProcessOptions {
  readonly serviceUrl: string;
  readonly hostId: string;
  readonly dataDir: string;
  readonly service: string;
  /** `singleton`, `named:a,b` or `range:<count>`. */
  readonly partitioning: string;
  readonly kvPort?: number;
  /** Extra environment of the process (e.g. LIFEBOAT_ENCRYPTION_KEYS_FILE). */
  readonly env?: NodeJS.ProcessEnv;
}

export function spawnHost(children: Children, o: HostProcessOptions): ChildLifeboat {
  return children.spawn(`host ${o.hostId}`, [
    'host', '--service-url', o.serviceUrl, '--host-id', o.hostId, '--data-dir', o.dataDir,
    '--service', o.service, '--partitioning', o.partitioning, '--kv-port', String(o.kvPort ?? 0),
    // Tests' backups go to temporary folders of their own, outside the host's data dir.
    '--fileshare-roots', tmpdir(),
  ], o.env);
}

export function hostLineOf(line: string): HostLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(line) as Partial<HostLine>;
    return typeof v.host === 'string' && typeof v.kv === 'string' && Array.isArray(v.partitions) ? (v as HostLine) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts `lifeboat host` and waits until it has registered (its JSON line). */
export async function startHostProcess(children: Children, o: HostProcessOptions): Promise<HostProcess> {
  const child = spawnHost(children, o);
  const info = await child.waitForLine(hostLineOf, `the registration line of host ${o.hostId}`);
  return { child, info };
}

export interface ServiceProcess {
  readonly child: ChildLifeboat;
  /** The REST API. */
  readonly url: string;
  /** The sample application's endpoint (`<sampleUrl>/kv/{key}`), when it runs. */
  readonly sampleUrl: string | undefined;
}

export interface ServiceProcessOptions {
  readonly dataDir: string;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  readonly samplePort?: number;
  readonly sample?: boolean;
  /** Extra environment (LIFEBOAT_ADMIN_TOKEN: '' makes it use <data-dir>/admin.token). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts `lifeboat start` and waits for the lines naming its REST API (and sample app). */
export async function startServiceProcess(children: Children, o: ServiceProcessOptions): Promise<ServiceProcess> {
  const args = ['start', '--data-dir', o.dataDir, '--port', String(o.port ?? 0), '--sample-port', String(o.samplePort ?? 0)];
  if (o.sample === false) args.push('--no-sample');
  const child = children.spawn('lifeboat start', args, { LIFEBOAT_LOG_LEVEL: 'warn', ...o.env });
  const url = await child.waitForLine((l) => /^Lifeboat REST API: (http:\/\/\S+)/.exec(l)?.[1], 'the REST API line');
  // Printed after the REST line; `data in …` comes last either way.
  await child.waitForLine((l) => (l.startsWith('data in ') ? true : undefined), 'the data line');
  const sampleUrl = child.lines.map((l) => /^sample application fabric:\/SampleApp: (http:\/\/\S+)\/kv\//.exec(l)?.[1]).find((u) => u !== undefined);
  return { child, url, sampleUrl };
}

/** A TCP port that was free a moment ago (for a service that must come back on the same port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

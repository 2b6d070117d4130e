/**
 * Helpers of the scale-out benchmarks (bench/scale.ts): `lifeboat start` instances as child
 * processes (on a PostgreSQL catalog or the embedded SQLite one), the catalog hierarchy the
 * benchmarks index backups under, and timing of REST calls.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { HierarchyStore } from '../src/catalog/port.ts';
import { type PartitionScheme, partitionsOfScheme } from '../src/core/partitioning.ts';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Every child started and not yet ended: killed when this process exits, however it exits. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** One `lifeboat start` child process. */
export class Instance {
  readonly proc: ChildProcess;
  url = '';
  /** Its leader-lease holder name (`this instance is …`), on a shared catalog. */
  holder = '';
  /** lagMs of every `periodic backup started` line it logged (info level). */
  readonly lags: number[] = [];
  /** When each of those lines was logged (epoch ms), with its lag: the run's timeline. */
  readonly starts: Array<{ atMs: number; lagMs: number }> = [];
  private readonly head: string[] = [];
  private stderr = '';
  readonly exited: Promise<void>;

  constructor(readonly name: string, args: readonly string[], env: NodeJS.ProcessEnv, extraNodeArgs: readonly string[] = []) {
    this.proc = spawn(process.execPath, [...extraNodeArgs, '--import', 'tsx', 'src/main/cli.ts', 'start', ...args], {
      cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.proc);
    this.exited = new Promise((r) => this.proc.once('exit', () => {
      live.delete(this.proc);
      r();
    }));
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (this.head.length < 40) this.head.push(line);
      if (line.includes('periodic backup started')) {
        const m = /"lagMs":(\d+(?:\.\d+)?)/.exec(line);
        if (m) {
          this.lags.push(Number(m[1]));
          const at = /"time":(\d+)/.exec(line);
          if (at) this.starts.push({ atMs: Number(at[1]), lagMs: Number(m[1]) });
        }
      }
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (s: string) => { this.stderr = (this.stderr + s).slice(-8000); });
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Waits for the REST API line (and, on a shared catalog, the holder line). */
  async ready(shared: boolean, ms = 60_000): Promise<this> {
    const until = Date.now() + ms;
    for (;;) {
      this.url ||= this.head.map((l) => /^Lifeboat REST API: (http:\/\/\S+)/.exec(l)?.[1]).find((u) => u !== undefined) ?? '';
      this.holder ||= this.head.map((l) => /this instance is (\S+)/.exec(l)?.[1]).find((u) => u !== undefined) ?? '';
      const done = this.head.some((l) => l.startsWith('data in '));
      if (this.url && done && (!shared || this.holder)) return this;
      if (!this.alive || Date.now() > until) {
        throw new Error(`${this.name} ${this.alive ? 'did not start in time' : 'exited'}:\n${this.head.join('\n')}\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.alive) this.proc.kill(signal);
    // A SIGTERM'd instance closes, then writes its CPU profile (large after a long run): time for both.
    const t = setTimeout(() => { if (this.alive) this.proc.kill('SIGKILL'); }, 90_000);
    await this.exited;
    clearTimeout(t);
  }
}

export interface ClusterOptions {
  readonly catalogUrl: string;
  readonly dir: string;
  readonly adminToken: string;
  readonly keyFile: string;
  readonly fileShareRoot: string;
  readonly logLevel?: string;
}

/** The shared catalog key: 32 random bytes, base64, mode 0600. */
export async function writeCatalogKey(file: string): Promise<void> {
  await writeFile(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
}

/** `lifeboat start --catalog <url> --no-sample`, instance `i` of a cluster. */
export function startClusterInstance(o: ClusterOptions, i: number, nodeArgs: readonly string[] = []): Promise<Instance> {
  const args = [
    '--catalog', o.catalogUrl, '--catalog-key', o.keyFile, '--no-sample', '--port', '0', '--data-dir', join(o.dir, `instance-${i}`),
    '--fileshare-roots', o.fileShareRoot,
  ];
  const inst = new Instance(`instance ${i}`, args, { LIFEBOAT_ADMIN_TOKEN: o.adminToken, LIFEBOAT_LOG_LEVEL: o.logLevel ?? 'info' }, nodeArgs);
  return inst.ready(true);
}

/** `lifeboat start --no-sample` on its embedded SQLite catalog in `dataDir`. */
export function startEmbeddedInstance(dataDir: string, adminToken: string): Promise<Instance> {
  const inst = new Instance('embedded', ['--no-sample', '--port', '0', '--data-dir', dataDir], { LIFEBOAT_ADMIN_TOKEN: adminToken, LIFEBOAT_LOG_LEVEL: 'warn' });
  return inst.ready(false);
}

export interface BenchHierarchy {
  readonly application: string;
  /** fabric:/… names, and the partition ids of each. */
  readonly services: ReadonlyArray<{ readonly name: string; readonly scheme: PartitionScheme; readonly partitions: readonly string[] }>;
}

/** `services` services of `perService` partitions each, under fabric:/Bench (ids made once: both catalogs get the same). */
export function benchHierarchy(services: number, perService: number): BenchHierarchy {
  return {
    application: 'fabric:/Bench',
    services: Array.from({ length: services }, (_, s) => ({
      name: `fabric:/Bench/Svc${s}`,
      scheme: { kind: 'UniformInt64Range', count: perService, lowKey: INT64_MIN, highKey: INT64_MAX } as PartitionScheme,
      partitions: Array.from({ length: perService }, () => randomUUID()),
    })),
  };
}

/** Registers the hierarchy through the catalog's port (as a host's registration would). */
export async function registerHierarchy(h: HierarchyStore, b: BenchHierarchy, nowUtc: string): Promise<void> {
  await h.upsertHost('bench-host', 'bench', nowUtc);
  for (const s of b.services) {
    const infos = partitionsOfScheme(s.scheme);
    await h.registerService('bench-host', { name: s.name, application: b.application, scheme: s.scheme, hasPersistedState: true },
      infos.map((info, i) => ({ id: s.partitions[i] as string, info, epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, lastLsn: '100' })));
  }
}

/** Times `n` sequential GETs of `path` (ms each); throws on a non-2xx. */
export async function timeGets(base: string, token: string, paths: readonly string[], n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const path = paths[i % paths.length] as string;
    const t0 = performance.now();
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.text();
    out.push(performance.now() - t0);
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${body.slice(0, 300)}`);
  }
  return out;
}

export async function getJson<T>(base: string, token: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.text();
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${body.slice(0, 300)}`);
  return JSON.parse(body) as T;
}

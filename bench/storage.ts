/**
 * Storage and backup-format figures (issue 5), against a real `lifeboat start` in a child process:
 *
 * - One partition of the sample service filled through its HTTP endpoint with 1 GiB × scale of
 *   values, half incompressible (base64 of random bytes: the sample app stores text), half
 *   text-like (JSON-ish records of repeated words).
 * - BackupPartition → Success and RestorePartition → Success through the REST API to a FileShare
 *   path, Azurite (AzureBlobStore, on disk) and s3rver (S3): MiB/s of the partition's database
 *   file, the stored size, and which `.lbk` format was written ("LBKA" + version, and for v2
 *   the codec, cipher and block size from its header).
 * - Baselines on the same file, measured in the same run: restic (backup, restore) into a local
 *   repository, and `tar -czf` / `tar -xzf`.
 * - Peak RSS of the child during a backup and a restore of a larger partition (4 GiB at scale 1,
 *   LIFEBOAT_BENCH_RSS_GIB to change it) to the file share: VmRSS sampled, and VmHWM reset before.
 *   Filled through the sample app by one child, backed up and restored by a fresh one on the same
 *   data (rssCase says why); the filling child's idle RSS is reported beside it.
 *
 * Before every timed step, dirty pages are flushed (sync) and, when allowed (root), the page cache
 * is dropped, so no step reads what the previous one left in memory. Each storage's backup and
 * restore, and restic's, run LIFEBOAT_BENCH_ROUNDS times (default 3), and the summary gives the
 * medians (tar and the RSS case run once). A tool's backup and restore run back to back, and on
 * the file share Lifeboat goes first in the 1st, 3rd, … round, restic in the others (the
 * baselines' comment says why). Progress is polled every 50 ms.
 *
 * Standalone: `node --import tsx bench/storage.ts`; also run by `npm run bench`.
 * LIFEBOAT_BENCH_ENCRYPT=1 passes `--encryption-keys <file>` to `lifeboat start` when it has that
 * flag. LIFEBOAT_BENCH_KEEP=1 keeps the scratch folder.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';
import type { StorageDescription } from '../src/core/storage-description.ts';
import { partitionIndexForKey, partitionsOfScheme } from '../src/core/partitioning.ts';
import { SAMPLE_PARTITIONING } from '../src/host/sample-app.ts';
import { StorageRegistry } from '../src/storage/open.ts';
import type { LifeboatClient } from '../src/client/lifeboat-client.ts';
import type { BackupProgress, RestoreProgress } from '../src/wire/operations.ts';
import { azuriteMissing, startAzurite } from './emulators/azurite.ts';
import { S3RVER_KEY, s3rverMissing, startS3rver } from './emulators/s3rver.ts';
import { childClient } from './lifeboat-api.ts';
import { type BenchResult, summaryTable } from './results.ts';
import { GiB, MiB, Rng, benchScale, fmtS, fsyncFile, flushDirty, log as print, waitForQuietDisk } from './util.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'src', 'main', 'cli.ts');
/** Characters per value: large values keep the fill (one fsynced commit per PUT) short. */
const VALUE_CHARS = 256 * 1024;
const FILL_CONCURRENCY = 4;
const OPERATION_TIMEOUT_MINUTES = 60;
const RSS_TARGET_BYTES = 300e6;

/**
 * LIFEBOAT_BENCH_ROUNDS (default 3): each storage's backup and restore, and restic's, run this many
 * times, alternating, and the median is reported. The machines here are shared: one run of the
 * same backup took from 4.1 to 7.5 s, so a single figure says more about the neighbours than the code.
 */
function benchRounds(): number {
  const raw = process.env.LIFEBOAT_BENCH_ROUNDS;
  if (raw === undefined || raw.trim() === '') return 3;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new Error(`LIFEBOAT_BENCH_ROUNDS must be an integer from 1 to 20, not '${raw}'.`);
  return n;
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const runs = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join(', ');

type Kind = 'FileShare' | 'AzureBlobStore' | 'S3';

/** Seconds of each round, in order, and their median (what the summary reports). */
export interface Rounds {
  readonly backupRuns: readonly number[];
  readonly restoreRuns: readonly number[];
}

export interface RoundTrip extends Rounds {
  /** Medians of the rounds. */
  readonly backupSeconds: number;
  readonly restoreSeconds: number;
  readonly storedBytes: number;
  /** e.g. `LBKA v2, zstd, unencrypted, 1024 KiB blocks`, from the stored object's first bytes. */
  readonly format: string;
  readonly backupPeakRss: number;
  readonly restorePeakRss: number;
}

export interface BaselineRoundTrip extends Partial<Rounds> {
  /** Medians of the rounds (restic), or the one run (tar). */
  readonly backupSeconds: number;
  readonly restoreSeconds: number;
  readonly storedBytes: number;
  readonly version: string;
}

export interface StorageBenchResult {
  readonly scale: number;
  /** Bytes of the partition's database file after the first backup's checkpoint. */
  readonly partitionBytes: number;
  readonly valueBytes: number;
  readonly values: number;
  readonly fillSeconds: number;
  readonly encrypted: boolean;
  /** What was done before each timed step. */
  readonly cache: string;
  readonly lifeboat: Partial<Record<Kind, RoundTrip | { error: string }>>;
  readonly restic: BaselineRoundTrip | { skipped: string };
  readonly tar: BaselineRoundTrip | { error: string };
  readonly rss: {
    readonly partitionBytes: number; readonly backupSeconds: number; readonly restoreSeconds: number;
    /** RSS of the child that filled the partition, idle after it; the backup and restore run in a fresh child (idleBytes). */
    readonly filledIdleBytes: number;
    readonly idleBytes: number; readonly backupPeakBytes: number; readonly restorePeakBytes: number; readonly format: string;
  } | { readonly error: string; readonly short: string; readonly gib: number };
  readonly loadAverage: { readonly start: number[]; readonly end: number[] };
}

// ---- page cache ---------------------------------------------------------------------------------

/** Flushes dirty pages, drops the page cache where allowed and waits for a quiet disk; returns what was done. */
function settle(): string {
  flushDirty();
  let cache: string;
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    cache = 'sync + drop_caches (page cache emptied)';
  } catch {
    cache = 'sync only (not allowed to drop the page cache: reads may hit memory)';
  }
  return `${cache}, ${waitForQuietDisk()}`;
}

// ---- the Lifeboat child ---------------------------------------------------------------------------

interface LifeboatChild {
  readonly pid: number;
  readonly api: string;
  readonly kv: string;
  /** Its REST API, as its admin. */
  readonly client: LifeboatClient;
  stop(): Promise<void>;
}

function startHelp(): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'start', '--help'], { cwd: root, encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}

async function startLifeboat(dataDir: string, shareRoot: string, extra: readonly string[]): Promise<LifeboatChild> {
  const args = ['--import', 'tsx', cli, 'start', '--data-dir', dataDir, '--port', '0', '--sample-port', '0', '--fileshare-roots', shareRoot, ...extra];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LIFEBOAT_LOG_LEVEL: 'warn' } });
  // A crash of this process must not leave a server behind.
  const reap = (): void => { child.kill('SIGKILL'); };
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  // Keep only the tail, and keep reading: a full pipe would block the child.
  const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-8000); };
  child.stderr?.on('data', keep);
  const { api, kv } = await new Promise<{ api: string; kv: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lifeboat did not start within 60 s: ${out}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      keep(d);
      const a = /REST API: (http:\/\/\S+)/.exec(out)?.[1];
      const k = /fabric:\/SampleApp: (http:\/\/\S+)\/kv/.exec(out)?.[1];
      if (a && k) {
        clearTimeout(timer);
        resolve({ api: a, kv: k });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`lifeboat exited (code ${child.exitCode}): ${out}`));
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    process.removeListener('exit', reap);
    throw err;
  });
  return {
    pid: child.pid as number, api, kv, client: childClient(api, dataDir),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener('exit', reap);
    },
  };
}

/** Peak RSS of another process: VmHWM reset at start (root or same user), and VmRSS sampled. */
class ChildRss {
  private timer: NodeJS.Timeout | undefined;
  private sampled = 0;
  private hwmReset = false;
  startBytes = 0;

  constructor(private readonly pid: number) {}

  private field(name: string): number | undefined {
    try {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  start(): this {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      this.hwmReset = true;
    } catch {
      this.hwmReset = false;
    }
    this.startBytes = this.field('VmRSS') ?? 0;
    this.sampled = this.startBytes;
    this.timer = setInterval(() => { this.sampled = Math.max(this.sampled, this.field('VmRSS') ?? 0); }, 25);
    return this;
  }

  /** Bytes: the larger of the sampled peak and (when it could be reset) VmHWM. */
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.sampled = Math.max(this.sampled, this.field('VmRSS') ?? 0);
    const hwm = this.hwmReset ? this.field('VmHWM') : undefined;
    return Math.max(this.sampled, hwm ?? 0);
  }
}

// ---- data ---------------------------------------------------------------------------------------

const WORDS = [
  'order', 'customer', 'shipment', 'invoice', 'pending', 'delivered', 'warehouse', 'north', 'south', 'priority',
  'standard', 'express', 'payment', 'refund', 'account', 'active', 'inactive', 'region', 'europe', 'america',
  'asia', 'product', 'widget', 'gadget', 'premium', 'basic', 'status', 'created', 'updated', 'cancelled',
  'returned', 'approved', 'review', 'stock', 'supplier', 'discount', 'coupon', 'cart', 'checkout', 'session',
];

/** JSON-ish records of repeated words, `chars` long (the last record cut off). */
function textValue(rng: Rng, chars: number): string {
  const w = (): string => WORDS[rng.int(WORDS.length)] as string;
  const parts: string[] = [];
  let n = 0;
  while (n < chars) {
    const rec = `{"id":${rng.int(1e9)},"user":"user-${rng.int(100_000)}","event":"${w()}.${w()}","status":"${w()}",`
      + `"amount":${(rng.int(1e6) / 100).toFixed(2)},"tags":["${w()}","${w()}","${w()}"],"note":"${w()} ${w()} ${w()} ${w()} ${w()} ${w()}"}\n`;
    parts.push(rec);
    n += rec.length;
  }
  return parts.join('').slice(0, chars);
}

/** Base64 of random bytes: as incompressible as text can be (6 bits per character). */
const randomValue = (chars: number): string => randomBytes((chars / 4) * 3).toString('base64');

/**
 * Fills the first partition (scheme order) of the sample service with `targetBytes` of values,
 * alternating random and text-like ones. Keys are hashed here as the service does, so only keys of
 * that partition are sent; each answer's PartitionId is checked.
 */
async function fillPartition(kv: string, targetBytes: number, log: (line: string) => void): Promise<{ partitionId: string; values: number; valueBytes: number; seconds: number }> {
  const infos = partitionsOfScheme(SAMPLE_PARTITIONING);
  const rng = new Rng(5);
  let nextKey = 0;
  const key = (): string => {
    for (;;) {
      const k = `bench-${nextKey++}`;
      if (partitionIndexForKey(SAMPLE_PARTITIONING, infos, k) === 0) return k;
    }
  };
  const count = Math.max(2, Math.ceil(targetBytes / VALUE_CHARS));
  let issued = 0;
  let written = 0;
  let partitionId: string | undefined;
  let reported = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (issued < count) {
      const i = issued++;
      const body = i % 2 === 0 ? randomValue(VALUE_CHARS) : textValue(rng, VALUE_CHARS);
      const res = await fetch(`${kv}/kv/${key()}`, { method: 'PUT', body });
      const answer = (await res.json()) as { PartitionId?: string };
      if (res.status !== 200 || !answer.PartitionId) throw new Error(`PUT failed: ${res.status} ${JSON.stringify(answer)}`);
      partitionId ??= answer.PartitionId;
      if (answer.PartitionId !== partitionId) throw new Error(`a key went to partition ${answer.PartitionId}, not ${partitionId}: the sample app hashes keys differently`);
      written++;
      if (written / count >= reported + 0.25) {
        reported += 0.25;
        log(`  filled ${(reported * 100).toFixed(0)}% (${((written * VALUE_CHARS) / MiB).toFixed(0)} MiB in ${fmtS(performance.now() - t0)})`);
      }
    }
  };
  await Promise.all(Array.from({ length: FILL_CONCURRENCY }, () => worker()));
  return { partitionId: partitionId as string, values: written, valueBytes: written * VALUE_CHARS, seconds: (performance.now() - t0) / 1000 };
}

async function partitionFiles(dataDir: string, partitionId: string): Promise<{ dir: string; db: string; walBytes: number }> {
  const dir = join(dataDir, 'hosts', 'local', 'SampleApp', 'MyStatefulService', 'partitions', partitionId);
  const dbs = (await readdir(dir)).filter((f) => /^data-\d+\.sqlite$/.test(f));
  if (dbs.length !== 1) throw new Error(`expected one data-<gen>.sqlite in ${dir}, found ${dbs.join(', ') || 'none'}`);
  const db = join(dir, dbs[0] as string);
  const walBytes = existsSync(`${db}-wal`) ? (await stat(`${db}-wal`)).size : 0;
  return { dir, db, walBytes };
}

// ---- REST -----------------------------------------------------------------------------------------

// Progress is read every 50 ms: the measure is at most that late, and each poll costs the service
// CPU — at a poll every 20 ms a 1 GiB backup here took about 10% longer than at one every 500 ms.
// The service ends an operation at its timeout; the wait gives it a little longer.
const PROGRESS_WAIT = { intervalMs: 50, timeoutMs: (OPERATION_TIMEOUT_MINUTES + 5) * 60_000 };

interface Timed { readonly seconds: number; readonly peakRss: number }

/** An operation that did not end in Success: what it ended with, after how long, and the peak RSS until then. */
class OperationFailed extends Error {
  /** One line for the summary table. */
  readonly short: string;
  constructor(what: string, kind: string, progress: BackupProgress | RestoreProgress, readonly seconds: number, readonly peakRss: number) {
    const failure = progress.FailureError;
    const state = 'BackupState' in progress ? progress.BackupState : progress.RestoreState;
    const code = failure?.Code ?? state;
    const peak = `peak RSS until then ${(peakRss / 1e6).toFixed(0)} MB`;
    super(`${what} (${kind}) ended in ${state} after ${seconds.toFixed(1)} s (${code}: ${failure?.Message ?? 'no message'}); ${peak}`);
    this.short = `${what}: ${state}, ${code} after ${seconds.toFixed(0)} s (${(peakRss / 1e6).toFixed(0)} MB until then)`;
  }
}

async function backupPartition(child: LifeboatChild, pid: string, storage: StorageDescription): Promise<Timed & { backupId: string; location: string }> {
  const rss = new ChildRss(child.pid).start();
  const t0 = performance.now();
  await child.client.operations.backupPartition(pid, { storage, timeoutMinutes: OPERATION_TIMEOUT_MINUTES });
  const r = await child.client.operations.waitForBackup(pid, PROGRESS_WAIT);
  const seconds = (performance.now() - t0) / 1000;
  const peakRss = rss.stop();
  if (r.BackupState !== 'Success') throw new OperationFailed('backup', storage.StorageKind, r, seconds, peakRss);
  return { seconds, peakRss, backupId: r.BackupId, location: r.BackupLocation };
}

async function restorePartition(child: LifeboatChild, pid: string, storage: StorageDescription, backup: { backupId: string; location: string }): Promise<Timed> {
  const rss = new ChildRss(child.pid).start();
  const t0 = performance.now();
  await child.client.operations.restorePartition(pid, { backupId: backup.backupId, backupLocation: backup.location, storage }, { timeoutMinutes: OPERATION_TIMEOUT_MINUTES });
  const r = await child.client.operations.waitForRestore(pid, PROGRESS_WAIT);
  const seconds = (performance.now() - t0) / 1000;
  const peakRss = rss.stop();
  if (r.RestoreState !== 'Success') throw new OperationFailed('restore', storage.StorageKind, r, seconds, peakRss);
  return { seconds, peakRss };
}

async function entryCount(child: LifeboatChild, pid: string): Promise<number> {
  const parts = (await (await fetch(`${child.kv}/kv`)).json()) as Array<{ PartitionId: string; Count: number }>;
  return parts.find((p) => p.PartitionId === pid)?.Count ?? -1;
}

/** What a stored `.lbk` says of itself: "LBKA" + version, and for v2 its codec, cipher and block size (docs/backup-format.md). */
export function describeLbk(head: Buffer): string {
  if (head.length < 5 || head.subarray(0, 4).toString('latin1') !== 'LBKA') return `not an .lbk (${head.subarray(0, 8).toString('hex')})`;
  const version = head[4] as number;
  if (version !== 2 || head.length < 12) return `LBKA v${version}`;
  const codec = ['no compression', 'zstd', 'gzip'][head[5] as number] ?? `codec ${head[5]}`;
  const cipher = ['unencrypted', 'AES-256-GCM'][head[6] as number] ?? `cipher ${head[6]}`;
  return `LBKA v2, ${codec}, ${cipher}, ${(head.readUInt32LE(8) / 1024).toFixed(0)} KiB blocks`;
}

/** Size of the stored backup object and its format, from its first bytes. */
async function storedObject(storage: StorageDescription, shareRoot: string, key: string): Promise<{ bytes: number; format: string }> {
  const stores = new StorageRegistry({ fileShareRoots: [shareRoot] });
  try {
    const store = stores.openAdapter(storage);
    const info = await store.head(key);
    if (!info) throw new Error(`the backup ${key} is not in ${store.description}`);
    const chunks: Buffer[] = [];
    for await (const c of await store.get(key, { start: 0, end: Math.min(12, info.size) })) chunks.push(c as Buffer);
    return { bytes: info.size, format: describeLbk(Buffer.concat(chunks)) };
  } finally {
    await stores.close();
  }
}

// ---- storages -------------------------------------------------------------------------------------

// ---- baselines ------------------------------------------------------------------------------------

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, maxBuffer: 64 * MiB }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message} ${stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

async function findFile(dir: string, name: string): Promise<string> {
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === name) return join(e.parentPath, e.name);
  }
  throw new Error(`${name} is not under ${dir}`);
}

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** restic is a Debian package: installed here if missing and we are root. */
function ensureRestic(log: (line: string) => void): string | undefined {
  if (hasCommand('restic')) return undefined;
  if (process.getuid?.() === 0) {
    log('restic is not installed: trying apt-get install -y restic …');
    spawnSync('apt-get', ['install', '-y', 'restic'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (hasCommand('restic')) return undefined;
  }
  return 'restic is not installed and apt-get install -y restic did not install it';
}

/**
 * restic into a local repository (it always encrypts; repository v2 compresses with zstd), then a
 * restore of the snapshot. The restored file is fsynced inside the timing: Lifeboat's restore is
 * durable, restic's is not by itself.
 */
async function resticRoundTrip(file: string, work: string, log: (line: string) => void): Promise<BaselineRoundTrip> {
  const repo = join(work, 'restic-repo');
  const target = join(work, 'restic-restore');
  const env = { ...process.env, RESTIC_PASSWORD: 'lifeboat-bench', RESTIC_CACHE_DIR: join(work, 'restic-cache'), RESTIC_REPOSITORY: repo };
  const version = (await run('restic', ['version'], env)).trim();
  await run('restic', ['init', '-q'], env);
  log(`cache before restic backup: ${settle()}`);
  let t0 = performance.now();
  await run('restic', ['backup', '-q', file], env);
  const backupSeconds = (performance.now() - t0) / 1000;
  const storedBytes = await treeBytes(repo);
  await rm(join(work, 'restic-cache'), { recursive: true, force: true });
  log(`cache before restic restore: ${settle()}`);
  t0 = performance.now();
  await run('restic', ['restore', '-q', 'latest', '--target', target], env);
  const restored = await findFile(target, basename(file));
  await fsyncFile(restored);
  const restoreSeconds = (performance.now() - t0) / 1000;
  if ((await stat(restored)).size !== (await stat(file)).size) throw new Error('restic restored a file of another size');
  await rm(target, { recursive: true, force: true });
  return { backupSeconds, restoreSeconds, storedBytes, version };
}

/** `tar -czf` (gzip -6, one core) and `tar -xzf`; each output fsynced inside the timing. */
async function tarRoundTrip(file: string, work: string, log: (line: string) => void): Promise<BaselineRoundTrip> {
  const archive = join(work, 'partition.tar.gz');
  const target = join(work, 'tar-restore');
  await mkdir(target, { recursive: true });
  const name = basename(file);
  const version = (await run('tar', ['--version'])).split('\n')[0] ?? 'tar';
  log(`cache before tar -czf: ${settle()}`);
  let t0 = performance.now();
  await run('tar', ['-czf', archive, '-C', dirname(file), name]);
  await fsyncFile(archive);
  const backupSeconds = (performance.now() - t0) / 1000;
  const storedBytes = (await stat(archive)).size;
  log(`cache before tar -xzf: ${settle()}`);
  t0 = performance.now();
  await run('tar', ['-xzf', archive, '-C', target]);
  await fsyncFile(join(target, name));
  const restoreSeconds = (performance.now() - t0) / 1000;
  await rm(target, { recursive: true, force: true });
  await rm(archive, { force: true });
  return { backupSeconds, restoreSeconds, storedBytes, version };
}

// ---- the bench ------------------------------------------------------------------------------------

const mibps = (bytes: number, seconds: number): number => bytes / MiB / seconds;
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function runStorageBench(scale = 1, log: (line: string) => void = print): Promise<StorageBenchResult> {
  const loadStart = loadavg();
  const work = await mkdtemp(join(tmpdir(), 'lifeboat-bench-storage-'));
  const share = join(work, 'share');
  const stops: Array<() => unknown> = [];
  const keep = Boolean(process.env.LIFEBOAT_BENCH_KEEP);
  try {
    await mkdir(share, { recursive: true });
    // Encryption, when asked for and when this build of `lifeboat start` has the flag.
    const extra: string[] = [];
    let encrypted = false;
    if (process.env.LIFEBOAT_BENCH_ENCRYPT === '1') {
      if (startHelp().includes('--encryption-keys')) {
        const keys = join(work, 'keys.json');
        await writeFile(keys, `${JSON.stringify({ current: 'bench', keys: { bench: randomBytes(32).toString('base64') } })}\n`, { mode: 0o600 });
        extra.push('--encryption-keys', keys);
        encrypted = true;
        log('LIFEBOAT_BENCH_ENCRYPT=1: lifeboat start --encryption-keys <file> (a fresh AES-256 key)');
      } else {
        log('LIFEBOAT_BENCH_ENCRYPT=1 asked for encryption, but `lifeboat start` has no --encryption-keys flag: backups are not encrypted');
      }
    }

    const lifeboat: StorageBenchResult['lifeboat'] = {};
    let restic: StorageBenchResult['restic'] | undefined;
    let tar: StorageBenchResult['tar'] | undefined;
    let partitionBytes = 0;
    let cache = '';
    const dataDir = join(work, 'lifeboat');
    const child = await startLifeboat(dataDir, share, extra);
    stops.push(() => child.stop());
    const targetBytes = Math.round(GiB * scale);
    log(`filling one partition of fabric:/SampleApp/MyStatefulService with ${(targetBytes / MiB).toFixed(0)} MiB of values `
      + `(${VALUE_CHARS / 1024} KiB each, half base64 of random bytes, half JSON-ish text) through the sample app …`);
    const fill = await fillPartition(child.kv, targetBytes, log);
    const pid = fill.partitionId;
    const entries = await entryCount(child, pid);
    log(`partition ${pid}: ${fill.values} values in ${fill.seconds.toFixed(1)} s`);
    // One untimed backup first. Lifeboat's backup reads the database file, so the fill's WAL is
    // checkpointed into it first (1.2-2 s of the first backup here); restic then reads the
    // checkpointed file and never pays that. After it, every timed backup of either tool reads the
    // same file with no WAL pending. On-demand backups are always full, so the rounds' are too.
    const fileShare: StorageDescription = { StorageKind: 'FileShare', Path: join(share, 'backups') };
    const warmUp = await backupPartition(child, pid, fileShare);
    log(`warm-up backup (untimed; it checkpoints the fill's WAL): ${warmUp.seconds.toFixed(2)} s`);

    // FileShare first: the baselines run in its rounds.
    const storages: Array<{ kind: Kind; storage: () => Promise<StorageDescription> }> = [
      { kind: 'FileShare', storage: async () => fileShare },
      {
        kind: 'AzureBlobStore', storage: async () => {
          const missing = azuriteMissing();
          if (missing) throw new Error(missing);
          const location = join(work, 'azurite');
          await mkdir(location, { recursive: true });
          // On disk: a backup does not fit Azurite's in-memory limit.
          const azurite = await startAzurite({ location });
          stops.push(() => azurite.stop());
          const container = `lifeboat-bench-${randomBytes(4).toString('hex')}`;
          await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container).create();
          return { StorageKind: 'AzureBlobStore', ConnectionString: azurite.connectionString, ContainerName: container };
        },
      },
      {
        kind: 'S3', storage: async () => {
          const missing = s3rverMissing();
          if (missing) throw new Error(missing);
          const s3 = await startS3rver({ after: (fn) => { stops.push(fn); } });
          const bucket = await s3.createBucket();
          return { StorageKind: 'S3', Bucket: bucket, Endpoint: s3.endpoint, Region: 'us-east-1', AccessKeyId: S3RVER_KEY, SecretAccessKey: S3RVER_KEY, ForcePathStyle: true };
        },
      },
    ];
    // LIFEBOAT_BENCH_STORAGES=FileShare,S3 runs some of them (quick runs while working on one); the default is all.
    const rounds = benchRounds();
    const only = (process.env.LIFEBOAT_BENCH_STORAGES ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    for (const { kind, storage: describe } of storages) {
      if (only.length > 0 && kind !== 'FileShare' && !only.includes(kind)) {
        lifeboat[kind] = { error: `not run (LIFEBOAT_BENCH_STORAGES=${only.join(',')})` };
        continue;
      }
      try {
        const storage = await describe();
        const backups: Array<Timed & { backupId: string; location: string }> = [];
        const restores: Timed[] = [];
        const resticRuns: BaselineRoundTrip[] = [];
        let stored = { bytes: 0, format: '' };
        // restic's round trip (and tar's, in the first round) on the partition's file, in the
        // rounds of the file share. Each tool's backup and restore run back to back, and which tool
        // goes first alternates by round: a restore run right after the other tool's round trip
        // (its 1.7 GiB written and deleted) took 3.4-3.8 s here against 2.0-2.6 s after our own
        // backup, so a fixed order would hand one tool the other's aftermath every time.
        const baselines = async (round: number): Promise<void> => {
          const files = await partitionFiles(dataDir, pid);
          partitionBytes = (await stat(files.db)).size;
          const baseline = join(work, 'baseline');
          await mkdir(baseline, { recursive: true });
          const resticMissing = round === 0 ? ensureRestic(log) : undefined;
          if (resticMissing) {
            log(`restic baseline skipped: ${resticMissing}`);
            restic = { skipped: resticMissing };
          } else if (!restic || !('skipped' in restic)) {
            try {
              const x = await resticRoundTrip(files.db, baseline, log);
              resticRuns.push(x);
              log(`restic (${x.version}): backup ${x.backupSeconds.toFixed(2)} s (${mibps(partitionBytes, x.backupSeconds).toFixed(1)} MiB/s), `
                + `restore ${x.restoreSeconds.toFixed(2)} s (${mibps(partitionBytes, x.restoreSeconds).toFixed(1)} MiB/s), repository ${(x.storedBytes / MiB).toFixed(1)} MiB`);
              const backupRuns = resticRuns.map((y) => y.backupSeconds);
              const restoreRuns = resticRuns.map((y) => y.restoreSeconds);
              restic = { ...x, backupRuns, restoreRuns, backupSeconds: median(backupRuns), restoreSeconds: median(restoreRuns) };
            } catch (err) {
              restic = { skipped: `restic failed: ${errorText(err)}` };
              log(`restic baseline failed: ${errorText(err)}`);
            }
          }
          if (round === 0) {
            try {
              tar = await tarRoundTrip(files.db, baseline, log);
              log(`tar + gzip: -czf ${tar.backupSeconds.toFixed(2)} s (${mibps(partitionBytes, tar.backupSeconds).toFixed(1)} MiB/s), `
                + `-xzf ${tar.restoreSeconds.toFixed(2)} s (${mibps(partitionBytes, tar.restoreSeconds).toFixed(1)} MiB/s), archive ${(tar.storedBytes / MiB).toFixed(1)} MiB`);
            } catch (err) {
              tar = { error: errorText(err) };
              log(`tar baseline failed: ${errorText(err)}`);
            }
          }
          await rm(baseline, { recursive: true, force: true });
        };
        for (let round = 0; round < rounds; round++) {
          const resticFirst = kind === 'FileShare' && round % 2 === 1;
          if (resticFirst) await baselines(round);
          cache = settle();
          log(`${kind} round ${round + 1}/${rounds}: cache before backup: ${cache}`);
          const b = await backupPartition(child, pid, storage);
          backups.push(b);
          stored = await storedObject(storage, share, b.location);
          if (kind === 'FileShare') {
            const files = await partitionFiles(dataDir, pid);
            partitionBytes = (await stat(files.db)).size;
            log(`partition file ${files.db.slice(work.length + 1)}: ${(partitionBytes / MiB).toFixed(1)} MiB (WAL ${files.walBytes} bytes) after the backup's checkpoint`);
          }
          log(`${kind} round ${round + 1}/${rounds}: cache before restore: ${settle()}`);
          const r = await restorePartition(child, pid, storage, b);
          restores.push(r);
          const after = await entryCount(child, pid);
          if (after !== entries) throw new Error(`the restored partition has ${after} entries, not ${entries}`);
          log(`${kind} round ${round + 1}/${rounds}: BackupPartition → Success ${b.seconds.toFixed(2)} s (${mibps(partitionBytes, b.seconds).toFixed(1)} MiB/s), `
            + `RestorePartition → Success ${r.seconds.toFixed(2)} s (${mibps(partitionBytes, r.seconds).toFixed(1)} MiB/s); `
            + `stored ${(stored.bytes / MiB).toFixed(1)} MiB (${stored.format}); child peak RSS ${(b.peakRss / 1e6).toFixed(0)} / ${(r.peakRss / 1e6).toFixed(0)} MB`);
          if (kind === 'FileShare' && !resticFirst) await baselines(round);
        }
        const backupRuns = backups.map((b) => b.seconds);
        const restoreRuns = restores.map((r) => r.seconds);
        lifeboat[kind] = {
          backupRuns, restoreRuns, backupSeconds: median(backupRuns), restoreSeconds: median(restoreRuns), storedBytes: stored.bytes, format: stored.format,
          backupPeakRss: Math.max(...backups.map((b) => b.peakRss)), restorePeakRss: Math.max(...restores.map((r) => r.peakRss)),
        };
        log(`${kind}: medians of ${rounds}: backup ${median(backupRuns).toFixed(2)} s (${runs(backupRuns)}), restore ${median(restoreRuns).toFixed(2)} s (${runs(restoreRuns)})`
          + (kind === 'FileShare' && restic && 'backupRuns' in restic && restic.backupRuns && restic.restoreRuns
            ? `; restic backup ${restic.backupSeconds.toFixed(2)} s (${runs(restic.backupRuns)}), restore ${restic.restoreSeconds.toFixed(2)} s (${runs(restic.restoreRuns)})` : ''));
      } catch (err) {
        lifeboat[kind] = { error: errorText(err) };
        log(`${kind}: failed: ${errorText(err)}`);
        if (kind === 'FileShare' && partitionBytes === 0) throw err;
      }
    }
    // Free the disk before the larger partition.
    for (const stop of stops.splice(0).reverse()) await stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(share, { recursive: true, force: true });
    await rm(join(work, 'azurite'), { recursive: true, force: true });

    let rss: StorageBenchResult['rss'];
    try {
      if (process.env.LIFEBOAT_BENCH_RSS_GIB === '0') throw new Error('not run (LIFEBOAT_BENCH_RSS_GIB=0)');
      rss = await rssCase(scale, work, extra, log);
    } catch (err) {
      const short = err instanceof OperationFailed ? err.short : 'failed (see the log)';
      rss = { error: errorText(err), short, gib: rssGiB(scale) };
      log(`peak RSS case failed: ${errorText(err)}`);
    }
    return {
      scale, partitionBytes, valueBytes: fill.valueBytes, values: fill.values, fillSeconds: fill.seconds, encrypted, cache,
      lifeboat, restic: restic ?? { skipped: 'not run' }, tar: tar ?? { error: 'not run' }, rss, loadAverage: { start: loadStart, end: loadavg() },
    };
  } finally {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
    if (!keep) await rm(work, { recursive: true, force: true });
    else log(`scratch kept in ${work}`);
  }
}

/** LIFEBOAT_BENCH_RSS_GIB, or 4 × scale. */
function rssGiB(scale: number): number {
  const raw = process.env.LIFEBOAT_BENCH_RSS_GIB;
  if (raw === undefined || raw.trim() === '') return 4 * scale;
  const g = Number(raw);
  if (!Number.isFinite(g) || g < 0 || g > 64) throw new Error(`LIFEBOAT_BENCH_RSS_GIB must be a number in [0, 64] (0: skip the case), not '${raw}'.`);
  return g;
}

async function rssCase(scale: number, work: string, extra: readonly string[], log: (line: string) => void): Promise<Exclude<StorageBenchResult['rss'], { error: string }>> {
  const gib = rssGiB(scale);
  const dataDir = join(work, 'lifeboat-rss');
  const share = join(work, 'share-rss');
  await mkdir(share, { recursive: true });
  let child = await startLifeboat(dataDir, share, extra);
  try {
    log(`peak RSS case: filling a ${gib} GiB partition …`);
    const fill = await fillPartition(child.kv, Math.round(gib * GiB), log);
    // The fill sent 4 GiB through the sample app's HTTP endpoint: the process that took it holds
    // their garbage (V8's large-object space, malloc's arenas) until a collection that an idle
    // process does not run: 80-100 MB more than a fresh child in the 2026-12-04 runs. That is the filler's
    // memory, not the backup's, so the backup and restore run in a fresh process on the same data,
    // as a service that has been serving the partition would.
    const filledIdleBytes = new ChildRss(child.pid).start().stop();
    await child.stop();
    child = await startLifeboat(dataDir, share, extra);
    const storage: StorageDescription = { StorageKind: 'FileShare', Path: join(share, 'backups') };
    log(`peak RSS case: cache before backup: ${settle()}`);
    const idleBytes = new ChildRss(child.pid).start().stop();
    const b = await backupPartition(child, fill.partitionId, storage);
    const partitionBytes = (await stat((await partitionFiles(dataDir, fill.partitionId)).db)).size;
    const stored = await storedObject(storage, share, b.location);
    log(`peak RSS case: cache before restore: ${settle()}`);
    const r = await restorePartition(child, fill.partitionId, storage, b);
    log(`peak RSS case: ${(partitionBytes / MiB).toFixed(0)} MiB partition; the filling child's RSS ${(filledIdleBytes / 1e6).toFixed(0)} MB idle, `
      + `a fresh child's ${(idleBytes / 1e6).toFixed(0)} MB; in the fresh one backup ${b.seconds.toFixed(1)} s, peak ${(b.peakRss / 1e6).toFixed(0)} MB; `
      + `restore ${r.seconds.toFixed(1)} s, peak ${(r.peakRss / 1e6).toFixed(0)} MB (target < 300 MB); ${stored.format}`);
    return { partitionBytes, backupSeconds: b.seconds, restoreSeconds: r.seconds, filledIdleBytes, idleBytes, backupPeakBytes: b.peakRss, restorePeakBytes: r.peakRss, format: stored.format };
  } finally {
    await child.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(share, { recursive: true, force: true });
  }
}

// ---- summary rows ----------------------------------------------------------------------------------

/** ', median of 3' after the seconds of a figure that is one. */
const roundsNote = (xs: readonly number[] | undefined): string => (xs && xs.length > 1 ? `, median of ${xs.length}` : '');

/** The summary rows: throughput to each storage against restic and tar, stored size, peak RSS. */
export function storageResults(r: StorageBenchResult): BenchResult[] {
  const out: BenchResult[] = [];
  const size = r.partitionBytes;
  const fmt = (x: number): string => `${x.toFixed(1)} MiB/s`;
  const mb = (x: number): string => `${(x / 1e6).toFixed(0)} MB`;
  const restic = 'backupSeconds' in r.restic ? r.restic : undefined;
  const tar = 'backupSeconds' in r.tar ? r.tar : undefined;
  const base = (name: string, seconds: number): NonNullable<BenchResult['baseline']> =>
    ({ name, value: mibps(size, seconds), display: `${fmt(mibps(size, seconds))} (${seconds.toFixed(2)} s${roundsNote(name.startsWith('restic') ? (name.includes('restore') ? restic?.restoreRuns : restic?.backupRuns) : undefined)})` });
  const names: Record<Kind, string> = { FileShare: 'FileShare', AzureBlobStore: 'Azurite', S3: 's3rver' };
  const ids: Record<Kind, [string, string]> = { FileShare: ['B1', 'B2'], AzureBlobStore: ['B3', 'B4'], S3: ['B5', 'B6'] };
  for (const kind of ['FileShare', 'AzureBlobStore', 'S3'] as const) {
    const x = r.lifeboat[kind];
    if (!x || 'error' in x) continue;
    const [bid, rid] = ids[kind];
    const backup = mibps(size, x.backupSeconds);
    const restore = mibps(size, x.restoreSeconds);
    const resticBackup = restic ? base('restic backup', restic.backupSeconds) : undefined;
    const resticRestore = restic ? base('restic restore + fsync', restic.restoreSeconds) : undefined;
    const fileShare = kind === 'FileShare';
    out.push({
      id: bid, group: 'Storage', metric: `BackupPartition → Success to ${names[kind]}, ${(size / MiB).toFixed(0)} MiB partition (${x.backupSeconds.toFixed(2)} s${roundsNote(x.backupRuns)})`,
      value: backup, unit: 'MiB/s', display: fmt(backup), ...(resticBackup ? { baseline: resticBackup } : {}),
      target: fileShare ? (restic ? '≥ 2× restic' : '≥ 2× restic (restic missing)') : 'info',
      ...(fileShare && resticBackup ? { pass: backup >= 2 * resticBackup.value } : {}),
    });
    out.push({
      id: rid, group: 'Storage', metric: `RestorePartition → Success from ${names[kind]} (${x.restoreSeconds.toFixed(2)} s${roundsNote(x.restoreRuns)})`,
      value: restore, unit: 'MiB/s', display: fmt(restore), ...(resticRestore ? { baseline: resticRestore } : {}),
      target: fileShare ? (restic ? '≥ restic' : '≥ restic (restic missing)') : 'info',
      ...(fileShare && resticRestore ? { pass: restore >= resticRestore.value } : {}),
    });
    if (fileShare && tar) {
      out.push({
        id: `${bid}′`, group: 'Storage', metric: 'BackupPartition → Success to FileShare, against tar + gzip',
        value: backup, unit: 'MiB/s', display: fmt(backup), baseline: base('tar -czf + fsync', tar.backupSeconds), target: 'info',
      });
      out.push({
        id: `${rid}′`, group: 'Storage', metric: 'RestorePartition → Success from FileShare, against tar + gzip',
        value: restore, unit: 'MiB/s', display: fmt(restore), baseline: base('tar -xzf + fsync', tar.restoreSeconds), target: 'info',
      });
    }
  }
  const fs = r.lifeboat.FileShare;
  if (fs && !('error' in fs)) {
    const stored = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB (${((100 * bytes) / size).toFixed(0)}%)`;
    if (restic) {
      out.push({
        id: 'B7', group: 'Storage', metric: `Stored size of the backup (${fs.format}) of a ${(size / MiB).toFixed(0)} MiB partition`,
        value: fs.storedBytes / MiB, unit: 'MiB', display: stored(fs.storedBytes),
        baseline: { name: 'restic repository', value: restic.storedBytes / MiB, display: stored(restic.storedBytes) }, target: 'info',
      });
    }
    if (tar) {
      out.push({
        id: 'B7′', group: 'Storage', metric: 'Stored size of the backup, against tar + gzip',
        value: fs.storedBytes / MiB, unit: 'MiB', display: stored(fs.storedBytes),
        baseline: { name: '.tar.gz', value: tar.storedBytes / MiB, display: stored(tar.storedBytes) }, target: 'info',
      });
    }
  }
  if ('error' in r.rss) {
    // A failed case is a miss, with why, not a missing row.
    out.push({
      id: 'B8', group: 'Storage', metric: `Peak RSS of the Lifeboat process, ${r.rss.gib} GiB partition: ${r.rss.short}`,
      value: NaN, unit: 'MB', display: 'failed', target: '< 300 MB', pass: false,
    });
  } else {
    const x = r.rss;
    const idle = { name: 'idle RSS before', value: x.idleBytes / 1e6, display: `${mb(x.idleBytes)} (the filling child: ${mb(x.filledIdleBytes)})` };
    out.push({
      id: 'B8', group: 'Storage', metric: `Peak RSS of a fresh Lifeboat process, backup of a ${(x.partitionBytes / GiB).toFixed(2)} GiB partition to FileShare (${x.backupSeconds.toFixed(1)} s)`,
      value: x.backupPeakBytes / 1e6, unit: 'MB', display: mb(x.backupPeakBytes), baseline: idle, target: '< 300 MB', pass: x.backupPeakBytes < RSS_TARGET_BYTES,
    });
    out.push({
      id: 'B9', group: 'Storage', metric: `Peak RSS of the Lifeboat process, restore of it (${x.restoreSeconds.toFixed(1)} s)`,
      value: x.restorePeakBytes / 1e6, unit: 'MB', display: mb(x.restorePeakBytes), baseline: idle, target: '< 300 MB', pass: x.restorePeakBytes < RSS_TARGET_BYTES,
    });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const scale = benchScale();
  const t0 = performance.now();
  print(`Storage and backup format (issue 5) — LIFEBOAT_BENCH_SCALE=${scale}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const r = await runStorageBench(scale);
  print(`\nSummary (LIFEBOAT_BENCH_SCALE=${scale}, ${fmtS(performance.now() - t0)}, load average at end ${r.loadAverage.end.map((x) => x.toFixed(2)).join(' ')}; `
    + `before each timed step: ${r.cache}). Ratio = Lifeboat ÷ baseline; both measured in this run.\n`);
  print(summaryTable(storageResults(r)));
}

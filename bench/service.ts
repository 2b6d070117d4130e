/**
 * Service figures (issue 3): time from BackupPartition to Success and from RestorePartition to
 * Success for a 100 MB partition, and REST latency of GetPartitionBackupProgress under load
 * (autocannon), against a real `lifeboat start` in a child process on free ports.
 * Baseline in the same run: a plain streamed copy of the partition's database file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { LifeboatClient } from '../src/client/lifeboat-client.ts';
import type { StorageDescription } from '../src/core/storage-description.ts';

export interface ServiceBenchResult {
  partitionMB: number;
  backupSeconds: number;
  restoreSeconds: number;
  copySeconds: number;
  progressP50Ms: number;
  progressP99Ms: number;
  progressRequestsPerSecond: number;
}

async function startChild(dataDir: string): Promise<{ child: ChildProcess; api: string; kv: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', 'start', '--data-dir', dataDir, '--port', '0', '--sample-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LIFEBOAT_LOG_LEVEL: 'warn' },
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lifeboat did not start: ${out}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const api = /REST API: (http:\/\/\S+)/.exec(out)?.[1];
      const kv = /fabric:\/SampleApp: (http:\/\/\S+)\/kv/.exec(out)?.[1];
      if (api && kv) {
        clearTimeout(timer);
        resolve({ child, api, kv });
      }
    });
    child.on('exit', (code) => reject(new Error(`lifeboat exited ${code}: ${out}`)));
  });
}

export async function runServiceBench(scale = 1, log: (line: string) => void = console.log): Promise<ServiceBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-bench-service-'));
  const share = join(dir, 'backups', 'share');
  const { child, api, kv } = await startChild(dir);
  try {
    // Every route needs a credential: the bootstrap admin token the service made in its data dir.
    const token = (await readFile(join(dir, 'admin.token'), 'utf8')).trim();
    const lb = new LifeboatClient({ baseUrl: api, token });
    // Fill one partition: keys are hashed to partitions, so find keys of the first one.
    const pid = (await lb.hierarchy.listPartitions('SampleApp~MyStatefulService')).Items[0]?.PartitionInformation.Id as string;
    const targetBytes = Math.round(100 * 1024 * 1024 * scale);
    const valueBytes = 512 * 1024;
    let written = 0;
    for (let i = 0; written < targetBytes; i++) {
      const res = await fetch(`${kv}/kv/bench-${i}`, { method: 'PUT', body: randomBytes(valueBytes / 2).toString('hex') });
      const body = (await res.json()) as { PartitionId: string };
      if (body.PartitionId === pid) written += valueBytes;
      else await fetch(`${kv}/kv/bench-${i}`, { method: 'DELETE' });
    }
    const partDir = join(dir, 'hosts', 'local', 'SampleApp', 'MyStatefulService', 'partitions', pid);
    const dbFile = (await readdir(partDir)).find((f) => /^data-\d+\.sqlite$/.test(f)) as string;
    const partitionMB = (await stat(join(partDir, dbFile))).size / 1e6;
    log(`service bench: partition ${pid} holds ${partitionMB.toFixed(1)} MB`);

    // Baseline: copying the database file.
    let t0 = performance.now();
    await copyFile(join(partDir, dbFile), join(dir, 'copy.sqlite'));
    const copySeconds = (performance.now() - t0) / 1000;
    await rm(join(dir, 'copy.sqlite'));

    const storage: StorageDescription = { StorageKind: 'FileShare', Path: share };
    // Progress is read every 10 ms, so the figures are the operations' own time, not the polling's.
    const wait = { timeoutMs: 3_600_000, intervalMs: 10 };
    t0 = performance.now();
    await lb.operations.backupPartition(pid, { storage });
    const backup = await lb.operations.waitForBackup(pid, wait);
    const backupSeconds = (performance.now() - t0) / 1000;
    if (backup.BackupState !== 'Success') throw new Error(`backup ended ${JSON.stringify(backup)}`);

    t0 = performance.now();
    await lb.operations.restorePartition(pid, { backupId: backup.BackupId as string, backupLocation: backup.BackupLocation as string, storage });
    const restore = await lb.operations.waitForRestore(pid, wait);
    const restoreSeconds = (performance.now() - t0) / 1000;
    if (restore.RestoreState !== 'Success') throw new Error(`restore ended ${JSON.stringify(restore)}`);

    const load = await autocannon({
      url: `${api}/Partitions/${pid}/$/GetBackupProgress?api-version=6.4`, headers: { authorization: `Bearer ${token}` },
      connections: 10, duration: Math.max(3, Math.round(10 * Math.min(1, scale * 4))),
    });
    if (load.non2xx > 0) throw new Error(`${load.non2xx} progress reads under load were refused`);
    const result: ServiceBenchResult = {
      partitionMB, backupSeconds, restoreSeconds, copySeconds,
      progressP50Ms: load.latency.p50, progressP99Ms: load.latency.p99, progressRequestsPerSecond: load.requests.average,
    };
    log(`  BackupPartition → Success   ${backupSeconds.toFixed(2)} s  (${(partitionMB / backupSeconds).toFixed(0)} MB/s; a plain copy of the file: ${copySeconds.toFixed(2)} s)`);
    log(`  RestorePartition → Success  ${restoreSeconds.toFixed(2)} s  (${(partitionMB / restoreSeconds).toFixed(0)} MB/s)`);
    log(`  GetPartitionBackupProgress under load (autocannon, 10 connections): p50 ${load.latency.p50} ms, p99 ${load.latency.p99} ms, ${load.requests.average.toFixed(0)} req/s (target p99 < 50 ms)`);
    return result;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  await runServiceBench(Number(process.env.LIFEBOAT_BENCH_SCALE ?? 1));
}

/**
 * The benchmark suite: `npm run bench` (node --import tsx bench/run.ts).
 *
 * Runs every benchmark in order — the state library's (bench/state.ts), then the service's
 * (bench/service.ts), the scheduler's (bench/scheduler.ts), past one machine (bench/scale.ts:
 * PostgreSQL and three instances) and storage and the backup format (bench/storage.ts) — prints what it measures as it goes, then a summary table, and
 * writes the figures as JSON to bench/.work/state-results.json. Scratch data lives in
 * bench/.work/run-<pid>/ and is removed at the end (set LIFEBOAT_BENCH_KEEP=1 to keep it).
 *
 * LIFEBOAT_BENCH_SCALE (default 1) scales data sizes: 1 → a 1 GiB partition and 20,000 commits
 * per round; 0.05 → 51 MiB and 1,000 commits, for a quick run.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchResult, resultsJson, summaryTable } from './results.ts';
import { type ServiceBenchResult, runServiceBench } from './service.ts';
import { runSchedulerBench } from './scheduler.ts';
import { runScaleBench, scaleResults } from './scale.ts';
import { runStateBenchmarks } from './state.ts';
import { runStorageBench, storageResults } from './storage.ts';
import { benchScale, fmtS, log, now } from './util.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const outDir = join(benchDir, '.work');
const workDir = join(outDir, `run-${process.pid}`);

async function main(): Promise<void> {
  const scale = benchScale();
  const started = now();
  const startedAt = new Date().toISOString();
  const machine = {
    cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version, platform: `${process.platform} ${process.arch}`,
  };
  log(`Lifeboat benchmarks — LIFEBOAT_BENCH_SCALE=${scale}${scale === 1 ? '' : ' (sizes scaled; figures are not the scale-1 ones)'}`);
  const loadAtStart = loadavg();
  log(`${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, Node ${machine.node}, ${machine.platform}; work dir ${workDir}`);
  log(`Load average at start: ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}${loadAtStart[0] !== undefined && loadAtStart[0] > 0.5 ? ' — other work is running; figures will be noisy' : ''}`);

  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  const results: BenchResult[] = [];
  const details: Record<string, unknown> = {};
  try {
    const state = await runStateBenchmarks({ scale, workDir });
    results.push(...state.results);
    details.state = state.details;
  } finally {
    if (!process.env.LIFEBOAT_BENCH_KEEP) await rm(workDir, { recursive: true, force: true });
  }
  // The service figures (bench/service.ts): a real `lifeboat start` in a child process. A failure
  // there is reported without losing the state figures.
  log('\n[S] Service: backup and restore through the REST API, progress latency under load …');
  try {
    const service = await runServiceBench(scale, (line) => log(line.startsWith('  ') ? line : `  ${line}`));
    details.service = service;
    results.push(...serviceResults(service));
  } catch (err) {
    log(`  the service bench failed: ${err instanceof Error ? err.message : String(err)}`);
    details.service = { error: err instanceof Error ? err.message : String(err) };
  }
  log('\n[P] Periodic scheduler: 1,000 partitions under a 1-minute policy (simulated hosts) …');
  try {
    const sched = await runSchedulerBench((line) => log(`  ${line}`));
    details.scheduler = sched;
    results.push(
      {
        id: 'P1', group: 'Scheduler', metric: `Scheduler lag p99, 1,000 partitions, 1-minute policy (${sched.backups} backups)`,
        value: sched.lag.p99Ms, unit: 'ms', display: `${sched.lag.p99Ms} ms`,
        baseline: { name: 'p50', value: sched.lag.p50Ms, display: `${sched.lag.p50Ms} ms` }, target: 'info',
      },
      {
        id: 'P2', group: 'Scheduler', metric: 'Catalog size per 10,000 backups',
        value: sched.catalogBytesPer10kBackups / 2 ** 20, unit: 'MiB', display: `${(sched.catalogBytesPer10kBackups / 2 ** 20).toFixed(1)} MiB`,
        baseline: { name: 'idle pass over 1,000 partitions', value: sched.idleTickMs, display: `${sched.idleTickMs.toFixed(0)} ms` }, target: 'info',
      },
    );
  } catch (err) {
    log(`  the scheduler bench failed: ${err instanceof Error ? err.message : String(err)}`);
    details.scheduler = { error: err instanceof Error ? err.message : String(err) };
  }
  // Past one machine (bench/scale.ts): PostgreSQL, one instance and three. Each of its steps
  // reports its own failure; a failure of the whole is reported without losing the others' figures.
  log('\n[X] Past one machine: PostgreSQL catalog, 1 and 3 instances (paging, growth, failover, scheduler lag with simulated hosts, REST under load) …');
  try {
    const scaleOut = await runScaleBench(scale, (line) => log(`  ${line}`));
    details.scale = scaleOut;
    const p2 = (details.scheduler as { catalogBytesPer10kBackups?: number } | undefined)?.catalogBytesPer10kBackups;
    results.push(...scaleResults(scaleOut, p2 === undefined ? undefined : p2 / 2 ** 20));
  } catch (err) {
    log(`  the scale-out bench failed: ${err instanceof Error ? err.message : String(err)}`);
    details.scale = { error: err instanceof Error ? err.message : String(err) };
  }
  // Last: it drops the page cache between its steps (when root), which would disturb the others.
  log('\n[B] Storage and backup format: backup and restore to FileShare, Azurite and s3rver against restic and tar, peak RSS …');
  try {
    const storage = await runStorageBench(scale, (line) => log(`  ${line}`));
    details.storage = storage;
    results.push(...storageResults(storage));
  } catch (err) {
    log(`  the storage bench failed: ${err instanceof Error ? err.message : String(err)}`);
    details.storage = { error: err instanceof Error ? err.message : String(err) };
  }
  const totalMs = now() - started;
  const loadAtEnd = loadavg();

  log(`\nSummary (LIFEBOAT_BENCH_SCALE=${scale}, total ${fmtS(totalMs)}, load average at end ${loadAtEnd.map((x) => x.toFixed(2)).join(' ')}). `
    + 'Ratio = Lifeboat ÷ baseline; both measured in this run.\n');
  log(summaryTable(results));
  const misses = results.filter((r) => r.pass === false).length;
  const targets = results.filter((r) => r.pass !== undefined).length;
  log(`\n${targets - misses} of ${targets} targets met.`);

  const file = join(outDir, 'state-results.json');
  await writeFile(file, `${JSON.stringify({
    suite: 'lifeboat benchmarks', scale, startedAt, totalMs, machine, loadAverage: { start: loadAtStart, end: loadAtEnd }, results: resultsJson(results), details,
  }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  log(`Results written to ${file}`);
}

function serviceResults(r: ServiceBenchResult): BenchResult[] {
  const copyMBps = r.partitionMB / r.copySeconds;
  const mb = (x: number): string => `${x.toFixed(0)} MB/s`;
  return [
    {
      id: 'S1', group: 'Service', metric: `BackupPartition → Success, ${r.partitionMB.toFixed(1)} MB partition (${r.backupSeconds.toFixed(2)} s)`,
      value: r.partitionMB / r.backupSeconds, unit: 'MB/s', display: mb(r.partitionMB / r.backupSeconds),
      baseline: { name: 'fs.copyFile of the file', value: copyMBps, display: mb(copyMBps) }, target: 'info',
    },
    {
      id: 'S2', group: 'Service', metric: `RestorePartition → Success (${r.restoreSeconds.toFixed(2)} s)`,
      value: r.partitionMB / r.restoreSeconds, unit: 'MB/s', display: mb(r.partitionMB / r.restoreSeconds),
      baseline: { name: 'fs.copyFile of the file', value: copyMBps, display: mb(copyMBps) }, target: 'info',
    },
    {
      id: 'S3', group: 'Service', metric: `GetPartitionBackupProgress p99 under autocannon (${r.progressRequestsPerSecond.toFixed(0)} req/s)`,
      value: r.progressP99Ms, unit: 'ms', display: `${r.progressP99Ms} ms`,
      baseline: { name: 'p50', value: r.progressP50Ms, display: `${r.progressP50Ms} ms` }, target: '< 50 ms', pass: r.progressP99Ms < 50,
    },
  ];
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});

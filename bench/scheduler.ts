/**
 * The periodic scheduler at scale (issue 4's figures): 1,000 partitions under a one-minute
 * FrequencyBased policy, real clock and timers, the service and catalog as in production, and
 * simulated hosts (they answer each order at once with a made-up backup, so only the scheduler,
 * the service and the catalog are measured). Reports the scheduler lag (operation accepted −
 * the partition's jittered due moment) and the catalog's size per 10,000 backups.
 *
 * Standalone: `node --import tsx bench/scheduler.ts` (LIFEBOAT_BENCH_SCHEDULER_MINUTES, default
 * 2.5: two rounds of 1,000 backups after the first minute). Also run by `npm run bench`.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteCatalog } from '../src/catalog/sqlite.ts';
import type { Order, Registration } from '../src/core/host-protocol.ts';
import { simulatedService, successReport } from './simulated-host.ts';
import type { PartitionScheme } from '../src/core/partitioning.ts';
import { LifeboatService } from '../src/service/lifeboat-service.ts';
import { systemClock } from '../src/main/clock.ts';
import { Scheduler } from '../src/service/scheduler.ts';
import { StorageRegistry } from '../src/storage/open.ts';
import { type LagStats } from '../src/service/scheduler.ts';

export interface SchedulerBenchResult {
  readonly partitions: number;
  readonly minutes: number;
  readonly backups: number;
  readonly lag: LagStats;
  readonly idleTickMs: number;
  readonly catalogBytesPer10kBackups: number;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Registers `hosts` simulated hosts serving `services` × `perService` partitions and answers their orders. */
function simulatedHosts(service: LifeboatService, hosts: number, services: number, perService: number): { start(): Promise<void>; stop(): Promise<void>; backups(): number } {
  let stopping = false;
  let done = 0;
  const chains = new Map<string, string>();
  const registrations: Array<{ id: string; reg: Registration }> = [];
  for (let h = 0; h < hosts; h++) {
    const svcs = [];
    for (let s = h; s < services; s += hosts) {
      const scheme: PartitionScheme = { kind: 'UniformInt64Range', count: perService, lowKey: INT64_MIN, highKey: INT64_MAX };
      svcs.push(simulatedService(`fabric:/Bench/Svc${s}`, scheme));
    }
    registrations.push({ id: `sim-${h}`, reg: { Services: svcs } });
  }
  const answer = async (hostId: string, o: Order): Promise<void> => {
    if (o.Kind !== 'Backup') return;
    await service.hosts.report(hostId, successReport(o, chains, 'Bench/x'));
    done++;
  };
  const poll = async (hostId: string): Promise<void> => {
    while (!stopping) {
      const orders = await service.hosts.pollOrders(hostId, 1000);
      await Promise.all(orders.map((o) => answer(hostId, o)));
    }
  };
  const loops: Promise<void>[] = [];
  return {
    async start() {
      for (const r of registrations) await service.hosts.register(r.id, r.reg);
      for (const r of registrations) loops.push(poll(r.id));
    },
    async stop() {
      stopping = true;
      service.orders.wakeAll();
      await Promise.allSettled(loops);
    },
    backups: () => done,
  };
}

export async function runSchedulerBench(log: (line: string) => void, minutes = Number(process.env.LIFEBOAT_BENCH_SCHEDULER_MINUTES ?? 2.5)): Promise<SchedulerBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-bench-scheduler-'));
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
  const root = join(dir, 'backups');
  const stores = new StorageRegistry({ fileShareRoots: [root] });
  const service = new LifeboatService({ catalog, clock: systemClock, openStorage: (d) => stores.open(d) });
  const hosts = simulatedHosts(service, 4, 10, 100);
  const scheduler = new Scheduler({ catalog, service, clock: systemClock });
  try {
    await hosts.start();
    await service.policies.createPolicy({
      Name: 'every-minute', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 5,
      Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1M' }, Storage: { StorageKind: 'FileShare', Path: join(root, 'share') },
    }, false);
    for (let s = 0; s < 10; s++) await service.protection.enableBackup({ kind: 'Service', name: `fabric:/Bench/Svc${s}` }, { BackupPolicyName: 'every-minute' });
    scheduler.start();
    log(`1,000 partitions on 4 simulated hosts, a 1-minute policy; running ${minutes} min in real time …`);
    const until = Date.now() + minutes * 60_000;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 15_000));
      log(`  ${hosts.backups()} backups so far; lag ${JSON.stringify(scheduler.lagStats())}`);
    }
    await scheduler.stop();
    await hosts.stop();
    const lag = scheduler.lagStats();
    const backups = hosts.backups();
    // What one pass over 1,000 partitions costs when none is due: the floor of the lag.
    const tickMs: number[] = [];
    const timing = new Scheduler({ catalog, service, clock: systemClock });
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await timing.tick();
      tickMs.push(performance.now() - t0);
    }
    tickMs.sort((a, b) => a - b);
    const idleTickMs = tickMs[2] as number;
    log(`one scheduler pass over 1,000 partitions with nothing due: ${idleTickMs.toFixed(0)} ms (median of 5)`);

    // Catalog size per 10,000 backups: the catalog above, checkpointed, less an empty one's size,
    // scaled to 10,000 (each backup is one operation row and one backup row, plus the index).
    await catalog.close();
    const size = async (p: string): Promise<number> => (await stat(p).catch(() => ({ size: 0 }))).size;
    const reopened = new SqliteCatalog(join(dir, 'catalog.sqlite'));
    await reopened.close(); // closing checkpoints the WAL into the file
    const used = await size(join(dir, 'catalog.sqlite')) + await size(join(dir, 'catalog.sqlite-wal'));
    const empty = new SqliteCatalog(join(dir, 'empty.sqlite'));
    await empty.close();
    const base = await size(join(dir, 'empty.sqlite'));
    const per10k = backups > 0 ? ((used - base) / backups) * 10_000 : 0;
    log(`scheduler lag over ${lag.count} periodic backups: p50 ${lag.p50Ms} ms, p99 ${lag.p99Ms} ms, max ${lag.maxMs} ms`);
    log(`catalog: ${(used / 2 ** 20).toFixed(1)} MiB after ${backups} backups (1,000 partitions registered) → ${(per10k / 2 ** 20).toFixed(1)} MiB per 10,000 backups`);
    return { partitions: 1000, minutes, backups, lag, idleTickMs, catalogBytesPer10kBackups: per10k };
  } finally {
    await scheduler.stop();
    await hosts.stop();
    await stores.close();
    await catalog.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runSchedulerBench((l) => console.log(l)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/**
 * Crash test: a child process (test/fixtures/crash-child.ts) is killed with SIGKILL at random
 * moments during a backup and during a restore; the partition reopens consistent every time.
 *
 * The workload is deterministic (test/support/crash-model.ts), so the exact state at any LSN is
 * known. After each kill the parent reopens the partition and checks that it opens, that SQLite's
 * integrity check passes, and that its content is exactly the state at its LSN:
 *   - kill during a backup: no commit the child reported is lost; the backup folder being written
 *     is accepted by restore only with a complete, checksum-valid backup.metadata, and then gives
 *     exactly the state at its LSN; the backup chain continues after the crash.
 *   - kill during a restore: the partition is exactly as it was or exactly the chain's state,
 *     never a mix, and its epoch says which (a restore advances the DataLossVersion); a restore
 *     retried after the crash succeeds.
 *
 * Kill delays come from a seeded random source; the seed is in the test names and every assertion
 * message. Reproduce with LIFEBOAT_CRASH_SEED=<seed>; keep the files with LIFEBOAT_KEEP_TMP=1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { type FSWatcher, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  type BackupInfo, type Epoch, type Partition, StatefulService, isLifeboatError, readBackupMetadata,
} from '../../src/state/index.ts';
import { seededRandom } from '../../src/storage/faults.ts';
import { SERVICE_NAME, commitTx, diffFromExpected } from '../support/crash-model.ts';

const SEED = process.env.LIFEBOAT_CRASH_SEED ? Number(process.env.LIFEBOAT_CRASH_SEED) : randomInt(1, 2 ** 31);
const BACKUP_KILLS = 8;
const RESTORE_KILLS = 8;
/** The template partition: a full backup at FULL_AT, incrementals at each of INCS, then more commits up to PRE_RESTORE. */
const FULL_AT = 3000;
const INCS = [4000, 5000, 6000];
const CHAIN_LSN = 6000;
const PRE_RESTORE = 6500;
/** How long the backup callback takes in the runs killed around it, as an upload would. */
const CALLBACK_MS = 8;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('../fixtures/crash-child.ts', import.meta.url));
const DATA_FILE = /^data-(\d+)\.sqlite(-wal|-shm|-journal)?$/;

// ---- the child -------------------------------------------------------------------------------

interface ChildEvent {
  readonly ev: string;
  readonly [field: string]: unknown;
}

interface ChildRun {
  readonly events: ChildEvent[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** Set when the kill was scheduled: after what, and how long after it. */
  readonly kill: { readonly trigger: string; readonly delayMs: number } | undefined;
  readonly hung: boolean;
}

/**
 * Decides when to kill: sees each progress event as it arrives, and calls `killAfter` (at once or
 * later, e.g. from a file watcher) to send SIGKILL that many milliseconds later; the first call counts.
 */
type KillPlan = (ev: ChildEvent, killAfter: (delayMs: number, trigger: string) => void) => void;

/** Runs the child to its end, killing it as `plan` says. */
function runChild(args: string[], plan?: KillPlan): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const events: ChildEvent[] = [];
    let pending = '';
    let stderr = '';
    let kill: ChildRun['kill'];
    let killTimer: NodeJS.Timeout | undefined;
    let hung = false;
    const guard = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, 30_000);
    const killAfter = (delayMs: number, trigger: string): void => {
      if (kill !== undefined) return;
      kill = { trigger, delayMs };
      killTimer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const ev = JSON.parse(line) as ChildEvent;
        events.push(ev);
        if (kill === undefined) plan?.(ev, killAfter);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      clearTimeout(killTimer);
      resolve({ events, code, signal, stderr, kill, hung });
    });
  });
}

function assertChildOk(run: ChildRun, ctx: string, killed: boolean): void {
  assert.ok(!run.hung, `${ctx}: the child hung; stderr: ${run.stderr}`);
  if (killed) {
    assert.ok(run.signal === 'SIGKILL' || run.code === 0, `${ctx}: the child failed (code ${run.code}, signal ${run.signal}): ${run.stderr}`);
  } else {
    assert.equal(run.code, 0, `${ctx}: the child failed (code ${run.code}, signal ${run.signal}): ${run.stderr}`);
  }
}

const lsnOf = (ev: ChildEvent | undefined): number => Number(ev?.lsn ?? Number.NaN);

// ---- the partition on disk -------------------------------------------------------------------

async function open(dataDir: string): Promise<{ service: StatefulService; p: Partition }> {
  const service = await StatefulService.open({ name: SERVICE_NAME, partitioning: { kind: 'Singleton' }, dataDir, durability: 'full' });
  return { service, p: service.partitionList[0] as Partition };
}

function readStateFile(partitionDir: string): { generation: number; epoch: { dataLossVersion: string; configurationVersion: string } } {
  return JSON.parse(readFileSync(join(partitionDir, 'state.json'), 'utf8')) as ReturnType<typeof readStateFile>;
}

/**
 * With the service closed: the current generation's database passes PRAGMA integrity_check, and
 * no database file of another generation is left. Returns other leftovers (e.g. temporary files).
 */
function checkFiles(partitionDir: string, ctx: string): string[] {
  const { generation } = readStateFile(partitionDir);
  const names = readdirSync(partitionDir);
  const otherGenerations = names.filter((n) => {
    const m = DATA_FILE.exec(n);
    return m !== null && Number(m[1]) !== generation;
  });
  assert.deepEqual(otherGenerations, [], `${ctx}: database files of other generations are left beside generation ${generation}`);
  const db = new Database(join(partitionDir, `data-${generation}.sqlite`), { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    assert.deepEqual(rows.map((r) => r.integrity_check), ['ok'], `${ctx}: integrity_check of data-${generation}.sqlite`);
  } finally {
    db.close();
  }
  return names.filter((n) => n !== 'state.json' && !DATA_FILE.test(n) && n !== 'backup');
}

function assertContent(p: Partition, lsn: number, ctx: string): void {
  const problems = diffFromExpected(p, lsn);
  assert.deepEqual(problems.slice(0, 8), [], `${ctx}: content differs from the state at LSN ${lsn} (${problems.length} differences)`);
}

/** Restores with Force; returns the result, or the LifeboatError it was refused with (anything else fails). */
async function tryRestore(p: Partition, folders: string[], ctx: string): Promise<{ ok: true; lsn: number; chain: readonly string[] } | { ok: false; code: string }> {
  try {
    const r = await p.restore(folders, { policy: 'Force' });
    return { ok: true, lsn: Number(r.restoredLsn), chain: r.chain };
  } catch (err) {
    assert.ok(isLifeboatError(err), `${ctx}: restore failed with something other than a LifeboatError: ${String(err)}`);
    return { ok: false, code: err.code };
  }
}

async function validMetadata(folder: string): Promise<BackupInfo | undefined> {
  try {
    return await readBackupMetadata(folder);
  } catch (err) {
    if (isLifeboatError(err)) return undefined;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The folders of the chain ending at `last`, full backup first, following parent links through `known`. */
function chainTo(last: BackupInfo, known: ReadonlyMap<string, BackupInfo>): string[] {
  const out: string[] = [];
  for (let b: BackupInfo | undefined = last; b; b = b.option === 'Full' ? undefined : known.get(b.parentBackupId)) out.unshift(b.directory);
  return out;
}

const epochText = (e: Epoch): string => `${e.dataLossVersion}:${e.configurationVersion}`;

function count(tally: Map<string, number>, key: string): void {
  tally.set(key, (tally.get(key) ?? 0) + 1);
}

const tallyText = (tally: Map<string, number>): string => [...tally].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ×${n}`).join('; ');

// ---- the tests -------------------------------------------------------------------------------

describe(`crash: SIGKILL during backup and restore (seed ${SEED})`, () => {
  const random = seededRandom(SEED);
  let root = '';
  let template = '';
  let partitionId = '';
  let templateEpoch: Epoch;
  const templateBackups: BackupInfo[] = [];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lifeboat-crash-'));
    template = join(root, 'template');
    // Built with durability 'normal' to be quick; the children run with 'full'.
    const service = await StatefulService.open({ name: SERVICE_NAME, partitioning: { kind: 'Singleton' }, dataDir: join(template, 'data'), durability: 'normal' });
    const p = service.partitionList[0] as Partition;
    const commitUpTo = (lsn: number): void => {
      for (let i = Number(p.lastLsn) + 1; i <= lsn; i++) commitTx(p, i);
    };
    commitUpTo(FULL_AT);
    templateBackups.push(await p.backup({ option: 'Full', folder: join(template, 'backups', 'full') }));
    for (const [n, lsn] of INCS.entries()) {
      commitUpTo(lsn);
      templateBackups.push(await p.backup({ option: 'Incremental', folder: join(template, 'backups', `inc${n + 1}`) }));
    }
    commitUpTo(PRE_RESTORE);
    partitionId = p.id;
    templateEpoch = p.epoch;
    await service.close();
    assert.equal(templateBackups.at(-1)?.lastLsn, BigInt(CHAIN_LSN));
  });

  after(() => {
    if (root && !process.env.LIFEBOAT_KEEP_TMP) rmSync(root, { recursive: true, force: true });
  });

  /** A fresh copy of the template's service for one run. */
  const copyOfTemplate = (name: string): { run: string; dataDir: string; partitionDir: string } => {
    const run = join(root, name);
    cpSync(join(template, 'data'), join(run, 'data'), { recursive: true });
    return { run, dataDir: join(run, 'data'), partitionDir: join(run, 'data', 'partitions', partitionId) };
  };

  it(`a kill during a backup loses no reported commit and leaves no half-written backup restorable (seed ${SEED})`, { timeout: 180_000 }, async (t) => {
    // Calibration: a run that is not killed gives the length of the Full and Incremental windows.
    const cal = copyOfTemplate('backup-calibration');
    const calRun = await runChild(['backup', cal.dataDir, join(cal.run, 'backups'), '--max=6']);
    assertChildOk(calRun, `seed ${SEED}, backup calibration`, false);
    const done = calRun.events.filter((e) => e.ev === 'backup-done');
    assert.equal(done.length, 6, `seed ${SEED}: the calibration run took 6 backups`);
    const fullMs = Number(done[0]?.ms);
    const incMs = done.slice(1).map((e) => Number(e.ms)).sort((a, b) => a - b)[2] ?? 20;
    {
      const { service, p } = await open(cal.dataDir);
      assert.equal(Number(p.lastLsn), lsnOf(calRun.events.find((e) => e.ev === 'exit')), `seed ${SEED}: calibration run's last LSN`);
      assertContent(p, Number(p.lastLsn), `seed ${SEED}, backup calibration`);
      await service.close();
    }
    rmSync(cal.run, { recursive: true, force: true });

    const phases = new Map<string, number>();
    const outcomes = new Map<string, number>();
    const leftovers = new Set<string>();
    for (let k = 0; k < BACKUP_KILLS; k++) {
      const { run, dataDir, partitionDir } = copyOfTemplate(`backup-${k}`);
      const backupsDir = join(run, 'backups');
      // Four kinds of kill point, in turn: anywhere in the Full backup; anywhere in one of the first
      // Incrementals; late in the Full backup (its last fifth, or just after); and while the backup
      // callback runs (backup.metadata written, the backup not yet recorded) or just after it.
      const kind = (['full', 'incremental', 'full-late', 'callback'] as const)[k % 4] as 'full' | 'incremental' | 'full-late' | 'callback';
      const target = kind === 'full' || kind === 'full-late' || (kind === 'callback' && k % 8 === 3) ? 0 : 1 + Math.floor(random() * 4);
      const r = random();
      const delayMs = Math.round(10 * (kind === 'full' ? fullMs * 1.05 * r
        : kind === 'full-late' ? fullMs * (0.8 + 0.3 * r)
        : kind === 'incremental' ? incMs * 1.3 * r
        : (CALLBACK_MS + 2) * r)) / 10;
      const marker = kind === 'callback' ? 'backup-written' : 'backup-start';
      const ctxBase = `seed ${SEED}, backup kill #${k} (${delayMs} ms after ${marker} of backup ${target})`;
      const args = ['backup', dataDir, backupsDir, ...(kind === 'callback' ? [`--callback-ms=${CALLBACK_MS}`] : [])];
      const child = await runChild(args, (ev, killAfter) => {
        if (ev.ev === marker && ev.n === target) killAfter(delayMs, `${marker} of backup ${target}`);
      });
      assertChildOk(child, ctxBase, true);
      assert.ok(child.kill, `${ctxBase}: backup ${target} never started`);

      // Where the kill landed.
      const starts = child.events.filter((e) => e.ev === 'backup-start');
      const lastStart = starts.at(-1) as ChildEvent;
      const lastDone = child.events.some((e) => e.ev === 'backup-done' && e.n === lastStart.n);
      const folder = String(lastStart.folder);
      const option = String(lastStart.option);
      const dataFile = option === 'Full' ? 'data.sqlite' : 'changes.log';
      const where = lastDone ? 'between backups'
        : !existsSync(folder) ? 'before its folder was made'
          : existsSync(join(folder, 'backup.metadata'))
            ? (child.events.some((e) => e.ev === 'backup-written' && e.n === lastStart.n) ? 'metadata written, in the callback or recording' : 'metadata written, callback not yet called')
            : readdirSync(folder).some((n) => n.startsWith('backup.metadata.tmp')) ? 'writing metadata'
            : existsSync(join(folder, dataFile)) ? `writing ${dataFile}` : 'folder made, no file yet';
      const phase = `${option} ${where}`;
      count(phases, phase);
      const ctx = `${ctxBase}, killed: ${phase}`;

      const reported = Math.max(lsnOf(child.events.find((e) => e.ev === 'ready')), ...child.events.filter((e) => e.ev === 'commit').map(lsnOf));
      let lastLsn: number;
      {
        const { service, p } = await open(dataDir).catch((err: unknown) => assert.fail(`${ctx}: the service does not reopen: ${String(err)}`));
        assert.equal(p.status, 'Ready', ctx);
        assert.equal(p.dataLossPending, false, `${ctx}: reopening found data loss`);
        assert.equal(epochText(p.epoch), epochText(templateEpoch), `${ctx}: the epoch changed`);
        lastLsn = Number(p.lastLsn);
        assert.ok(lastLsn >= reported, `${ctx}: the child reported the commit of LSN ${reported}, the partition reopened at LSN ${lastLsn}`);
        assert.ok(lastLsn <= reported + 1, `${ctx}: the partition reopened at LSN ${lastLsn}, past the last reported commit ${reported} and the one that may not have been reported`);
        count(outcomes, lastLsn === reported ? 'every commit reported' : 'one commit unreported');
        assertContent(p, lastLsn, ctx);
        await service.close();
      }
      for (const f of checkFiles(partitionDir, ctx)) leftovers.add(f.replace(/\d+/g, 'N'));

      {
        const { service, p } = await open(dataDir);
        const known = new Map<string, BackupInfo>(templateBackups.map((b) => [b.backupId, b]));
        const childInfos: Array<BackupInfo | undefined> = [];
        for (const s of starts) {
          const info = await validMetadata(String(s.folder));
          childInfos.push(info);
          if (info) known.set(info.backupId, info);
        }
        // Every backup the child saw completed has a valid backup.metadata.
        for (const d of child.events.filter((e) => e.ev === 'backup-done')) {
          assert.equal(childInfos[Number(d.n)]?.backupId, d.backupId, `${ctx}: completed backup ${String(d.n)} has no valid metadata`);
        }

        // The chain continues: the next incremental follows the last backup the partition recorded.
        const last = p.lastCompletedBackup;
        assert.ok(last, `${ctx}: no backup is recorded`);
        const recorded = known.get(last.backupId);
        assert.ok(recorded, `${ctx}: the recorded backup ${last.backupId} is in no folder with valid metadata`);
        const next = await p.backup({ option: 'Incremental', folder: join(run, 'after-crash') });
        assert.equal(Number(next.lastLsn), lastLsn, `${ctx}: the incremental after the crash`);
        known.set(next.backupId, next);
        const continued = await tryRestore(p, chainTo(next, known), `${ctx}, restoring the continued chain`);
        assert.ok(continued.ok, `${ctx}: the chain continued after the crash does not restore: ${continued.ok ? '' : continued.code}`);
        assert.equal(continued.lsn, lastLsn, `${ctx}: the continued chain's LSN`);
        assertContent(p, continued.lsn, `${ctx}, after restoring the continued chain`);

        // The folder being written at the kill is accepted only with complete, valid metadata.
        if (!lastDone) {
          const partial = childInfos.at(-1);
          const attempts: Array<[string, string[]]> = [['alone', [folder]]];
          if (option === 'Incremental') attempts.push(['after its chain', starts.map((s) => String(s.folder))]);
          for (const [how, folders] of attempts) {
            const c = `${ctx}, restoring the interrupted backup ${how}`;
            const r = await tryRestore(p, folders, c);
            if (r.ok) {
              if (partial) {
                assert.ok(r.chain.includes(partial.backupId), `${c}: restore ignored a backup with valid metadata`);
                assert.equal(r.lsn, Number(partial.lastLsn), c);
              } else {
                assert.equal(how, 'after its chain', `${c}: a folder without valid metadata was restored`);
                const prev = childInfos.at(-2);
                assert.ok(prev, c);
                assert.equal(r.lsn, Number(prev.lastLsn), `${c}: the folder without metadata should be ignored, the chain ending before it restored`);
              }
              assertContent(p, r.lsn, c);
              count(outcomes, `interrupted ${option} restored ${how}${partial ? '' : ' (folder ignored)'}`);
            } else {
              assert.ok(!(partial && (option === 'Full' || how === 'after its chain')), `${c}: a complete backup was refused with ${r.code}`);
              count(outcomes, `interrupted ${option} ${how} refused (${r.code})`);
            }
          }
        }
        await service.close();
      }
      checkFiles(partitionDir, `${ctx}, after the restores`);
      rmSync(run, { recursive: true, force: true });
    }
    t.diagnostic(`seed ${SEED}; windows: Full ≈ ${fullMs.toFixed(0)} ms, Incremental ≈ ${incMs.toFixed(0)} ms`);
    t.diagnostic(`kills: ${tallyText(phases)}`);
    t.diagnostic(`outcomes: ${tallyText(outcomes)}${leftovers.size ? `; files left in the partition folder: ${[...leftovers].join(', ')}` : ''}`);
  });

  it(`a kill during a restore leaves the partition exactly as it was or exactly restored (seed ${SEED})`, { timeout: 180_000 }, async (t) => {
    const chain = templateBackups.map((b) => b.directory);
    const fullBytes = Number(templateBackups[0]?.files[0]?.bytes);
    const expectRestored = async (dataDir: string, ctx: string): Promise<void> => {
      const { service, p } = await open(dataDir);
      const epochBefore = p.epoch;
      const r = await p.restore(chain, { policy: 'Force' });
      assert.equal(Number(r.restoredLsn), CHAIN_LSN, ctx);
      assert.equal(Number(p.lastLsn), CHAIN_LSN, ctx);
      assert.equal(epochText(p.epoch), epochText({ dataLossVersion: epochBefore.dataLossVersion + 1n, configurationVersion: epochBefore.configurationVersion }), `${ctx}: the epoch after a retried restore`);
      assertContent(p, CHAIN_LSN, `${ctx}, after a retried restore`);
      assert.equal(commitTx(p, CHAIN_LSN + 1), BigInt(CHAIN_LSN + 1), `${ctx}: LSNs continue from the backup's`);
      assertContent(p, CHAIN_LSN + 1, `${ctx}, after a commit on the restored partition`);
      await service.close();
    };

    // Calibration: a restore that is not killed gives the length of the window.
    const cal = copyOfTemplate('restore-calibration');
    const calRun = await runChild(['restore', cal.dataDir, ...chain]);
    assertChildOk(calRun, `seed ${SEED}, restore calibration`, false);
    const calDone = calRun.events.find((e) => e.ev === 'restore-done');
    assert.equal(lsnOf(calDone), CHAIN_LSN, `seed ${SEED}: the calibration restore`);
    const restoreMs = Number(calDone?.ms);
    {
      const { service, p } = await open(cal.dataDir);
      assert.equal(Number(p.lastLsn), CHAIN_LSN);
      assert.equal(p.epoch.dataLossVersion, templateEpoch.dataLossVersion + 1n);
      assertContent(p, CHAIN_LSN, `seed ${SEED}, restore calibration`);
      await service.close();
    }
    checkFiles(cal.partitionDir, `seed ${SEED}, restore calibration`);
    rmSync(cal.run, { recursive: true, force: true });

    const phases = new Map<string, number>();
    const outcomes = new Map<string, number>();
    const leftovers = new Set<string>();
    for (let k = 0; k < RESTORE_KILLS; k++) {
      const { run, dataDir, partitionDir } = copyOfTemplate(`restore-${k}`);
      const gen = readStateFile(partitionDir).generation;
      // Kill points in turn: anywhere in the restore; late in it (its last fifth, or just after);
      // anywhere; and just after state.json is replaced (the commit point), seen by a file watcher.
      const kind = (['anywhere', 'late', 'anywhere', 'switch'] as const)[k % 4] as 'anywhere' | 'late' | 'switch';
      const r = random();
      const delayMs = Math.round(10 * (kind === 'anywhere' ? restoreMs * 1.1 * r : kind === 'late' ? restoreMs * (0.8 + 0.3 * r) : 4 * r)) / 10;
      const ctxBase = `seed ${SEED}, restore kill #${k} (${delayMs} ms after ${kind === 'switch' ? 'state.json was replaced' : 'the restore started'})`;
      let watcher: FSWatcher | undefined;
      const child = await runChild(['restore', dataDir, ...chain], (ev, killAfter) => {
        if (ev.ev !== 'restore-start') return;
        if (kind !== 'switch') killAfter(delayMs, 'restore-start');
        else {
          watcher = watch(partitionDir, (_type, name) => {
            if (name === 'state.json') killAfter(delayMs, 'state.json replaced');
          });
        }
      }).finally(() => watcher?.close());
      assertChildOk(child, ctxBase, true);
      assert.ok(child.kill, `${ctxBase}: the restore never started`);

      // Where the kill landed, from the files it left.
      const state = readStateFile(partitionDir);
      const names = new Set(readdirSync(partitionDir));
      const next = `data-${gen + 1}.sqlite`;
      let phase: string;
      if (child.events.some((e) => e.ev === 'restore-done')) phase = 'after the restore returned';
      else if (state.generation === gen + 1) phase = names.has(`data-${gen}.sqlite`) ? 'switched, old generation not yet removed' : 'switched, old generation removed';
      else if (names.has(`${next}-wal`)) phase = 'replaying incrementals into the next generation';
      else if (names.has(next)) phase = statSync(join(partitionDir, next)).size < fullBytes ? 'copying the full backup' : 'next generation written, state.json not yet switched';
      else phase = 'before building the next generation';
      count(phases, phase);
      const switched = state.generation === gen + 1;
      const ctx = `${ctxBase}, killed: ${phase}`;

      {
        const { service, p } = await open(dataDir).catch((err: unknown) => assert.fail(`${ctx}: the service does not reopen: ${String(err)}`));
        assert.equal(p.status, 'Ready', ctx);
        assert.equal(p.dataLossPending, false, `${ctx}: reopening found data loss`);
        const lsn = Number(p.lastLsn);
        if (lsn === PRE_RESTORE) {
          assertContent(p, PRE_RESTORE, `${ctx}, as before the restore`);
          assert.equal(epochText(p.epoch), epochText(templateEpoch), `${ctx}: unrestored, but the epoch changed`);
          assert.ok(!switched, `${ctx}: state.json named the restored generation, yet the partition reopened unrestored`);
          count(outcomes, 'as before');
        } else {
          assert.equal(lsn, CHAIN_LSN, `${ctx}: the partition reopened at LSN ${lsn}: neither the state before the restore (${PRE_RESTORE}) nor the chain's (${CHAIN_LSN})`);
          assertContent(p, CHAIN_LSN, `${ctx}, restored`);
          assert.equal(epochText(p.epoch), epochText({ dataLossVersion: templateEpoch.dataLossVersion + 1n, configurationVersion: templateEpoch.configurationVersion }),
            `${ctx}: restored, but the DataLossVersion did not advance by one`);
          assert.ok(switched, `${ctx}: the partition reopened restored, but state.json named the old generation`);
          count(outcomes, 'restored');
        }
        await service.close();
      }
      for (const f of checkFiles(partitionDir, ctx)) leftovers.add(f.replace(/\d+/g, 'N'));
      await expectRestored(dataDir, ctx);
      checkFiles(partitionDir, `${ctx}, after the retried restore`);
      rmSync(run, { recursive: true, force: true });
    }
    t.diagnostic(`seed ${SEED}; window: restore ≈ ${restoreMs.toFixed(0)} ms`);
    t.diagnostic(`kills: ${tallyText(phases)}`);
    t.diagnostic(`outcomes: ${tallyText(outcomes)}${leftovers.size ? `; files left in the partition folder: ${[...leftovers].join(', ')}` : ''}`);
  });
});

/**
 * A partition's generations on disk: `state.json` names the current one (and the epoch), and
 * `data-<gen>.sqlite` is each generation's database. A restore builds the next generation beside
 * the current one and switches to it by replacing `state.json` (one atomic rename); files of
 * other generations are leftovers, removed when the partition opens.
 */
import { existsSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Clock } from '../core/clock.ts';
import { type Epoch, INITIAL_EPOCH } from '../core/epoch.ts';
import { mkdirPrivate, readJsonIfExists, writeFileAtomic } from './files.ts';
import { type Durability, Store, initSchema, openDatabase } from './store.ts';

const STATE_FILE = 'state.json';
const DATA_FILE = /^data-(\d+)\.sqlite(-wal|-shm|-journal)?$/;

export const dataFileName = (gen: number): string => `data-${gen}.sqlite`;

/** What `state.json` records: the current generation and the epoch. */
export interface StateFile {
  generation: number;
  epoch: Epoch;
}

/** The file is there but is not a readable database of this partition (other errors are not data loss). */
function isUnreadableDatabase(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_ERROR');
}

/** The generation a partition opens with: its database, open, and whether its data was lost. */
export interface OpenedGeneration {
  readonly db: Database.Database;
  readonly generation: number;
  /** The epoch of `state.json` (advanced by a data loss found here); the database's may be older. */
  readonly epoch: Epoch;
  readonly lost: boolean;
}

/**
 * Opens the current generation of the partition in `o.dir`, or creates the first. A missing or
 * unreadable database of a partition that `existed` is data loss: the damaged file is set aside,
 * and an empty next generation under a new DataLossVersion is created and made current.
 * Files of every other generation are removed.
 */
export async function openCurrentGeneration(o: {
  readonly dir: string; readonly partitionId: string; readonly durability: Durability; readonly existed: boolean; readonly clock: Clock;
}): Promise<OpenedGeneration> {
  await mkdirPrivate(o.dir);
  const state = await readState(o.dir);
  let generation = state?.generation ?? 1;
  let epoch = state?.epoch ?? INITIAL_EPOCH;
  let lost = o.existed && state === undefined;
  let db: Database.Database | undefined;
  if (state && !existsSync(join(o.dir, dataFileName(generation)))) lost = true;
  else if (state) {
    const file = join(o.dir, dataFileName(generation));
    try {
      db = openDatabase(file, { durability: o.durability });
      const meta = new Store(db).meta();
      if (!meta || meta.partition_id !== o.partitionId) throw Object.assign(new Error('not this partition\'s database'), { code: 'SQLITE_ERROR' });
    } catch (err) {
      db?.close();
      db = undefined;
      if (!isUnreadableDatabase(err)) throw err;
      lost = true;
      await rename(file, `${file}.damaged-${o.clock.now().getTime()}`).catch(() => undefined);
    }
  }
  if (lost) {
    epoch = { dataLossVersion: epoch.dataLossVersion + 1n, configurationVersion: epoch.configurationVersion };
    generation = state ? generation + 1 : 1;
  }
  await removeGenerationFiles(o.dir, (g) => g !== generation || db === undefined);
  if (!db) {
    db = openDatabase(join(o.dir, dataFileName(generation)), { durability: o.durability, create: true });
    initSchema(db, o.partitionId, epoch);
  }
  if (!state || lost) await writeState(o.dir, o.partitionId, { generation, epoch });
  return { db, generation, epoch, lost };
}

export async function readState(dir: string): Promise<StateFile | undefined> {
  const raw = (await readJsonIfExists(join(dir, STATE_FILE))) as Record<string, unknown> | undefined;
  if (raw === undefined) return undefined;
  const e = raw.epoch as Record<string, string>;
  return { generation: Number(raw.generation), epoch: { dataLossVersion: BigInt(e.dataLossVersion ?? '1'), configurationVersion: BigInt(e.configurationVersion ?? '1') } };
}

/** Replaces `state.json` atomically: the switch to a generation, or a new epoch. */
export async function writeState(dir: string, partitionId: string, s: StateFile): Promise<void> {
  await writeFileAtomic(join(dir, STATE_FILE), `${JSON.stringify({
    format: 1,
    partitionId,
    generation: s.generation,
    epoch: { dataLossVersion: s.epoch.dataLossVersion.toString(), configurationVersion: s.epoch.configurationVersion.toString() },
  })}\n`);
}

export async function removeGenerationFiles(dir: string, which: (generation: number) => boolean): Promise<void> {
  for (const name of await readdir(dir)) {
    const m = DATA_FILE.exec(name);
    // Temporary files of an atomic write cut off by a crash go too.
    if ((m && which(Number(m[1]))) || /\.tmp-\d+$/.test(name)) await rm(join(dir, name), { force: true });
  }
}

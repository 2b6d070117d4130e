/** What every operator command shares: its context, how an action runs and ends, and the options several take. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { LifeboatClient } from '../client/lifeboat-client.ts';
import { isLifeboatError } from '../core/errors.ts';
import { type StorageDescription, parseStorageDescription } from '../core/storage-description.ts';
import { type ConnectionOptions, type Env, connect, withConnectionOptions } from './connection.ts';
import { Output, type OutputOptions, type Terminal, UsageError } from './output.ts';

/** Given by the composition root: the process's streams and environment. */
export interface CliContext {
  readonly term: Terminal;
  readonly env: Env;
}

export type CommonOptions = ConnectionOptions & OutputOptions;

/** Adds the connection options, --json and --quiet. */
export function withCommonOptions(c: Command, ctx: CliContext): Command {
  return withConnectionOptions(c, ctx.env)
    .option('--json', 'print the answer as JSON (the REST shapes; docs/cli.md)')
    .option('-q, --quiet', 'no progress and no remarks; results and errors only');
}

/**
 * Runs a command's body with a client and an Output, and turns its outcome into the exit code:
 * the number it answers (default 0), or the code of what it threw, printed with its hint.
 */
export async function runAction(ctx: CliContext, o: CommonOptions, body: (lb: LifeboatClient, out: Output) => Promise<number | void>): Promise<void> {
  const out = new Output(ctx.term, o);
  try {
    const code = await body(connect(o), out);
    process.exitCode = code ?? 0;
  } catch (err) {
    process.exitCode = out.error(err);
  }
}

/**
 * `--storage`: a BackupStorage JSON description (`{"StorageKind":"FileShare","Path":"/backups"}`,
 * any kind), or the shorthand `fileshare:<path>` (a relative path is made absolute here).
 */
export function parseStorageOption(text: string): StorageDescription {
  const t = text.trim();
  let value: unknown;
  if (t.startsWith('{')) {
    try {
      value = JSON.parse(t) as unknown;
    } catch {
      throw new UsageError('--storage: not valid JSON; give a BackupStorage description or fileshare:<path>.');
    }
  } else if (/^fileshare:/i.test(t) && t.length > 'fileshare:'.length) {
    value = { StorageKind: 'FileShare', Path: resolve(t.slice('fileshare:'.length)) };
  } else {
    throw new UsageError(`--storage: '${text}' is neither a BackupStorage JSON description nor fileshare:<path>.`);
  }
  try {
    return parseStorageDescription(value);
  } catch (err) {
    throw new UsageError(`--storage: ${isLifeboatError(err) ? err.message : String(err)}`);
  }
}

/** A date-time option (`--since`, `--until`, `--time`): anything Date.parse reads, as UTC ISO text. */
export function parseTimeOption(text: string, flag: string): string {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`${flag}: '${text}' is not a date-time (e.g. 2026-12-07T09:30:00Z).`);
  return new Date(ms).toISOString();
}

/** `--timeout`: whole minutes (`10`, `10m`) or hours (`2h`), as the service's BackupTimeout / RestoreTimeout take them. */
export function parseTimeoutMinutes(text: string): number {
  const m = /^(\d+)\s*(m|min|h)?$/i.exec(text.trim());
  const n = m ? Number(m[1]) * (m[2]?.toLowerCase() === 'h' ? 60 : 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--timeout: '${text}' is not a whole number of minutes (e.g. 10, 10m, 2h).`);
  return n;
}

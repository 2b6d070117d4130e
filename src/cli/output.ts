/**
 * How the CLI answers: tables for people (cli-table3), `--json` for scripts (the REST shapes),
 * no colour or bars when stdout is not a terminal or NO_COLOR is set, `--quiet`, and one exit code
 * per kind of outcome. Errors print the service's code, its message and the catalogue's hint.
 */
import Table from 'cli-table3';
import { ERROR_CATALOGUE, type ErrorCode, isLifeboatError } from '../core/errors.ts';

/** The CLI's exit codes (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The operation failed or timed out, the service could not be reached, or it refused otherwise. */
  failed: 1,
  /** A bad command line, or an argument the service refused (E_INVALIDARG). */
  usage: 2,
  /** 409: an operation of the partition is in progress, or the name is taken. */
  busy: 3,
  /** 404: no such application, service, partition, policy, backup or token. */
  notFound: 4,
  /** 401 or 403: no token, a wrong one, or one without the role. */
  auth: 5,
  /** Ctrl-C detached from a backup or restore that goes on in the service (128 + SIGINT, as shells report it). */
  detached: 130,
} as const;

/** A mistake in the command line (exit 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The process as the CLI sees it: its streams and environment (given by the composition root, so tests can read the rules). */
export interface Terminal {
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean; readonly columns?: number };
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface OutputOptions {
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** The exit code of an error: its HTTP status, else what kind it is. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (isLifeboatError(err)) {
    const status = typeof err.details?.status === 'number' ? err.details.status : err.status;
    if (status === 401 || status === 403) return EXIT.auth;
    if (status === 404) return EXIT.notFound;
    if (status === 409) return EXIT.busy;
    if (err.code === 'E_INVALIDARG' || err.code === 'FABRIC_E_INVALID_PARTITION_KEY') return EXIT.usage;
  }
  return EXIT.failed;
}

const ANSI = { bold: '\u001b[1m', dim: '\u001b[2m', red: '\u001b[31m', green: '\u001b[32m', yellow: '\u001b[33m', reset: '\u001b[0m' } as const;
export type Paint = keyof Omit<typeof ANSI, 'reset'>;

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  /** stdout is a terminal and NO_COLOR is not set: colour, and progress bars (unless --json or --quiet). */
  readonly fancy: boolean;

  constructor(readonly term: Terminal, o: OutputOptions = {}) {
    this.json = o.json === true;
    this.quiet = o.quiet === true;
    this.fancy = term.stdout.isTTY === true && !term.env.NO_COLOR;
  }

  /** Whether progress is a bar (else plain lines, or nothing with --quiet or --json). */
  get bars(): boolean {
    return this.fancy && !this.json && !this.quiet;
  }

  paint(text: string, how: Paint): string {
    return this.fancy ? `${ANSI[how]}${text}${ANSI.reset}` : text;
  }

  /** A result for people (not printed with --json). */
  line(text = ''): void {
    if (!this.json) this.term.stdout.write(`${text}\n`);
  }

  /** A remark (stderr; not printed with --quiet). */
  note(text: string): void {
    if (!this.quiet) this.term.stderr.write(`${text}\n`);
  }

  /** The answer for scripts: one JSON document on stdout. */
  data(value: unknown): void {
    this.term.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A table: `head` and rows of cells; with --json nothing (the caller prints the data). */
  table(head: readonly string[], rows: ReadonlyArray<ReadonlyArray<string>>): void {
    if (this.json) return;
    const t = new Table({
      head: head.map((h) => this.paint(h, 'bold')),
      chars: {
        'top': '', 'top-mid': '', 'top-left': '', 'top-right': '', 'bottom': '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
        'left': '', 'left-mid': '', 'mid': '', 'mid-mid': '', 'right': '', 'right-mid': '', 'middle': '  ',
      },
      style: { 'padding-left': 0, 'padding-right': 0, head: [], border: [] },
    });
    for (const r of rows) t.push([...r]);
    this.term.stdout.write(`${t.toString().split('\n').map((l) => l.trimEnd()).join('\n')}\n`);
  }

  /** Prints `err` on stderr (code, message, hint) and answers its exit code. */
  error(err: unknown): number {
    const code = exitCodeOf(err);
    if (isLifeboatError(err)) {
      const text = err.message.includes(err.code) ? err.message : `${err.code}: ${err.message}`;
      this.term.stderr.write(`${this.paint('error:', 'red')} ${text}\n`);
      this.term.stderr.write(`hint: ${ERROR_CATALOGUE[err.code as ErrorCode].hint}\n`);
    } else if (err instanceof UsageError) {
      this.term.stderr.write(`${this.paint('error:', 'red')} ${err.message}\n`);
    } else if (err instanceof TypeError && err.cause instanceof Error) {
      // fetch's: the service cannot be reached.
      this.term.stderr.write(`${this.paint('error:', 'red')} cannot reach the Lifeboat service: ${err.cause.message}\n`);
      this.term.stderr.write('hint: is it running (lifeboat start)? Check --service-url or LIFEBOAT_URL.\n');
    } else {
      this.term.stderr.write(`${this.paint('error:', 'red')} ${err instanceof Error ? err.message : String(err)}\n`);
    }
    return code;
  }
}

/** How old `iso` is at `nowMs`, in one short unit: `42s`, `5m`, `3h`, `2d`. */
export function ageText(iso: string, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return '';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/**
 * The operator CLI as tests run it: `node --import tsx src/main/cli.ts …` as a real process, its
 * stdout, stderr and exit code; and under a pseudo-terminal (util-linux `script`) when a test needs
 * what a person at a terminal sees.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TEST_ADMIN_TOKEN } from './api-http.ts';
import { REPO_ROOT } from './process-children.ts';

const run = promisify(execFile);

export interface CliResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** The environment of a CLI run against `url` as the test admin; `extra` wins (LIFEBOAT_TOKEN: '' sends none). */
export function cliEnv(url: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, LIFEBOAT_URL: url, LIFEBOAT_TOKEN: TEST_ADMIN_TOKEN, LIFEBOAT_DATA_DIR: '', NO_COLOR: '', ...extra };
}

/** Runs `lifeboat <args>` with stdin from /dev/null (not a terminal) and answers how it ended. */
export async function lifeboatCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 120_000 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    if (typeof e.code !== 'number') throw err;
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code };
  }
}

/** A shell word, quoted. */
const quote = (s: string): string => `'${s.replace(/'/g, '\'\\\'\'')}'`;

/**
 * Runs `lifeboat <args>` under a pseudo-terminal (`script -qfec`), so stdin, stdout and stderr are
 * a terminal: answers everything the terminal was sent (stdout and stderr together, escapes kept)
 * and the command's exit code (`-e`).
 */
export async function lifeboatCliInTerminal(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const command = [process.execPath, '--import', 'tsx', 'src/main/cli.ts', ...args].map(quote).join(' ');
  return lifeboatScript(command, env);
}

async function lifeboatScript(command: string, env: NodeJS.ProcessEnv): Promise<CliResult> {
  try {
    const r = await run('script', ['-qfec', command, '/dev/null'], { cwd: REPO_ROOT, env: { ...env, TERM: 'xterm-256color', COLUMNS: '200' }, encoding: 'utf8', timeout: 120_000 });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    if (typeof e.code !== 'number') throw err;
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code };
  }
}

/** Any ANSI escape sequence (CSI or a lone ESC). */
// eslint-disable-next-line no-control-regex
export const ANSI_ESCAPE = /\u001b/;

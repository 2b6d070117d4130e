/**
 * Where the CLI finds the service and the token it calls with: `--service-url` / LIFEBOAT_URL
 * (default http://127.0.0.1:19080; several instances of one Lifeboat comma-separated, tried in
 * order, failing over as src/client/caller.ts says), `--token` / LIFEBOAT_TOKEN, else the bootstrap admin token in
 * `<data-dir>/admin.token` (`--data-dir` / LIFEBOAT_DATA_DIR, default ./.lifeboat, as `lifeboat
 * start`). The environment comes in from the composition root (src/main/cli.ts).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { LifeboatClient } from '../client/lifeboat-client.ts';
import { LifeboatError } from '../core/errors.ts';
import { UsageError } from './output.ts';

export const DEFAULT_SERVICE_URL = 'http://127.0.0.1:19080';
export const DEFAULT_DATA_DIR = './.lifeboat';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConnectionOptions {
  /** One URL, or several comma-separated (parseServiceUrls). */
  readonly serviceUrl: string;
  readonly token?: string;
  readonly dataDir: string;
}

/**
 * A `--service-url` (or LIFEBOAT_URL, LIFEBOAT_SERVICE_URL): one http(s) URL, or several instances
 * of one Lifeboat comma-separated, in the order they are tried. A UsageError names what is wrong.
 */
export function parseServiceUrls(text: string, what = '--service-url'): string[] {
  const urls = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (urls.length === 0) throw new UsageError(`${what}: no URL; give the service's, e.g. http://127.0.0.1:19080 (several comma-separated).`);
  for (const u of urls) {
    let protocol = '';
    try {
      protocol = new URL(u).protocol;
    } catch {
      // not a URL at all: refused below
    }
    if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`${what}: '${u}' is not an http(s) URL (e.g. http://127.0.0.1:19080; several comma-separated).`);
  }
  return urls;
}

/** The client options of a `--service-url` list: the first instance is baseUrl, all of them baseUrls. */
export function serviceUrlOptions(text: string, what?: string): { baseUrl: string; baseUrls: string[] } {
  const baseUrls = parseServiceUrls(text, what);
  return { baseUrl: baseUrls[0] as string, baseUrls };
}

/** `--service-url` as commander checks a flag: refused with commander's usage error, given back as written. */
export function serviceUrlArgument(value: string): string {
  try {
    parseServiceUrls(value);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message.replace(/^--service-url: /, '') : String(err));
  }
  return value;
}

/** Adds --service-url, --token and --data-dir, their defaults from `env`. */
export function withConnectionOptions(c: Command, env: Env): Command {
  return c
    .option('--service-url <url[,url…]>', 'the Lifeboat service; several instances of one comma-separated, tried in order (env LIFEBOAT_URL)',
      serviceUrlArgument, env.LIFEBOAT_URL || DEFAULT_SERVICE_URL)
    .option('--token <token>', 'a token (env LIFEBOAT_TOKEN; default: <data-dir>/admin.token)', env.LIFEBOAT_TOKEN || undefined)
    .option('--data-dir <dir>', 'the service\'s data dir, where admin.token is (env LIFEBOAT_DATA_DIR)', env.LIFEBOAT_DATA_DIR || DEFAULT_DATA_DIR);
}

export function adminTokenFile(o: Pick<ConnectionOptions, 'dataDir'>): string {
  return join(resolve(o.dataDir), 'admin.token');
}

/** The token to call with: --token, LIFEBOAT_TOKEN, or the bootstrap one in the data dir (none: LIFEBOAT_E_UNAUTHENTICATED, as the service would answer). */
export function callerToken(o: ConnectionOptions): string {
  if (o.token) return o.token;
  const file = adminTokenFile(o);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new LifeboatError('LIFEBOAT_E_UNAUTHENTICATED', `No token: give --token or LIFEBOAT_TOKEN, or run where ${file} is readable (--data-dir).`, { details: { status: 401 } });
  }
}

/** A client of the service (every instance listed), with the caller's token. */
export function connect(o: ConnectionOptions): LifeboatClient {
  return new LifeboatClient({ ...serviceUrlOptions(o.serviceUrl), token: callerToken(o) });
}

/**
 * Where the CLI finds the service and the token it calls with: `--service-url` / LIFEBOAT_URL
 * (default http://127.0.0.1:19080), `--token` / LIFEBOAT_TOKEN, else the bootstrap admin token in
 * `<data-dir>/admin.token` (`--data-dir` / LIFEBOAT_DATA_DIR, default ./.lifeboat, as `lifeboat
 * start`). The environment comes in from the composition root (src/main/cli.ts).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { LifeboatClient } from '../client/lifeboat-client.ts';
import { LifeboatError } from '../core/errors.ts';

export const DEFAULT_SERVICE_URL = 'http://127.0.0.1:19080';
export const DEFAULT_DATA_DIR = './.lifeboat';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConnectionOptions {
  readonly serviceUrl: string;
  readonly token?: string;
  readonly dataDir: string;
}

/** Adds --service-url, --token and --data-dir, their defaults from `env`. */
export function withConnectionOptions(c: Command, env: Env): Command {
  return c
    .option('--service-url <url>', 'the Lifeboat service (env LIFEBOAT_URL)', env.LIFEBOAT_URL || DEFAULT_SERVICE_URL)
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

/** A client of the service, with the caller's token. */
export function connect(o: ConnectionOptions): LifeboatClient {
  return new LifeboatClient({ baseUrl: o.serviceUrl, token: callerToken(o) });
}

/** The REST API of a `lifeboat start` child, for the benchmarks: LifeboatClient with the child's admin token. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LifeboatClient } from '../src/client/lifeboat-client.ts';

/**
 * The admin token of a `lifeboat start` with this data dir: LIFEBOAT_ADMIN_TOKEN when the bench
 * passes one on (the child gets the bench's environment), else the bootstrap one it wrote.
 */
export function childAdminToken(dataDir: string): string {
  return process.env.LIFEBOAT_ADMIN_TOKEN || readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
}

/** A client of the child's REST API at `api`, as its admin. */
export function childClient(api: string, dataDir: string): LifeboatClient {
  return new LifeboatClient({ baseUrl: api, token: childAdminToken(dataDir) });
}

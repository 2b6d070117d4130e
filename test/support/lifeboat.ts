/** Starts a real Lifeboat (REST API on a free port, in-process host with the sample app) for a test. */
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { LifeboatClient } from '../../src/client/lifeboat-client.ts';
import { type LifeboatConfig, type RunningLifeboat, startLifeboat } from '../../src/main/lifeboat.ts';
import { TEST_ADMIN_TOKEN } from './api-http.ts';
import { adminClient } from './client.ts';
import { tempDir } from './tmp.ts';

/** The endpoints test Lifeboats allow: the public defaults and loopback (Azurite, s3rver). */
export const TEST_STORAGE_ENDPOINTS = ['.blob.core.windows.net', '.amazonaws.com', '127.0.0.1', 'localhost'];

export interface TestLifeboat extends RunningLifeboat {
  readonly dataDir: string;
  /** An allowed FileShare folder for backups. */
  readonly share: string;
  /** A BackupStorage description of `share`. */
  readonly storage: { StorageKind: 'FileShare'; Path: string };
  /** A typed client of its REST API, as the test admin. */
  readonly client: LifeboatClient;
}

export async function startTestLifeboat(t: TestContext, extra: Partial<LifeboatConfig> = {}, given?: string): Promise<TestLifeboat> {
  // Close before the folder goes: hooks run in the order added, and a folder removed under a
  // running Lifeboat fails its backups in ways the test did not ask about.
  const closers: Array<() => Promise<void>> = [];
  const dataDir = given ?? tempDir({ after: (fn: () => void) => { closers.push(async () => fn()); } });
  const started: { lifeboat?: RunningLifeboat } = {};
  t.after(async () => {
    await started.lifeboat?.close();
    for (const c of closers) await c();
  });
  const share = join(dataDir, 'backups', 'share');
  const running = await startLifeboat({
    dataDir, port: 0, samplePort: 0,
    // Azurite and s3rver run on loopback; tests of the allow-list give their own.
    storageEndpoints: TEST_STORAGE_ENDPOINTS,
    ...extra, auth: { adminToken: TEST_ADMIN_TOKEN, ...extra.auth },
  });
  started.lifeboat = running;
  return Object.assign(running, { dataDir, share, storage: { StorageKind: 'FileShare' as const, Path: share }, client: adminClient(running.url) });
}

/** Polls `fn` until it returns a value `done` accepts, or fails after `ms`. */
export async function waitFor<T>(fn: () => Promise<T>, done: (v: T) => boolean, ms = 30_000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (done(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

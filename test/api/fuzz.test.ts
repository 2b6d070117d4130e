/**
 * fast-check drives every route with arbitrary ids, query strings, headers and bodies, with and
 * without credentials, for a bounded number of runs: never a 5xx (other than 503 with Retry-After
 * for a bounded pool), every error is exactly a FabricError, the service stays up, and the catalog
 * keeps its hierarchy and policies.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { routeTable } from '../../src/api/auth.ts';
import { type HttpAnswer, TEST_ADMIN_TOKEN, assertFabricError, assertSuccess, jsonOf, send } from '../support/api-http.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { SERVICE_NAME } from '../support/sample.ts';

const RUNS = Number(process.env.LIFEBOAT_FUZZ_RUNS ?? 300);

function checkAnswer(a: HttpAnswer, what: string): void {
  if (a.status === 503) {
    assert.equal((jsonOf(a, what) as { Error: { Code: string } }).Error.Code, 'LIFEBOAT_E_BUSY', what);
    return;
  }
  assert.ok(a.status < 500, `${what}: ${a.status} ${a.text.slice(0, 300)}`);
  if (a.status >= 400) {
    const code = (jsonOf(a, what) as { Error?: { Code?: string } }).Error?.Code ?? '';
    assertFabricError(a, a.status, code, what);
  }
}

describe('fuzzing every route', () => {
  it('answers arbitrary requests with FabricErrors or success, never a server error, and loses nothing', async (t) => {
    const lb = await startTestLifeboat(t);
    const routes = routeTable(lb.app);
    const snapshot = async (): Promise<string> => JSON.stringify({
      partitions: (await lb.catalog.hierarchy.listPartitions(SERVICE_NAME)).map((p) => [p.id, p.hostId, p.info.kind]),
      policies: (await lb.catalog.policies.list()).map((p) => p.name),
      tokens: (await lb.access.listTokens()).map((x) => x.Name),
    });
    const before = await snapshot();
    const pids = (await lb.catalog.hierarchy.listPartitions(SERVICE_NAME)).map((p) => p.id);

    const segment = fc.oneof(fc.constantFrom(...pids, 'SampleApp', 'SampleApp~MyStatefulService', 'local', 'x', '%00', '..', '%2e%2e', 'a'.repeat(3000)), fc.string({ maxLength: 40 }));
    const queryValue = fc.oneof(fc.constantFrom('6.4', '6.0', '9.1', 'true', 'False', '-1', '99999999999', ''), fc.string({ maxLength: 20 }));
    const queryName = fc.constantFrom('api-version', 'timeout', 'MaxResults', 'ContinuationToken', 'Latest', 'WaitMs', 'BackupTimeout', 'RestoreTimeout', 'StartDateTimeFilter', 'ValidateConnection', 'x');
    const body = fc.oneof(
      fc.constant(undefined),
      fc.json({ maxDepth: 3 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
      fc.record({ BackupStorage: fc.record({ StorageKind: fc.constantFrom('FileShare', 'AzureBlobStore', 'S3', 'ManagedIdentityAzureBlobStore', 'Nope'), Path: fc.string(), ConnectionString: fc.string(), Bucket: fc.string(), Endpoint: fc.constantFrom('http://127.0.0.1:1', 'http://169.254.169.254', 'x') }, { requiredKeys: [] }) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    );
    const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', undefined);
    const token = fc.constantFrom<string | null>(TEST_ADMIN_TOKEN, null, 'lbt_forged', 'Basic abc', '');

    const request = fc.record({
      route: fc.constantFrom(...routes),
      params: fc.array(segment, { minLength: 4, maxLength: 4 }),
      query: fc.array(fc.tuple(queryName, queryValue), { maxLength: 5 }),
      body, contentType, token,
      origin: fc.constantFrom(undefined, 'http://evil.example', 'null'),
    });

    await fc.assert(fc.asyncProperty(request, async (r) => {
      let i = 0;
      const path = r.route.url.replace(/:[A-Za-z]+/g, () => encodeURIComponent(r.params[i++ % 4] ?? 'x'));
      const qs = r.query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
      // fetch sends no body with a GET.
      const payload = r.route.method === 'GET' ? undefined : r.body;
      const headers: Record<string, string> = {};
      if (r.contentType !== undefined && payload !== undefined) headers['content-type'] = r.contentType;
      if (r.origin !== undefined) headers.origin = r.origin;
      if (r.token === 'Basic abc') headers.authorization = 'Basic abc';
      const a = await send(lb.url, {
        method: r.route.method, path: `${path}${qs ? `?${qs}` : ''}`, headers,
        token: r.token === 'Basic abc' ? null : r.token, ...(payload !== undefined ? { raw: payload } : {}),
      });
      checkAnswer(a, `${r.route.method} ${path}?${qs}`);
    }), { numRuns: RUNS, seed: Number(process.env.LIFEBOAT_FUZZ_SEED ?? Date.now() % 2 ** 31) });

    assertSuccess(await send(lb.url, { method: 'GET', path: '/Applications?api-version=6.0' }), 200, 'still up');
    assert.equal(await snapshot(), before, 'the catalog keeps its hierarchy, policies and tokens');
  });
});

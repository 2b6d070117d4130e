import assert from 'node:assert/strict';
import { it } from 'node:test';
import { startSampleApp } from '../../src/host/sample-app.ts';
import { tempDir } from '../support/tmp.ts';

it('the sample application stores, reads and deletes values by key, hashed over 4 partitions', async (t) => {
  const dir = tempDir(t);
  const app = await startSampleApp({ dataDir: dir, port: 0 });
  t.after(() => app.close());
  const put = await fetch(`${app.url}/kv/a%20key`, { method: 'PUT', body: 'v1' });
  assert.equal(put.status, 200);
  const body = (await put.json()) as { PartitionId: string; Lsn: string };
  assert.equal(body.Lsn, '1');
  assert.equal(await (await fetch(`${app.url}/kv/a%20key`)).text(), 'v1');
  for (let i = 0; i < 40; i++) await fetch(`${app.url}/kv/k${i}`, { method: 'PUT', body: String(i) });
  const spread = (await (await fetch(`${app.url}/kv`)).json()) as Array<{ Count: number }>;
  assert.equal(spread.length, 4);
  assert.ok(spread.every((p) => p.Count > 0), 'keys land on every partition');
  assert.equal((await fetch(`${app.url}/kv/a%20key`, { method: 'DELETE' })).status, 200);
  assert.equal((await fetch(`${app.url}/kv/a%20key`)).status, 404);
  assert.equal((await fetch(`${app.url}/kv/a%20key`, { method: 'DELETE' })).status, 404);
  assert.equal((await fetch(`${app.url}/kv/%E0%A4%A`)).status, 400);
  assert.equal((await fetch(`${app.url}/kv/x`, { method: 'POST' })).status, 405);
  assert.equal((await fetch(`${app.url}/kv/big`, { method: 'PUT', body: 'x'.repeat(1024 * 1024 + 1) })).status, 413);
});

/**
 * `lifeboat host --metrics-port`: the host process serves its own metrics to a metrics token (and
 * to nothing else), and counts the backup it carries out.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { TEST_ADMIN_TOKEN } from '../support/api-http.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { Children, startHostProcess } from '../support/process-children.ts';
import { scrape, valueOf } from '../support/prometheus.ts';
import { tempDir } from '../support/tmp.ts';

it('a host process serves its own /metrics to a metrics token, counting its backups', async (t) => {
  const lb = await startTestLifeboat(t, { sample: false });
  const hostToken = (await lb.client.access.createToken({ Role: 'host', Name: 'mh', HostId: 'mh' })).Token;
  const metricsToken = (await lb.client.access.createToken({ Role: 'metrics', Name: 'scraper' })).Token;
  const children = new Children(t);
  const { info } = await startHostProcess(children, {
    serviceUrl: lb.url, hostId: 'mh', dataDir: tempDir(t), service: 'fabric:/MetricsApp/Svc', partitioning: 'singleton',
    env: { LIFEBOAT_TOKEN: hostToken, LIFEBOAT_METRICS_PORT: '0', LIFEBOAT_METRICS_TOKEN: metricsToken },
  });
  const url = (info as { metrics?: string }).metrics;
  assert.match(url ?? '', /^http:\/\/127\.0\.0\.1:\d+$/, `the host says where its metrics are: ${JSON.stringify(info)}`);
  for (const token of [undefined, hostToken, TEST_ADMIN_TOKEN]) {
    const res = await fetch(`${url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    assert.equal(res.status, 401, `only the metrics token scrapes (${token === undefined ? 'none' : token === hostToken ? 'host token' : 'admin token'})`);
  }
  const pid = info.partitions[0] as string;
  await lb.client.operations.backupPartition(pid, { storage: lb.storage });
  assert.equal((await lb.client.operations.waitForBackup(pid, { timeoutMs: 60_000 })).BackupState, 'Success');
  const e = await scrape(`${url}/metrics`, metricsToken);
  assert.equal(valueOf(e, 'lifeboat_host_info', { host_id: 'mh' }), 1);
  assert.equal(valueOf(e, 'lifeboat_host_operations_total', { operation: 'backup', outcome: 'success' }), 1);
  assert.ok(valueOf(e, 'lifeboat_storage_requests_total', { backend: 'FileShare', operation: 'put', outcome: 'success' }) >= 2, 'its data and metadata puts');
  assert.ok(valueOf(e, 'process_resident_memory_bytes') > 0, 'and the process metrics');
});

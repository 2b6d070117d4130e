/**
 * What `lifeboat start` writes is its own: after a backup to a file share, every folder under the
 * data dir (catalog, partitions, backups, token and key files) is 0700 and every file 0600.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { jsonOf, send } from '../support/api-http.ts';
import { waitFor } from '../support/lifeboat.ts';
import { Children, startServiceProcess } from '../support/process-children.ts';
import { tempDir } from '../support/tmp.ts';

function walk(dir: string, out: Array<{ path: string; dir: boolean; mode: number }> = []): typeof out {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    out.push({ path: p, dir: st.isDirectory(), mode: st.mode & 0o777 });
    if (st.isDirectory()) walk(p, out);
  }
  return out;
}

it('lifeboat start keeps its data dir, catalog, partitions, backups, token and key private (0700 / 0600)', async (t) => {
  const children = new Children(t);
  const dataDir = join(tempDir(t), 'data');
  const svc = await startServiceProcess(children, { dataDir, env: { LIFEBOAT_ADMIN_TOKEN: '' } });
  assert.ok(svc.sampleUrl);
  await fetch(`${svc.sampleUrl}/kv/k`, { method: 'PUT', body: 'v' });
  const token = (await import('node:fs')).readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const parts = jsonOf(await send(svc.url, { method: 'GET', path: '/Services/SampleApp~MyStatefulService/$/GetPartitions?api-version=6.0', token })) as { Items: Array<{ PartitionInformation: { Id: string } }> };
  const pid = parts.Items[0]?.PartitionInformation.Id as string;
  const storage = { StorageKind: 'FileShare', Path: join(dataDir, 'backups', 'share') };
  assert.equal((await send(svc.url, { method: 'POST', path: `/Partitions/${pid}/$/Backup?api-version=6.4`, body: { BackupStorage: storage }, token })).status, 202);
  await waitFor(async () => jsonOf(await send(svc.url, { method: 'GET', path: `/Partitions/${pid}/$/GetBackupProgress?api-version=6.4`, token })) as { BackupState: string },
    (p) => p.BackupState === 'Success', 30_000, 'the backup');
  const entries = walk(dataDir);
  for (const must of ['admin.token', 'catalog.key', 'catalog.sqlite']) assert.ok(entries.some((e) => e.path === join(dataDir, must)), must);
  assert.ok(entries.some((e) => e.path.endsWith('.lbk')) && entries.some((e) => e.path.endsWith('.bkmetadata')), 'the backup is there');
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  for (const e of entries) assert.equal(e.mode, e.dir ? 0o700 : 0o600, `${e.path} is ${e.mode.toString(8)}`);
});

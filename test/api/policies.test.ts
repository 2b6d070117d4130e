/**
 * Backup policies and protection end to end, driven by the official `azure-servicefabric` npm
 * client (2.2.0, api-version 6.2-preview) where it has the operation, and by raw REST where it
 * has not (CleanBackup: the client's DisableBackup sends no body; RetentionPolicy: the 2.2.0
 * BackupPolicyDescription model has none).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sf from 'azure-servicefabric';
import type * as models from 'azure-servicefabric/lib/models/index.js';
import moment from 'moment';
import { officialRequestOptions, assertFabricError, assertSuccess, jsonOf, send } from '../support/api-http.ts';
import { startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { APP_ID, APP_NAME, SERVICE_ID, SERVICE_NAME } from '../support/sample.ts';

const ServiceFabricClient = sf.default;
type Client = InstanceType<typeof ServiceFabricClient>;

const V = 'api-version=6.4';

interface ClientError extends Error {
  statusCode?: number;
  body?: { error?: { code?: string; message?: string } };
}

async function refused(p: Promise<unknown>, status: number, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    const err = e as ClientError;
    assert.equal(err.statusCode, status, JSON.stringify(err.body));
    assert.equal(err.body?.error?.code, code, JSON.stringify(err.body));
    return;
  }
  assert.fail(`expected ${status} ${code}; the call succeeded`);
}

async function backupDone(client: Client, pid: string): Promise<models.BackupProgressInfo> {
  return waitFor(() => client.getPartitionBackupProgress(pid), (v) => v.backupState !== 'Accepted' && v.backupState !== 'BackupInProgress', 30_000, 'backup');
}

function policy(name: string, path: string, maxIncrementalBackups = 2): models.BackupPolicyDescription {
  const storage: models.FileShareBackupStorageDescription = { storageKind: 'FileShare', path, primaryUserName: 'backup', primaryPassword: 'TopSecret!' };
  const schedule: models.FrequencyBasedBackupScheduleDescription = { scheduleKind: 'FrequencyBased', interval: moment.duration('PT10M') };
  return { name, autoRestoreOnDataLoss: false, maxIncrementalBackups, schedule, storage };
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
}

describe('backup policies and protection', () => {
  it('through the official client and REST: policies, inheritance, suspension, policy backups, CleanBackup', async (t) => {
    const lb = await startTestLifeboat(t);
    assert.ok(lb.sample);
    const client = new ServiceFabricClient(lb.url, { noRetryPolicy: true, requestOptions: officialRequestOptions() });
    for (let i = 0; i < 30; i++) await fetch(`${lb.sample.url}/kv/k${i}`, { method: 'PUT', body: `v${i}` });
    const pids = ((await client.getPartitionInfoList(SERVICE_ID)).items ?? []).map((p) => p.partitionInformation?.id ?? '');
    assert.equal(pids.length, 4);
    const [p0, p1] = pids as [string, string];
    const root = lb.fileShareRoots[0] as string;
    const dailyShare = join(root, 'daily');
    const otherShare = join(root, 'other');

    await t.test('createBackupPolicy, getBackupPolicyList, getBackupPolicyByName: secrets masked', async () => {
      await client.createBackupPolicy(policy('Daily', dailyShare));
      await client.createBackupPolicy(policy('Other', otherShare));
      await refused(client.createBackupPolicy(policy('Daily', dailyShare)), 409, 'FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING');
      const list = await client.getBackupPolicyList();
      assert.deepEqual(list.items?.map((p) => p.name), ['Daily', 'Other']);
      assert.equal(list.continuationToken, '');
      const paged = await client.getBackupPolicyList({ maxResults: 1 });
      assert.deepEqual(paged.items?.map((p) => p.name), ['Daily']);
      const next = await client.getBackupPolicyList({ maxResults: 1, continuationToken: paged.continuationToken ?? '' });
      assert.deepEqual(next.items?.map((p) => p.name), ['Other']);
      const got = await client.getBackupPolicyByName('Daily');
      assert.equal(got.maxIncrementalBackups, 2);
      assert.equal((got.schedule as models.FrequencyBasedBackupScheduleDescription).interval.toISOString(), 'PT10M');
      const storage = got.storage as models.FileShareBackupStorageDescription;
      assert.equal(storage.path, dailyShare);
      assert.equal(storage.primaryPassword, '****');
      const raw = await send(lb.url, { method: 'GET', path: `/BackupRestore/BackupPolicies?${V}` });
      assert.ok(!raw.text.includes('TopSecret'), 'no secret in any answer');
      await refused(client.getBackupPolicyByName('Nope'), 404, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING');
    });

    await t.test('updateBackupPolicy', async () => {
      await client.updateBackupPolicy(policy('Daily', dailyShare, 5), 'Daily');
      assert.equal((await client.getBackupPolicyByName('Daily')).maxIncrementalBackups, 5);
      await refused(client.updateBackupPolicy(policy('Nope', dailyShare), 'Nope'), 404, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING');
      await refused(client.updateBackupPolicy(policy('Other', dailyShare), 'Daily'), 400, 'E_INVALIDARG');
    });

    await t.test('enable at application, service and partition level; the most specific mapping wins', async () => {
      await client.enableApplicationBackup(APP_ID, { backupPolicyName: 'Daily' });
      await client.enablePartitionBackup(p1, { backupPolicyName: 'Other' });
      let c0 = await client.getPartitionBackupConfigurationInfo(p0);
      assert.deepEqual([c0.kind, c0.policyName, c0.policyInheritedFrom, c0.serviceName, c0.partitionId], ['Partition', 'Daily', 'Application', SERVICE_NAME, p0]);
      assert.deepEqual(c0.suspensionInfo, { isSuspended: false, suspensionInheritedFrom: 'Invalid' });
      const c1 = await client.getPartitionBackupConfigurationInfo(p1);
      assert.deepEqual([c1.policyName, c1.policyInheritedFrom], ['Other', 'Partition']);
      await client.enableServiceBackup(SERVICE_ID, { backupPolicyName: 'Other' });
      c0 = await client.getPartitionBackupConfigurationInfo(p0);
      assert.deepEqual([c0.policyName, c0.policyInheritedFrom], ['Other', 'Service']);

      const app = await client.getApplicationBackupConfigurationInfo(APP_ID);
      const items = (app.items ?? []) as Array<models.PartitionBackupConfigurationInfo & models.ApplicationBackupConfigurationInfo>;
      assert.deepEqual(items.map((i) => [i.kind, i.policyName, i.policyInheritedFrom]), [
        ['Application', 'Daily', 'Application'], ['Partition', 'Other', 'Partition'], ['Service', 'Other', 'Service'],
      ]);
      assert.equal(items[0]?.applicationName, APP_NAME);
      assert.equal(items[1]?.partitionId, p1);
      const svc = await client.getServiceBackupConfigurationInfo(SERVICE_ID, { maxResults: 1 });
      assert.deepEqual(svc.items?.map((i) => [i.kind, i.policyName]), [['Service', 'Other']]);
      const svc2 = await client.getServiceBackupConfigurationInfo(SERVICE_ID, { continuationToken: svc.continuationToken ?? '' });
      assert.deepEqual(svc2.items?.map((i) => [i.kind, i.policyName]), [['Partition', 'Other']]);
      await refused(client.enablePartitionBackup(p0, { backupPolicyName: 'Nope' }), 404, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING');
    });

    await t.test('getAllEntitiesBackedUpByPolicy', async () => {
      const daily = await client.getAllEntitiesBackedUpByPolicy('Daily');
      assert.deepEqual(daily.items?.map((e) => [e.entityKind, (e as models.ApplicationBackupEntity).applicationName]), [['Application', APP_NAME]]);
      const other = await client.getAllEntitiesBackedUpByPolicy('Other');
      assert.deepEqual(other.items?.map((e) => e.entityKind).sort(), ['Partition', 'Service']);
      const part = other.items?.find((e) => e.entityKind === 'Partition') as models.PartitionBackupEntity;
      assert.deepEqual([part.serviceName, part.partitionId], [SERVICE_NAME, p1]);
    });

    await t.test('suspend and resume: transitive, resume only where suspended', async () => {
      await client.suspendApplicationBackup(APP_ID);
      for (const pid of [p0, p1]) {
        assert.deepEqual((await client.getPartitionBackupConfigurationInfo(pid)).suspensionInfo, { isSuspended: true, suspensionInheritedFrom: 'Application' });
      }
      await client.resumePartitionBackup(p0); // not suspended there: accepted, changes nothing
      assert.equal((await client.getPartitionBackupConfigurationInfo(p0)).suspensionInfo?.isSuspended, true);
      await client.suspendPartitionBackup(p0);
      assert.equal((await client.getPartitionBackupConfigurationInfo(p0)).suspensionInfo?.suspensionInheritedFrom, 'Partition');
      await client.resumeApplicationBackup(APP_ID);
      assert.equal((await client.getPartitionBackupConfigurationInfo(p1)).suspensionInfo?.isSuspended, false);
      assert.equal((await client.getPartitionBackupConfigurationInfo(p0)).suspensionInfo?.isSuspended, true, 'its own suspension stays');
    });

    await t.test('disable only where enabled; delete refused while enabled', async () => {
      await refused(client.disablePartitionBackup(p0), 404, 'FABRIC_E_BACKUP_NOT_ENABLED');
      await client.disableServiceBackup(SERVICE_ID);
      const c0 = await client.getPartitionBackupConfigurationInfo(p0);
      assert.deepEqual([c0.policyName, c0.policyInheritedFrom], ['Daily', 'Application']);
      await refused(client.disableServiceBackup(SERVICE_ID), 404, 'FABRIC_E_BACKUP_NOT_ENABLED');
      await refused(client.deleteBackupPolicy('Daily'), 400, 'FABRIC_E_BACKUP_IS_ENABLED');
    });

    let backupLocation = '';
    let backupId = '';
    await t.test('backupPartition with no body uses the policy storage, also while suspended', async () => {
      assert.equal((await client.getPartitionBackupConfigurationInfo(p0)).suspensionInfo?.isSuspended, true);
      await client.backupPartition(p0);
      const done = await backupDone(client, p0);
      assert.equal(done.backupState, 'Success', JSON.stringify(done));
      backupLocation = done.backupLocation ?? '';
      backupId = done.backupId ?? '';
      assert.ok(existsSync(join(dailyShare, backupLocation)), `the backup is in the Daily policy's share: ${backupLocation}`);
      await client.resumePartitionBackup(p0);
      // p1 has its own policy, Other.
      await client.backupPartition(p1);
      assert.equal((await backupDone(client, p1)).backupState, 'Success');
      assert.ok(listFiles(otherShare).some((f) => f.endsWith('.bkmetadata')));
    });

    await t.test('RestorePartition without BackupStorage restores from the policy storage', async () => {
      assertSuccess(await send(lb.url, { method: 'POST', path: `/Partitions/${p0}/$/Restore?${V}`, body: { BackupId: backupId, BackupLocation: backupLocation } }), 202, 'restore');
      const done = await waitFor(async () => jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${p0}/$/GetRestoreProgress?${V}` })) as { RestoreState: string },
        (v) => v.RestoreState !== 'Accepted' && v.RestoreState !== 'RestoreInProgress', 30_000, 'restore');
      assert.equal(done.RestoreState, 'Success', JSON.stringify(done));
    });

    await t.test('DisableBackup with CleanBackup deletes the backups of the partitions that lose the policy', async () => {
      assertFabricError(await send(lb.url, { method: 'POST', path: `/Applications/${APP_ID}/$/DisableBackup?${V}`, body: { CleanBackup: 'yes' } }), 400, 'E_INVALIDARG');
      assertSuccess(await send(lb.url, { method: 'POST', path: `/Applications/${APP_ID}/$/DisableBackup?${V}`, body: { CleanBackup: true } }), 202, 'disable');
      assert.deepEqual(listFiles(dailyShare), [], 'the Daily share holds no backups of p0 any more');
      assert.ok(listFiles(otherShare).length > 0, 'p1 has its own policy: its backups stay');
      const list = jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${p0}/$/GetBackups?${V}` })) as { Items: unknown[] };
      assert.deepEqual(list.Items, [], 'and the index forgot them');
      assert.equal((await client.getPartitionBackupConfigurationInfo(p0)).policyInheritedFrom, 'Invalid');
      await refused(client.backupPartition(p0), 404, 'FABRIC_E_BACKUP_NOT_ENABLED');
    });

    await t.test('deleteBackupPolicy once nothing uses it', async () => {
      await client.deleteBackupPolicy('Daily');
      await refused(client.deleteBackupPolicy('Daily'), 404, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING');
      await refused(client.deleteBackupPolicy('Other'), 400, 'FABRIC_E_BACKUP_IS_ENABLED');
      await client.disablePartitionBackup(p1);
      await client.deleteBackupPolicy('Other');
      assert.deepEqual((await client.getBackupPolicyList()).items, []);
    });
  });
});

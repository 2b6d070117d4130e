/**
 * LifeboatClient (src/client) against a real Lifeboat: every method makes its call and its answer
 * is checked, in the order a user would go (hierarchy, backup, listing, verify, restore, policies,
 * protection, retention, tokens, the host protocol), and refusals come back as LifeboatErrors
 * with the service's code and HTTP status.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { callLifeboat } from '../../src/client/http.ts';
import { LifeboatClient } from '../../src/client/lifeboat-client.ts';
import { type ErrorCode, LifeboatError } from '../../src/core/errors.ts';
import type { BackupPolicyWire } from '../../src/wire/policy.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { APP_ID, APP_NAME, SERVICE_ID, SERVICE_NAME, UNKNOWN_PID } from '../support/sample.ts';

/** Checks that `p` rejects with a LifeboatError of `code` for HTTP `status`. */
async function refused(p: Promise<unknown>, code: ErrorCode, status: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof LifeboatError, `a LifeboatError, not ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.details?.status, status, err.message);
    return true;
  });
}

function policy(name: string, path: string, maxIncrementalBackups = 0): BackupPolicyWire {
  return {
    Name: name, AutoRestoreOnDataLoss: false, MaxIncrementalBackups: maxIncrementalBackups,
    Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1H' },
    Storage: { StorageKind: 'FileShare', Path: path, PrimaryUserName: 'backup', PrimaryPassword: 'TopSecret!' },
    RetentionPolicy: { RetentionPolicyType: 'Basic', RetentionDuration: 'P1D', MinimumNumberOfBackups: 1 },
  };
}

describe('LifeboatClient', () => {
  it('makes every call of the REST API against a real Lifeboat', async (t) => {
    const lb = await startTestLifeboat(t);
    assert.ok(lb.sample);
    for (let i = 0; i < 20; i++) await fetch(`${lb.sample.url}/kv/k${i}`, { method: 'PUT', body: `v${i}` });
    const api = lb.client;
    let pid = '';

    await t.test('hierarchy: applications, services, partitions, health', async () => {
      const apps = await api.hierarchy.listApplications();
      assert.deepEqual(apps.Items.map((a) => [a.Id, a.Name]), [[APP_ID, APP_NAME]]);
      assert.equal(apps.ContinuationToken, '');
      assert.equal((await api.hierarchy.getApplication(APP_ID)).Name, APP_NAME);
      const services = await api.hierarchy.listServices(APP_ID, { maxResults: 1 });
      assert.deepEqual(services.Items.map((s) => [s.Id, s.Name, s.ServiceKind, s.HasPersistedState]), [[SERVICE_ID, SERVICE_NAME, 'Stateful', true]]);
      const partitions = await api.hierarchy.listPartitions(SERVICE_ID);
      assert.equal(partitions.Items.length, 4);
      assert.ok(partitions.Items.every((p) => p.PartitionInformation.ServicePartitionKind === 'Int64Range'));
      const page1 = await api.hierarchy.listPartitions(SERVICE_ID, { maxResults: 3 });
      const page2 = await api.hierarchy.listPartitions(SERVICE_ID, { continuationToken: page1.ContinuationToken });
      assert.deepEqual([...page1.Items, ...page2.Items].map((p) => p.PartitionInformation.Id), partitions.Items.map((p) => p.PartitionInformation.Id));
      pid = partitions.Items[0]?.PartitionInformation.Id ?? '';
      const one = await api.hierarchy.getPartition(pid);
      assert.equal(one.PartitionInformation.Id, pid);
      assert.equal(one.CurrentConfigurationEpoch.DataLossVersion, '1');
      const health = await api.hierarchy.partitionHealth(pid, { eventsHealthStateFilter: 0 });
      assert.equal(health.PartitionId, pid);
      assert.equal(health.AggregatedHealthState, 'Ok');
    });

    await t.test('a FabricError answer is a LifeboatError with the service\'s code and status', async () => {
      await refused(api.hierarchy.getPartition(UNKNOWN_PID), 'FABRIC_E_PARTITION_NOT_FOUND', 404);
      await refused(api.hierarchy.getApplication('NoSuchApp'), 'FABRIC_E_APPLICATION_NOT_FOUND', 404);
      await refused(api.operations.backupPartition(pid, { storage: lb.storage, timeoutMinutes: 0 }), 'E_INVALIDARG', 400);
      await refused(new LifeboatClient({ baseUrl: lb.url }).hierarchy.listApplications(), 'LIFEBOAT_E_UNAUTHENTICATED', 401);
    });

    let backup: { BackupId: string; BackupLocation: string; Epoch: unknown; Lsn: string } = { BackupId: '', BackupLocation: '', Epoch: null, Lsn: '' };
    await t.test('backup: accepted, progress reaches Success, the listings show it', async () => {
      await api.operations.backupPartition(pid, { storage: lb.storage, timeoutMinutes: 5 });
      const done = await api.operations.waitForBackup(pid);
      assert.equal(done.BackupState, 'Success', JSON.stringify(done));
      assert.deepEqual(await api.operations.backupProgress(pid), done);
      backup = { BackupId: done.BackupId, BackupLocation: done.BackupLocation, Epoch: done.EpochOfLastBackupRecord, Lsn: done.LsnOfLastBackupRecord };

      const listed = await api.listing.partitionBackups(pid);
      assert.deepEqual(listed.Items.map((b) => [b.BackupId, b.BackupLocation, b.BackupType]), [[done.BackupId, done.BackupLocation, 'Full']]);
      assert.deepEqual(listed.Items[0]?.EpochOfLastBackupRecord, done.EpochOfLastBackupRecord);
      assert.deepEqual((await api.listing.serviceBackups(SERVICE_ID, { latest: true })).Items.map((b) => b.BackupId), [done.BackupId]);
      assert.deepEqual((await api.listing.applicationBackups(APP_ID, { maxResults: 1 })).Items.map((b) => b.BackupId), [done.BackupId]);
      const created = new Date(listed.Items[0]?.CreationTimeUtc ?? '');
      const inRange = await api.listing.partitionBackups(pid, { start: new Date(created.getTime() - 60_000), end: new Date(created.getTime() + 60_000) });
      assert.equal(inRange.Items.length, 1);
      assert.equal((await api.listing.partitionBackups(pid, { end: '2001-01-01T00:00:00Z' })).Items.length, 0, 'a string date goes as is');
      await refused(api.listing.partitionBackups(pid, { start: '2030-01-01T00:00:00Z', end: '2001-01-01T00:00:00Z' }), 'E_INVALIDARG', 400);

      const stored = await api.listing.backupsInStorage(lb.storage, { EntityKind: 'Partition', ServiceName: SERVICE_NAME, PartitionId: pid }, { latest: true });
      assert.deepEqual(stored.Items.map((b) => b.BackupId), [done.BackupId]);
      const wholeApp = await api.listing.backupsInStorage(lb.storage, { EntityKind: 'Application', ApplicationName: APP_NAME }, { start: new Date(0) });
      assert.deepEqual(wholeApp.Items.map((b) => b.BackupId), [done.BackupId]);
    });

    await t.test('VerifyBackup: the named backup, and the newest', async () => {
      const named = await api.operations.verifyBackup(pid, { backupId: backup.BackupId, backupLocation: backup.BackupLocation, storage: lb.storage });
      assert.deepEqual([named.Ok, named.BackupId, named.Chain.map((c) => c.BackupId)], [true, backup.BackupId, [backup.BackupId]]);
      const newest = await api.operations.verifyBackup(pid, { latest: true, storage: lb.storage });
      assert.equal(newest.BackupId, backup.BackupId);
      await refused(api.operations.verifyBackup(pid, { backupId: randomUUID(), backupLocation: backup.BackupLocation, storage: lb.storage }), 'E_INVALIDARG', 400);
    });

    await t.test('restore: accepted, progress reaches Success', async () => {
      await api.operations.restorePartition(pid, { backupId: backup.BackupId, backupLocation: backup.BackupLocation, storage: lb.storage }, { timeoutMinutes: 5 });
      const done = await api.operations.waitForRestore(pid);
      assert.equal(done.RestoreState, 'Success', JSON.stringify(done));
      assert.deepEqual(await api.operations.restoreProgress(pid), done);
      assert.deepEqual([done.RestoredEpoch, done.RestoredLsn], [backup.Epoch, backup.Lsn], 'the state of the backup is restored');
      await api.operations.restorePartition(pid, { latest: true, storage: lb.storage });
      assert.equal((await api.operations.waitForRestore(pid)).RestoreState, 'Success');
      await api.operations.skipAutoRestore(pid, { timeoutMinutes: 1 });
    });

    const share = `${lb.share}-policy`;
    await t.test('policies: create, list, get (secrets masked), update, entities, delete', async () => {
      await api.policies.create(policy('Hourly', share));
      await api.policies.create(policy('Spare', share));
      await refused(api.policies.create(policy('Hourly', share)), 'FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING', 409);
      assert.deepEqual((await api.policies.list()).Items.map((p) => p.Name), ['Hourly', 'Spare']);
      assert.deepEqual((await api.policies.list({ maxResults: 1 })).Items.map((p) => p.Name), ['Hourly']);
      const got = await api.policies.get('Hourly');
      assert.equal(got.Storage.StorageKind === 'FileShare' && got.Storage.PrimaryPassword, '****');
      assert.equal(got.RetentionPolicy?.RetentionDuration, 'P1D');
      await api.policies.update('Hourly', { ...policy('Hourly', share, 3) });
      assert.equal((await api.policies.get('Hourly')).MaxIncrementalBackups, 3);
      assert.deepEqual((await api.policies.enabledEntities('Hourly')).Items, []);
      await api.policies.delete('Spare');
      await refused(api.policies.get('Spare'), 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING', 404);
    });

    await t.test('protection: enable, configuration, suspend, resume, retention plan, disable', async () => {
      await api.protection.enableBackup({ kind: 'Application', id: APP_ID }, 'Hourly');
      assert.deepEqual((await api.policies.enabledEntities('Hourly')).Items, [{ EntityKind: 'Application', ApplicationName: APP_NAME }]);
      let c = await api.protection.partitionConfiguration(pid);
      assert.deepEqual([c.Kind, c.PolicyName, c.PolicyInheritedFrom, c.PartitionId, c.SuspensionInfo.IsSuspended], ['Partition', 'Hourly', 'Application', pid, false]);
      await api.protection.suspendBackup({ kind: 'Service', id: SERVICE_ID });
      c = await api.protection.partitionConfiguration(pid);
      assert.deepEqual(c.SuspensionInfo, { IsSuspended: true, SuspensionInheritedFrom: 'Service' });
      const app = await api.protection.configuration({ kind: 'Application', id: APP_ID });
      assert.deepEqual(app.Items.map((i) => [i.Kind, i.PolicyName, i.SuspensionInfo.IsSuspended]), [['Application', 'Hourly', false], ['Service', 'Hourly', true]]);
      await api.protection.resumeBackup({ kind: 'Service', id: SERVICE_ID });
      assert.equal((await api.protection.partitionConfiguration(pid)).SuspensionInfo.IsSuspended, false);

      const plan = await api.listing.retentionPlan(pid);
      assert.deepEqual([plan.PartitionId, plan.PolicyName, plan.RetentionDuration, plan.MinimumNumberOfBackups], [pid, 'Hourly', 'P1D', 1]);

      await refused(api.protection.disableBackup({ kind: 'Partition', id: pid }), 'FABRIC_E_BACKUP_NOT_ENABLED', 404);
      await api.protection.disableBackup({ kind: 'Application', id: APP_ID }, { cleanBackup: false });
      assert.equal((await api.protection.partitionConfiguration(pid)).PolicyInheritedFrom, 'Invalid');
      await api.policies.delete('Hourly');
    });

    await t.test('access: tokens, the caller, the audit log', async () => {
      assert.deepEqual(await api.access.me(), { Name: 'bootstrap-admin', Role: 'admin', Via: 'token' });
      const reader = await api.access.createToken({ Role: 'reader', Name: 'client-reader' });
      assert.deepEqual([reader.Name, reader.Role], ['client-reader', 'reader']);
      assert.match(reader.Token, /^lbt_/);
      assert.deepEqual((await api.access.listTokens()).Items.map((x) => [x.Name, x.Role]), [['client-reader', 'reader']]);
      const asReader = new LifeboatClient({ baseUrl: lb.url, token: reader.Token });
      assert.equal((await asReader.access.me()).Role, 'reader');
      assert.equal((await asReader.hierarchy.listApplications()).Items.length, 1);
      await refused(asReader.access.createToken({ Role: 'admin' }), 'E_ACCESSDENIED', 403);
      await api.access.revokeToken('client-reader');
      await refused(asReader.hierarchy.listApplications(), 'LIFEBOAT_E_UNAUTHENTICATED', 401);
      await refused(api.access.revokeToken('client-reader'), 'LIFEBOAT_E_TOKEN_NOT_FOUND', 404);
      const audit = await api.access.auditLog();
      assert.ok(audit.Items.some((a) => a.Route === '/Lifeboat/$/Tokens/$/Create' && a.Outcome === 'allowed'), JSON.stringify(audit.Items.slice(-5)));
      const first = await api.access.auditLog({ maxResults: 1 });
      assert.equal(first.Items.length, 1);
      assert.notEqual(first.ContinuationToken, '');
    });

    await t.test('the host protocol: register, poll an order, report, data loss', async () => {
      const hostId = 'client-test-host';
      const token = (await api.access.createToken({ Role: 'host', Name: 'client-host', HostId: hostId })).Token;
      const host = new LifeboatClient({ baseUrl: lb.url, token });
      assert.equal((await host.access.me()).HostId, hostId);
      const own = randomUUID();
      await host.hosts.register(hostId, {
        Services: [{
          Name: 'fabric:/ClientApp/Svc', Scheme: { kind: 'Singleton' }, HasPersistedState: true,
          Partitions: [{ Id: own, Info: { kind: 'Singleton' }, Epoch: { DataLossVersion: '1', ConfigurationVersion: '1' }, Lsn: '0' }],
        }],
      });
      assert.deepEqual(await host.hosts.pollOrders(hostId, 0), []);
      await api.operations.backupPartition(own, { storage: lb.storage });
      const orders = await host.hosts.pollOrders(hostId, 5_000);
      assert.equal(orders.length, 1);
      const order = orders[0];
      assert.ok(order && order.Kind === 'Backup' && order.PartitionId === own);
      await host.hosts.report(hostId, { OperationId: order.OperationId, State: 'InProgress' });
      assert.equal((await api.operations.backupProgress(own)).BackupState, 'BackupInProgress');
      await host.hosts.report(hostId, { OperationId: order.OperationId, State: 'Failure', Error: { Code: 'E_FAIL', Message: 'the test host fails it' } });
      const ended = await api.operations.waitForBackup(own);
      assert.deepEqual([ended.BackupState, ended.FailureError?.Code], ['Failure', 'E_FAIL']);
      assert.deepEqual(await host.hosts.dataLoss(hostId, own), { Action: 'NotProtected' });
      await refused(host.hosts.register('another-host', { Services: [] }), 'E_ACCESSDENIED', 403);
    });
  });

  it('turns an error answer with a code it does not know into E_FAIL, keeping the status', async (t) => {
    const server = createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ Error: { Code: 'FABRIC_E_SOMETHING_NEW', Message: 'later' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await refused(new LifeboatClient({ baseUrl: url }).hierarchy.listApplications(), 'E_FAIL', 503);
    await assert.rejects(callLifeboat(url, 'GET', '/'), /503 FABRIC_E_SOMETHING_NEW: later/);
  });
});

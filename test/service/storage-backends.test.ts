/**
 * Azure Blob (Azurite) and S3 (s3rver) behind the running service, over its REST API: a partition
 * is backed up to the cloud storage, found there by GetBackupsFromBackupLocation, and restored
 * exactly; a policy whose storage is missing or refuses its credentials is refused with a clear
 * error that holds no secret; backups to an unreachable endpoint, a missing container or bucket,
 * or with wrong credentials end in Failure saying why; and a backup whose upload breaks midway
 * leaves nothing listed and no object in the storage. A backend that cannot run here is skipped,
 * which CI refuses (LIFEBOAT_REQUIRE_ALL_BACKENDS=1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { FaultyStore } from '../../src/storage/faults.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { assertFabricError, assertSuccess, jsonOf, send } from '../support/api-http.ts';
import { azuriteForTests } from '../support/azurite.ts';
import { type TestLifeboat, startTestLifeboat, waitFor } from '../support/lifeboat.ts';
import { S3RVER_KEY, s3rverForTests } from '../support/s3server.ts';
import { SERVICE_ID, SERVICE_NAME } from '../support/sample.ts';

const V = 'api-version=6.4';
const az = azuriteForTests();
const s3 = s3rverForTests();

type Storage = Record<string, unknown>;

/** A fresh container or bucket. */
interface Place {
  readonly name: string;
  readonly storage: Storage;
  /** Everything in it: committed objects, and (S3) multipart uploads still pending. */
  contents(): Promise<string[]>;
  /** Whether a backup's data reached the server without being committed: staged blocks, or parts of an aborted upload. */
  sentUncommitted(): Promise<boolean>;
}

interface Backend {
  readonly name: string;
  readonly skip: string | undefined;
  place(t: TestContext): Promise<Place>;
  /** The storage of a container or bucket `name` that does not exist, and how its absence is told. */
  missing(name: string): { storage: Storage; message: RegExp };
  /** `place` with credentials the server refuses; `secret` must appear in no answer. */
  wrongCredentials(place: Place): { storage: Storage; secret: string; message: RegExp };
  /** An endpoint nothing listens on. */
  unreachable(place: Place): { storage: Storage; message: RegExp };
}

const azure: Backend = {
  name: 'AzureBlobStore (Azurite)',
  skip: az.skip,
  async place(t) {
    const name = await az.container(t);
    const container = BlobServiceClient.fromConnectionString(az.server().connectionString).getContainerClient(name);
    const committed = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const b of container.listBlobsFlat()) out.push(b.name);
      return out;
    };
    return {
      name,
      storage: { StorageKind: 'AzureBlobStore', ConnectionString: az.server().connectionString, ContainerName: name },
      contents: committed,
      async sentUncommitted() {
        // A blob with only uncommitted blocks is listed only when asked for (and dropped by Azure after a week).
        const visible = new Set(await committed());
        for await (const b of container.listBlobsFlat({ includeUncommitedBlobs: true })) if (b.name.endsWith('.lbk') && !visible.has(b.name)) return true;
        return false;
      },
    };
  },
  missing: (name) => ({
    storage: { StorageKind: 'AzureBlobStore', ConnectionString: az.server().connectionString, ContainerName: name },
    message: new RegExp(`Azure container '${name}' does not exist in account devstoreaccount1`),
  }),
  wrongCredentials(place) {
    const secret = randomBytes(64).toString('base64');
    return {
      storage: { ...place.storage, ConnectionString: az.server().connectionString.replace(az.server().accountKey, secret) },
      secret,
      message: /Azure Blob storage rejected the credentials \((AuthenticationFailed|AuthorizationFailure)\) for account devstoreaccount1/,
    };
  },
  unreachable: (place) => ({
    storage: { ...place.storage, ConnectionString: az.server().connectionString.replace(/BlobEndpoint=[^;]+/, 'BlobEndpoint=http://127.0.0.1:1/devstoreaccount1') },
    message: /Azure Blob endpoint http:\/\/127\.0\.0\.1:1 cannot be reached \(ECONNREFUSED\)/,
  }),
};

const s3Storage = (bucket: string): Storage => ({
  StorageKind: 'S3', Bucket: bucket, Endpoint: s3.server().endpoint, Region: 'us-east-1', AccessKeyId: S3RVER_KEY, SecretAccessKey: S3RVER_KEY, ForcePathStyle: true,
});

const s3rver: Backend = {
  name: 'S3 (s3rver)',
  skip: s3.skip,
  async place() {
    const name = await s3.server().createBucket();
    return {
      name,
      storage: s3Storage(name),
      async contents() {
        const listed = await s3.server().client.send(new ListObjectsV2Command({ Bucket: name }));
        const pending = await s3.server().pendingUploads(name);
        return [...(listed.Contents ?? []).map((o) => o.Key ?? ''), ...pending.map((u) => `pending upload of ${u.key}`)];
      },
      async sentUncommitted() {
        const ops = (await s3.server().requests(name)).requests.map((r) => r.op);
        return ops.includes('UploadPart') && ops.includes('AbortMultipartUpload') && !ops.includes('CompleteMultipartUpload');
      },
    };
  },
  missing: (name) => ({
    storage: s3Storage(name),
    message: new RegExp(`S3 bucket '${name}' does not exist at ${s3.server().endpoint.replace(/\./g, '\\.')}`),
  }),
  wrongCredentials(place) {
    // s3rver checks only the access key id (see test/support/s3server.ts), so that is what is wrong here.
    const secret = `lifeboat-secret-${randomBytes(12).toString('hex')}`;
    return {
      storage: { ...place.storage, AccessKeyId: 'LIFEBOATWRONGKEY', SecretAccessKey: secret },
      secret,
      message: new RegExp(`S3 rejected the credentials \\(InvalidAccessKeyId\\) for bucket '${place.name}'`),
    };
  },
  unreachable: (place) => ({
    storage: { ...place.storage, Endpoint: 'http://127.0.0.1:1' },
    message: /S3 endpoint http:\/\/127\.0\.0\.1:1 cannot be reached \(ECONNREFUSED\)/,
  }),
};

async function firstPartition(lb: TestLifeboat): Promise<string> {
  const body = jsonOf(await send(lb.url, { method: 'GET', path: `/Services/${SERVICE_ID}/$/GetPartitions?api-version=6.0` })) as { Items: Array<{ PartitionInformation: { Id: string } }> };
  const pid = body.Items[0]?.PartitionInformation.Id;
  assert.ok(pid);
  return pid;
}

/** BackupPartition, then GetBackupProgress until it ends. */
async function backup(lb: TestLifeboat, pid: string, storage: Storage): Promise<Record<string, unknown>> {
  assertSuccess(await send(lb.url, { method: 'POST', path: `/Partitions/${pid}/$/Backup?${V}`, body: { BackupStorage: storage } }), 202, 'BackupPartition');
  return waitFor(async () => jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetBackupProgress?${V}` })) as Record<string, unknown>,
    (v) => v.BackupState !== 'Accepted' && v.BackupState !== 'BackupInProgress', 60_000, 'the backup to end');
}

/** GetBackupsFromBackupLocation for the partition. */
async function backupsIn(lb: TestLifeboat, storage: Storage, pid: string): Promise<Array<Record<string, unknown>>> {
  const answer = await send(lb.url, {
    method: 'POST', path: `/BackupRestore/$/GetBackups?${V}`,
    body: { Storage: storage, BackupEntity: { EntityKind: 'Partition', ServiceName: SERVICE_NAME, PartitionId: pid } },
  });
  return (assertSuccess(answer, 200, 'GetBackupsFromBackupLocation') as { Items: Array<Record<string, unknown>> }).Items;
}

async function indexedBackups(lb: TestLifeboat, pid: string): Promise<unknown[]> {
  return (jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetBackups?${V}` })) as { Items: unknown[] }).Items;
}

function policy(name: string, storage: Storage): Record<string, unknown> {
  return { Name: name, AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 0, Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT30M' }, Storage: storage };
}

for (const b of [azure, s3rver]) {
  if (b.skip && process.env.LIFEBOAT_REQUIRE_ALL_BACKENDS === '1') {
    it(`${b.name} behind the service`, () => assert.fail(`the ${b.name} backend was skipped (${b.skip}) but CI requires every backend`));
    continue;
  }

  describe(`${b.name} behind the service`, { ...(b.skip ? { skip: b.skip } : {}) }, () => {
    it('backs a partition up, lists the backup from the storage, and restores it exactly', { timeout: 120_000 }, async (t) => {
      const lb = await startTestLifeboat(t);
      assert.ok(lb.sample);
      const place = await b.place(t);
      for (let i = 0; i < 40; i++) await fetch(`${lb.sample.url}/kv/key${i}`, { method: 'PUT', body: `value ${i}` });
      const pid = await firstPartition(lb);
      const p = lb.sample.service.partition(pid);
      const before = p.dictionary('kv').enumerate();
      assert.ok(before.length > 0);

      const done = await backup(lb, pid, place.storage);
      assert.equal(done.BackupState, 'Success', JSON.stringify(done));
      const location = String(done.BackupLocation);
      assert.deepEqual((await place.contents()).sort(), [location, location.replace(/\.lbk$/, '.bkmetadata')].sort(), 'the data and its metadata, nothing else');
      const listed = await backupsIn(lb, place.storage, pid);
      assert.deepEqual(listed.map((x) => [x.BackupId, x.BackupLocation, x.BackupType]), [[done.BackupId, location, 'Full']]);

      p.transact((tx) => {
        for (const { key } of before) tx.dictionary('kv').delete(key);
        tx.dictionary('kv').set('after', 'the backup');
      });
      assertSuccess(await send(lb.url, {
        method: 'POST', path: `/Partitions/${pid}/$/Restore?${V}`, body: { BackupId: done.BackupId, BackupLocation: location, BackupStorage: place.storage },
      }), 202, 'RestorePartition');
      const restored = await waitFor(async () => jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetRestoreProgress?${V}` })) as Record<string, unknown>,
        (v) => v.RestoreState !== 'Accepted' && v.RestoreState !== 'RestoreInProgress', 60_000, 'the restore to end');
      assert.equal(restored.RestoreState, 'Success', JSON.stringify(restored));
      assert.equal(restored.RestoredLsn, done.LsnOfLastBackupRecord);
      assert.deepEqual(p.dictionary('kv').enumerate(), before);
    });

    it('refuses a policy whose storage is missing or refuses the credentials (ValidateConnection), without the secret', { timeout: 60_000 }, async (t) => {
      const lb = await startTestLifeboat(t);
      const place = await b.place(t);
      const create = `/BackupRestore/BackupPolicies/$/Create?${V}&ValidateConnection=true`;

      const missingName = `lb-missing-${randomBytes(6).toString('hex')}`;
      const missing = b.missing(missingName);
      const a1 = await send(lb.url, { method: 'POST', path: create, body: policy('Missing', missing.storage) });
      assertFabricError(a1, 400, 'LIFEBOAT_E_STORAGE_UNAVAILABLE', 'a missing container or bucket');
      const m1 = (jsonOf(a1) as { Error: { Message: string } }).Error.Message;
      assert.match(m1, /^ValidateConnection failed for the storage of policy 'Missing'/);
      assert.match(m1, missing.message);

      const wrong = b.wrongCredentials(place);
      const a2 = await send(lb.url, { method: 'POST', path: create, body: policy('Wrong', wrong.storage) });
      assertFabricError(a2, 400, 'LIFEBOAT_E_STORAGE_UNAVAILABLE', 'wrong credentials');
      assert.match((jsonOf(a2) as { Error: { Message: string } }).Error.Message, wrong.message);
      assert.ok(!a2.text.includes(wrong.secret) && !a2.text.includes(encodeURIComponent(wrong.secret)), `the answer carries the secret: ${a2.text}`);

      for (const name of ['Missing', 'Wrong']) {
        assertFabricError(await send(lb.url, { method: 'GET', path: `/BackupRestore/BackupPolicies/${name}?${V}` }), 404, 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING', `policy ${name}`);
      }
      // The same storage, reachable and with the right credentials, passes the check.
      assertSuccess(await send(lb.url, { method: 'POST', path: create, body: policy('Good', place.storage) }), 201, 'a usable storage');
      assert.deepEqual(await place.contents(), [], 'the validation probe is gone');
    });

    it('a backup to an unreachable endpoint, a missing container or bucket, or with wrong credentials ends in Failure saying why', { timeout: 60_000 }, async (t) => {
      const lb = await startTestLifeboat(t);
      const place = await b.place(t);
      const pid = await firstPartition(lb);
      const wrong = b.wrongCredentials(place);
      const cases: Array<[string, { storage: Storage; message: RegExp }]> = [
        ['unreachable endpoint', b.unreachable(place)],
        ['missing container or bucket', b.missing(`lb-missing-${randomBytes(6).toString('hex')}`)],
        ['wrong credentials', wrong],
      ];
      const codes: string[] = [];
      for (const [what, c] of cases) {
        const done = await backup(lb, pid, c.storage);
        assert.equal(done.BackupState, 'Failure', `${what}: ${JSON.stringify(done)}`);
        const failure = done.FailureError as { Code: string; Message: string };
        assert.match(failure.Message, c.message, what);
        assert.ok(!JSON.stringify(done).includes(wrong.secret), `${what}: the progress carries the secret`);
        codes.push(failure.Code);
      }
      // The failure carries the storage's own code, not the state library's callback wrapper.
      assert.deepEqual(codes, cases.map(() => 'LIFEBOAT_E_STORAGE_UNAVAILABLE'));
      assert.deepEqual(await indexedBackups(lb, pid), []);
      assert.deepEqual(await place.contents(), []);
    });

    it('a backup whose upload breaks midway leaves nothing listed and nothing in the storage; the next one succeeds', { timeout: 120_000 }, async (t) => {
      // Breaks the data object's upload after 9 MiB, past the first 8 MiB block or part, until disarmed.
      let armed = true;
      const injected = 'injected: the upload connection broke';
      const lb = await startTestLifeboat(t, {
        wrapStorage: (s: BlobStore) => (armed ? new FaultyStore(s, [{ kind: 'break-put', key: /\.lbk$/, afterBytes: 9 << 20, error: () => new Error(injected) }]) : s),
      });
      assert.ok(lb.sample);
      const place = await b.place(t);
      const pid = await firstPartition(lb);
      const p = lb.sample.service.partition(pid);
      // 12 MiB of values that do not compress, so the backup is larger than the break point.
      p.transact((tx) => { for (let i = 0; i < 12; i++) tx.dictionary('kv').set(`big${i}`, randomBytes(512 * 1024).toString('hex')); });

      const failed = await backup(lb, pid, place.storage);
      assert.equal(failed.BackupState, 'Failure', JSON.stringify(failed));
      assert.deepEqual(await indexedBackups(lb, pid), [], 'GetBackups lists no half-written backup');
      assert.deepEqual(await backupsIn(lb, place.storage, pid), [], 'GetBackupsFromBackupLocation lists no half-written backup');
      // The host reports the failure after the put cleaned up: nothing is left at that moment.
      assert.deepEqual(await place.contents(), [], 'no object and no pending upload left in the storage');
      assert.ok(await place.sentUncommitted(), 'the upload broke after data reached the server, so its atomicity was tested');
      assert.match((failed.FailureError as { Message: string }).Message, new RegExp(injected));

      armed = false;
      const done = await backup(lb, pid, place.storage);
      assert.equal(done.BackupState, 'Success', JSON.stringify(done));
      assert.equal((await backupsIn(lb, place.storage, pid)).length, 1);
      assert.equal((await indexedBackups(lb, pid)).length, 1);
    });
  });
}

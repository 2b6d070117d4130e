/**
 * Encrypted backups end to end, through the REST API of a real Lifeboat: a backup is written as
 * `.lbk` version 2 encrypted under the keyring's current key, with the wrapped data key in its
 * `.bkmetadata`, and restores exactly; what the stored object reveals with and without
 * encryption; a restore without the key (no keyring, another key, a wrong key under the same id)
 * fails clearly and leaves the partition as it was; key rotation (the service's use case and
 * `lifeboat keys rewrap`) re-wraps every data key without touching the data, so that a keyring
 * holding only the new key restores.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { isLifeboatError } from '../../src/core/errors.ts';
import { decodeToFolder } from '../../src/format/lbk2/index.ts';
import type { RewrapReport } from '../../src/repository/backup-repository.ts';
import { backupNow, keyringFile, keyringOf, keys, restoreNow, samplePartition, stateOf, storedMetadata, verifyBody, verifyNow } from '../support/backup-e2e.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { REPO_ROOT } from '../support/process-children.ts';
import { tempDir } from '../support/tmp.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every stored object of the share by key, with its SHA-256. */
function objectsOf(share: string, ext: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(share, { recursive: true, withFileTypes: true })) {
    if (f.isFile() && f.name.endsWith(ext)) {
      const path = join(f.parentPath, f.name);
      out.set(relative(share, path), sha(readFileSync(path)));
    }
  }
  return out;
}

function fill(p: ReturnType<typeof samplePartition>, marker: string, n = 200): void {
  p.transact((tx) => { for (let i = 0; i < n; i++) tx.dictionary('kv').set(`key${i}`, `${marker}-${i}`); });
}

function scramble(p: ReturnType<typeof samplePartition>): void {
  p.transact((tx) => { for (const { key } of tx.dictionary('kv').enumerate()) tx.dictionary('kv').delete(key); tx.dictionary('kv').set('after', 'x'); });
}

it('encrypts backups under the current key: the .bkmetadata carries the wrapped key, VerifyBackup authenticates, and the backup restores exactly', async (t) => {
  const k = keys('k1');
  const lb = await startTestLifeboat(t, { encryptionKeys: keyringOf('k1', k) });
  const p = samplePartition(lb);
  const marker = `plaintext-marker-${randomUUID()}`;
  fill(p, marker);
  const snapshot = p.dictionary('kv').enumerate();
  const b = await backupNow(lb, p.id);

  const m = storedMetadata(lb, b.BackupLocation);
  assert.equal(m.Encryption?.KeyId, 'k1');
  assert.equal(m.Encryption?.Algorithm, 'AES-256-GCM');
  const object = readFileSync(join(lb.share, b.BackupLocation));
  assert.deepEqual([...object.subarray(0, 7)], [0x4c, 0x42, 0x4b, 0x41, 2, 1, 1], 'LBKA version 2, zstd, AES-256-GCM');
  assert.equal(m.DataSize, object.length);
  assert.match(m.DataFramesSha256 ?? '', /^[0-9a-f]{64}$/, 'checked by its frames digest (verify.test.ts works it out from the layout)');
  assert.equal(m.DataSha256, undefined);
  assert.ok(!object.includes(marker), 'the plaintext is not in the stored object');
  // Without the key nobody reads it back.
  await assert.rejects(decodeToFolder(Readable.from([object]), tempDir(t), 'copy', { encryption: m.Encryption, workers: 0 }),
    (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_ENCRYPTION_KEY_MISSING'));

  const v = await verifyNow(lb, p.id, verifyBody(lb, b));
  assert.equal(v.status, 200, JSON.stringify(v.json));
  assert.equal(v.json.Ok, true);
  assert.deepEqual(v.json.Chain, [{
    BackupId: b.BackupId, BackupLocation: b.BackupLocation, BackupType: 'Full', Version: 2, Files: 2, Blocks: (v.json.Chain as Array<{ Blocks: number }>)[0]?.Blocks,
    StoredBytes: object.length, Encrypted: true, ContentsChecked: true, Authenticated: true,
  }]);

  scramble(p);
  const r = await restoreNow(lb, p.id, b);
  assert.equal(r.progress?.RestoreState, 'Success', JSON.stringify(r));
  assert.deepEqual(p.dictionary('kv').enumerate(), snapshot);

  // The host's block pool did the work, and ends with the host (so that its process can exit).
  const pool = lb.host?.blockPool;
  assert.ok(pool, 'the host made its block pool');
  await lb.close();
  await assert.rejects(pool.seal({} as never, []), /block pool closed/);
});

it('with compression none, a value written to the partition is in the stored object unless it is encrypted, and encrypted bytes look random', async (t) => {
  const marker = `plaintext-marker-${randomUUID()}`;
  const zeroShare = (b: Buffer): number => b.filter((x) => x === 0).length / b.length;
  const stored: Record<string, Buffer> = {};
  for (const [name, extra] of [['plain', {}], ['encrypted', { encryptionKeys: keyringOf('k1', keys('k1')) }]] as const) {
    const lb = await startTestLifeboat(t, { compression: 'none', ...extra });
    const p = samplePartition(lb);
    fill(p, marker);
    const b = await backupNow(lb, p.id);
    stored[name] = readFileSync(join(lb.share, b.BackupLocation));
    await lb.close();
  }
  const plain = stored.plain as Buffer;
  const encrypted = stored.encrypted as Buffer;
  assert.equal(plain[5], 0, 'plain: compression none');
  assert.equal(plain[6], 0, 'plain: no cipher');
  assert.equal(encrypted[6], 1, 'encrypted: AES-256-GCM');
  assert.ok(plain.includes(`${marker}-17`), 'without encryption (and compression) the value is in the object as written');
  assert.ok(!encrypted.includes(marker), 'with encryption it is not');
  // A database file is mostly zero bytes in its unused page space; ciphertext has about 1 in 256.
  t.diagnostic(`zero bytes: plain ${(zeroShare(plain) * 100).toFixed(1)} %, encrypted ${(zeroShare(encrypted) * 100).toFixed(2)} %`);
  assert.ok(zeroShare(plain) > 0.1, `plain: ${zeroShare(plain)}`);
  assert.ok(zeroShare(encrypted) < 0.01, `encrypted: ${zeroShare(encrypted)}`);
});

it('restoring an encrypted backup without its key fails clearly (no keyring, another key, a wrong key under its id) and leaves the partition as it was', async (t) => {
  const dir = tempDir(t);
  const k1 = keys('k1');
  const lb1 = await startTestLifeboat(t, { encryptionKeys: keyringOf('k1', k1) }, dir);
  const pid = samplePartition(lb1).id;
  fill(samplePartition(lb1), 'v');
  const snapshot = samplePartition(lb1).dictionary('kv').enumerate();
  const b = await backupNow(lb1, pid);
  await lb1.close();

  const attempts = [
    { name: 'no keyring', keyring: undefined, code: 'LIFEBOAT_E_ENCRYPTION_KEY_MISSING', message: /encrypted with key 'k1'.*no encryption keyring/ },
    { name: 'a keyring without k1', keyring: keyringOf('k2', keys('k2')), code: 'LIFEBOAT_E_ENCRYPTION_KEY_MISSING', message: /encrypted with key 'k1', which is not in the keyring \(it has k2\)/ },
    { name: 'another key under the id k1', keyring: keyringOf('k1', keys('k1')), code: 'LIFEBOAT_E_ENCRYPTION_KEY_MISMATCH', message: /does not unwrap with key 'k1'/ },
  ];
  for (const a of attempts) {
    const lb = await startTestLifeboat(t, a.keyring ? { encryptionKeys: a.keyring } : {}, dir);
    const p = samplePartition(lb);
    assert.equal(p.id, pid);
    scramble(p);
    const before = stateOf(p);
    const r = await restoreNow(lb, pid, b);
    assert.equal(r.progress?.RestoreState, 'Failure', `${a.name}: ${JSON.stringify(r)}`);
    assert.equal(r.progress?.FailureError?.Code, a.code, a.name);
    assert.match(r.progress?.FailureError?.Message ?? '', a.message, a.name);
    assert.deepEqual(stateOf(p), before, `${a.name}: the partition is as it was`);
    p.transact((tx) => tx.dictionary('kv').set('still', 'writable'));
    // VerifyBackup: without a keyring it checks what it can and says the contents were not authenticated; with the wrong keys it fails as restore does.
    const v = await verifyNow(lb, pid, verifyBody(lb, b));
    if (a.keyring) {
      assert.equal(v.status, 400, `${a.name}: ${JSON.stringify(v.json)}`);
      assert.equal((v.json.Error as { Code: string }).Code, a.code, a.name);
    } else {
      assert.equal(v.status, 200, JSON.stringify(v.json));
      assert.deepEqual((v.json.Chain as Array<Record<string, unknown>>).map((c) => [c.Encrypted, c.ContentsChecked, c.Authenticated]), [[true, false, false]]);
    }
    await lb.close();
  }

  // With the right key it restores: the failures above were the keys.
  const lb = await startTestLifeboat(t, { encryptionKeys: keyringOf('k1', k1) }, dir);
  const r = await restoreNow(lb, pid, b);
  assert.equal(r.progress?.RestoreState, 'Success', JSON.stringify(r));
  assert.deepEqual(samplePartition(lb).dictionary('kv').enumerate(), snapshot);
});

it('rotates keys: the data keys of every backup are re-wrapped under k2 (service and CLI, by prefix, idempotent) without touching the data, and a keyring of only k2 restores', async (t) => {
  const dir = tempDir(t);
  const k1 = keys('k1');
  const k2 = keys('k2');
  const lb1 = await startTestLifeboat(t, { encryptionKeys: keyringOf('k1', k1) }, dir);
  const [p0, p1, p2] = [0, 1, 2].map((i) => samplePartition(lb1, i).id) as [string, string, string];
  const snapshots = new Map<string, unknown>();
  const backups = new Map<string, { BackupId: string; BackupLocation: string }>();
  for (const [i, pid] of [p0, p1].entries()) {
    fill(samplePartition(lb1, i), `p${i}`);
    snapshots.set(pid, samplePartition(lb1, i).dictionary('kv').enumerate());
    backups.set(pid, await backupNow(lb1, pid));
  }
  await lb1.close();

  // k2 becomes current; k1 stays in the ring to unwrap. A backup taken now is wrapped under k2 already.
  const both = { ...k1, ...k2 };
  const lb2 = await startTestLifeboat(t, { encryptionKeys: keyringOf('k2', both) }, dir);
  fill(samplePartition(lb2, 2), 'p2');
  snapshots.set(p2, samplePartition(lb2, 2).dictionary('kv').enumerate());
  backups.set(p2, await backupNow(lb2, p2));
  const dataBefore = objectsOf(lb2.share, '.lbk');
  const metaBefore = new Map([...backups].map(([pid, b]) => [pid, storedMetadata(lb2, b.BackupLocation)]));
  assert.deepEqual([...metaBefore.values()].map((m) => m.Encryption?.KeyId), ['k1', 'k1', 'k2']);

  // The service's use case, for one partition's prefix.
  const one = await lb2.service.verification.rewrapKeys(lb2.storage, `SampleApp/MyStatefulService/${p0}/`);
  assert.deepEqual(one, { scanned: 1, rewrapped: 1, current: 0, unencrypted: 0, gone: 0, failed: [] });
  await lb2.close();

  // The CLI, for the whole storage: only what still names k1; then nothing.
  const file = keyringFile(join(dir, 'keys.json'), 'k2', both);
  const rewrap = (): RewrapReport => JSON.parse(execFileSync(process.execPath, [
    '--import', 'tsx', 'src/main/cli.ts', 'keys', 'rewrap', '--storage', JSON.stringify(lb2.storage), '--encryption-keys', file,
  ], { cwd: REPO_ROOT, encoding: 'utf8' })) as RewrapReport;
  assert.deepEqual(rewrap(), { scanned: 3, rewrapped: 1, current: 2, unencrypted: 0, gone: 0, failed: [] });
  assert.deepEqual(rewrap(), { scanned: 3, rewrapped: 0, current: 3, unencrypted: 0, gone: 0, failed: [] }, 'a second run has nothing to do');

  // The data objects are byte for byte the same; the metadata differs only in its wrapped key.
  assert.deepEqual(objectsOf(lb2.share, '.lbk'), dataBefore);
  for (const [pid, b] of backups) {
    const { Encryption: after, ...rest } = storedMetadata(lb2, b.BackupLocation);
    const { Encryption: was, ...restBefore } = metaBefore.get(pid) as ReturnType<typeof storedMetadata>;
    assert.equal(after?.KeyId, 'k2');
    assert.deepEqual(rest, restBefore);
    if (was?.KeyId === 'k1') assert.notEqual(after?.WrappedKey, was.WrappedKey);
  }

  // Only k2 now: every backup restores and verifies with its contents authenticated.
  const lb3 = await startTestLifeboat(t, { encryptionKeys: keyringOf('k2', k2) }, dir);
  for (const [i, pid] of [p0, p1, p2].entries()) {
    const b = backups.get(pid) as { BackupId: string; BackupLocation: string };
    const v = await verifyNow(lb3, pid, verifyBody(lb3, b));
    assert.equal(v.status, 200, JSON.stringify(v.json));
    assert.equal((v.json.Chain as Array<{ Authenticated: boolean }>)[0]?.Authenticated, true);
    scramble(samplePartition(lb3, i));
    const r = await restoreNow(lb3, pid, b);
    assert.equal(r.progress?.RestoreState, 'Success', JSON.stringify(r));
    assert.deepEqual(samplePartition(lb3, i).dictionary('kv').enumerate(), snapshots.get(pid));
  }
});

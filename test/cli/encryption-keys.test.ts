/**
 * `--encryption-keys <file>` (env LIFEBOAT_ENCRYPTION_KEYS_FILE) of `lifeboat start` and
 * `lifeboat host`, in real processes: backups they take are encrypted under the file's current key
 * and restore; a file that cannot be read or is not a keyring ends the command with a clear
 * message; no key bytes ever appear in what the processes print.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { keyringFile, keyringOf, keys, storedMetadata } from '../support/backup-e2e.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { KvClient, TestApi } from '../support/process-api.ts';
import { Children, REPO_ROOT, startHostProcess } from '../support/process-children.ts';
import { tempDir } from '../support/tmp.ts';

const b64 = (k: Record<string, Buffer>): string[] => Object.values(k).map((b) => b.toString('base64'));

it('lifeboat start --encryption-keys encrypts the backups it takes under the current key, and never prints a key', async (t) => {
  const children = new Children(t);
  const dir = tempDir(t);
  const k = keys('old', 'new');
  const file = keyringFile(join(dir, 'keys.json'), 'new', k);
  const child = children.spawn('lifeboat start', ['start', '--data-dir', join(dir, 'data'), '--port', '0', '--sample-port', '0', '--encryption-keys', file], { LIFEBOAT_LOG_LEVEL: 'debug' });
  const url = await child.waitForLine((l) => /^Lifeboat REST API: (http:\/\/\S+)/.exec(l)?.[1], 'the REST API line');
  await child.waitForLine((l) => (l === 'backups encrypted under key \'new\'' ? true : undefined), 'the encryption line');
  const sampleUrl = await child.waitForLine((l) => /^sample application fabric:\/SampleApp: (http:\/\/\S+)\/kv\//.exec(l)?.[1], 'the sample line');
  const api = new TestApi(url);
  const pid = await new KvClient(sampleUrl).put('a-key', 'a value');
  const share = join(dir, 'data', 'backups', 'share');
  const storage = { StorageKind: 'FileShare', Path: share };
  assert.equal((await api.backup(pid, storage)).status, 202);
  const done = await api.backupDone(pid);
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
  assert.equal(storedMetadata({ share }, done.BackupLocation).Encryption?.KeyId, 'new');
  assert.equal((await api.restore(pid, done, storage)).status, 202);
  assert.equal((await api.restoreDone(pid)).RestoreState, 'Success');
  await child.kill('SIGTERM');
  const printed = child.lines.join('\n') + child.stderr();
  for (const key of b64(k)) assert.ok(!printed.includes(key), 'no key bytes in the output');
});

it('lifeboat host takes the keyring from LIFEBOAT_ENCRYPTION_KEYS_FILE: its backups are encrypted and restore', async (t) => {
  const children = new Children(t); // first, so that the host dies before the service closes
  const dir = tempDir(t);
  const k = keys('k1');
  const lb = await startTestLifeboat(t, { sample: false, encryptionKeys: keyringOf('k1', k) });
  const host = await startHostProcess(children, {
    serviceUrl: lb.url, hostId: 'enc-host', dataDir: join(dir, 'host'), service: 'fabric:/EncApp/Kv', partitioning: 'singleton',
    env: { LIFEBOAT_ENCRYPTION_KEYS_FILE: keyringFile(join(dir, 'keys.json'), 'k1', k) },
  });
  const kv = new KvClient(host.info.kv);
  const pid = await kv.put('k', 'before');
  const api = new TestApi(lb.url);
  assert.equal((await api.backup(pid, lb.storage)).status, 202);
  const done = await api.backupDone(pid);
  assert.equal(done.BackupState, 'Success', JSON.stringify(done));
  assert.equal(storedMetadata(lb, done.BackupLocation).Encryption?.KeyId, 'k1');
  await kv.put('k', 'after');
  assert.equal((await api.restore(pid, done, lb.storage)).status, 202);
  const restored = await api.restoreDone(pid);
  assert.equal(restored.RestoreState, 'Success', JSON.stringify(restored));
  assert.equal(await kv.get('k'), 'before');
  await host.child.kill('SIGTERM');
  const printed = host.child.lines.join('\n') + host.child.stderr();
  for (const key of b64(k)) assert.ok(!printed.includes(key), 'no key bytes in the output');
});

it('a keys file that cannot be read or is not a keyring ends the command with a clear message, without the key bytes', (t) => {
  const dir = tempDir(t);
  const short = Buffer.from('0123456789abcdef0123456789abcde').toString('base64'); // 31 bytes
  const bad = join(dir, 'bad.json');
  keyringFile(bad, 'k1', { k1: Buffer.from(short, 'base64') });
  const run = (args: string[], env: NodeJS.ProcessEnv = {}): { status: number; stderr: string } => {
    try {
      execFileSync(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8', stdio: 'pipe', env: { ...process.env, ...env } });
      return { status: 0, stderr: '' };
    } catch (err) {
      const e = err as { status: number; stderr: string };
      return { status: e.status, stderr: e.stderr };
    }
  };
  const wrongLength = run(['start', '--data-dir', join(dir, 'data'), '--port', '0', '--encryption-keys', bad]);
  assert.equal(wrongLength.status, 1);
  assert.match(wrongLength.stderr, /The encryption keys file .*bad\.json: key 'k1' is 31 bytes; AES-256 keys are 32 bytes/);
  assert.ok(!wrongLength.stderr.includes(short));
  const missing = run(['host', '--service-url', 'http://127.0.0.1:9', '--data-dir', join(dir, 'host')], { LIFEBOAT_ENCRYPTION_KEYS_FILE: join(dir, 'nope.json') });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read the encryption keys file .*nope\.json: ENOENT/);
  const none = run(['keys', 'rewrap', '--storage', JSON.stringify({ StorageKind: 'FileShare', Path: dir })], { LIFEBOAT_ENCRYPTION_KEYS_FILE: '' });
  assert.equal(none.status, 1);
  assert.match(none.stderr, /--encryption-keys .* is required/);
  const good = keyringFile(join(dir, 'open.json'), 'k1', keys('k1'));
  chmodSync(good, 0o644);
  const readable = run(['start', '--data-dir', join(dir, 'data2'), '--port', '0', '--encryption-keys', good]);
  assert.equal(readable.status, 1);
  assert.match(readable.stderr, /open\.json may be read by other users \(mode 644\); chmod 600 it/);
  for (const r of [wrongLength, missing, none, readable]) assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
});

/**
 * The README's path with no manual step: `lifeboat start` makes the bootstrap admin token in
 * <data-dir>/admin.token, the CLI picks it up from there, `lifeboat token create` prints the new
 * token as its last line, list shows it without the secret, revoke ends it at once. A host
 * process started with a host token of another host id cannot register as it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { it } from 'node:test';
import { send } from '../support/api-http.ts';
import { Children, startServiceProcess } from '../support/process-children.ts';
import { tempDir } from '../support/tmp.ts';

const run = promisify(execFile);
/** No token in the environment: the CLI must find the data dir's. */
const NO_TOKENS = { ...process.env, LIFEBOAT_ADMIN_TOKEN: '', LIFEBOAT_TOKEN: '' };

async function lifeboat(args: string[], env: NodeJS.ProcessEnv = NO_TOKENS): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], { env, encoding: 'utf8' });
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

it('lifeboat token create, list and revoke against a running service, with the bootstrap token from the data dir', async (t) => {
  const children = new Children(t);
  const dataDir = tempDir(t);
  const svc = await startServiceProcess(children, { dataDir, sample: false, env: { LIFEBOAT_ADMIN_TOKEN: '' } });
  assert.ok(svc.child.lines.some((l) => l.includes(join(dataDir, 'admin.token'))), 'start says where the admin token is');
  assert.equal(statSync(join(dataDir, 'admin.token')).mode & 0o777, 0o600);
  const common = ['--service-url', svc.url, '--data-dir', dataDir];

  const created = await lifeboat(['token', 'create', '--role', 'reader', '--name', 'ci-reader', ...common]);
  assert.equal(created.code, 0, created.stderr);
  const token = created.stdout.trim().split('\n').pop() as string;
  assert.match(token, /^lbt_[A-Za-z0-9_-]{43}$/, 'the last line is the token');
  assert.equal((await send(svc.url, { method: 'GET', path: '/Applications?api-version=6.0', token })).status, 200);

  const listed = await lifeboat(['token', 'list', '--json', ...common]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual((JSON.parse(listed.stdout) as Array<{ Name: string; Role: string }>).map((x) => [x.Name, x.Role]), [['ci-reader', 'reader']]);
  assert.ok(!listed.stdout.includes(token));

  // A reader may not make tokens.
  const denied = await lifeboat(['token', 'create', '--role', 'admin', ...common], { ...NO_TOKENS, LIFEBOAT_TOKEN: token });
  assert.equal(denied.code, 5, 'auth refusals exit 5');
  assert.match(denied.stderr, /403 E_ACCESSDENIED/);

  const revoked = await lifeboat(['token', 'revoke', 'ci-reader', ...common]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal((await send(svc.url, { method: 'GET', path: '/Applications?api-version=6.0', token })).status, 401);
  const again = await lifeboat(['token', 'revoke', 'ci-reader', ...common]);
  assert.match(again.stderr, /404 LIFEBOAT_E_TOKEN_NOT_FOUND/);
  assert.equal(again.code, 4);

  // A host token names its host: a host process takes its id from it, and may not act as another.
  const hostTok = (await lifeboat(['token', 'create', '--role', 'host', '--host-id', 'edge-1', ...common])).stdout.trim().split('\n').pop() as string;
  const hostDir = tempDir(t);
  const host = children.spawn('host', ['host', '--service-url', svc.url, '--data-dir', hostDir, '--partitioning', 'singleton'], { LIFEBOAT_TOKEN: hostTok });
  const line = await host.waitForLine((l) => (l.startsWith('{') ? (JSON.parse(l) as { host: string }) : undefined), 'the host line');
  assert.equal(line.host, 'edge-1', 'the host id comes from the host token');
  const impostor = children.spawn('impostor', ['host', '--service-url', svc.url, '--host-id', 'edge-2', '--data-dir', tempDir(t), '--partitioning', 'singleton'], { LIFEBOAT_TOKEN: hostTok });
  const ended = await impostor.exited;
  assert.notEqual(ended.code, 0, 'a host token for edge-1 cannot register edge-2');
});

/**
 * Authentication and roles on every route, against a real Lifeboat. The role × route table is
 * made from the app's own route list (every route declares its access, or the app does not
 * start), so a new route is checked without anyone adding a row: no credential → 401 revealing
 * nothing; reader → 403 on every route that is not a read; host token → only the host protocol
 * as its own host; admin → never refused. Then tokens (create, use, revoke), the bootstrap token
 * file, the cross-site and DNS-rebinding refusals, and the audit log.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { installGate, routeTable } from '../../src/api/auth.ts';
import { AccessService } from '../../src/service/access.ts';
import { SqliteCatalog } from '../../src/catalog/sqlite.ts';
import { startLifeboat } from '../../src/main/lifeboat.ts';
import { type HttpAnswer, TEST_ADMIN_TOKEN, assertFabricError, assertSuccess, jsonOf, send } from '../support/api-http.ts';
import { type TestLifeboat, startTestLifeboat } from '../support/lifeboat.ts';
import { APP_ID, SERVICE_ID } from '../support/sample.ts';
import { tempDir } from '../support/tmp.ts';

const V = 'api-version=6.4';

async function createToken(lb: TestLifeboat, body: Record<string, unknown>): Promise<{ Name: string; Token: string }> {
  return assertSuccess(await send(lb.url, { method: 'POST', path: `/Lifeboat/$/Tokens/$/Create?${V}`, body }), 201, 'create token') as { Name: string; Token: string };
}

async function partitionIds(lb: TestLifeboat): Promise<string[]> {
  const r = assertSuccess(await send(lb.url, { method: 'GET', path: `/Services/${SERVICE_ID}/$/GetPartitions?api-version=6.0` }), 200) as { Items: Array<{ PartitionInformation: { Id: string } }> };
  return r.Items.map((p) => p.PartitionInformation.Id);
}

/** A path of the route with its parameters filled in. */
function pathOf(url: string, ids: { partition: string; host: string }): string {
  const filled = url
    .replace(':partitionId', ids.partition).replace(':applicationId', APP_ID).replace(':serviceId', SERVICE_ID)
    .replace(':backupPolicyName', 'no-such-policy').replace(':tokenName', 'no-such-token').replace(':hostId', ids.host).replace('/*', '/index.html');
  assert.ok(!filled.includes(':'), `a parameter of ${url} is not filled`);
  if (!url.startsWith('/Lifeboat/') && !/^\/(Applications|Services|Partitions|BackupRestore)\b/.test(url)) return filled;
  const q = url.startsWith('/Lifeboat/Hosts/') ? (url.endsWith('/Orders') ? '?WaitMs=0' : '') : (url.startsWith('/Applications') && !url.includes('$/') ? '?api-version=6.0' : `?${V}`);
  return filled + q;
}

/** The access each route must declare: the table below checks the gate enforces it; this checks the declaration. */
function expectedAccess(method: string, url: string): string {
  if (url.startsWith('/Lifeboat/Hosts/:hostId/')) return 'host';
  if (url === '/Lifeboat/$/Me') return 'any';
  if (url === '/Lifeboat/$/SignIn') return 'public';
  if (url === '/metrics') return 'metrics';
  if (url === '/healthz' || url === '/readyz' || url === '/explorer' || url.startsWith('/explorer/')) return 'public';
  if (url.startsWith('/Lifeboat/$/')) return 'admin';
  if (method === 'GET') return 'read';
  // The POSTs that only query: readers may use them.
  if (url === '/BackupRestore/$/GetBackups' || url.endsWith('/$/VerifyBackup')) return 'read';
  return 'admin';
}

const refused = (a: HttpAnswer): boolean => a.status === 401 || a.status === 403;

describe('authentication and roles', () => {
  it('answers every route by role: 401 without a credential, 403 for the wrong role or host, never a refusal for an admin', async (t) => {
    const lb = await startTestLifeboat(t);
    const [pid] = await partitionIds(lb);
    const reader = await createToken(lb, { Role: 'reader', Name: 'r1' });
    const host = await createToken(lb, { Role: 'host', Name: 'h1', HostId: 'h1' });
    const scraper = await createToken(lb, { Role: 'metrics', Name: 'm1' });
    const routes = routeTable(lb.app);
    assert.ok(routes.length >= 40, `the table covers every route (${routes.length})`);
    for (const must of ['POST /Partitions/:partitionId/$/Restore', 'POST /Lifeboat/Hosts/:hostId/$/Report', 'GET /Lifeboat/$/AuditLog', 'POST /Applications/:applicationId/$/DisableBackup']) {
      assert.ok(routes.some((r) => `${r.method} ${r.url}` === must), `${must} is in the table`);
    }
    for (const r of routes) {
      const what = `${r.method} ${r.url} (${r.access})`;
      assert.equal(r.access, expectedAccess(r.method, r.url), `${what}: the access it declares`);
      const path = pathOf(r.url, { partition: pid as string, host: 'h1' });
      const base = { method: r.method, path };

      const none = await send(lb.url, { ...base, token: null });
      if (r.access === 'public') {
        // No credential asked, and nothing told: no id, no name of what Lifeboat protects.
        assert.ok(!refused(none) && none.status < 500, `${what} without a token: ${none.status}`);
        assert.ok(!none.text.includes(pid as string) && !none.text.includes('SampleApp'), `${what}: a public answer reveals nothing`);
        continue;
      }
      assertFabricError(none, 401, 'LIFEBOAT_E_UNAUTHENTICATED', `${what} without a token`);
      assert.ok(!none.text.includes(pid as string) && !none.text.includes('SampleApp'), `${what}: a 401 reveals nothing`);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      assertFabricError(await send(lb.url, { ...base, token: 'lbt_not-a-token-anyone-made-0000000000' }), 401, 'LIFEBOAT_E_UNAUTHENTICATED', `${what} with an unknown token`);

      const asScraper = await send(lb.url, { ...base, token: scraper.Token });
      if (r.access === 'metrics' || r.access === 'any') assert.ok(!refused(asScraper) && asScraper.status < 500, `${what} as metrics: ${asScraper.status} ${asScraper.text}`);
      else assertFabricError(asScraper, 403, 'E_ACCESSDENIED', `${what} as a metrics token`);

      const asReader = await send(lb.url, { ...base, token: reader.Token });
      if (r.access === 'read' || r.access === 'metrics' || r.access === 'any') assert.ok(!refused(asReader) && asReader.status < 500, `${what} as reader: ${asReader.status} ${asReader.text}`);
      else assertFabricError(asReader, 403, 'E_ACCESSDENIED', `${what} as reader`);

      const asHost = await send(lb.url, { ...base, token: host.Token });
      if (r.access === 'host' || r.access === 'any') assert.ok(!refused(asHost) && asHost.status < 500, `${what} as its own host: ${asHost.status} ${asHost.text}`);
      else assertFabricError(asHost, 403, 'E_ACCESSDENIED', `${what} as a host`);
      if (r.access === 'host') {
        const other = await send(lb.url, { method: r.method, path: pathOf(r.url, { partition: pid as string, host: 'h2' }), token: host.Token });
        assertFabricError(other, 403, 'E_ACCESSDENIED', `${what} as another host`);
      }

      // Admin last: its call may change something (always refused for bad input here, never for access).
      const asAdmin = await send(lb.url, base);
      assert.ok(!refused(asAdmin) && asAdmin.status < 500, `${what} as admin: ${asAdmin.status} ${asAdmin.text}`);
    }
  });

  it('refuses an unauthenticated caller before reading its body', async (t) => {
    const lb = await startTestLifeboat(t, { sample: false });
    // 5 MB is over the body limit: a parsed body would be 413; the gate answers first.
    const big = await send(lb.url, { method: 'POST', path: `/BackupRestore/BackupPolicies/$/Create?${V}`, raw: `{"x":"${'x'.repeat(5 * 1024 * 1024)}"}`, token: null });
    assertFabricError(big, 401, 'LIFEBOAT_E_UNAUTHENTICATED');
    const reg = await send(lb.url, { method: 'POST', path: '/Lifeboat/Hosts/h/$/Register', raw: `{"x":"${'x'.repeat(3 * 1024 * 1024)}"}`, token: null });
    assertFabricError(reg, 401, 'LIFEBOAT_E_UNAUTHENTICATED');
  });

  it('refuses to register a route that declares no access', () => {
    const app = Fastify();
    const dir = tempDir({ after: () => undefined });
    const catalog = new SqliteCatalog(join(dir, 'c.sqlite'));
    installGate(app, { access: new AccessService({ store: catalog.access, clock: { now: () => new Date() } }), allowedHosts: [], port: () => 0, tls: false, log: { warn: () => undefined } });
    assert.throws(() => app.get('/Anything', async () => ({})), /no access decision/);
    void catalog.close();
  });

  it('tokens: made with a role, listed without their secret, stored only as hashes, revoked at once', async (t) => {
    const lb = await startTestLifeboat(t);
    const r = await createToken(lb, { Role: 'reader', Name: 'ops-reader' });
    assert.match(r.Token, /^lbt_[A-Za-z0-9_-]{43}$/, 'a 256-bit token');
    assertSuccess(await send(lb.url, { method: 'GET', path: '/Applications?api-version=6.0', token: r.Token }), 200);
    const list = assertSuccess(await send(lb.url, { method: 'GET', path: `/Lifeboat/$/Tokens?${V}` }), 200) as { Items: Array<Record<string, unknown>> };
    assert.deepEqual(list.Items.map((i) => [i.Name, i.Role]), [['ops-reader', 'reader']]);
    assert.ok(!JSON.stringify(list).includes(r.Token), 'the list holds no token');
    assertFabricError(await send(lb.url, { method: 'POST', path: `/Lifeboat/$/Tokens/$/Create?${V}`, body: { Role: 'reader', Name: 'ops-reader' } }), 409, 'LIFEBOAT_E_TOKEN_EXISTS');
    assertFabricError(await send(lb.url, { method: 'POST', path: `/Lifeboat/$/Tokens/$/Create?${V}`, body: { Role: 'root' } }), 400, 'E_INVALIDARG');
    assertFabricError(await send(lb.url, { method: 'POST', path: `/Lifeboat/$/Tokens/$/Create?${V}`, body: { Role: 'host' } }), 400, 'E_INVALIDARG');
    const me = assertSuccess(await send(lb.url, { method: 'GET', path: `/Lifeboat/$/Me?${V}`, token: r.Token }), 200) as Record<string, unknown>;
    assert.deepEqual(me, { Name: 'ops-reader', Role: 'reader', Via: 'token' });

    assertSuccess(await send(lb.url, { method: 'POST', path: `/Lifeboat/$/Tokens/ops-reader/$/Revoke?${V}` }), 200);
    assertFabricError(await send(lb.url, { method: 'GET', path: '/Applications?api-version=6.0', token: r.Token }), 401, 'LIFEBOAT_E_UNAUTHENTICATED', 'a revoked token');
    assertFabricError(await send(lb.url, { method: 'POST', path: `/Lifeboat/$/Tokens/ops-reader/$/Revoke?${V}` }), 404, 'LIFEBOAT_E_TOKEN_NOT_FOUND');
    await lb.close();
    const { readFileSync } = await import('node:fs');
    const raw = readFileSync(join(lb.dataDir, 'catalog.sqlite'));
    assert.equal(raw.indexOf(Buffer.from(r.Token)), -1, 'the catalog does not hold the token');
  });

  it('makes a bootstrap admin token in <data-dir>/admin.token (0600) when none is given, and keeps it across restarts', async (t) => {
    const dataDir = tempDir(t);
    const first = await startLifeboat({ dataDir, port: 0, sample: false });
    const file = join(dataDir, 'admin.token');
    assert.equal(first.adminTokenFile, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700, 'the data dir is private');
    assert.equal(statSync(join(dataDir, 'catalog.sqlite')).mode & 0o777, 0o600, 'the catalog is private');
    const { readFileSync, chmodSync } = await import('node:fs');
    const token = readFileSync(file, 'utf8').trim();
    assertFabricError(await send(first.url, { method: 'GET', path: '/Applications?api-version=6.0', token: TEST_ADMIN_TOKEN }), 401, 'LIFEBOAT_E_UNAUTHENTICATED');
    assertSuccess(await send(first.url, { method: 'GET', path: '/Applications?api-version=6.0', token }), 200);
    await first.close();
    const again = await startLifeboat({ dataDir, port: 0, sample: false });
    assertSuccess(await send(again.url, { method: 'GET', path: '/Applications?api-version=6.0', token }), 200, 'the same token after a restart');
    await again.close();
    chmodSync(file, 0o644);
    await assert.rejects(startLifeboat({ dataDir, port: 0, sample: false }), /may be read by other users/);
  });

  it('warns when it listens beyond loopback without TLS, and takes its own host name in the Host header there', async (t) => {
    const logged: string[] = [];
    const stream = new Writable({ write(chunk: Buffer, _enc, done) { logged.push(chunk.toString('utf8')); done(); } });
    const lb = await startTestLifeboat(t, { sample: false, bind: '0.0.0.0', logger: { level: 'warn', stream } });
    assert.ok(logged.some((l) => l.includes('without TLS')), logged.join(''));
    const port = new URL(lb.url).port;
    const r = await rawRequest(`http://127.0.0.1:${port}`, { method: 'GET', path: '/Applications?api-version=6.0', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, host: `${hostname()}:${port}` } });
    assertSuccess(r, 200, 'the machine\'s own name');
  });

  it('refuses --insecure-no-auth on a non-loopback bind, and lets every caller in on loopback', async (t) => {
    const dataDir = tempDir(t);
    await assert.rejects(startLifeboat({ dataDir, port: 0, sample: false, bind: '0.0.0.0', auth: { insecureNoAuth: true } }), /refused on the non-loopback bind/);
    const lb = await startLifeboat({ dataDir, port: 0, sample: false, auth: { insecureNoAuth: true } });
    t.after(() => lb.close());
    assertSuccess(await send(lb.url, { method: 'GET', path: '/Applications?api-version=6.0', token: null }), 200);
  });
});

/** A raw request with any Host and Origin (fetch may not set Host). */
function rawRequest(url: string, o: { method: string; path: string; headers: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method: o.method, path: o.path, headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        resolve({ status: res.statusCode ?? 0, headers, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('cross-site and DNS-rebinding requests', () => {
  it('refuses a text/plain POST, a foreign Host and a foreign Origin, even with a valid token, and creates nothing', async (t) => {
    const lb = await startTestLifeboat(t);
    const [pid] = await partitionIds(lb);
    const port = new URL(lb.url).port;
    const auth = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
    const body = JSON.stringify({ BackupStorage: lb.storage });
    const path = `/Partitions/${pid}/$/Backup?${V}`;
    const progress = async (): Promise<unknown> => jsonOf(await send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetBackupProgress?${V}` }));
    const before = await progress();

    // A page can send text/plain (and forms) cross-site without a preflight.
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      assertFabricError(await rawRequest(lb.url, { method: 'POST', path, headers: { ...auth, host: `127.0.0.1:${port}`, 'content-type': type }, body }), 415, 'LIFEBOAT_E_UNSUPPORTED_MEDIA_TYPE', type);
    }
    const rebinding = await rawRequest(lb.url, { method: 'POST', path, headers: { ...auth, host: `evil.example:${port}`, 'content-type': 'application/json' }, body });
    assertFabricError(rebinding, 403, 'E_ACCESSDENIED', 'a foreign Host');
    for (const origin of ['http://evil.example', `http://localhost:${Number(port) + 1}`, 'null', `https://127.0.0.1:${port}`]) {
      const crossSite = await rawRequest(lb.url, { method: 'POST', path, headers: { ...auth, host: `127.0.0.1:${port}`, origin, 'content-type': 'application/json' }, body });
      assertFabricError(crossSite, 403, 'E_ACCESSDENIED', `Origin ${origin}`);
    }
    assertFabricError(await rawRequest(lb.url, { method: 'GET', path: '/Applications?api-version=6.0', headers: { ...auth, host: `127.0.0.1:${port}`, 'sec-fetch-site': 'cross-site' } }), 403, 'E_ACCESSDENIED');
    assert.deepEqual(await progress(), before, 'no backup was accepted');

    // The service's own origin and localhost pass.
    const own = await rawRequest(lb.url, { method: 'GET', path: '/Applications?api-version=6.0', headers: { ...auth, host: `localhost:${port}`, origin: `http://localhost:${port}` } });
    assertSuccess(own, 200, 'own origin');
  });

  it('accepts a Host named by --allowed-hosts', async (t) => {
    const lb = await startTestLifeboat(t, { sample: false, auth: { allowedHosts: ['lifeboat.internal'] } });
    const port = new URL(lb.url).port;
    const r = await rawRequest(lb.url, { method: 'GET', path: '/Applications?api-version=6.0', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, host: `lifeboat.internal:${port}` } });
    assertSuccess(r, 200);
  });
});

describe('request log', () => {
  it('logs each request once, at debug, without its query; at info only the audit lines', async (t) => {
    for (const level of ['info', 'debug'] as const) {
      const lines: Array<Record<string, unknown>> = [];
      const stream = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>); done(); } });
      const lb = await startTestLifeboat(t, { sample: false, logger: { level, stream } });
      assertSuccess(await send(lb.url, { method: 'GET', path: '/Applications?api-version=6.0' }), 200);
      await send(lb.url, { method: 'POST', path: `/BackupRestore/BackupPolicies/$/Create?${V}`, body: {} });
      await lb.close();
      const requests = lines.filter((l) => l.msg === 'request completed' || l.msg === 'incoming request');
      if (level === 'info') assert.deepEqual(requests, [], 'no line per request at info');
      else assert.deepEqual(requests.map((l) => [l.method, l.url, l.status]), [['GET', '/Applications', 200], ['POST', '/BackupRestore/BackupPolicies/$/Create', 400]]);
      assert.equal(lines.filter((l) => l.msg === 'audit').length, 1, `${level}: the POST's audit line`);
    }
  });
});

describe('audit log', () => {
  it('records every mutating call with principal, role, route, entity and outcome, and is for admins only', async (t) => {
    const lb = await startTestLifeboat(t);
    const [pid] = await partitionIds(lb);
    const reader = await createToken(lb, { Role: 'reader', Name: 'aud-reader' });
    await send(lb.url, { method: 'POST', path: `/Partitions/${pid}/$/Backup?${V}`, body: { BackupStorage: lb.storage } });
    await send(lb.url, { method: 'POST', path: `/Partitions/${pid}/$/Restore?${V}`, body: {}, token: reader.Token });
    await send(lb.url, { method: 'POST', path: `/BackupRestore/BackupPolicies/$/Create?${V}`, body: {}, token: null });
    await send(lb.url, { method: 'GET', path: `/Partitions/${pid}/$/GetBackupProgress?${V}` });
    assertFabricError(await send(lb.url, { method: 'GET', path: `/Lifeboat/$/AuditLog?${V}`, token: reader.Token }), 403, 'E_ACCESSDENIED');
    const log = assertSuccess(await send(lb.url, { method: 'GET', path: `/Lifeboat/$/AuditLog?${V}` }), 200) as { Items: Array<Record<string, unknown>> };
    const rows = log.Items.map((i) => [i.Principal, i.Role, i.Method, i.Route, i.Entity, i.Status, i.Outcome]);
    assert.deepEqual(rows, [
      ['bootstrap-admin', 'admin', 'POST', '/Lifeboat/$/Tokens/$/Create', '', 201, 'allowed'],
      ['bootstrap-admin', 'admin', 'POST', '/Partitions/:partitionId/$/Backup', pid, 202, 'allowed'],
      ['aud-reader', 'reader', 'POST', '/Partitions/:partitionId/$/Restore', pid, 403, 'denied'],
      ['anonymous', 'none', 'POST', '/BackupRestore/BackupPolicies/$/Create', '', 401, 'denied'],
    ], 'GETs are not audited; refusals are');
    const paged = assertSuccess(await send(lb.url, { method: 'GET', path: `/Lifeboat/$/AuditLog?${V}&MaxResults=3` }), 200) as { ContinuationToken: string; Items: unknown[] };
    assert.equal(paged.Items.length, 3);
    const rest = assertSuccess(await send(lb.url, { method: 'GET', path: `/Lifeboat/$/AuditLog?${V}&ContinuationToken=${paged.ContinuationToken}` }), 200) as { Items: unknown[] };
    assert.equal(rest.Items.length, 1);
  });
});

/**
 * Mutual TLS, as a Service Fabric cluster secures its management endpoint: HTTPS, client
 * certificates checked against a client CA, each mapped by thumbprint or subject to a role. The
 * official azure-servicefabric client works unmodified through its requestOptions (cert, key, ca),
 * and also with a bearer header over HTTPS. Certificates are made with openssl in the test.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ServiceFabricClient } from 'azure-servicefabric';
import { adminHeaders, officialRequestOptions } from '../support/api-http.ts';
import { startTestLifeboat } from '../support/lifeboat.ts';
import { APP_NAME } from '../support/sample.ts';
import { tempDir } from '../support/tmp.ts';

interface Pem { readonly cert: Buffer; readonly key: Buffer }

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A CA, a server certificate for 127.0.0.1 signed by it, and client certificates (two signed by the CA, one self-signed). */
function makeCertificates(dir: string): { ca: Pem; server: Pem; admin: Pem; reader: Pem; unmapped: Pem; stranger: Pem } {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Lifeboat Test CA'], dir);
  const signed = (name: string, cn: string, ext?: string): Pem => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    const extArgs: string[] = [];
    if (ext) {
      writeFileSync(join(dir, `${name}.ext`), ext);
      extArgs.push('-extfile', `${name}.ext`);
    }
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...extArgs], dir);
    return { cert: readFileSync(join(dir, `${name}.crt`)), key: readFileSync(join(dir, `${name}.key`)) };
  };
  const server = signed('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const admin = signed('admin', 'lifeboat-admin', 'extendedKeyUsage=clientAuth\n');
  const reader = signed('reader', 'lifeboat-reader', 'extendedKeyUsage=clientAuth\n');
  const unmapped = signed('unmapped', 'nobody', 'extendedKeyUsage=clientAuth\n');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'stranger.key', '-out', 'stranger.crt', '-days', '2', '-subj', '/CN=lifeboat-admin'], dir);
  const stranger = { cert: readFileSync(join(dir, 'stranger.crt')), key: readFileSync(join(dir, 'stranger.key')) };
  return { ca: { cert: readFileSync(join(dir, 'ca.crt')), key: readFileSync(join(dir, 'ca.key')) }, server, admin, reader, unmapped, stranger };
}

function get(url: string, o: { cert?: Buffer; key?: Buffer; ca: Buffer; headers?: Record<string, string> }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: o.ca, ...(o.cert ? { cert: o.cert, key: o.key } : {}), headers: o.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('mutual TLS', () => {
  it('maps client certificates to roles and serves the official client through cert/key/ca and through a bearer header', async (t) => {
    const dir = tempDir(t);
    const c = makeCertificates(dir);
    const adminThumb = new X509Certificate(c.admin.cert).fingerprint; // SHA-1, AA:BB:… as Windows shows it
    const lb = await startTestLifeboat(t, {
      tls: { cert: c.server.cert, key: c.server.key, clientCa: c.ca.cert },
      auth: { clientCertRoles: new Map([[adminThumb, 'admin'], ['CN=lifeboat-reader', 'reader']]) },
    });
    assert.match(lb.url, /^https:\/\//);
    const apps = `${lb.url}/Applications?api-version=6.0`;

    assert.equal((await get(apps, { ca: c.ca.cert, ...c.admin })).status, 200, 'the admin certificate');
    assert.equal((await get(apps, { ca: c.ca.cert, ...c.reader })).status, 200, 'the reader certificate reads');
    const policy = `${lb.url}/BackupRestore/BackupPolicies/$/Create?api-version=6.4`;
    const readerPost = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(policy, { method: 'POST', ca: c.ca.cert, ...c.reader, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(readerPost, 403, 'the reader certificate may not create a policy');
    assert.equal((await get(apps, { ca: c.ca.cert, ...c.unmapped })).status, 401, 'a CA-signed certificate with no role');
    assert.equal((await get(apps, { ca: c.ca.cert, ...c.stranger })).status, 401, 'a certificate the CA did not sign, whatever its subject');
    assert.equal((await get(apps, { ca: c.ca.cert })).status, 401, 'no certificate, no token');
    assert.equal((await get(apps, { ca: c.ca.cert, headers: adminHeaders() })).status, 200, 'a bearer token over HTTPS');

    const viaCert = new ServiceFabricClient(lb.url, { noRetryPolicy: true, requestOptions: officialRequestOptions({ cert: c.admin.cert, key: c.admin.key, ca: c.ca.cert }) });
    const list = await viaCert.getApplicationInfoList();
    assert.deepEqual(list.items?.map((a) => a.name), [APP_NAME]);
    const viaToken = new ServiceFabricClient(lb.url, { noRetryPolicy: true, requestOptions: officialRequestOptions({ headers: adminHeaders(), ca: c.ca.cert }) });
    assert.deepEqual((await viaToken.getApplicationInfoList()).items?.map((a) => a.name), [APP_NAME]);
    const noCredential = new ServiceFabricClient(lb.url, { noRetryPolicy: true, requestOptions: officialRequestOptions({ ca: c.ca.cert }) });
    await assert.rejects(noCredential.getApplicationInfoList(), (err: { statusCode?: number }) => err.statusCode === 401);
  });
});

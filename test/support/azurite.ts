/**
 * Azurite, Microsoft's Azure Storage emulator, for tests: `startAzurite()` (from
 * bench/emulators/azurite.ts, which the benchmarks share) runs its blob service on a free port with
 * in-memory storage; `azuriteForTests()` starts one per test file and gives each test a fresh container. A missing azurite binary is a reason to skip (which CI refuses); an
 * azurite that is installed but does not start fails the tests. `startFaultProxy()` puts an HTTP
 * proxy in front of it that records requests and injects faults (error statuses, reset
 * connections, bodies cut off), since Azurite itself cannot be told to fail.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before } from 'node:test';
import type { TokenCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import { AzureBlobStore } from '../../src/storage/azure-blob.ts';
import { type Azurite, type AzuriteOptions, azuriteMissing, startAzurite } from '../../bench/emulators/azurite.ts';

export { AZURITE_ACCOUNT, AZURITE_BIN, AZURITE_KEY, type Azurite, type AzuriteOptions, azuriteMissing, startAzurite } from '../../bench/emulators/azurite.ts';

export interface AzuriteForTests {
  /** Why the Azurite tests cannot run here (azurite not installed), or undefined. */
  readonly skip: string | undefined;
  /** The running server; only inside tests (it starts in a before hook). */
  server(): Azurite;
  /** A new empty container, deleted after the test. */
  container(t: { after(fn: () => unknown): void }): Promise<string>;
}

/**
 * Starts Azurite once for the calling test file (node:test before/after at the top level). A
 * failure to start makes the before hook, and so every test of the file, fail.
 */
export function azuriteForTests(options: AzuriteOptions = {}): AzuriteForTests {
  const skip = azuriteMissing();
  let server: Azurite | undefined;
  if (!skip) {
    before(async () => { server = await startAzurite(options); });
    after(async () => { await server?.stop(); });
  }
  const running = (): Azurite => {
    if (!server) throw new Error(skip ?? 'Azurite is not running (its before hook failed or has not run)');
    return server;
  };
  return {
    skip,
    server: running,
    container: async (t) => {
      const name = `lb-${randomBytes(8).toString('hex')}`;
      const c = BlobServiceClient.fromConnectionString(running().connectionString).getContainerClient(name);
      await c.create();
      t.after(() => c.deleteIfExists().catch(() => undefined));
      return name;
    },
  };
}

/**
 * A throwaway self-signed certificate for 127.0.0.1 (openssl), for HTTPS Azurite; trust it in a
 * child process with NODE_EXTRA_CA_CERTS. Undefined when openssl is not available.
 */
export function selfSignedCertificate(dir: string): { certPath: string; keyPath: string } | undefined {
  const certPath = join(dir, 'azurite-cert.pem');
  const keyPath = join(dir, 'azurite-key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return { certPath, keyPath };
}

/**
 * An unsigned JWT shaped like a Microsoft Entra access token for Azure Storage: what Azurite's
 * "basic" OAuth accepts. `audience` other than storage's makes Azurite refuse it.
 */
export function fakeEntraToken(audience = 'https://storage.azure.com', lifetimeSeconds = 3600): { token: string; expiresOnTimestamp: number } {
  const now = Math.floor(Date.now() / 1000);
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = { aud: audience, iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000000/', iat: now - 60, nbf: now - 60, exp: now + lifetimeSeconds };
  return { token: `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.unsigned`, expiresOnTimestamp: (now + lifetimeSeconds) * 1000 };
}

export interface ManagedIdentityReport {
  readonly description: string;
  /** The scopes the store asked the credential for, one entry per getToken call. */
  readonly scopes: string[][];
  readonly readBack: string;
  readonly listed: string[];
  readonly size: number | undefined;
  readonly secondPut: { code: string; message: string } | undefined;
  readonly wrongAudience: { code: string; message: string } | undefined;
}

/**
 * The child-process half of the managed-identity test: it must run where Azurite's certificate is
 * trusted (NODE_EXTRA_CA_CERTS is read only at start-up). Creates a container with the account
 * key, then uses it through AzureBlobStore with nothing but a TokenCredential.
 */
export async function managedIdentityRoundTrip(connectionString: string, blobEndpoint: string): Promise<ManagedIdentityReport> {
  const containerName = `lb-mi-${randomBytes(6).toString('hex')}`;
  await BlobServiceClient.fromConnectionString(connectionString).getContainerClient(containerName).create();
  const scopes: string[][] = [];
  const credential = (audience: string): TokenCredential => ({
    getToken: async (s) => {
      scopes.push(Array.isArray(s) ? [...s] : [s]);
      return fakeEntraToken(audience);
    },
  });
  const store = new AzureBlobStore({ blobServiceUri: blobEndpoint, containerName, credential: credential('https://storage.azure.com') });
  await store.validate();
  await store.put('App/Svc/p/backup.lbk', Readable.from([Buffer.from('through '), Buffer.from('a token')]));
  const chunks: Buffer[] = [];
  for await (const c of await store.get('App/Svc/p/backup.lbk')) chunks.push(c as Buffer);
  const listed: string[] = [];
  for await (const o of store.list('App/')) listed.push(o.key);
  const caught = async (p: Promise<unknown>): Promise<{ code: string; message: string } | undefined> => {
    try {
      await p;
      return undefined;
    } catch (err) {
      return { code: String((err as { code?: unknown }).code), message: (err as Error).message };
    }
  };
  const secondPut = await caught(store.put('App/Svc/p/backup.lbk', Buffer.from('again')));
  const other = new AzureBlobStore({ blobServiceUri: blobEndpoint, containerName, credential: credential('https://vault.azure.net') });
  const wrongAudience = await caught(other.validate());
  return {
    description: store.description, scopes, readBack: Buffer.concat(chunks).toString('utf8'), listed,
    size: (await store.head('App/Svc/p/backup.lbk'))?.size, secondPut, wrongAudience,
  };
}

// ---- A fault-injecting proxy in front of Azurite. ----

/** What the proxy does to the next `times` requests of `op` (an operation name as recorded, see azureOp). */
export type AzureFault = { readonly op: string; readonly times: number } & (
  /** Answer with this status and Azure error code (x-ms-error-code and the XML body), e.g. 503 ServerBusy. */
  | { readonly action: 'status'; readonly status: number; readonly code: string }
  /** Reset the connection without answering: the client sees ECONNRESET or EPIPE. */
  | { readonly action: 'reset' }
  /** Pass the request on, send Azurite's status, headers and `afterBytes` bytes of its body, then reset. */
  | { readonly action: 'cut'; readonly afterBytes: number }
);

export interface ProxiedRequest {
  readonly op: string;
  /** The blob name (or '' for container and account requests). */
  readonly blob: string;
  /** x-ms-range or Range, for a GetBlob. */
  readonly range?: string;
  readonly fault?: AzureFault['action'];
}

export interface FaultProxy {
  /** Azurite's connection string, with the proxy as its blob endpoint. */
  readonly connectionString: string;
  readonly blobEndpoint: string;
  /** Requests through the proxy so far, in arrival order. */
  readonly requests: ProxiedRequest[];
  fault(fault: AzureFault): void;
  close(): Promise<void>;
}

/** The Blob service operation a request is, by method and query (only those the adapter sends). */
export function azureOp(method: string, url: URL): string {
  const comp = url.searchParams.get('comp');
  const container = url.searchParams.get('restype') === 'container';
  if (container) {
    if (comp === 'list') return 'ListBlobs';
    return { PUT: 'CreateContainer', DELETE: 'DeleteContainer' }[method] ?? 'GetContainerProperties';
  }
  if (method === 'PUT') return comp === 'block' ? 'PutBlock' : comp === 'blocklist' ? 'PutBlockList' : 'PutBlob';
  return { GET: 'GetBlob', HEAD: 'GetBlobProperties', DELETE: 'DeleteBlob' }[method] ?? `${method} ${comp ?? 'blob'}`;
}

async function drainRequest(req: IncomingMessage): Promise<void> {
  for await (const _ of req) { /* the client sees our answer, not a reset */ }
}

/** Forwards to Azurite; with `cutAfter`, ends the answer with a reset after that many body bytes. */
function forward(target: URL, req: IncomingMessage, res: ServerResponse, cutAfter?: number): void {
  const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    if (cutAfter === undefined) {
      answer.pipe(res);
      return;
    }
    let sent = 0;
    answer.on('data', (c: Buffer) => {
      if (sent >= cutAfter) return;
      const chunk = c.subarray(0, cutAfter - sent);
      sent += chunk.length;
      // Reset once the cut-off bytes are handed to the socket, so the client gets them first.
      res.write(chunk, () => { if (sent >= cutAfter) { answer.destroy(); req.socket.destroy(); } });
    });
    answer.on('end', () => req.socket.destroy());
  });
  up.on('error', () => req.socket.destroy());
  req.pipe(up);
}

/** Starts a proxy to `target` (a running Azurite) on a free loopback port; close it when done. */
export async function startFaultProxy(target: Azurite): Promise<FaultProxy> {
  const upstream = new URL(target.blobEndpoint);
  const requests: ProxiedRequest[] = [];
  const faults: AzureFault[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const op = azureOp(req.method ?? 'GET', url);
    // Path-style: /<account>/<container>/<blob…>.
    const blob = decodeURIComponent(url.pathname.split('/').slice(3).join('/'));
    const fault = faults.find((f) => f.op === op && f.times > 0);
    if (fault) (fault as { times: number }).times--;
    const header = req.headers['x-ms-range'] ?? req.headers.range;
    requests.push({ op, blob, ...(op === 'GetBlob' && typeof header === 'string' ? { range: header } : {}), ...(fault ? { fault: fault.action } : {}) });
    if (fault?.action === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.action === 'status') {
      void drainRequest(req).then(() => {
        const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${fault.code}</Code><Message>Injected by the test proxy.</Message></Error>`;
        res.writeHead(fault.status, { 'content-type': 'application/xml', 'x-ms-error-code': fault.code });
        res.end(req.method === 'HEAD' ? undefined : xml);
      });
      return;
    }
    forward(upstream, req, res, fault?.action === 'cut' ? fault.afterBytes : undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const blobEndpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}${upstream.pathname}`;
  return {
    connectionString: target.connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${blobEndpoint}`),
    blobEndpoint,
    requests,
    fault: (f) => { faults.push({ ...f }); },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

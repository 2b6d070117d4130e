/**
 * s3rver 3.7.1 (a fake S3 written for Node) for the S3 adapter's tests and the benchmarks: a server
 * in a child process on a free loopback port with a temporary data directory (the tests' per-file
 * harness, s3rverForTests, is test/support/s3server.ts).
 * Credentials are s3rver's built-in pair, S3RVER / S3RVER.
 *
 * What s3rver lacks on Node 20, and what this harness does about it:
 * - It encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node 17 and later)
 *   keeps in its legacy provider; in-process, every truncated listing fails with 500 InternalError
 *   (ERR_OSSL_EVP_UNSUPPORTED). The child therefore runs with --openssl-legacy-provider.
 * - It has no AbortMultipartUpload (405 MethodNotAllowed) and no ListMultipartUploads
 *   (501 NotImplemented). The child serves both from s3rver's own folder of pending uploads
 *   (`<bucket>/._S3rver_uploads/<id>`), so a test sees the uploads S3 would still hold.
 * - It ignores If-None-Match on PutObject and CompleteMultipartUpload. The child answers 412
 *   PreconditionFailed when the key exists, as AWS S3's conditional writes do.
 * - It checks only that the access key id is S3RVER; SigV4 signatures are not verified at all, so a
 *   wrong secret key is accepted and SignatureDoesNotMatch never happens here.
 * - It lists keys in the order of its folder walk, not byte order ('a/b/…' before 'a/b-x'), and
 *   pages by "keys after the last one in that order", so a listing of more than a page can skip
 *   keys. src/storage/s3.ts sorts; the paging test uses keys whose two orders agree.
 * The child also records each bucket's requests (operation, key, If-None-Match, Range) so a test
 * can see a put go multipart or carry its condition, and injects faults a test asks for (`fault`):
 * the next requests of one operation on one bucket are answered with an error status, have their
 * connection reset, or (GetObject) have their body cut off after some bytes — failures from a real
 * server and a real connection, as the adapter and a RetryingStore meet them in production.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';

/** s3rver's built-in key pair: access key id and secret are both this. */
export const S3RVER_KEY = 'S3RVER';

export interface RecordedRequest {
  readonly op: string;
  readonly key: string;
  readonly ifNoneMatch?: string;
  /** The Range header of a GetObject. */
  readonly range?: string;
  /** The fault injected into this request, if any. */
  readonly fault?: S3Fault['action'];
}

/** What the harness does to the next `times` requests of `op` (an operation name as recorded) on a bucket. */
export type S3Fault = { readonly op: string; readonly times: number } & (
  /** Answer with this status and S3 error code, e.g. 503 SlowDown. */
  | { readonly action: 'status'; readonly status: number; readonly code: string }
  /** Reset the connection without answering: the client sees ECONNRESET or EPIPE. */
  | { readonly action: 'reset' }
  /** GetObject: send the status, headers and `afterBytes` bytes of the body, then reset the connection. */
  | { readonly action: 'cut'; readonly afterBytes: number }
);

/** Why s3rver cannot run here (not installed), or undefined when it can. */
export function s3rverMissing(): string | undefined {
  try {
    createRequire(import.meta.url).resolve('s3rver');
    return undefined;
  } catch {
    return 's3rver is not installed (run npm install)';
  }
}

export interface S3rverHandle {
  /** `http://127.0.0.1:<port>`; path-style addressing only. */
  readonly endpoint: string;
  /** A client with s3rver's credentials, for setting up and checking behind the adapter's back. */
  readonly client: S3Client;
  /** Creates a bucket with a random name and returns the name. */
  createBucket(): Promise<string>;
  /** Multipart uploads begun and neither completed nor aborted (ListMultipartUploads). */
  pendingUploads(bucket: string): Promise<Array<{ key: string; uploadId: string }>>;
  /** The bucket's requests so far, and the most UploadPart requests it had at once. */
  requests(bucket: string): Promise<{ requests: RecordedRequest[]; maxPartsInFlight: number }>;
  /** Injects a fault into the bucket's next requests of one operation (after those already asked for). */
  fault(bucket: string, fault: S3Fault): Promise<void>;
}

/** Starts s3rver; it stops, and its directory goes, in `hooks.after`. */
export async function startS3rver(hooks: { after(fn: () => unknown): void }): Promise<S3rverHandle> {
  const directory = mkdtempSync(join(tmpdir(), 'lifeboat-s3rver-'));
  // Kept for a look afterwards when LIFEBOAT_KEEP_TMP is set, as the tests' temporary folders are.
  const removeDir = (): void => { if (!process.env.LIFEBOAT_KEEP_TMP) rmSync(directory, { recursive: true, force: true }); };
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--import', 'tsx', fileURLToPath(import.meta.url), directory], {
    cwd: root, stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  hooks.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    await exited;
    removeDir();
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    void exited.then(() => reject(new Error(`s3rver exited before listening (code ${child.exitCode}): ${stderr}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const admin = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  hooks.after(() => admin.destroy());
  return {
    endpoint,
    client: admin,
    async createBucket() {
      const name = `lifeboat-test-${randomBytes(6).toString('hex')}`;
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async pendingUploads(bucket) {
      const res = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (res.Uploads ?? []).map((u) => ({ key: u.Key ?? '', uploadId: u.UploadId ?? '' }));
    },
    async requests(bucket) {
      const res = await fetch(`${endpoint}/__harness/requests?bucket=${encodeURIComponent(bucket)}`);
      return await res.json() as { requests: RecordedRequest[]; maxPartsInFlight: number };
    },
    async fault(bucket, fault) {
      const res = await fetch(`${endpoint}/__harness/faults?bucket=${encodeURIComponent(bucket)}`, { method: 'POST', body: JSON.stringify(fault) });
      if (res.status !== 204) throw new Error(`the harness refused the fault: ${res.status} ${await res.text()}`);
    },
  };
}

// ---- The child: s3rver plus the operations it lacks. ----

/** The little of Koa's context the harness middleware uses. */
interface KoaContext {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string | string[] | undefined>;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  status: number;
  body: unknown;
  type: string;
  /** false: Koa leaves the response alone (we wrote it, or reset the connection). */
  respond: boolean;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverServer {
  readonly middleware: Middleware[];
  run(): Promise<{ port: number }>;
}

function opName(method: string, query: KoaContext['query'], key: string): string {
  const has = (q: string): boolean => query[q] !== undefined;
  if (!key) {
    if (method === 'GET' && has('uploads')) return 'ListMultipartUploads';
    return { GET: 'ListObjects', HEAD: 'HeadBucket', PUT: 'CreateBucket', DELETE: 'DeleteBucket' }[method] ?? `${method} bucket`;
  }
  if (method === 'POST') return has('uploads') ? 'CreateMultipartUpload' : has('uploadId') ? 'CompleteMultipartUpload' : 'POST object';
  if (method === 'PUT') return has('uploadId') ? 'UploadPart' : 'PutObject';
  if (method === 'DELETE') return has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  return { GET: 'GetObject', HEAD: 'HeadObject' }[method] ?? `${method} object`;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) { /* discard the body so the client sees our answer, not a reset */ }
}

function answerError(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
}

/** Sends the status, headers and the first `afterBytes` bytes of s3rver's answer, then resets the connection. */
async function cutAnswer(ctx: KoaContext, afterBytes: number): Promise<void> {
  const body = ctx.body as Readable;
  ctx.respond = false;
  ctx.res.writeHead(ctx.status);
  let sent = 0;
  for await (const c of body) {
    const chunk = (c as Buffer).subarray(0, afterBytes - sent);
    // Wait until the bytes are handed to the socket, so the client gets them before the reset.
    await new Promise<void>((resolve) => ctx.res.write(chunk, () => resolve()));
    sent += chunk.length;
    if (sent >= afterBytes) break;
  }
  body.destroy();
  ctx.req.socket.destroy();
}

function harness(directory: string): Middleware {
  const log = new Map<string, RecordedRequest[]>();
  const faults = new Map<string, S3Fault[]>();
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  // s3rver's own layout: `<bucket>/<dirs of the key>/<last segment>._S3rver_object`.
  const objectFile = (bucket: string, key: string): string => {
    const parts = key.split('/');
    const last = parts.pop() ?? '';
    return join(directory, bucket, ...parts, `${last}._S3rver_object`);
  };
  return async (ctx, next) => {
    if (ctx.path === '/__harness/requests') {
      const bucket = String(ctx.query.bucket);
      ctx.type = 'application/json';
      ctx.body = JSON.stringify({ requests: log.get(bucket) ?? [], maxPartsInFlight: maxInFlight.get(bucket) ?? 0 });
      return;
    }
    if (ctx.path === '/__harness/faults' && ctx.method === 'POST') {
      let text = '';
      for await (const c of ctx.req) text += String(c);
      const bucket = String(ctx.query.bucket);
      faults.set(bucket, [...(faults.get(bucket) ?? []), JSON.parse(text) as S3Fault]);
      ctx.status = 204;
      return;
    }
    const [, bucket = '', ...rest] = ctx.path.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const op = opName(ctx.method, ctx.query, key);
    const condition = ctx.headers['if-none-match'];
    const ifNoneMatch = typeof condition === 'string' && (op === 'PutObject' || op === 'CompleteMultipartUpload') ? condition : undefined;
    const range = op === 'GetObject' && typeof ctx.headers.range === 'string' ? ctx.headers.range : undefined;
    // The first fault asked for this operation that has times left fires.
    const fault = faults.get(bucket)?.find((f) => f.op === op && f.times > 0);
    if (fault) (fault as { times: number }).times--;
    if (!log.has(bucket)) log.set(bucket, []);
    log.get(bucket)?.push({ op, key, ...(ifNoneMatch !== undefined ? { ifNoneMatch } : {}), ...(range !== undefined ? { range } : {}), ...(fault ? { fault: fault.action } : {}) });
    if (fault?.action === 'reset') {
      ctx.respond = false;
      ctx.req.socket.destroy();
      return;
    }
    if (fault?.action === 'status') {
      await drain(ctx.req);
      return answerError(ctx, fault.status, fault.code, `Injected by the test harness (${fault.code}).`);
    }
    if (fault?.action === 'cut') {
      await next();
      if (ctx.status !== 200 && ctx.status !== 206) return;
      return cutAnswer(ctx, fault.afterBytes);
    }
    const uploads = join(directory, bucket, '._S3rver_uploads');
    const uploadId = String(ctx.query.uploadId ?? '');
    if (op === 'AbortMultipartUpload') {
      await drain(ctx.req);
      if (!/^[0-9a-f]+$/.test(uploadId) || !existsSync(join(uploads, uploadId))) return answerError(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      rmSync(join(uploads, uploadId), { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (op === 'ListMultipartUploads') {
      const ids = existsSync(uploads) ? readdirSync(uploads).sort() : [];
      const items = ids.map((id) => `<Upload><Key>${xmlEscape(readFileSync(join(uploads, id, 'key'), 'utf8'))}</Key><UploadId>${id}</UploadId></Upload>`);
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlEscape(bucket)}</Bucket><IsTruncated>false</IsTruncated>${items.join('')}</ListMultipartUploadsResult>`;
      return;
    }
    if (ifNoneMatch === '*') {
      const target = op === 'PutObject' ? key : existsSync(join(uploads, uploadId, 'key')) ? readFileSync(join(uploads, uploadId, 'key'), 'utf8') : undefined;
      if (target !== undefined && existsSync(objectFile(bucket, target))) {
        await drain(ctx.req);
        return answerError(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      }
    }
    if (op !== 'UploadPart') return next();
    const now = (inFlight.get(bucket) ?? 0) + 1;
    inFlight.set(bucket, now);
    maxInFlight.set(bucket, Math.max(now, maxInFlight.get(bucket) ?? 0));
    try {
      await next();
    } finally {
      inFlight.set(bucket, (inFlight.get(bucket) ?? 1) - 1);
    }
  };
}

async function serve(directory: string): Promise<void> {
  const S3rver = createRequire(import.meta.url)('s3rver') as new (options: object) => S3rverServer;
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true });
  // Koa composes its middleware when it starts listening, so ours can still go first.
  server.middleware.unshift(harness(directory));
  const { port } = await server.run();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  // The parent holds our stdin: when it goes (even by crashing), so do we.
  process.stdin.on('end', () => process.exit(0)).resume();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const directory = process.argv[2];
  if (!directory) throw new Error('usage: s3server.ts <directory>');
  await serve(directory);
}

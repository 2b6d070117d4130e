/**
 * S3 storage (our StorageKind 'S3'): AWS S3 or an S3-compatible server, one bucket per store.
 *
 * - `put` streams through a multipart upload (8 MiB parts, 4 in flight, so at most 32 MiB of the
 *   body is held at a time); S3 shows the object only when the upload completes, and a failed put
 *   aborts the upload, so nothing is left visible and no parts are left billed.
 * - Never-overwrite: a HeadObject refuses an existing key up front, and the commit itself carries
 *   `If-None-Match: *` (AWS S3's conditional write, 412 → OBJECT_EXISTS) so a writer that commits
 *   between the two is refused too. Servers without conditional writes (s3rver, older MinIO or
 *   Ceph) ignore the header: there, two puts of one key racing past the HeadObject both succeed
 *   and the later replaces the earlier. Lifeboat's keys carry the partition and a timestamp, so
 *   only a bug would write one key from two places.
 * - `list` gathers the whole listing and sorts it: S3 general-purpose buckets list in UTF-8 byte
 *   order, but directory buckets and some S3-compatible servers (s3rver among them) do not, and
 *   the port promises byte order. The cost is memory for the keys under the prefix.
 * - Every SDK failure becomes a LifeboatError; the secret key never appears in a message or in
 *   `description`.
 * - Failures that may pass — connection resets and timeouts, HTTP 408, 429 and 5xx (SlowDown),
 *   RequestTimeout, a download that breaks off — are marked transient for RetryingStore
 *   (src/storage/retry.ts); refused credentials, a missing bucket and an endpoint that refuses
 *   connections stay permanent.
 * - The SDK makes one attempt at every request a RetryingStore can repeat, so attempts do not
 *   multiply. A streamed put, which no wrapper can repeat, goes through a second client with a few
 *   attempts per request (so a part that meets a 503 is sent again); both clients share one
 *   connection pool and one credential provider.
 */
import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { type BlobStore, type ObjectInfo, type PutOptions, TEMP_MARK, checkKey, isTransientCause, transientStorageError } from './port.ts';

export interface S3StoreOptions {
  readonly bucket: string;
  readonly region?: string | undefined;
  /** An S3-compatible server, e.g. `http://127.0.0.1:9000`; AWS S3 when absent. */
  readonly endpoint?: string | undefined;
  /** With secretAccessKey; without both, the SDK's default credential chain. */
  readonly accessKeyId?: string | undefined;
  readonly secretAccessKey?: string | undefined;
  readonly forcePathStyle?: boolean | undefined;
  /** Keys per ListObjectsV2 page: S3's maximum (1000) unless a test wants to see paging. */
  readonly listPageSize?: number | undefined;
}

const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 4;
/** checkKey refuses keys containing TEMP_MARK, so the validation probe never meets a real object. */
const PROBE_MARK = `${TEMP_MARK}probe-`;
/** Attempts per request of a streamed put (see the file's comment); every other request gets one. */
const STREAMED_PUT_ATTEMPTS = 3;
/** S3 codes that say "try again" without a 5xx status: the upload was too slow for the server. */
const TRANSIENT_S3_CODES = new Set(['RequestTimeout']);

/** The fields of SDK errors we read: service errors have a code and a status, network ones a `code`. */
interface SdkError {
  readonly name?: string;
  readonly message?: string;
  readonly code?: unknown;
  readonly Code?: unknown;
  readonly errors?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function statusOf(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** The S3 error code; HEAD responses have no body, so theirs is only the status. */
function s3CodeOf(err: unknown): string | undefined {
  const e = err as SdkError | undefined;
  if (e?.$metadata?.httpStatusCode === undefined) return undefined;
  if (typeof e.Code === 'string') return e.Code;
  return e.name && !['NotFound', 'Unknown', 'Forbidden', 'BadRequest', 'Error'].includes(e.name) ? e.name : undefined;
}

/** ECONNREFUSED and friends, or 'timeout', when no HTTP answer came at all. */
function networkCodeOf(err: unknown): string | undefined {
  const e = err as SdkError | undefined;
  if (!e || typeof e !== 'object' || e.$metadata?.httpStatusCode !== undefined) return undefined;
  if (typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return e.code;
  if (Array.isArray(e.errors)) {
    const inner = (e.errors as SdkError[]).find((x) => typeof x?.code === 'string');
    if (inner) return inner.code as string;
  }
  if (e.name === 'TimeoutError') return 'timeout';
  return undefined;
}

function byteOrder(a: { readonly bytes: Buffer }, b: { readonly bytes: Buffer }): number {
  return Buffer.compare(a.bytes, b.bytes);
}

export class S3Store implements BlobStore {
  readonly description: string;
  private readonly client: S3Client;
  /** The same bucket with SDK retries, for the requests of streamed puts. */
  private readonly streamClient: S3Client;
  private readonly bucket: string;
  /** Where the bucket lives, for messages: the endpoint without user info, or AWS and the region. */
  private readonly where: string;
  private readonly secret: string | undefined;
  private readonly listPageSize: number;

  constructor(o: S3StoreOptions) {
    invalidArgUnless(typeof o.bucket === 'string' && o.bucket.length > 0, 'S3 Bucket is required.');
    invalidArgUnless((o.accessKeyId === undefined) === (o.secretAccessKey === undefined), 'S3 AccessKeyId and SecretAccessKey must be given together, or neither for the default credential chain.');
    invalidArgUnless(o.listPageSize === undefined || (Number.isInteger(o.listPageSize) && o.listPageSize >= 1 && o.listPageSize <= 1000), 'listPageSize must be an integer from 1 to 1000.');
    let endpoint: string | undefined;
    if (o.endpoint !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(o.endpoint);
      } catch {
        url = undefined;
      }
      // The endpoint is echoed only when it cannot carry user info (and so no password).
      invalidArgUnless(url && (url.protocol === 'http:' || url.protocol === 'https:'), `S3 Endpoint ${o.endpoint.includes('@') ? '' : `'${o.endpoint}' `}is not an http(s) URL.`);
      url.username = '';
      url.password = '';
      endpoint = url.href.replace(/\/+$/, '');
    }
    this.bucket = o.bucket;
    this.secret = o.secretAccessKey;
    this.listPageSize = o.listPageSize ?? 1000;
    this.where = endpoint ?? `AWS S3${o.region ? ` (${o.region})` : ''}`;
    this.description = endpoint ? `S3 ${endpoint}/${o.bucket}` : `S3 s3://${o.bucket}${o.region ? ` (${o.region})` : ''}`;
    const config: S3ClientConfig = {
      // A custom endpoint needs some region to sign with; AWS resolves it from the environment.
      ...(o.region ? { region: o.region } : endpoint ? { region: 'us-east-1' } : {}),
      ...(endpoint ? { endpoint } : {}),
      ...(o.forcePathStyle !== undefined ? { forcePathStyle: o.forcePathStyle } : {}),
      ...(o.accessKeyId !== undefined && o.secretAccessKey !== undefined ? { credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } } : {}),
      // Flexible checksums (CRC32 trailers) are refused by s3rver and many S3-compatible servers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A RetryingStore around this store owns back-off (see the file's comment).
      maxAttempts: 1,
      // An unreachable endpoint fails in seconds; no read timeout, as a slow reader of `get` must not break it.
      // One pool of keep-alive connections for both clients.
      requestHandler: { connectionTimeout: 5_000, httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 50 }), httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 50 }) },
    };
    this.client = new S3Client(config);
    this.streamClient = new S3Client({ ...config, maxAttempts: STREAMED_PUT_ATTEMPTS, credentials: this.client.config.credentials });
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.streamClient.destroy();
  }

  async put(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<void> {
    checkKey(key);
    const overwrite = options?.overwrite === true;
    // Bytes can be sent again by a RetryingStore; a stream cannot, so its requests get SDK retries.
    const client = body instanceof Uint8Array ? this.client : this.streamClient;
    // Watch the source from the start: it may fail while the HeadObject below is in flight.
    let sourceError: unknown;
    const source = body instanceof Uint8Array ? undefined : body;
    source?.on('error', (err) => { sourceError ??= err; });
    try {
      if (!overwrite && await this.exists(client, key)) throw this.objectExists(key);
    } catch (err) {
      source?.destroy();
      throw err;
    }
    const upload = new Upload({
      client,
      // If-None-Match goes on PutObject (small bodies) and CompleteMultipartUpload (large ones).
      params: { Bucket: this.bucket, Key: key, Body: body, ...(overwrite ? {} : { IfNoneMatch: '*' }) },
      partSize: PART_SIZE,
      queueSize: PARTS_IN_FLIGHT,
      // We abort ourselves, so a failed abort is reported instead of hiding the first failure.
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (err) {
      source?.destroy();
      const leftover = await this.abortUpload(key, upload.uploadId);
      const leftNote = leftover ? ` ${leftover}` : '';
      if (sourceError !== undefined) {
        // The caller's stream failed: that error is theirs to see, unless S3 was left untidy.
        if (!leftover) throw sourceError;
        throw new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', this.redact(`Writing '${key}' to ${this.description} stopped because its source failed (${(sourceError as Error).message}).${leftNote}`), { cause: sourceError });
      }
      const code = s3CodeOf(err);
      if (!overwrite && (code === 'PreconditionFailed' || statusOf(err) === 412)) throw this.objectExists(key, leftNote);
      if (!overwrite && code === 'ConditionalRequestConflict') throw this.objectExists(key, ` Another write of it was in progress.${leftNote}`);
      throw this.failure(err, `writing '${key}'`, leftNote);
    }
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    checkKey(key);
    if (range) {
      invalidArgUnless(Number.isSafeInteger(range.start) && range.start >= 0, 'The range start must be a byte offset.');
      invalidArgUnless(range.end === undefined || Number.isSafeInteger(range.end), 'The range end must be a byte offset.');
      if (range.end !== undefined && range.end <= range.start) {
        if (!await this.head(key)) throw this.notFound(key);
        return Readable.from([]);
      }
    }
    const header = range && (range.start > 0 || range.end !== undefined) ? `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}` : undefined;
    let res;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(header ? { Range: header } : {}) }));
    } catch (err) {
      const code = s3CodeOf(err);
      if (code === 'NoSuchKey') throw this.notFound(key);
      // 416: the object exists but the range starts at or after its end.
      if (code === 'InvalidRange' || statusOf(err) === 416) return Readable.from([]);
      throw this.failure(err, `reading '${key}'`);
    }
    const raw = res.Body;
    if (!(raw instanceof Readable)) throw new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', `Reading '${key}' from ${this.description} gave no byte stream.`);
    // Hand out our own stream so a connection failure mid-body is a LifeboatError too, and a
    // transient one: the request succeeded, so a RetryingStore reads on from the next byte.
    const out = new PassThrough();
    raw.on('error', (err) => out.destroy(this.brokeOff(err, key)));
    out.on('close', () => raw.destroy());
    raw.pipe(out);
    return out;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: res.ContentLength ?? 0, modifiedUtc: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (statusOf(err) !== 404) throw await this.explainHead(err, `looking up '${key}'`);
    }
    // A HEAD answers 404 alike for a missing key and a missing bucket; tell them apart.
    await this.checkBucket(`looking up '${key}'`);
    return undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    invalidArgUnless(typeof prefix === 'string', 'The list prefix must be a string.');
    const found: Array<ObjectInfo & { readonly bytes: Buffer }> = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket, MaxKeys: this.listPageSize, ...(prefix ? { Prefix: prefix } : {}), ...(token ? { ContinuationToken: token } : {}),
        }));
      } catch (err) {
        throw this.failure(err, `listing '${prefix}'`);
      }
      for (const o of page.Contents ?? []) {
        // Never a key (checkKey refuses the mark): validate()'s probes, another writer's temporaries.
        if (o.Key === undefined || o.Key.includes(TEMP_MARK) || !o.Key.startsWith(prefix)) continue;
        found.push({ key: o.Key, size: o.Size ?? 0, modifiedUtc: o.LastModified ?? new Date(0), bytes: Buffer.from(o.Key, 'utf8') });
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', `Listing '${prefix}' in ${this.description} was cut short without a continuation token.`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    found.sort(byteOrder);
    let last: Buffer | undefined;
    for (const o of found) {
      if (last && last.equals(o.bytes)) continue;
      last = o.bytes;
      yield { key: o.key, size: o.size, modifiedUtc: o.modifiedUtc };
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw this.failure(err, `deleting '${key}'`);
    }
  }

  async validate(): Promise<void> {
    await this.checkBucket('checking the bucket');
    const probe = `${PROBE_MARK}${randomUUID()}`;
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: 'lifeboat probe' }));
    } catch (err) {
      throw this.failure(err, 'writing a probe object');
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: probe }));
    } catch (err) {
      throw this.failure(err, `deleting the probe object '${probe}'`);
    }
  }

  /** HeadObject for put's check: a 404 is "absent" (a missing bucket then fails the upload clearly). */
  private async exists(client: S3Client, key: string): Promise<boolean> {
    try {
      await client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw await this.explainHead(err, `checking whether '${key}' exists`);
    }
  }

  private async checkBucket(doing: string): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (statusOf(err) === 404) throw this.noSuchBucket();
      throw await this.explainHead(err, doing);
    }
  }

  /**
   * A failed HEAD carries only its status (no body, so no S3 code): ask again with a one-key
   * listing, whose error body names the cause (InvalidAccessKeyId, SignatureDoesNotMatch, …).
   */
  private async explainHead(err: unknown, doing: string): Promise<LifeboatError> {
    if (s3CodeOf(err) !== undefined || statusOf(err) === undefined) return this.failure(err, doing);
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 }));
    } catch (listErr) {
      if (s3CodeOf(listErr) !== undefined) return this.failure(listErr, doing);
    }
    return this.failure(err, doing);
  }

  /** Aborts a multipart upload left by a failed put; says what is left behind if it cannot. */
  private async abortUpload(key: string, uploadId: string | undefined): Promise<string | undefined> {
    if (!uploadId) return undefined;
    try {
      // With SDK retries: nothing else repeats the abort, and a left upload is billed.
      await this.streamClient.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
      return undefined;
    } catch (err) {
      if (s3CodeOf(err) === 'NoSuchUpload') return undefined;
      const why = networkCodeOf(err) ?? s3CodeOf(err) ?? `HTTP ${statusOf(err) ?? '?'}`;
      return `Its multipart upload ${uploadId} could not be aborted (${why}); a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes such leftovers.`;
    }
  }

  private objectExists(key: string, more = ''): LifeboatError {
    return new LifeboatError('LIFEBOAT_E_STORAGE_OBJECT_EXISTS', `${key} already exists in ${this.description}.${more}`);
  }

  private notFound(key: string): LifeboatError {
    return new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `${key} does not exist in ${this.description}.`);
  }

  private noSuchBucket(cause?: unknown): LifeboatError {
    return new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', `S3 bucket '${this.bucket}' does not exist at ${this.where}.`, cause === undefined ? undefined : { cause });
  }

  /** A download that failed after it began: the connection broke, not the request. */
  private brokeOff(err: unknown, key: string): LifeboatError {
    const why = (err as { code?: unknown } | undefined)?.code ?? (err as Error | undefined)?.message ?? String(err);
    return transientStorageError(this.redact(`Reading '${key}' from ${this.description} broke off mid-stream (${String(why)}).`), { cause: err });
  }

  /** Any failure of S3 or of the way to it, as LIFEBOAT_E_STORAGE_UNAVAILABLE with the reason. */
  private failure(err: unknown, doing: string, note = ''): LifeboatError {
    if (err instanceof LifeboatError) return err;
    const code = s3CodeOf(err);
    const status = statusOf(err);
    const net = networkCodeOf(err);
    // retry.ts's rule (resets, timeouts, 408, 429, 5xx), also for a network code found inside an
    // AggregateError (one per address tried); ECONNREFUSED and ENOTFOUND stay permanent.
    const transient = isTransientCause(err) || (net !== undefined && (net === 'timeout' || isTransientCause({ code: net })))
      || (code !== undefined && TRANSIENT_S3_CODES.has(code));
    let message: string;
    if (code === 'NoSuchBucket') return this.noSuchBucket(err);
    if (net !== undefined) {
      message = `S3 endpoint ${this.where} cannot be reached (${net}) for bucket '${this.bucket}' (${doing}).`;
    } else if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch') {
      message = `S3 rejected the credentials (${code}) for bucket '${this.bucket}' at ${this.where}: check AccessKeyId and SecretAccessKey.`;
    } else if (code === 'AccessDenied' || code === 'AllAccessDisabled' || status === 403) {
      message = `S3 denied access (${code ?? 'HTTP 403'}) to bucket '${this.bucket}' at ${this.where} while ${doing}: check the credentials and their permissions.`;
    } else if ((err as Error | undefined)?.name === 'CredentialsProviderError') {
      message = `No S3 credentials for bucket '${this.bucket}' at ${this.where}: give AccessKeyId and SecretAccessKey, or configure the AWS default credential chain (${(err as Error).message}).`;
    } else {
      const reason = [code ?? (err as Error | undefined)?.name, status === undefined ? undefined : `HTTP ${status}`].filter(Boolean).join(', ');
      const detail = ((err as Error | undefined)?.message ?? String(err)).replace(/\.+$/, '');
      message = `S3 bucket '${this.bucket}' at ${this.where} failed while ${doing}: ${reason ? `${reason}: ` : ''}${detail}.`;
    }
    return new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', this.redact(`${message}${note}`), { cause: err, ...(transient ? { details: { transient: true } } : {}) });
  }

  /** Belt and braces: a server that echoes the secret back must not get it into our messages. */
  private redact(message: string): string {
    return this.secret ? message.split(this.secret).join('****') : message;
  }
}

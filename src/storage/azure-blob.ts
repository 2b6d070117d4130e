/**
 * Azure Blob storage (StorageKind AzureBlobStore and ManagedIdentityAzureBlobStore): objects are
 * block blobs in one container, named by their keys.
 *
 * How it keeps the port's contract (src/storage/port.ts):
 * - A put stages the body as blocks of BLOCK_SIZE, a few in parallel, and commits the block list
 *   last with `If-None-Match: *`, so the service refuses to replace a committed blob (409
 *   BlobAlreadyExists → OBJECT_EXISTS). Staged blocks are invisible until the commit, so a put
 *   that fails leaves nothing to read or list (the service drops uncommitted blocks after a week).
 *   An overwrite commits without the condition; a commit swaps the whole blob at once.
 * - Listing is in ascending byte order of the key even when the service orders by UTF-16 code
 *   units, as Azurite does (see `inByteOrder`).
 * - Every SDK failure becomes a LifeboatError. Messages name the account, container and the
 *   service's error code, never a key, SAS or connection string: the SDK's own errors (which
 *   carry request URLs and headers) are not kept as causes.
 * - Failures that may pass — connection resets and timeouts, HTTP 408, 429 and 5xx, a download
 *   that breaks off — are marked transient for RetryingStore (src/storage/retry.ts); refused
 *   credentials, a missing container and an endpoint that refuses connections stay permanent.
 * - The SDK makes one try of every request a RetryingStore can repeat, and does not resume
 *   downloads itself, so attempts do not multiply. A streamed put, which no wrapper can repeat,
 *   is the exception: its requests (blocks, commit) get a few SDK tries.
 */
import { randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient, type ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';
import { LifeboatError } from '../core/errors.ts';
import type { StorageDescription } from '../core/storage-description.ts';
import { type BlobStore, type ObjectInfo, type PutOptions, TEMP_MARK, checkKey, isTransientCause, transientStorageError } from './port.ts';

/**
 * Size of each staged block. Blobs hold at most 50,000 blocks, so objects up to ~390 GiB; a put
 * holds at most MAX_BUFFERS of these in memory.
 */
export const BLOCK_SIZE = 8 * 1024 * 1024;
/** Blocks buffered per put; the SDK stages up to three quarters of them at once. */
const MAX_BUFFERS = 4;
/** Bounds validate() as a whole, so an endpoint that swallows packets fails it too. */
const VALIDATE_TIMEOUT_MS = 15_000;
/** Never a valid key (checkKey refuses the mark), so no key collides with it and list skips it. */
const PROBE_PREFIX = `${TEMP_MARK}probe-`;

// tryTimeoutInMs is the server's time limit per request (a query parameter): a try may last up to
// a minute because it includes sending one 8 MiB block on a slow link.
/** Requests a RetryingStore repeats when they fail transiently: one try each. */
const ONE_TRY: StoragePipelineOptions = {
  retryOptions: { maxTries: 1, tryTimeoutInMs: 60_000 },
  userAgentOptions: { userAgentPrefix: 'lifeboat' },
};
/** Requests of a streamed put, which nothing above can repeat: a block that meets a 503 is sent again. */
const STREAMED_PUT: StoragePipelineOptions = {
  retryOptions: { maxTries: 3, tryTimeoutInMs: 60_000, retryDelayInMs: 500, maxRetryDelayInMs: 4_000 },
  userAgentOptions: { userAgentPrefix: 'lifeboat' },
};

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH',
  'EPIPE', 'ESOCKETTIMEDOUT', 'REQUEST_SEND_ERROR', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID']);
const CREDENTIAL_CODES = new Set(['AuthenticationFailed', 'AuthorizationFailure', 'InvalidAuthenticationInfo', 'NoAuthenticationInformation']);
const PERMISSION_CODES = new Set(['AuthorizationPermissionMismatch', 'AuthorizationResourceTypeMismatch', 'AuthorizationServiceMismatch',
  'AuthorizationProtocolMismatch', 'AuthorizationSourceIPMismatch', 'InsufficientAccountPermissions', 'KeyBasedAuthenticationNotPermitted']);

export type AzureBlobStoreOptions = (
  | { readonly connectionString: string; readonly containerName: string }
  | { readonly blobServiceUri: string; readonly containerName: string; readonly credential: TokenCredential }
) & {
  /** Blobs per listing request (the service's maximum, 5000, by default); tests make it small. */
  readonly listPageSize?: number;
};

/**
 * The credential for StorageKind ManagedIdentityAzureBlobStore. Service Fabric's
 * ManagedIdentityType says which identity of the cluster to use ("VMSS", "Cluster"); outside a
 * Service Fabric cluster there is one: the machine's. So every value means the managed identity
 * of the machine (or App Service / Service Fabric / Arc host) Lifeboat runs on, system-assigned
 * unless `clientId` names a user-assigned one. This never falls back to DefaultAzureCredential:
 * on a server that would quietly use whatever developer login or environment secret it finds.
 * Callers that want another credential pass any TokenCredential to AzureBlobStore.
 */
export function managedIdentityCredential(managedIdentityType: string, options: { clientId?: string } = {}): TokenCredential {
  void managedIdentityType;
  return options.clientId ? new ManagedIdentityCredential({ clientId: options.clientId }) : new ManagedIdentityCredential();
}

/** Builds the store an Azure storage description names; FileShare and S3 are not ours. */
export function azureBlobStoreFor(d: StorageDescription, extra: { clientId?: string } = {}): AzureBlobStore {
  switch (d.StorageKind) {
    case 'AzureBlobStore':
      return new AzureBlobStore({ connectionString: d.ConnectionString, containerName: d.ContainerName });
    case 'ManagedIdentityAzureBlobStore':
      return new AzureBlobStore({
        blobServiceUri: d.BlobServiceUri, containerName: d.ContainerName, credential: managedIdentityCredential(d.ManagedIdentityType, extra),
      });
    default:
      throw new LifeboatError('E_INVALIDARG', `StorageKind ${d.StorageKind} is not an Azure Blob storage.`);
  }
}

function checkContainerName(name: string): void {
  // The service's rule: 3–63 of a-z, 0-9 and single dashes, starting and ending with a letter or digit.
  if (name === '$root' || name === '$web' || /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name)) return;
  throw new LifeboatError('E_INVALIDARG', `ContainerName '${name}' is not a valid Azure container name: use 3 to 63 lowercase letters, digits and single dashes, starting and ending with a letter or digit.`);
}

/** Azure's limit on blob names, in characters. */
const MAX_NAME_LENGTH = 1024;
// Characters XML 1.0 cannot carry: a blob named with one is stored, but every listing that
// reaches it fails (Azurite answers 500), so such keys are refused before they are written.
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0001-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** checkKey, plus what Azure cannot store or list. */
function checkBlobKey(key: string): void {
  checkKey(key);
  if (key.length > MAX_NAME_LENGTH) throw new LifeboatError('E_INVALIDARG', `Storage key ${key.slice(0, 60)}… is longer than Azure's ${MAX_NAME_LENGTH} characters.`);
  if (NOT_XML.test(key)) throw new LifeboatError('E_INVALIDARG', `Storage key ${JSON.stringify(key)} has a character Azure Blob listings cannot carry (control character, U+FFFE/U+FFFF or a lone surrogate).`);
}

/** The pieces of an error we may show: never the SDK's request, headers or full message. */
interface Failure { readonly name: string; readonly code: string | undefined; readonly status: number | undefined; readonly detail: string | undefined }

function failureOf(err: unknown): Failure {
  const e = err as { name?: unknown; code?: unknown; statusCode?: unknown; details?: { errorCode?: unknown; authenticationErrorDetail?: unknown } } | undefined;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.details?.errorCode === 'string' ? e.details.errorCode : undefined;
  // authenticationErrorDetail explains a refusal ("Invalid token audience."); quoted parts can
  // hold a request signature, so they are cut out.
  const raw = typeof e?.details?.authenticationErrorDetail === 'string' ? e.details.authenticationErrorDetail : undefined;
  const detail = raw?.split('\n')[0]?.replace(/'[^']*'/g, "'…'").slice(0, 200);
  return { name: typeof e?.name === 'string' ? e.name : 'Error', code, status: typeof e?.statusCode === 'number' ? e.statusCode : undefined, detail };
}

/** The first line of a non-SDK error's message (credential errors), shortened. */
function firstLine(err: unknown): string {
  return String((err as Error | undefined)?.message ?? err).split('\n')[0]?.slice(0, 300) ?? '';
}

function isAbort(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'AbortError';
}

export class AzureBlobStore implements BlobStore {
  readonly description: string;
  readonly accountName: string;
  readonly containerName: string;
  /** Scheme, host and port only: a SAS lives in the query and a custom domain's path says nothing. */
  readonly endpoint: string;
  // Private fields: util.inspect and loggers do not show them, and the client holds the key.
  readonly #container: ContainerClient;
  /** The same container through a client with SDK retries, for streamed puts (see STREAMED_PUT). */
  readonly #streamContainer: ContainerClient;
  readonly #secrets: readonly string[];
  readonly #listPageSize: number;

  constructor(options: AzureBlobStoreOptions) {
    checkContainerName(options.containerName);
    this.containerName = options.containerName;
    this.#listPageSize = options.listPageSize ?? 5000;
    let service: BlobServiceClient;
    let streamService: BlobServiceClient;
    if ('connectionString' in options) {
      this.#secrets = secretsOf(options.connectionString);
      try {
        service = BlobServiceClient.fromConnectionString(options.connectionString, ONE_TRY);
        streamService = BlobServiceClient.fromConnectionString(options.connectionString, STREAMED_PUT);
      } catch (err) {
        throw new LifeboatError('E_INVALIDARG', this.redact(`ConnectionString is not a usable Azure Storage connection string: ${firstLine(err)}`));
      }
    } else {
      let url: URL;
      try {
        url = new URL(options.blobServiceUri);
      } catch {
        throw new LifeboatError('E_INVALIDARG', 'BlobServiceUri is not a valid URL.');
      }
      // The SDK refuses to send a bearer token over plain http; say so now rather than on first use.
      if (url.protocol !== 'https:') throw new LifeboatError('E_INVALIDARG', `BlobServiceUri must be an https URL for a managed identity (got ${url.protocol}//${url.host}).`);
      this.#secrets = [...url.searchParams.values()].filter((v) => v.length >= 8);
      // One credential for both clients, so they share its cached token.
      service = new BlobServiceClient(`${url.origin}${url.pathname}`, options.credential, ONE_TRY);
      streamService = new BlobServiceClient(`${url.origin}${url.pathname}`, options.credential, STREAMED_PUT);
    }
    // Both clients send through the SDK's one shared HTTP client, so they share its connections.
    this.#container = service.getContainerClient(options.containerName);
    this.#streamContainer = streamService.getContainerClient(options.containerName);
    const serviceUrl = new URL(service.url);
    this.endpoint = serviceUrl.origin;
    this.accountName = service.accountName || serviceUrl.hostname;
    const kind = 'connectionString' in options ? 'AzureBlobStore' : 'AzureBlobStore (managed identity)';
    this.description = `${kind} ${this.accountName}/${this.containerName}`;
  }

  async put(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<void> {
    checkBlobKey(key);
    // Bytes can be sent again by a RetryingStore; a stream cannot, so its requests get SDK retries.
    const container = body instanceof Uint8Array ? this.#container : this.#streamContainer;
    const blob = container.getBlockBlobClient(key);
    const conditions = options?.overwrite ? {} : { ifNoneMatch: '*' };
    if (body instanceof Uint8Array && body.byteLength <= BLOCK_SIZE) {
      try {
        // One Put Blob request: as atomic as a block commit, with the same condition.
        await blob.upload(body, body.byteLength, { conditions });
        return;
      } catch (err) {
        throw this.fail(err, 'write', key);
      }
    }
    // Fail before sending gigabytes when the key is taken; the commit's condition still decides.
    if (!options?.overwrite && await this.properties(container, key)) throw this.exists(key);
    const source = body instanceof Uint8Array ? Readable.from([body]) : body;
    // The SDK's stream reader never settles on a source that closes without 'end' or 'error';
    // pipeline turns that into an error on `pass`.
    const pass = new PassThrough();
    let passError: unknown;
    pass.on('error', (e) => { passError = e; });
    const piped = pipeline(source, pass).catch(() => undefined);
    try {
      await blob.uploadStream(pass, BLOCK_SIZE, MAX_BUFFERS, { conditions });
    } catch (err) {
      // Stop reading the source; blocks already staged stay uncommitted, so nothing is visible.
      pass.destroy();
      await piped;
      // The body's own failure is the caller's error, not the storage's: pass it on as it is.
      if (passError !== undefined && err === passError) throw err;
      throw this.fail(err, 'write', key);
    }
    await piped;
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    checkBlobKey(key);
    const start = range?.start ?? 0;
    if (!Number.isSafeInteger(start) || start < 0 || (range?.end !== undefined && !Number.isSafeInteger(range.end))) {
      throw new LifeboatError('E_INVALIDARG', `The range of ${key} must be whole, non-negative byte offsets.`);
    }
    const empty = async (): Promise<Readable> => {
      if (!(await this.head(key))) throw this.notFound(key);
      return Readable.from([]);
    };
    // A count of 0 means "to the end" to the SDK, so an empty range never reaches it.
    if (range?.end !== undefined && range.end <= start) return empty();
    let res;
    try {
      // maxRetryRequests 0: the RetryingStore around this store resumes a broken download (see below), not the SDK too.
      res = await this.#container.getBlobClient(key).download(start, range?.end === undefined ? undefined : range.end - start, { maxRetryRequests: 0 });
    } catch (err) {
      // Azure answers a start at or past the end with 416; the file share reads nothing there.
      if (failureOf(err).code === 'InvalidRange') return empty();
      throw this.fail(err, 'read', key);
    }
    const src = res.readableStreamBody as Readable | undefined;
    if (!src) return Readable.from([]);
    // Errors after the first byte (the connection drops, the body ends short) reach the reader as
    // transient LifeboatErrors, so a RetryingStore reads on from the next byte.
    const out = new PassThrough();
    src.on('error', (err) => out.destroy(this.brokeOff(err, key)));
    out.on('close', () => { if (!src.destroyed) src.destroy(); });
    src.pipe(out);
    return out;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    checkBlobKey(key);
    return this.properties(this.#container, key);
  }

  private async properties(container: ContainerClient, key: string): Promise<ObjectInfo | undefined> {
    try {
      const p = await container.getBlobClient(key).getProperties();
      return { key, size: p.contentLength ?? 0, modifiedUtc: p.lastModified ?? new Date(0) };
    } catch (err) {
      const f = failureOf(err);
      // A HEAD answer has no body: the reason is only in x-ms-error-code (absent behind some proxies).
      if (f.status === 404 && (f.code === 'BlobNotFound' || f.code === undefined)) return undefined;
      throw this.fail(err, 'read', key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (typeof prefix !== 'string') throw new LifeboatError('E_INVALIDARG', 'The listing prefix must be a string.');
    yield* inByteOrder(this.pages(prefix), (o) => o.key);
  }

  /** The listing's pages, in the service's order. */
  private async *pages(prefix: string): AsyncGenerator<ObjectInfo[]> {
    try {
      for await (const page of this.#container.listBlobsFlat(prefix ? { prefix } : {}).byPage({ maxPageSize: this.#listPageSize })) {
        const out: ObjectInfo[] = [];
        for (const b of page.segment.blobItems) {
          // Only keys get() accepts: skips validate()'s probe and names other tools wrote.
          try {
            checkKey(b.name);
          } catch {
            continue;
          }
          out.push({ key: b.name, size: b.properties.contentLength ?? 0, modifiedUtc: b.properties.lastModified });
        }
        yield out;
      }
    } catch (err) {
      throw this.fail(err, 'list', prefix);
    }
  }

  async delete(key: string): Promise<void> {
    checkBlobKey(key);
    try {
      await this.#container.getBlobClient(key).deleteIfExists({ deleteSnapshots: 'include' });
    } catch (err) {
      throw this.fail(err, 'delete', key);
    }
  }

  async validate(): Promise<void> {
    const step = { abortSignal: AbortSignal.timeout(VALIDATE_TIMEOUT_MS) };
    try {
      await this.#container.getProperties(step);
      const probe = this.#container.getBlockBlobClient(`${PROBE_PREFIX}${randomUUID()}`);
      await probe.upload(Buffer.alloc(0), 0, { ...step, conditions: { ifNoneMatch: '*' } });
      await probe.deleteIfExists(step);
    } catch (err) {
      throw this.fail(err, 'validate', undefined);
    }
  }

  private exists(key: string): LifeboatError {
    return new LifeboatError('LIFEBOAT_E_STORAGE_OBJECT_EXISTS', `${key} already exists in ${this.description}.`);
  }

  private notFound(key: string): LifeboatError {
    return new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', `${key} does not exist in ${this.description}.`);
  }

  /** Turns anything the SDK or the credential threw into a LifeboatError without secrets. */
  private fail(err: unknown, op: 'read' | 'write' | 'list' | 'delete' | 'validate', key: string | undefined): LifeboatError {
    if (err instanceof LifeboatError) return err;
    const f = failureOf(err);
    // ECONNRESET, ETIMEDOUT, 408, 429, 5xx (retry.ts's rule); and a reply cut off mid-XML, which the SDK reports as PARSE_ERROR.
    const transient = isTransientCause(err) || f.code === 'PARSE_ERROR';
    const unavailable = (message: string): LifeboatError => new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', this.redact(message), {
      details: { azureCode: f.code, status: f.status, ...(transient ? { transient: true } : {}) },
      // A stand-in for the SDK error, which carries the request URL (with any SAS) and headers.
      cause: Object.assign(new Error(this.redact(`${f.name} ${f.code ?? ''} ${f.status ?? ''}`.trim())), { code: f.code, statusCode: f.status }),
    });
    const what = key === undefined ? '' : ` (${op} ${key})`;
    if (f.code === 'BlobNotFound' && key !== undefined && op === 'read') return this.notFound(key);
    if ((f.code === 'BlobAlreadyExists' || f.code === 'ConditionNotMet' || f.status === 412) && key !== undefined && op === 'write') return this.exists(key);
    if (f.code === 'ContainerNotFound') return unavailable(`Azure container '${this.containerName}' does not exist in account ${this.accountName}${what}.`);
    if (f.status === undefined && f.code !== undefined && NETWORK_CODES.has(f.code)) {
      return unavailable(`Azure Blob endpoint ${this.endpoint} cannot be reached (${f.code})${what}.`);
    }
    if (isAbort(err)) return unavailable(`Azure Blob endpoint ${this.endpoint} did not answer in time${what}.`);
    if (f.code !== undefined && CREDENTIAL_CODES.has(f.code)) {
      return unavailable(`Azure Blob storage rejected the credentials (${f.code}${f.detail ? `: ${f.detail}` : ''}) for account ${this.accountName}${what}.`);
    }
    if (f.code !== undefined && PERMISSION_CODES.has(f.code)) {
      return unavailable(`Azure Blob storage refused access (${f.code}) to container '${this.containerName}' in account ${this.accountName}${what}: the identity needs read, write, list and delete rights on it.`);
    }
    if (f.name === 'CredentialUnavailableError' || f.name === 'AuthenticationError' || f.name === 'AuthenticationRequiredError') {
      return unavailable(`No access token for Azure Blob account ${this.accountName} (${f.name}: ${firstLine(err)})${what}.`);
    }
    if (f.status !== undefined) {
      return unavailable(`Azure Blob storage failed a request to ${this.accountName}/${this.containerName}${what}: ${f.code ?? 'no error code'} (HTTP ${f.status}).`);
    }
    return unavailable(`Azure Blob storage ${this.accountName}/${this.containerName} cannot be used${what}: ${f.code ?? f.name} (${firstLine(err)}).`);
  }

  /** A download that failed after it began: the connection broke, not the request; worth reading on. */
  private brokeOff(err: unknown, key: string): LifeboatError {
    const f = failureOf(err);
    const reason = f.code ?? firstLine(err);
    return transientStorageError(this.redact(`Reading from Azure Blob ${this.accountName}/${this.containerName} broke off mid-stream (read ${key}): ${reason}.`), {
      details: { azureCode: f.code, status: f.status },
      cause: Object.assign(new Error(this.redact(`${f.name} ${reason}`)), { code: f.code, statusCode: f.status }),
    });
  }

  /** Belt and braces: no message leaves with a key, SAS or token in it. */
  private redact(message: string): string {
    let out = message;
    for (const s of this.#secrets) out = out.split(s).join('****');
    return out.replace(/([?&;]sig=)[^&;\s]+/gi, '$1****').replace(/(AccountKey=)[^;\s]+/gi, '$1****');
  }
}

/** The parts of a connection string that must never be shown. */
function secretsOf(connectionString: string): string[] {
  const out = [connectionString];
  for (const part of connectionString.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim();
    if ((name === 'accountkey' || name === 'sharedaccesssignature') && value) out.push(value);
    if (name === 'sharedaccesssignature') {
      for (const v of new URLSearchParams(value).values()) if (v.length >= 8) out.push(v);
    }
  }
  return out.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

/**
 * Byte-order bound of what a listing can still bring after `last`. Azure services list blobs in
 * one of two orders: UTF-8 bytes, or UTF-16 code units (Azurite compares JavaScript strings).
 * They differ only where one name has an astral character (a surrogate pair, D800–DFFF) and
 * another has U+E000–U+FFFF at the same place: UTF-16 puts the astral one first, UTF-8 last. So
 * after `last`, in either order, no name sorts in bytes before `last` cut at its first surrogate
 * plus U+E000 (or before `last` itself when it has none).
 */
function restBound(last: string): Buffer {
  for (let i = 0; i < last.length; i++) {
    const c = last.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) return Buffer.from(`${last.slice(0, i)}\ue000`);
  }
  return Buffer.from(last);
}

/**
 * Yields the items of listing pages in ascending byte order of their keys, while streaming: it
 * holds back only items that a later page might still have to precede (none for names without
 * characters beyond U+D7FF, so memory stays at one page; with them, at most the names that share
 * the prefix before such a character). Pages must come in the service's order (see restBound).
 */
export async function* inByteOrder<T>(pages: AsyncIterable<readonly T[]>, keyOf: (item: T) => string): AsyncGenerator<T> {
  let held: { item: T; bytes: Buffer }[] = [];
  for await (const page of pages) {
    const last = page[page.length - 1];
    if (last === undefined) continue;
    for (const item of page) held.push({ item, bytes: Buffer.from(keyOf(item)) });
    held.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    const bound = restBound(keyOf(last));
    let n = 0;
    while (n < held.length && Buffer.compare((held[n] as { bytes: Buffer }).bytes, bound) < 0) n++;
    const ready = held.slice(0, n);
    held = held.slice(n);
    for (const h of ready) yield h.item;
  }
  for (const h of held) yield h.item;
}

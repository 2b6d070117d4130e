/**
 * Which network endpoints a storage description may name, and which may get the machine's own
 * credentials. A request or policy names its storage; without these rules it could make Lifeboat
 * connect anywhere (169.254.169.254, an internal service, an attacker's S3) and upload every
 * partition there, or send the managed identity's token or the process's AWS keys to it.
 *
 * - `allowed`: endpoints a description may name at all. Entries are host suffixes starting with
 *   a dot (`.blob.core.windows.net`: any host under it, never an IP address) or exact hosts, with
 *   an optional port (`127.0.0.1:10000`, `[::1]`, `minio.internal`). Defaults: the public Azure
 *   and AWS suffixes. Loopback and private addresses pass only when an entry names them.
 * - `ambient`: endpoints that may be sent the machine's managed identity or the process's ambient
 *   AWS credentials (S3 without AccessKeyId). Entries as above, or `s3://<bucket>` for a bucket on
 *   AWS's own endpoints. Default: none.
 *
 * Hosts are compared after the WHATWG URL parser has normalized them, so `2130706433`, `0x7f.1`
 * and `127.1` are all 127.0.0.1 and cannot dodge an exact entry. The check runs before any
 * connection, and its refusal says the same whatever listens there.
 */
import { LifeboatError } from '../core/errors.ts';

export interface EndpointRules {
  readonly allowed: readonly string[];
  readonly ambient: readonly string[];
}

export const PUBLIC_CLOUD_SUFFIXES: readonly string[] = [
  '.blob.core.windows.net', '.blob.core.chinacloudapi.cn', '.blob.core.usgovcloudapi.net', '.amazonaws.com', '.amazonaws.com.cn',
];

export const DEFAULT_ENDPOINT_RULES: EndpointRules = { allowed: PUBLIC_CLOUD_SUFFIXES, ambient: [] };

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

interface Entry { readonly suffix?: string; readonly host?: string; readonly port?: string; readonly bucket?: string }

function parseEntry(raw: string): Entry {
  const e = raw.trim().toLowerCase();
  if (/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(e)) return { bucket: e.slice(5) };
  if (/^\.[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(e)) return { suffix: e };
  let u: URL;
  try {
    u = new URL(`http://${e}`);
  } catch {
    throw new LifeboatError('E_INVALIDARG', `'${raw}' is not an endpoint entry: use .suffix.example, host, host:port, [v6]:port or s3://bucket.`);
  }
  if (u.username || u.password || u.pathname !== '/' || u.search || u.hash) throw new LifeboatError('E_INVALIDARG', `'${raw}' is not an endpoint entry: a host and port only.`);
  return { host: u.hostname, ...(u.port ? { port: u.port } : {}) };
}

/** Checks a list of entries (from --storage-endpoints); throws E_INVALIDARG naming a bad one. */
export function checkEndpointEntries(entries: readonly string[]): void {
  for (const e of entries) parseEntry(e);
}

function matches(url: URL, raw: string, bucket?: string): boolean {
  const e = parseEntry(raw);
  const host = url.hostname.toLowerCase();
  if (e.bucket !== undefined) return bucket !== undefined && bucket.toLowerCase() === e.bucket && host.endsWith('.amazonaws.com');
  if (e.suffix !== undefined) return !IPV4.test(host) && !host.startsWith('[') && host.endsWith(e.suffix) && host.length > e.suffix.length;
  if (host !== e.host) return false;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return e.port === undefined || e.port === port;
}

/** The URL a description names, parsed; a refusal when it is not an http(s) URL without user info. */
export function endpointUrl(text: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new LifeboatError('E_INVALIDARG', `${what} is not a valid URL.`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new LifeboatError('E_INVALIDARG', `${what} must be an http or https URL.`);
  if (u.username || u.password) throw new LifeboatError('E_INVALIDARG', `${what} must not carry user info.`);
  return u;
}

/** Refuses `url` unless an allowed entry names it. */
export function checkEndpoint(url: URL, rules: EndpointRules, what: string): void {
  if (!rules.allowed.some((e) => matches(url, e))) {
    throw new LifeboatError('E_INVALIDARG', `The ${what} endpoint ${url.host} is not on this Lifeboat's allow-list; the operator may add it with --storage-endpoints / LIFEBOAT_STORAGE_ENDPOINTS.`);
  }
}

/** Refuses to send the machine's own credentials to `url` unless an ambient entry names it (or the bucket). */
export function checkAmbientCredentials(url: URL, rules: EndpointRules, what: string, bucket?: string): void {
  if (!rules.ambient.some((e) => matches(url, e, bucket))) {
    throw new LifeboatError('E_INVALIDARG', `${what} would use this machine's own credentials for ${bucket !== undefined ? `bucket '${bucket}' at ` : ''}${url.host}, which the operator has not allowed; give explicit credentials, or list it with --ambient-credential-endpoints / LIFEBOAT_AMBIENT_CREDENTIAL_ENDPOINTS.`);
  }
}

/** The Blob endpoint an Azure connection string points at (BlobEndpoint, or the account and suffix, or the emulator). */
export function azureBlobEndpointOf(connectionString: string): URL {
  const fields = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const blob = fields.get('blobendpoint');
  if (blob) return endpointUrl(blob, 'The BlobEndpoint of the ConnectionString');
  if (fields.get('usedevelopmentstorage')?.toLowerCase() === 'true') return new URL('http://127.0.0.1:10000/devstoreaccount1');
  const account = fields.get('accountname');
  if (!account || !/^[a-z0-9]{3,24}$/.test(account)) throw new LifeboatError('E_INVALIDARG', 'The ConnectionString names no BlobEndpoint and no valid AccountName.');
  const protocol = (fields.get('defaultendpointsprotocol') ?? 'https').toLowerCase();
  return endpointUrl(`${protocol}://${account}.blob.${fields.get('endpointsuffix') ?? 'core.windows.net'}`, 'The endpoint of the ConnectionString');
}

/**
 * What every part of LifeboatClient calls through: the service's addresses, the token,
 * api-versions, time limits, and failover between several instances of one Lifeboat.
 *
 * Failover: a Caller starts each call at the instance that answered last (at first `baseUrl`).
 * When the call cannot reach it (fetch's TypeError: connection refused or reset, socket closed,
 * DNS failure) it tries the next instance, once per other one, in order:
 * - a call safe to repeat (every GET, and a call marked `repeatable`, such as the host protocol's)
 *   moves on whatever the connection failure; a `repeatable` one also after its own time limit
 *   (a hung instance is as good as dead for it), a plain GET not (it may just be slow);
 * - any other call (a POST) moves on only when the connection was refused before anything was
 *   sent (ECONNREFUSED, ENOTFOUND, EHOSTUNREACH, ENETUNREACH, EAI_AGAIN, a connect timeout). A
 *   request that may have reached a dying instance is not sent twice: it rejects with the error,
 *   and the caller decides.
 * An HTTP answer (any status, 503 included) is never failed over: every instance shares the
 * catalog, so another would answer the same. Nor is a call ended by the caller's own signal.
 * When no instance can be reached the call rejects with the error of the last one tried.
 */
import { LifeboatError } from '../core/errors.ts';
import { BACKUP_API_VERSION, QUERY_API_VERSION } from '../wire/api-version.ts';
import type { PageQuery } from '../wire/paging.ts';
import { wireTime } from '../wire/time.ts';
import { callLifeboat } from './http.ts';

export interface LifeboatClientOptions {
  /** The service, e.g. http://127.0.0.1:19080; with `baseUrls`, the instance tried first. */
  readonly baseUrl: string;
  /**
   * Several instances of one Lifeboat (on one shared catalog), in the order they are tried after
   * `baseUrl` (which may be listed here too, e.g. `{ baseUrl: urls[0], baseUrls: urls }`; each is
   * tried once). A call that cannot reach an instance moves to the next (see Caller).
   */
  readonly baseUrls?: readonly string[];
  /** A bearer token (admin, reader, host or metrics, as the routes called need). */
  readonly token?: string | undefined;
  /** Time limit of each call, in milliseconds (default 30 s; an order poll adds its wait). */
  readonly timeoutMs?: number;
  /**
   * api-version of the BackupRestore routes and Lifeboat's own (default 6.4). The answers are
   * typed as 6.4 gives them: with 6.2-preview the epochs come as DataLossNumber/ConfigurationNumber.
   */
  readonly apiVersion?: string;
  /** api-version of the hierarchy queries (default 6.0). */
  readonly queryApiVersion?: string;
}

/** Query parameters in Service Fabric's names; undefined ones are left out. */
export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

/** Which api-version a route takes: a BackupRestore (or Lifeboat) one, a hierarchy query, a given one, or none (the host protocol). */
export type VersionOf = 'backup' | 'query' | 'none' | { readonly exactly: string };

export interface Call {
  readonly version: VersionOf;
  readonly query?: Query;
  readonly body?: unknown;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal | undefined;
  /** Safe to send twice (the service ignores a repeat): fails over on any connection failure, and after its own time limit. */
  readonly repeatable?: boolean;
}

/** Causes of fetch's TypeError that mean the request was never sent: safe to send elsewhere. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

function codeOf(e: unknown): unknown {
  return typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
}

/** Whether `err` of a call to one instance lets the call go on to the next (the rule above). */
function failsOver(err: unknown, c: Call, safe: boolean): boolean {
  if (err instanceof DOMException && err.name === 'TimeoutError') return c.repeatable === true;
  // fetch's own failures carry a cause; a TypeError without one (a bad URL) is no connection problem.
  if (!(err instanceof TypeError) || err.cause === undefined) return false;
  if (safe) return true;
  const cause = err.cause as { errors?: unknown };
  // Node tries each address of a name in turn; then every one of them must have refused.
  const causes = Array.isArray(cause.errors) && cause.errors.length > 0 ? cause.errors : [cause];
  return causes.every((c) => NOT_SENT.has(codeOf(c) as string));
}

export class Caller {
  /** The instances, `baseUrl` first, each once. */
  readonly baseUrls: readonly string[];
  /** Index of the instance that answered last: where the next call starts. */
  private current = 0;

  constructor(readonly options: LifeboatClientOptions) {
    this.baseUrls = [...new Set([options.baseUrl, ...(options.baseUrls ?? [])])];
  }

  /** The instance the next call starts at. */
  get baseUrl(): string {
    return this.baseUrls[this.current] as string;
  }

  /** The answer of `method path`, as the type the route answers. */
  async call<T>(method: 'GET' | 'POST', path: string, c: Call): Promise<T> {
    const version = c.version === 'backup' ? this.options.apiVersion ?? BACKUP_API_VERSION
      : c.version === 'query' ? this.options.queryApiVersion ?? QUERY_API_VERSION
      : c.version === 'none' ? undefined : c.version.exactly;
    const params = new URLSearchParams();
    if (version !== undefined) params.set('api-version', version);
    for (const [k, v] of Object.entries(c.query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString() === '' ? '' : `?${params.toString()}`;
    const o = { token: this.options.token, body: c.body, timeoutMs: c.timeoutMs ?? this.options.timeoutMs ?? 30_000, signal: c.signal };
    const safe = method === 'GET' || c.repeatable === true;
    const n = this.baseUrls.length;
    const start = this.current;
    for (let i = 0; ; i++) {
      const at = (start + i) % n;
      try {
        const answer = (await callLifeboat(this.baseUrls[at] as string, method, path + qs, o)) as T;
        this.current = at;
        return answer;
      } catch (err) {
        if (err instanceof LifeboatError) this.current = at; // it answered (a refusal): it is up
        if (i === n - 1 || c.signal?.aborted || !failsOver(err, c, safe)) throw err;
      }
    }
  }
}

/** ContinuationToken and MaxResults of a paging query. */
export function pageQuery(p: PageQuery = {}): Query {
  return { ContinuationToken: p.continuationToken, MaxResults: p.maxResults };
}

/** A date-time filter as the service reads it (a Date in UTC, or a string given as is). */
export function dateQuery(d: Date | string | undefined): string | undefined {
  return d instanceof Date ? wireTime(d) : d;
}

/** Polls `read` until `done` accepts its answer; a FABRIC_E_TIMEOUT LifeboatError after `timeoutMs`. */
export async function pollUntil<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, intervalMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > until) throw new LifeboatError('FABRIC_E_TIMEOUT', `Timed out after ${timeoutMs} ms waiting for ${what}; last answer ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** What every part of LifeboatClient calls through: the service's address, the token, api-versions, time limits. */
import { LifeboatError } from '../core/errors.ts';
import { BACKUP_API_VERSION, QUERY_API_VERSION } from '../wire/api-version.ts';
import type { PageQuery } from '../wire/paging.ts';
import { wireTime } from '../wire/time.ts';
import { callLifeboat } from './http.ts';

export interface LifeboatClientOptions {
  /** The service, e.g. http://127.0.0.1:19080. */
  readonly baseUrl: string;
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
}

export class Caller {
  constructor(readonly options: LifeboatClientOptions) {}

  /** The answer of `method path`, as the type the route answers. */
  async call<T>(method: 'GET' | 'POST', path: string, c: Call): Promise<T> {
    const version = c.version === 'backup' ? this.options.apiVersion ?? BACKUP_API_VERSION
      : c.version === 'query' ? this.options.queryApiVersion ?? QUERY_API_VERSION
      : c.version === 'none' ? undefined : c.version.exactly;
    const params = new URLSearchParams();
    if (version !== undefined) params.set('api-version', version);
    for (const [k, v] of Object.entries(c.query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString() === '' ? '' : `?${params.toString()}`;
    return (await callLifeboat(this.options.baseUrl, method, path + qs, {
      token: this.options.token, body: c.body, timeoutMs: c.timeoutMs ?? this.options.timeoutMs ?? 30_000, signal: c.signal,
    })) as T;
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

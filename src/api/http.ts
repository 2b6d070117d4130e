/**
 * What every route shares: the FabricError body, api-version checks, lenient query parsing
 * (Service Fabric binds query names case-insensitively and .NET sends `True`/`False`), and paging.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ApiSurface, apiVersionRefusal } from '../core/api-version.ts';
import { ERROR_CATALOGUE, type ErrorCode, LifeboatError, invalidArgUnless } from '../core/errors.ts';

export function sendError(reply: FastifyReply, code: ErrorCode | string, message: string, status?: number): FastifyReply {
  const s = status ?? (code in ERROR_CATALOGUE ? ERROR_CATALOGUE[code as ErrorCode].status : 500);
  if (s === 404) reply.header('X-ServiceFabric', 'ResourceNotFound');
  return reply.code(s).send({ Error: { Code: code, Message: message } });
}

/** Query parameters with lower-cased names; a name given twice is refused. */
export function query(req: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    const key = k.toLowerCase();
    invalidArgUnless(typeof v === 'string' && !out.has(key), `Query parameter ${k} is given more than once.`);
    out.set(key, v);
  }
  return out;
}

export function checkApiVersion(q: Map<string, string>, surface: ApiSurface, minimum?: number): void {
  const refusal = apiVersionRefusal(q.get('api-version'), surface, minimum);
  if (refusal) throw new LifeboatError('E_INVALIDARG', refusal);
  const timeout = q.get('timeout');
  if (timeout !== undefined) {
    invalidArgUnless(/^\d{1,10}$/.test(timeout) && Number(timeout) >= 1 && Number(timeout) <= 4294967295, 'timeout must be a whole number of seconds from 1 to 4294967295.');
  }
}

export function boolParam(q: Map<string, string>, name: string): boolean {
  const v = q.get(name.toLowerCase());
  if (v === undefined) return false;
  invalidArgUnless(/^(true|false)$/i.test(v), `${name} must be true or false.`);
  return v.toLowerCase() === 'true';
}

export function intParam(q: Map<string, string>, name: string): number | undefined {
  const v = q.get(name.toLowerCase());
  if (v === undefined) return undefined;
  invalidArgUnless(/^-?\d{1,10}$/.test(v), `${name} must be a whole number.`);
  return Number(v);
}

/** Service Fabric date-times: `yyyy-MM-ddTHH:mm:ss[.fff][Z]`, read as UTC. */
export function dateParam(value: unknown, name: string): Date | undefined {
  if (value === undefined || value === null) return undefined;
  invalidArgUnless(typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$/.test(value), `Invalid DateTime format for ${name}: use yyyy-MM-ddTHH:mm:ssZ.`);
  const d = new Date(/Z|[+-]\d{2}:\d{2}$/.test(value) ? value : `${value}Z`);
  invalidArgUnless(!Number.isNaN(d.getTime()), `Invalid DateTime for ${name}.`);
  return d;
}

export interface Page<T> {
  ContinuationToken: string;
  Items: T[];
}

/**
 * One page of `items` (already in key order): those with a key after the ContinuationToken, at
 * most MaxResults (0 = all). The token is the key of the last item returned, when more remain.
 */
export function page<T>(items: readonly T[], keyOf: (item: T) => string, q: Map<string, string>): Page<T> {
  const max = intParam(q, 'MaxResults') ?? 0;
  invalidArgUnless(max >= 0, 'MaxResults must be 0 or more.');
  const token = q.get('continuationtoken');
  let start = 0;
  if (token) {
    start = items.findIndex((i) => keyOf(i) > token);
    if (start < 0) start = items.length;
  }
  const end = max > 0 ? Math.min(items.length, start + max) : items.length;
  const slice = items.slice(start, end);
  return { ContinuationToken: end < items.length && slice.length > 0 ? keyOf(slice[slice.length - 1] as T) : '', Items: slice };
}

/**
 * One HTTP call to a Lifeboat service, as every client of it makes them (the out-of-process host,
 * the CLI): JSON in and out, the bearer token, a time limit, and a FabricError answer turned into
 * a LifeboatError with the service's code (E_FAIL for a code this version does not know).
 */
import { ERROR_CATALOGUE, type ErrorCode, LifeboatError } from '../core/errors.ts';

export interface CallOptions {
  readonly token?: string | undefined;
  readonly body?: unknown;
  readonly timeoutMs?: number;
}

export async function callLifeboat(baseUrl: string, method: string, path: string, o: CallOptions = {}): Promise<unknown> {
  const res = await fetch(new URL(path, baseUrl), {
    method,
    headers: {
      ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
    },
    ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
    signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json as { Error?: { Code?: string; Message?: string } } | undefined)?.Error;
    const code = e?.Code && e.Code in ERROR_CATALOGUE ? (e.Code as ErrorCode) : 'E_FAIL';
    throw new LifeboatError(code, `The Lifeboat service answered ${res.status} ${e?.Code ?? ''}: ${e?.Message ?? text.slice(0, 200)}`, { details: { status: res.status } });
  }
  return json;
}

/**
 * One HTTP call to a Lifeboat service, as every client of it makes them (LifeboatClient, and
 * through it the out-of-process host and the CLI): JSON in and out, the bearer token, a time
 * limit, and a FabricError answer turned into a LifeboatError with the service's code (E_FAIL for
 * a code this version does not know). A service that cannot be reached rejects with fetch's
 * TypeError (its `cause` says why); a call over its time limit with a TimeoutError.
 */
import { ERROR_CATALOGUE, type ErrorCode, LifeboatError } from '../core/errors.ts';
import { fabricErrorOf } from '../wire/errors.ts';

export interface CallOptions {
  readonly token?: string | undefined;
  /** Sent as JSON; no body (and no Content-Type) when undefined. */
  readonly body?: unknown;
  /** Default 30 s. */
  readonly timeoutMs?: number;
  /** Ends the call early (with the signal's reason) when it aborts. */
  readonly signal?: AbortSignal | undefined;
}

/** The parsed JSON answer (undefined for an empty body) of `method path` on the service at `baseUrl`. */
export async function callLifeboat(baseUrl: string, method: string, path: string, o: CallOptions = {}): Promise<unknown> {
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 30_000);
  const res = await fetch(new URL(path, baseUrl), {
    method,
    headers: {
      ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
    },
    ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
    signal: o.signal ? AbortSignal.any([timeout, o.signal]) : timeout,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = fabricErrorOf(json);
    const code = e?.Code && e.Code in ERROR_CATALOGUE ? (e.Code as ErrorCode) : 'E_FAIL';
    throw new LifeboatError(code, `The Lifeboat service answered ${res.status} ${e?.Code ?? ''}: ${e?.Message ?? text.slice(0, 200)}`, { details: { status: res.status } });
  }
  return json;
}

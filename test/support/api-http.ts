/** Raw HTTP helpers for tests of the REST API: send a request, check a FabricError answer. */
import assert from 'node:assert/strict';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** The bootstrap admin token every test Lifeboat is started with (startTestLifeboat, child processes). */
export const TEST_ADMIN_TOKEN = 'lbt_test-admin-0123456789abcdefghijklmnopqrstuvwxyz';

/** Headers that authenticate as the test admin. */
export const adminHeaders = (): Record<string, string> => ({ authorization: `Bearer ${TEST_ADMIN_TOKEN}` });

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  /** Sent as JSON (JSON.stringify) with Content-Type application/json, unless `raw` is given. */
  readonly body?: unknown;
  /** Sent as is (Content-Type application/json unless `headers` say otherwise). */
  readonly raw?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** The bearer token to send: the test admin's unless given; null sends none. */
  readonly token?: string | null;
}

export async function send(baseUrl: string, r: HttpRequest): Promise<HttpAnswer> {
  const payload = r.raw ?? (r.body === undefined ? undefined : JSON.stringify(r.body));
  const token = r.token === undefined ? TEST_ADMIN_TOKEN : r.token;
  const headers: Record<string, string> = {
    ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(r.headers ?? {}),
  };
  const res = await fetch(baseUrl + r.path, { method: r.method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The parsed JSON of an answer, failing with the text when it is not JSON. */
export function jsonOf(a: HttpAnswer, what = 'answer'): unknown {
  try {
    return JSON.parse(a.text) as unknown;
  } catch {
    assert.fail(`${what}: the body is not JSON: ${a.text.slice(0, 300)}`);
  }
}

/**
 * Checks that `a` is exactly a FabricError: status `status`, body `{"Error":{"Code": code,
 * "Message": <non-empty string>}}` and nothing else, JSON content type; 404s for a missing
 * resource carry `X-ServiceFabric: ResourceNotFound` (the header is how Service Fabric clients tell
 * "no such entity" from "no such route", so a route 404 — FABRIC_E_ENDPOINT_NOT_FOUND — and
 * non-404 answers do not).
 */
export function assertFabricError(a: HttpAnswer, status: number, code: string, what = 'answer'): void {
  const ctx = `${what}: got ${a.status} ${a.text.slice(0, 300)}`;
  // A 503 the test asks for (a catalog or host out of reach) is an answer; any other 5xx is a bug.
  if (status < 500) assert.ok(a.status < 500, `no request may cause a server error; ${ctx}`);
  assert.equal(a.status, status, ctx);
  assert.match(a.headers.get('content-type') ?? '', /^application\/json/, `content type; ${ctx}`);
  const body = jsonOf(a, what) as Record<string, unknown>;
  assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), ctx);
  assert.deepEqual(Object.keys(body), ['Error'], `the body has exactly one member, Error; ${ctx}`);
  const err = body.Error as Record<string, unknown>;
  assert.ok(err !== null && typeof err === 'object' && !Array.isArray(err), ctx);
  assert.deepEqual(Object.keys(err).sort(), ['Code', 'Message'], `Error has exactly Code and Message; ${ctx}`);
  assert.equal(err.Code, code, ctx);
  assert.equal(typeof err.Message, 'string', ctx);
  assert.ok((err.Message as string).trim().length > 0, `Message is not empty; ${ctx}`);
  const header = a.headers.get('x-servicefabric');
  if (status === 404 && code !== 'FABRIC_E_ENDPOINT_NOT_FOUND') assert.equal(header, 'ResourceNotFound', `X-ServiceFabric header of a 404; ${ctx}`);
  else assert.equal(header, null, `X-ServiceFabric header only on resource 404s; ${ctx}`);
}

/** Checks a success answer: the status, and no FabricError in the body. */
export function assertSuccess(a: HttpAnswer, status: number, what = 'answer'): unknown {
  const ctx = `${what}: got ${a.status} ${a.text.slice(0, 300)}`;
  // A 503 the test asks for (a catalog or host out of reach) is an answer; any other 5xx is a bug.
  if (status < 500) assert.ok(a.status < 500, `no request may cause a server error; ${ctx}`);
  assert.equal(a.status, status, ctx);
  if (a.text === '') return undefined;
  const body = jsonOf(a, what);
  assert.ok(!(body !== null && typeof body === 'object' && 'Error' in body), ctx);
  return body;
}

/** fetch, authenticated as the test admin (an Authorization header in `init` wins). */
export function lbFetch(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, headers: { ...adminHeaders(), ...((init.headers ?? {}) as Record<string, string>) } });
}

/**
 * The official client's `requestOptions`: ms-rest hands them to `request.defaults`, which takes
 * `headers` (and `cert`, `key`, `ca` for mutual TLS); its TypeScript types name only customHeaders.
 */
export function officialRequestOptions(options: Record<string, unknown> = { headers: adminHeaders() }): { customHeaders?: Record<string, string> } {
  return options as { customHeaders?: Record<string, string> };
}

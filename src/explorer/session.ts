/**
 * Signing in: the token is pasted once or carried by a link (`/explorer#token=…`, or the one-time
 * `/explorer/#code=…` that `lifeboat start` prints, exchanged once for the token), kept in
 * sessionStorage (this tab only, gone when it closes; never a cookie, so no other site's page can
 * make the browser send it), and sent by the typed client as a bearer token.
 */
import { LifeboatClient } from '../client/lifeboat-client.ts';
import type { MeWire } from '../wire/access.ts';

const TOKEN_KEY = 'lifeboat.explorer.token';

export interface Session {
  readonly client: LifeboatClient;
  readonly me: MeWire;
  /** Admins change things; readers see everything and change nothing (the service refuses them anyway). */
  readonly canChange: boolean;
}

/**
 * The token a sign-in link carries, taken out of the address at once (history.replaceState), so it
 * stays in neither the address bar nor the history.
 */
export function takeTokenFromLink(): { readonly token: string } | { readonly code: string } | undefined {
  const m = /^#(token|code)=([^&]+)/.exec(location.hash);
  if (!m?.[2]) return undefined;
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  let value: string;
  try {
    value = decodeURIComponent(m[2]);
  } catch {
    return undefined;
  }
  return m[1] === 'code' ? { code: value } : { token: value };
}

/** The token a one-time sign-in code stands for (the service spends the code). */
export async function redeemCode(code: string): Promise<string> {
  try {
    return (await new LifeboatClient({ baseUrl: location.origin }).access.signIn(code)).Token;
  } catch (err) {
    throw new Error(`The sign-in link was not accepted (${errorText(err)}).`, { cause: err });
  }
}

export const storedToken = (): string | null => sessionStorage.getItem(TOKEN_KEY);
export const forgetToken = (): void => sessionStorage.removeItem(TOKEN_KEY);

/** Who the service takes the token for; only admin and reader tokens may use the explorer. */
export async function signIn(token: string): Promise<Session> {
  const client = new LifeboatClient({ baseUrl: location.origin, token });
  let me: MeWire;
  try {
    me = await client.access.me();
  } catch (err) {
    throw new Error(`The service did not accept this token (${errorText(err)}).`, { cause: err });
  }
  if (me.Role !== 'admin' && me.Role !== 'reader') throw new Error(`This is a ${me.Role || 'unknown'} token; the explorer needs an admin or reader token.`);
  sessionStorage.setItem(TOKEN_KEY, token);
  return { client, me, canChange: me.Role === 'admin' };
}

/** What to show of a failure: the service's code and message, as the client gives them. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

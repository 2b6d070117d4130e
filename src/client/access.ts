/** Lifeboat's access routes: tokens (admin), the caller, the audit log (admin). */
import type { AuditEntryWire, CreateTokenRequest, CreatedToken, MeWire, TokenWire } from '../wire/access.ts';
import type { Page, PageQuery } from '../wire/paging.ts';
import { ROUTES, pathOf } from '../wire/routes.ts';
import { type Caller, pageQuery } from './caller.ts';

export class AccessClient {
  constructor(private readonly c: Caller) {}

  /** A new token: its secret is in the answer only. */
  createToken(request: CreateTokenRequest): Promise<CreatedToken> {
    return this.c.call('POST', ROUTES.createToken, { version: 'backup', body: request });
  }

  /** The tokens, never their secrets. */
  listTokens(page?: PageQuery): Promise<Page<TokenWire>> {
    return this.c.call('GET', ROUTES.tokens, { version: 'backup', query: pageQuery(page) });
  }

  async revokeToken(name: string): Promise<void> {
    await this.c.call('POST', pathOf(ROUTES.revokeToken, { tokenName: name }), { version: 'backup' });
  }

  /** Who the service takes this client's token for (a host token names its host id). */
  me(): Promise<MeWire> {
    return this.c.call('GET', ROUTES.me, { version: 'backup' });
  }

  /** The token a one-time sign-in code (the explorer link `lifeboat start` prints) stands for; the code is spent. */
  signIn(code: string): Promise<{ readonly Token: string }> {
    return this.c.call('POST', ROUTES.signIn, { version: 'backup', body: { Code: code } });
  }

  /** The audit log, oldest first; a page holds at most 1,000 entries. */
  auditLog(page?: PageQuery): Promise<Page<AuditEntryWire>> {
    return this.c.call('GET', ROUTES.auditLog, { version: 'backup', query: pageQuery(page) });
  }
}

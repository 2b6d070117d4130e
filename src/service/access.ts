/**
 * Access use cases: API tokens (create, list, revoke, authenticate), client-certificate roles, and
 * the audit log. Tokens are 256 random bits; only their SHA-256 is kept, so the access store (and
 * a copy of the catalog) never holds a usable token. A token's SHA-256 is what is looked up: the
 * lookup compares hashes, never the token, so its timing tells an attacker nothing of the token.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { HOST_ID, type Principal, type Role, TOKEN_NAME, isRole } from '../core/access.ts';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import type { AccessStore, AuditRecord, TokenRecord } from '../catalog/access-port.ts';
import type { CreatedToken, TokenWire } from '../wire/index.ts';
export type { CreatedToken, TokenWire } from '../wire/index.ts';
import type { Clock } from '../core/clock.ts';

/** Tokens start with this, so a leaked one is recognisable (secret scanners, logs). */
export const TOKEN_PREFIX = 'lbt_';
/** Longer bearer values are refused before hashing. */
const MAX_TOKEN_LENGTH = 256;

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** A token given outside the store (LIFEBOAT_ADMIN_TOKEN, `<data-dir>/admin.token`): always admin. */
export interface BootstrapToken {
  readonly name: string;
  readonly token: string;
}

export interface AccessDeps {
  readonly store: AccessStore;
  readonly clock: Clock;
  readonly bootstrap?: readonly BootstrapToken[];
  /**
   * Client certificates and their roles, by SHA-1 or SHA-256 thumbprint (hex, any case, colons
   * allowed) or by subject (`CN=…`), as `--client-cert-role` gives them.
   */
  readonly certificateRoles?: ReadonlyMap<string, Role>;
}

const thumbprintKey = (s: string): string => s.replace(/:/g, '').toUpperCase();

export class AccessService {
  private readonly store: AccessStore;
  private readonly clock: Clock;
  private readonly bootstrap: ReadonlyArray<{ name: string; hash: Buffer }>;
  private readonly certRoles = new Map<string, Role>();
  /** The bootstrap admin token a one-time sign-in code is exchanged for (the first one). */
  private readonly signInToken: string | undefined;

  constructor(deps: AccessDeps) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.bootstrap = (deps.bootstrap ?? []).map((b) => ({ name: b.name, hash: Buffer.from(hashToken(b.token), 'hex') }));
    this.signInToken = deps.bootstrap?.[0]?.token;
    for (const [k, role] of deps.certificateRoles ?? []) this.certRoles.set(/^[0-9a-f:]+$/i.test(k) ? thumbprintKey(k) : k, role);
  }

  /** The principal a bearer token stands for, or undefined (unknown, revoked, malformed). */
  async authenticateToken(token: string): Promise<Principal | undefined> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined;
    const hash = hashToken(token);
    const h = Buffer.from(hash, 'hex');
    for (const b of this.bootstrap) if (timingSafeEqual(b.hash, h)) return { name: b.name, role: 'admin', via: 'token' };
    const t = await this.store.tokenByHash(hash);
    return t && { name: t.name, role: t.role, hostId: t.hostId, via: 'token' };
  }

  /**
   * A one-time sign-in code for the web explorer (`lifeboat start` prints a link with it): it is
   * exchanged once, within `ttlMs` (default 10 minutes), for the bootstrap admin token, so the
   * token itself never appears in a terminal or its scroll-back. Undefined without a bootstrap token.
   * Only the code's hash is kept, in the access store: any instance on the catalog redeems it, once.
   */
  async createSignInCode(ttlMs = 10 * 60_000): Promise<string | undefined> {
    if (this.signInToken === undefined) return undefined;
    const code = newToken().replace(/^lbt_/, 'lbs_');
    await this.store.insertSignInCode(hashToken(code), new Date(this.clock.now().getTime() + ttlMs).toISOString());
    return code;
  }

  /** The token a sign-in code stands for, once: a used, expired or unknown code is LIFEBOAT_E_UNAUTHENTICATED. */
  async redeemSignInCode(value: unknown): Promise<{ Token: string }> {
    invalidArgUnless(typeof value === 'string' && value.length > 0 && value.length <= MAX_TOKEN_LENGTH, 'Code must be the sign-in code of a link.');
    const taken = await this.store.takeSignInCode(hashToken(value), this.clock.now().toISOString());
    if (!taken || this.signInToken === undefined) {
      throw new LifeboatError('LIFEBOAT_E_UNAUTHENTICATED', 'This sign-in link was used already or has expired: run lifeboat explorer for a new one, or paste the token.');
    }
    return { Token: this.signInToken };
  }

  /** The principal of a client certificate the TLS layer verified against the client CA, if it is mapped to a role. */
  authenticateCertificate(cert: { fingerprint?: string; fingerprint256?: string; subject?: Record<string, unknown> }): Principal | undefined {
    const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined;
    const keys = [cert.fingerprint, cert.fingerprint256].filter((k): k is string => typeof k === 'string').map(thumbprintKey);
    if (cn !== undefined) keys.push(`CN=${cn}`);
    for (const k of keys) {
      const role = this.certRoles.get(k);
      if (role) return { name: cn !== undefined ? `CN=${cn}` : k, role, via: 'certificate' };
    }
    return undefined;
  }

  /** Whether client certificates may authenticate at all. */
  get acceptsCertificates(): boolean {
    return this.certRoles.size > 0;
  }

  async createToken(body: Record<string, unknown> | undefined): Promise<CreatedToken> {
    invalidArgUnless(body, 'CreateToken needs a JSON body: {"Role": "admin" | "reader" | "host", "Name"?, "HostId"?}.');
    invalidArgUnless(isRole(body.Role), 'Role must be admin, reader, host or metrics.');
    const role = body.Role;
    const name = body.Name === undefined || body.Name === null ? `${role}-${randomBytes(4).toString('hex')}` : body.Name;
    invalidArgUnless(typeof name === 'string' && TOKEN_NAME.test(name), 'Name is 1 to 64 letters, digits, dots, dashes or underscores.');
    invalidArgUnless(!this.bootstrap.some((b) => b.name === name), `The name '${name}' is the bootstrap admin token's.`);
    let hostId: string | undefined;
    if (role === 'host') {
      invalidArgUnless(typeof body.HostId === 'string' && HOST_ID.test(body.HostId), 'A host token needs HostId: 1 to 128 letters, digits, dots, dashes or underscores.');
      hostId = body.HostId;
    } else {
      invalidArgUnless(body.HostId === undefined || body.HostId === null, 'HostId is only for host tokens.');
    }
    const token = newToken();
    const createdUtc = this.clock.now().toISOString();
    const ok = await this.store.insertToken({ name, role, hostId, hash: hashToken(token), createdUtc });
    if (!ok) throw new LifeboatError('LIFEBOAT_E_TOKEN_EXISTS', `A token named '${name}' exists; revoke it first or choose another name.`);
    return { Name: name, Role: role, ...(hostId !== undefined ? { HostId: hostId } : {}), CreatedUtc: createdUtc, Token: token };
  }

  async listTokens(): Promise<TokenWire[]> {
    return (await this.store.listTokens()).map(tokenWire);
  }

  async revokeToken(name: string): Promise<void> {
    invalidArgUnless(TOKEN_NAME.test(name), 'A token name is 1 to 64 letters, digits, dots, dashes or underscores.');
    if (!(await this.store.deleteToken(name))) throw new LifeboatError('LIFEBOAT_E_TOKEN_NOT_FOUND', `No token named '${name}'.`);
  }

  async audit(a: Omit<AuditRecord, 'seq' | 'timeUtc'>): Promise<void> {
    await this.store.appendAudit({ ...a, timeUtc: this.clock.now().toISOString() });
  }

  async auditLog(afterSeq: number, limit: number): Promise<AuditRecord[]> {
    return this.store.listAudit(afterSeq, limit);
  }
}

function tokenWire(t: TokenRecord): TokenWire {
  return { Name: t.name, Role: t.role, ...(t.hostId !== undefined ? { HostId: t.hostId } : {}), CreatedUtc: t.createdUtc };
}

/**
 * Who may do what. Every route of the REST API declares the access it needs; a caller is a
 * principal with one role. The rules, pure:
 * - `admin` may do everything;
 * - `reader` may read: every GET, and the POSTs that only query (GetBackupsFromBackupLocation,
 *   VerifyBackup); no backup, restore, policy, protection or token change;
 * - `host` may use only the host protocol, and only as the host its token is bound to;
 * - `metrics` may only scrape `/metrics` (a Prometheus server's token, which reads no backup).
 * `public` routes (liveness, readiness, the explorer's static page) need no credential and say nothing.
 */

export const ROLES = ['admin', 'reader', 'host', 'metrics'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What a route needs: `read` (readers and admins), `admin` (admins), `host` (the host named in
 * the path, or an admin), `metrics` (metrics tokens, readers and admins), `any` (any
 * authenticated caller: who-am-I), `public` (no credential: the gate does not authenticate).
 */
export type Access = 'read' | 'admin' | 'host' | 'metrics' | 'any' | 'public';

export const ACCESSES: readonly Access[] = ['read', 'admin', 'host', 'metrics', 'any', 'public'];

export interface Principal {
  /** The token's name, or the client certificate's subject. */
  readonly name: string;
  readonly role: Role;
  /** For a host principal: the only host id it may act as. */
  readonly hostId?: string | undefined;
  /** How it was authenticated. */
  readonly via: 'token' | 'certificate' | 'none';
}

export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

/** Whether `p` may use a route that needs `access`; `hostId` is the host the path names (host routes). */
export function authorize(p: Principal, access: Access, hostId?: string): Decision {
  if (p.role === 'admin' || access === 'any' || access === 'public') return { allowed: true };
  if (p.role === 'reader') {
    return access === 'read' || access === 'metrics' ? { allowed: true } : { allowed: false, reason: `The role reader may only read; this route needs the role ${access}.` };
  }
  if (p.role === 'metrics') {
    return access === 'metrics' ? { allowed: true } : { allowed: false, reason: 'A metrics token may only scrape /metrics.' };
  }
  if (access !== 'host') return { allowed: false, reason: 'A host token may only be used for the host protocol.' };
  if (p.hostId === undefined || hostId === undefined || p.hostId !== hostId) {
    return { allowed: false, reason: `This host token is bound to host '${p.hostId ?? ''}' and may not act as another host.` };
  }
  return { allowed: true };
}

/** Token and principal names: what `lifeboat token create --name` accepts. */
export const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Host ids, as the host protocol accepts them. */
export const HOST_ID = /^[A-Za-z0-9._-]{1,128}$/;

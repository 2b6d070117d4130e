/**
 * The access store port: API tokens and the audit log, kept beside the catalog (the SQLite
 * adapter keeps them in the catalog's database, so every service instance sees the same).
 *
 * Contract every adapter keeps:
 * - Only a token's hash is stored (SHA-256 of the token's text, hex); the token itself never is.
 * - `insertToken` refuses an existing name atomically with its check (returns false, writes nothing).
 * - `deleteToken` is final: a lookup by the deleted token's hash finds nothing once it resolves.
 * - A sign-in code is taken at most once, whichever instance is asked (`takeSignInCode` is atomic).
 * - Audit entries are appended with a growing `seq`; `listAudit` returns them by `seq`, oldest
 *   first, after the given one. The log keeps at least the newest `AUDIT_KEEP` entries.
 */
import type { Role } from '../core/access.ts';

export interface TokenRecord {
  readonly name: string;
  readonly role: Role;
  /** For a `host` token: the host id it may act as. */
  readonly hostId?: string | undefined;
  /** SHA-256 of the token, hex. */
  readonly hash: string;
  readonly createdUtc: string;
}

export interface AuditRecord {
  readonly seq: number;
  readonly timeUtc: string;
  /** Token name, certificate subject, or `anonymous`. */
  readonly principal: string;
  readonly role: string;
  readonly via: string;
  readonly method: string;
  /** The route's pattern, e.g. /Partitions/:partitionId/$/Backup. */
  readonly route: string;
  /** The entity the call names (partition id, service or application name, policy, token, host), or ''. */
  readonly entity: string;
  readonly status: number;
  /** `allowed` (2xx), `refused` (4xx/5xx after authorization) or `denied` (401/403 before it). */
  readonly outcome: 'allowed' | 'refused' | 'denied';
}

export const AUDIT_KEEP = 100_000;

export interface AccessStore {
  insertToken(t: TokenRecord): Promise<boolean>;
  tokenByHash(hash: string): Promise<TokenRecord | undefined>;
  /** By name. */
  listTokens(): Promise<TokenRecord[]>;
  /** False when there was no token of that name. */
  deleteToken(name: string): Promise<boolean>;
  /** Keeps a one-time sign-in code's hash until `expiresUtc`. */
  insertSignInCode(hash: string, expiresUtc: string): Promise<void>;
  /** Removes the code; whether it existed and had not expired at `nowUtc` (a code is taken once, by one instance). */
  takeSignInCode(hash: string, nowUtc: string): Promise<boolean>;
  appendAudit(a: Omit<AuditRecord, 'seq'>): Promise<void>;
  listAudit(afterSeq: number, limit: number): Promise<AuditRecord[]>;
}

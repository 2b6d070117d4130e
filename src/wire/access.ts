/** Lifeboat's own access routes on the wire: tokens, the caller (Me), the audit log. */
import type { Role } from '../core/access.ts';

export type { Role } from '../core/access.ts';

/** CreateToken's body: a Name is made up (`<role>-<random>`) when absent; HostId only, and always, for a host token. */
export interface CreateTokenRequest {
  Role: Role;
  Name?: string;
  HostId?: string;
}

export interface TokenWire {
  readonly Name: string;
  readonly Role: Role;
  readonly HostId?: string;
  readonly CreatedUtc: string;
}

export interface CreatedToken {
  readonly Name: string;
  readonly Role: Role;
  readonly HostId?: string;
  readonly CreatedUtc: string;
  /** The token itself: shown once, never stored. */
  readonly Token: string;
}

/** Who the caller is (GET /Lifeboat/$/Me). */
export interface MeWire {
  readonly Name: string;
  /** Empty when unauthenticated. */
  readonly Role: Role | '';
  /** How the caller authenticated: token, certificate, none. */
  readonly Via: string;
  /** A host token's host id. */
  readonly HostId?: string;
}

/** One entry of the audit log. */
export interface AuditEntryWire {
  readonly Seq: number;
  readonly TimeUtc: string;
  /** Token name, certificate subject, or `anonymous`. */
  readonly Principal: string;
  readonly Role: string;
  readonly Via: string;
  readonly Method: string;
  /** The route's pattern, e.g. /Partitions/:partitionId/$/Backup. */
  readonly Route: string;
  readonly Entity: string;
  readonly Status: number;
  readonly Outcome: 'allowed' | 'refused' | 'denied';
}

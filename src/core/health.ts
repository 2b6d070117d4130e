/**
 * Partition health as Service Fabric's BackupRestore reports it (sf-behaviour.md rule 18): the
 * properties `Backup` and `Restore` from source `System.BackupRestoreManager`.
 * - Backup: Ok after a successful backup (no expiry), Warning after a failed one; no event when
 *   the partition has no backup policy (DisableBackup clears it).
 * - Restore: Ok after a successful restore (120 minutes for a user's restore, no expiry for an
 *   auto-restore), Error for 5 minutes after a failed auto-restore.
 * - Host (Lifeboat's own): Error while the host serving the partition is down (unseen for the
 *   grace period): nothing can back it up or restore it until it returns.
 * Events are derived from the newest ended operations and the host's sightings, so nothing extra
 * is stored. Pure.
 */

export type HealthState = 'Ok' | 'Warning' | 'Error';

export const HEALTH_SOURCE = 'System.BackupRestoreManager';
/** TimeSpan.MaxValue as Service Fabric serializes an event that never expires. */
export const INFINITE_TTL = 'P10675199DT2H48M5.4775807S';
const NEVER = '0001-01-01T00:00:00.000Z';

export interface EndedOperation {
  readonly state: 'Success' | 'Failure' | 'Timeout';
  readonly updatedUtc: string;
  readonly failure?: { readonly Code: string; readonly Message: string } | undefined;
  readonly auto?: boolean;
}

export interface HealthInput {
  /** The partition's effective backup policy, if any. */
  readonly policyName: string | undefined;
  readonly lastBackup: EndedOperation | undefined;
  readonly lastRestore: EndedOperation | undefined;
  /** The partition's host when it is down: since when it has not been seen. */
  readonly hostDown?: { readonly hostId: string; readonly lastSeenUtc: string } | undefined;
}

export interface HealthEventWire {
  SourceId: string;
  Property: 'Backup' | 'Restore' | 'Host';
  HealthState: HealthState;
  TimeToLiveInMilliSeconds: string;
  Description: string;
  SequenceNumber: string;
  RemoveWhenExpired: boolean;
  IsExpired: boolean;
  SourceUtcTimestamp: string;
  LastModifiedUtcTimestamp: string;
  LastOkTransitionAt: string;
  LastWarningTransitionAt: string;
  LastErrorTransitionAt: string;
}

function event(property: HealthEventWire['Property'], state: HealthState, at: string, ttl: { wire: string; ms: number | undefined }, description: string): HealthEventWire {
  return {
    SourceId: HEALTH_SOURCE, Property: property, HealthState: state, TimeToLiveInMilliSeconds: ttl.wire, Description: description,
    SequenceNumber: String(new Date(at).getTime()), RemoveWhenExpired: ttl.ms !== undefined, IsExpired: false,
    SourceUtcTimestamp: at, LastModifiedUtcTimestamp: at,
    LastOkTransitionAt: state === 'Ok' ? at : NEVER, LastWarningTransitionAt: state === 'Warning' ? at : NEVER, LastErrorTransitionAt: state === 'Error' ? at : NEVER,
  };
}

const failureText = (op: EndedOperation): string => (op.failure ? `${op.failure.Code}: ${op.failure.Message}` : op.state);

/** The partition's BackupRestore health events at `now` (expired ones are removed). */
export function backupRestoreHealthEvents(input: HealthInput, now: Date): HealthEventWire[] {
  const out: HealthEventWire[] = [];
  const b = input.lastBackup;
  if (input.policyName !== undefined && b) {
    out.push(b.state === 'Success'
      ? event('Backup', 'Ok', b.updatedUtc, { wire: INFINITE_TTL, ms: undefined }, `The last backup of the partition succeeded (policy '${input.policyName}').`)
      : event('Backup', 'Warning', b.updatedUtc, { wire: INFINITE_TTL, ms: undefined }, `The last backup of the partition failed: ${failureText(b)}`));
  }
  const r = input.lastRestore;
  if (r) {
    const ttl = r.state === 'Success'
      ? (r.auto ? { wire: INFINITE_TTL, ms: undefined } : { wire: 'PT2H', ms: 120 * 60_000 })
      : { wire: 'PT5M', ms: 5 * 60_000 };
    const alive = ttl.ms === undefined || new Date(r.updatedUtc).getTime() + ttl.ms > now.getTime();
    if (alive && r.state === 'Success') {
      out.push(event('Restore', 'Ok', r.updatedUtc, ttl, r.auto ? 'The partition was restored automatically after data loss.' : 'The partition was restored.'));
    } else if (alive && r.auto) {
      out.push(event('Restore', 'Error', r.updatedUtc, ttl, `The automatic restore after data loss failed: ${failureText(r)}`));
    }
  }
  const down = input.hostDown;
  if (down) {
    out.push(event('Host', 'Error', down.lastSeenUtc, { wire: INFINITE_TTL, ms: undefined },
      `The partition is unreachable: host ${down.hostId}, which serves it, has not been seen since ${down.lastSeenUtc}. Backups and restores of it fail until the host returns.`));
  }
  return out;
}

const RANK: Record<HealthState, number> = { Ok: 0, Warning: 1, Error: 2 };

export function aggregatedHealthState(events: readonly HealthEventWire[]): HealthState {
  return events.reduce<HealthState>((worst, e) => (RANK[e.HealthState] > RANK[worst] ? e.HealthState : worst), 'Ok');
}

/**
 * Service Fabric's EventsHealthStateFilter: a bit mask (Default 0 = all, None 1, Ok 2, Warning 4,
 * Error 8, All 65535).
 */
export function eventsMatchingFilter(events: readonly HealthEventWire[], filter: number): HealthEventWire[] {
  if (filter === 0 || (filter & 65535) === 65535) return [...events];
  const bit: Record<HealthState, number> = { Ok: 2, Warning: 4, Error: 8 };
  return events.filter((e) => (filter & bit[e.HealthState]) !== 0);
}

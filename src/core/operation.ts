/**
 * The life of a backup or restore operation, as one pure reducer: every state change the service
 * makes goes through `nextOperation`, so the rules (ended is final, a report needs its result, who
 * may end what) live in one place. The wire states are Service Fabric's (Accepted,
 * BackupInProgress, RestoreInProgress, Success, Failure, Timeout); the phases name them for
 * callers that do not care about the kind, and add PartiallyFailed for operations over several
 * partitions (`phaseOfMany`).
 */

export type OperationKind = 'Backup' | 'PeriodicBackup' | 'Restore';
export type OperationState = 'Accepted' | 'BackupInProgress' | 'RestoreInProgress' | 'Success' | 'Failure' | 'Timeout';
export type OperationPhase = 'Accepted' | 'InProgress' | 'Succeeded' | 'Failed' | 'TimedOut' | 'PartiallyFailed';

export interface FailureError {
  readonly Code: string;
  readonly Message: string;
}

/** What can happen to an operation. */
export type OperationEvent =
  | { readonly type: 'HostStarted' }
  /** The host reports how far it is (bytes); the operation is in progress. */
  | { readonly type: 'HostProgressed'; readonly progress: Record<string, unknown> }
  | { readonly type: 'HostSucceeded'; readonly result: Record<string, unknown> }
  | { readonly type: 'HostFailed'; readonly error: FailureError }
  /** Its deadline passed before it ended. */
  | { readonly type: 'DeadlinePassed' }
  /** The host restarted (registered as a new incarnation) while it carried it out: its work is lost. */
  | { readonly type: 'HostRestarted' }
  /** The host has not been seen for the grace period: nothing will carry it out or report its end. */
  | { readonly type: 'HostDown'; readonly hostId: string; readonly lastSeenUtc: string }
  /** SkipAutoRestore dropped an auto-restore not yet handed out. */
  | { readonly type: 'AutoRestoreSkipped' };

/** The change to write: the new state, and its result or failure. */
export interface OperationChange {
  readonly state: OperationState;
  readonly result?: Record<string, unknown>;
  readonly failure?: FailureError;
}

const ACTIVE: ReadonlySet<OperationState> = new Set(['Accepted', 'BackupInProgress', 'RestoreInProgress']);

export function isActive(state: OperationState): boolean {
  return ACTIVE.has(state);
}

export function phaseOf(state: OperationState): OperationPhase {
  switch (state) {
    case 'Accepted': return 'Accepted';
    case 'BackupInProgress':
    case 'RestoreInProgress': return 'InProgress';
    case 'Success': return 'Succeeded';
    case 'Failure': return 'Failed';
    case 'Timeout': return 'TimedOut';
  }
}

/**
 * The phase of an operation over several partitions, from its parts: in progress while any part
 * is active, Succeeded when all did, Failed (or TimedOut) when none did, PartiallyFailed otherwise.
 */
export function phaseOfMany(parts: readonly OperationState[]): OperationPhase {
  if (parts.length === 0) return 'Succeeded';
  const phases = parts.map(phaseOf);
  if (phases.every((p) => p === 'Accepted')) return 'Accepted';
  if (phases.some((p) => p === 'Accepted' || p === 'InProgress')) return 'InProgress';
  const ok = phases.filter((p) => p === 'Succeeded').length;
  if (ok === phases.length) return 'Succeeded';
  if (ok > 0) return 'PartiallyFailed';
  return phases.every((p) => p === 'TimedOut') ? 'TimedOut' : 'Failed';
}

/**
 * The change `event` makes to an operation of `kind` in `state`; undefined when it makes none
 * (an ended operation never changes; a host's restart does not cut an operation it had not started).
 */
export function nextOperation(kind: OperationKind, state: OperationState, event: OperationEvent): OperationChange | undefined {
  if (!isActive(state)) return undefined;
  const what = kind.toLowerCase();
  switch (event.type) {
    case 'HostStarted': return { state: kind === 'Restore' ? 'RestoreInProgress' : 'BackupInProgress' };
    case 'HostProgressed': return { state: kind === 'Restore' ? 'RestoreInProgress' : 'BackupInProgress', result: event.progress };
    case 'HostSucceeded': return { state: 'Success', result: event.result };
    case 'HostFailed': return { state: 'Failure', failure: event.error };
    case 'DeadlinePassed': return { state: 'Timeout', failure: { Code: 'FABRIC_E_TIMEOUT', Message: `The request of ${what} has timed out.` } };
    case 'HostRestarted':
      if (state === 'Accepted') return undefined;
      return { state: 'Failure', failure: { Code: 'E_ABORT', Message: `The ${what} was cut off: its host restarted while it ran. Request it again.` } };
    case 'HostDown':
      return {
        state: 'Failure',
        failure: { Code: 'LIFEBOAT_E_HOST_LOST', Message: `The ${what} cannot go on: host ${event.hostId}, which serves the partition, has not been seen since ${event.lastSeenUtc}. Start the host again and repeat the request.` },
      };
    case 'AutoRestoreSkipped':
      if (state !== 'Accepted' || kind !== 'Restore') return undefined;
      return { state: 'Failure', failure: { Code: 'E_ABORT', Message: 'The auto-restore was skipped (SkipAutoRestore): the partition keeps its replica\'s state.' } };
  }
}

/**
 * What the service tells whoever watches it (the Prometheus metrics of src/api/metrics.ts; tests),
 * through a small port, so the service knows no metrics library. Every state change of a backup or
 * restore goes through `OrderBoard.apply`, which reports it here once it is in the catalog; the
 * scheduler reports each periodic backup it starts, with its lag.
 *
 * Contract: a watcher's methods return quickly and never throw into the service (the board and
 * the scheduler call them through `notify`, which swallows what a watcher throws). What they get
 * holds no secret: no storage description, no request.
 */
import type { FailureError, OperationKind, OperationState } from '../core/operation.ts';

/** One state change of an operation, as it was written to the catalog. */
export interface OperationChange {
  readonly operationId: string;
  readonly kind: OperationKind;
  readonly partitionId: string;
  /** Backups: Full (every on-demand backup) or Incremental (periodic ones as the scheduler decided). */
  readonly backupType?: 'Full' | 'Incremental';
  /** Restores: whether Lifeboat started it itself after data loss (auto-restore). */
  readonly autoRestore?: boolean;
  readonly from: OperationState;
  readonly to: OperationState;
  readonly acceptedUtc: string;
  /** When the change happened (the operation's new updatedUtc). */
  readonly changedUtc: string;
  /**
   * What the change added to the operation's result: for a successful backup BackupId, …, and the
   * byte counts BytesTransferred (logical bytes read from the partition) and StoredBytes (bytes
   * written to storage) when the host reported them.
   */
  readonly result?: Readonly<Record<string, unknown>>;
  readonly failure?: FailureError;
}

export interface ServiceEvents {
  /** An operation changed (also a progress report that keeps it in progress: `from` may equal `to`). */
  operationChanged(change: OperationChange): void;
  /** The scheduler started a periodic backup `lagMs` after it was due (jitter included). */
  periodicBackupStarted(e: { readonly partitionId: string; readonly lagMs: number }): void;
}

export const noServiceEvents: ServiceEvents = {
  operationChanged: () => undefined,
  periodicBackupStarted: () => undefined,
};

/** Calls a watcher, never letting what it throws reach the service. */
export function notify(fn: () => void): void {
  try {
    fn();
  } catch {
    // A watcher's failure is its own; the service goes on.
  }
}

/**
 * The operations board: accepting a backup or restore (one per partition at a time, atomically in
 * the catalog), handing orders out to hosts once, waking the host an order is for, and ending
 * operations the hosts can no longer end themselves: overdue ones (Timeout) and those a restart
 * cut off (Failure). State changes go through the core's reducer (core/operation.ts), and each
 * one written is told to the service's watchers (observer.ts: the metrics count operations there).
 */
import { EventEmitter } from 'node:events';
import { LifeboatError } from '../core/errors.ts';
import { type OperationEvent, nextOperation } from '../core/operation.ts';
import type { OperationKind, OperationRecord, PartitionRecord } from '../catalog/port.ts';
import { type OperationChange, notify } from './observer.ts';
import type { ServicePorts } from './ports.ts';

/** A host that has not polled for this long is no longer serving (its in-flight orders are re-sent when it returns). */
const ORDER_REDISPATCH_MS = 60_000;

export class OrderBoard {
  /**
   * 'ended' (operation) when a host reported an operation's end; 'protection-changed' when a
   * policy or the protection changed. The scheduler listens, so a schedule starts when its
   * policy is enabled, not at the loop's next idle wake-up.
   */
  readonly events = new EventEmitter();
  private readonly wake = new EventEmitter();
  /** Orders handed to a host and when; not handed again until it re-registers or goes quiet. */
  private readonly dispatched = new Map<string, { hostId: string; atMs: number }>();
  private shuttingDown = false;
  /** Hosts that registered or polled since this process started (readiness: /readyz). */
  private readonly seenHosts = new Set<string>();

  constructor(private readonly p: ServicePorts) {
    this.wake.setMaxListeners(0);
  }

  /** Records a new Accepted operation; FABRIC_E_{BACKUP,RESTORE}_IN_PROGRESS when the partition has one. */
  async accept(partition: PartitionRecord, kind: OperationKind, minutes: number, request: Record<string, unknown>): Promise<OperationRecord> {
    const now = this.p.clock.now();
    const op: OperationRecord = {
      id: this.p.newId(), kind, partitionId: partition.id, state: 'Accepted', acceptedUtc: now.toISOString(),
      deadlineUtc: new Date(now.getTime() + minutes * 60_000).toISOString(), updatedUtc: now.toISOString(), request, result: {}, failure: undefined,
    };
    const res = await this.p.catalog.operations.insert(op);
    if (!res.inserted) {
      const busy = res.active.kind === 'Restore' ? 'FABRIC_E_RESTORE_IN_PROGRESS' : 'FABRIC_E_BACKUP_IN_PROGRESS';
      throw new LifeboatError(busy, `A ${res.active.kind.toLowerCase()} of partition ${partition.id} is ${res.active.state}; one backup or restore per partition at a time.`);
    }
    this.wakeHost(partition.hostId);
    return op;
  }

  /** Applies `event` to the operation through the reducer; whether it changed. */
  async apply(op: OperationRecord, event: OperationEvent, updatedUtc = this.p.clock.now().toISOString()): Promise<boolean> {
    const change = nextOperation(op.kind, op.state, event);
    if (!change) return false;
    // The catalog changes an operation only while it is active: of two racing ends (a report and
    // the deadline), one is written and told, the other is neither.
    const written = await this.p.catalog.operations.update(op.id, { ...change, updatedUtc });
    if (written) {
      const told: OperationChange = {
        operationId: op.id, kind: op.kind, partitionId: op.partitionId, from: op.state, to: change.state, acceptedUtc: op.acceptedUtc, changedUtc: updatedUtc,
        ...(op.kind === 'Restore' ? { autoRestore: op.request.auto === true } : { backupType: backupTypeOf(op) }),
        ...(change.result ? { result: change.result } : {}), ...(change.failure ? { failure: change.failure } : {}),
      };
      notify(() => this.p.events.operationChanged(told));
    }
    return written;
  }

  /**
   * After a restart: operations a host was carrying out when the service stopped end in Failure
   * (their host's report went nowhere); Accepted ones stay queued and are handed out again.
   */
  async recoverAfterRestart(): Promise<void> {
    for (const op of await this.p.catalog.operations.active()) await this.apply(op, { type: 'CutByRestart' });
    // Accepted ones whose time ran out while Lifeboat was down end now, before any host sees them.
    await this.expireOperations();
  }

  /** Ends active operations whose deadline has passed with Timeout. */
  async expireOperations(): Promise<number> {
    const now = this.p.clock.now();
    let n = 0;
    for (const op of await this.p.catalog.operations.active()) {
      if (new Date(op.deadlineUtc) > now) continue;
      if (await this.apply(op, { type: 'DeadlinePassed' }, now.toISOString())) n++;
      this.dispatched.delete(op.id);
    }
    return n;
  }

  /** Whether to hand the operation to the host now: not again to the host that has it, while it polls. */
  takeForDispatch(opId: string, hostId: string, nowMs: number): boolean {
    this.hostSeen(hostId);
    const d = this.dispatched.get(opId);
    if (d && d.hostId === hostId && nowMs - d.atMs < ORDER_REDISPATCH_MS) return false;
    this.dispatched.set(opId, { hostId, atMs: nowMs });
    return true;
  }

  /** The operation ended or was dropped: no order of it is out. */
  forgetDispatch(opId: string): void {
    this.dispatched.delete(opId);
  }

  /** A host that registers again lost whatever it was doing: its orders are handed out afresh. */
  forgetHost(hostId: string): void {
    this.hostSeen(hostId);
    for (const [opId, d] of this.dispatched) if (d.hostId === hostId) this.dispatched.delete(opId);
  }

  wakeHost(hostId: string): void {
    this.wake.emit(hostId);
  }

  /** A host registered or polls for orders (registration, dispatch and the poll's wait say so). */
  hostSeen(hostId: string): void {
    this.seenHosts.add(hostId);
  }

  /** How many hosts registered or polled since this process started. */
  get hostsSeen(): number {
    return this.seenHosts.size;
  }

  /** Waits until the host is woken, `ms` pass, or `signal` aborts. */
  async waitForWake(hostId: string, ms: number, signal?: AbortSignal): Promise<void> {
    this.hostSeen(hostId);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake.off(hostId, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake.on(hostId, done);
      signal?.addEventListener('abort', done);
    });
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Shutting down: every waiting order poll ends now, and later ones return at once. */
  wakeAll(): void {
    this.shuttingDown = true;
    for (const name of this.wake.eventNames()) this.wake.emit(name);
  }
}

/** Full or Incremental: on-demand backups are always Full; a periodic one is what the scheduler decided. */
function backupTypeOf(op: OperationRecord): 'Full' | 'Incremental' {
  const periodic = op.request.periodic as { option?: string } | undefined;
  return periodic?.option === 'Incremental' ? 'Incremental' : 'Full';
}

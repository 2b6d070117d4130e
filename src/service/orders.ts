/**
 * The operations board: accepting a backup or restore (one per partition at a time, atomically in
 * the catalog), handing orders out to hosts once (a claim in the catalog, so once whichever
 * instance the host polls), waking the host an order is for (a catalog signal, so on whichever
 * instance it waits), and ending operations the hosts can no longer end themselves: overdue ones
 * (Timeout) and those of hosts that restarted or are down (Failure). State changes go through the
 * core's reducer (core/operation.ts), and each one written is told to the service's watchers
 * (observer.ts: the metrics count operations there).
 */
import { EventEmitter } from 'node:events';
import { LifeboatError } from '../core/errors.ts';
import { hostIsDown } from '../core/host-liveness.ts';
import { type OperationEvent, nextOperation } from '../core/operation.ts';
import type { CatalogSignal, Fence, HostRecord, HostReportRecords, OperationKind, OperationPatch, OperationRecord, PartitionRecord } from '../catalog/port.ts';
import { type OperationChange, notify } from './observer.ts';
import type { ServicePorts } from './ports.ts';

/** A host that has not polled for this long is no longer serving (its in-flight orders are re-sent when it returns). */
const ORDER_REDISPATCH_MS = 60_000;

export class OrderBoard {
  /**
   * 'ended' when a host reported an operation's end; 'protection-changed' when a policy or the
   * protection changed — on any instance (catalog signals). The scheduler listens, so a schedule
   * starts when its policy is enabled, not at the loop's next idle wake-up.
   */
  readonly events = new EventEmitter();
  private readonly wake = new EventEmitter();
  private shuttingDown = false;
  /** Hosts that registered or polled since this process started (readiness: /readyz). */
  private readonly seenHosts = new Set<string>();
  private readonly unsubscribe: () => void;

  constructor(private readonly p: ServicePorts) {
    this.wake.setMaxListeners(0);
    this.events.setMaxListeners(0);
    this.unsubscribe = p.catalog.signals.subscribe((s) => this.heard(s));
  }

  private heard(s: CatalogSignal): void {
    if (s.kind === 'orders') this.wake.emit(s.hostId);
    else if (s.kind === 'ended') this.events.emit('ended', s.operationId);
    else this.events.emit('protection-changed');
  }

  /**
   * Records a new Accepted operation; FABRIC_E_{BACKUP,RESTORE}_IN_PROGRESS when the partition
   * has one, LIFEBOAT_E_HOST_LOST when its host is down. The scheduler's carry its fence.
   */
  async accept(partition: PartitionRecord, kind: OperationKind, minutes: number, request: Record<string, unknown>, fence?: Fence, id?: string): Promise<OperationRecord> {
    const host = await this.p.catalog.hierarchy.getHost(partition.hostId);
    if (host && hostIsDown(host, this.p.wallClock.now(), this.p.hostGraceMs)) {
      throw new LifeboatError('LIFEBOAT_E_HOST_LOST', `Host ${host.id}, which serves partition ${partition.id}, has not been seen since ${host.lastSeenUtc}: it is unreachable. Start it again, then repeat the request.`);
    }
    const op = newOperation(id ?? this.p.newId(), partition, kind, minutes, request, this.p.clock.now());
    const res = await this.p.catalog.operations.insert(op, fence);
    if (!res.inserted) {
      const busy = res.active.kind === 'Restore' ? 'FABRIC_E_RESTORE_IN_PROGRESS' : 'FABRIC_E_BACKUP_IN_PROGRESS';
      throw new LifeboatError(busy, `A ${res.active.kind.toLowerCase()} of partition ${partition.id} is ${res.active.state}; one backup or restore per partition at a time.`);
    }
    await this.wakeHost(partition.hostId);
    return op;
  }

  /**
   * `accept` for many new operations at once (a scheduler pass): one read of the hosts, one insert,
   * one wake per host. Each comes back accepted, busy (the partition has an active operation), or
   * refused because its host is down — in the order given.
   */
  async acceptMany(
    requests: ReadonlyArray<{ readonly partition: PartitionRecord; readonly kind: OperationKind; readonly minutes: number; readonly request: Record<string, unknown>; readonly id: string }>,
    fence?: Fence,
  ): Promise<Array<{ op: OperationRecord } | { busy: true } | { hostDown: HostRecord }>> {
    const wallNow = this.p.wallClock.now();
    const down = new Map((await this.p.catalog.hierarchy.listHosts()).filter((h) => hostIsDown(h, wallNow, this.p.hostGraceMs)).map((h) => [h.id, h]));
    const now = this.p.clock.now();
    const ops = requests.map((r) => newOperation(r.id, r.partition, r.kind, r.minutes, r.request, now));
    const inserted = await this.p.catalog.operations.insertMany(ops.filter((_, i) => !down.has((requests[i] as (typeof requests)[number]).partition.hostId)), fence);
    const hosts = new Set(requests.filter((r) => inserted.has(r.id)).map((r) => r.partition.hostId));
    await Promise.all([...hosts].map((h) => this.wakeHost(h)));
    return requests.map((r, i) => {
      const host = down.get(r.partition.hostId);
      if (host) return { hostDown: host };
      return inserted.has(r.id) ? { op: ops[i] as OperationRecord } : { busy: true as const };
    });
  }

  /**
   * Applies `event` to the operation through the reducer; whether it changed. With `report` (an
   * event that ends it: a host's final report), what the host reported is written with the end,
   * in one transaction; a backup id that is another partition's is refused (E_INVALIDARG) and
   * nothing is written.
   */
  async apply(op: OperationRecord, event: OperationEvent, updatedUtc = this.p.clock.now().toISOString(), report?: HostReportRecords): Promise<boolean> {
    const change = nextOperation(op.kind, op.state, event);
    if (!change) return false;
    // The catalog changes an operation only while it is active: of two racing ends (a report and
    // the deadline), one is written and told, the other is neither.
    const written = report ? await this.end(op, { ...change, updatedUtc }, report) : await this.p.catalog.operations.update(op.id, { ...change, updatedUtc });
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

  private async end(op: OperationRecord, patch: OperationPatch, report: HostReportRecords): Promise<boolean> {
    const outcome = await this.p.catalog.operations.end(op.id, patch, report);
    if (outcome === 'foreign-backup') throw new LifeboatError('E_INVALIDARG', `Backup ${report.backup?.backupId ?? ''} is another partition's.`);
    return outcome === 'ended';
  }

  /** Ends active operations whose deadline has passed with Timeout. */
  async expireOperations(): Promise<number> {
    const now = this.p.clock.now();
    let n = 0;
    for (const op of await this.p.catalog.operations.active()) {
      if (new Date(op.deadlineUtc) > now) continue;
      if (await this.apply(op, { type: 'DeadlinePassed' }, now.toISOString())) n++;
    }
    return n;
  }

  /**
   * Ends, with LIFEBOAT_E_HOST_LOST, the active operations of hosts that are down (unseen for the
   * grace period, on every instance): nothing will carry them out or report their end.
   */
  async failOperationsOfDownHosts(): Promise<number> {
    const now = this.p.wallClock.now();
    let n = 0;
    for (const host of await this.p.catalog.hierarchy.listHosts()) {
      if (!hostIsDown(host, now, this.p.hostGraceMs)) continue;
      for (const op of await this.p.catalog.operations.active(host.id)) {
        if (await this.apply(op, { type: 'HostDown', hostId: host.id, lastSeenUtc: host.lastSeenUtc })) n++;
      }
    }
    return n;
  }

  /** A host restarted (a new incarnation): what it carried out is lost (E_ABORT); its queued orders go out afresh. */
  async hostRestarted(hostId: string): Promise<void> {
    for (const op of await this.p.catalog.operations.active(hostId)) await this.apply(op, { type: 'HostRestarted' });
    await this.p.catalog.operations.releaseOrders(hostId);
  }

  /** The orders to hand the host now: not again those it has, while it polls (claims in the catalog). */
  async takeForDispatch(hostId: string): Promise<OperationRecord[]> {
    this.hostSeen(hostId);
    const now = this.p.wallClock.now();
    return this.p.catalog.operations.claimOrders(hostId, now.toISOString(), new Date(now.getTime() - ORDER_REDISPATCH_MS).toISOString());
  }

  /** Tells the host, on whichever instance it polls, that it has orders. */
  async wakeHost(hostId: string): Promise<void> {
    await this.p.catalog.signals.publish({ kind: 'orders', hostId });
  }

  /** Tells every instance (the leader's scheduler) that an operation ended. */
  async ended(operationId: string): Promise<void> {
    await this.p.catalog.signals.publish({ kind: 'ended', operationId });
  }

  /** Tells every instance that a policy or the protection changed. */
  async protectionChanged(): Promise<void> {
    await this.p.catalog.signals.publish({ kind: 'protection' });
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
    this.unsubscribe();
    for (const name of this.wake.eventNames()) this.wake.emit(name);
  }
}

/** A new Accepted operation of the partition, due to end `minutes` after `now`. */
function newOperation(id: string, partition: PartitionRecord, kind: OperationKind, minutes: number, request: Record<string, unknown>, now: Date): OperationRecord {
  return {
    id, kind, partitionId: partition.id, state: 'Accepted', acceptedUtc: now.toISOString(),
    deadlineUtc: new Date(now.getTime() + minutes * 60_000).toISOString(), updatedUtc: now.toISOString(), request, result: {}, failure: undefined,
  };
}

/** Full or Incremental: on-demand backups are always Full; a periodic one is what the scheduler decided. */
function backupTypeOf(op: OperationRecord): 'Full' | 'Incremental' {
  const periodic = op.request.periodic as { option?: string } | undefined;
  return periodic?.option === 'Incremental' ? 'Incremental' : 'Full';
}

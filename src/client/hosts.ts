/**
 * The host protocol over HTTP (internal routes, a `host` token): the service's side as a host sees
 * it. Every call is safe to repeat (registration is idempotent, a repeated report is ignored, a
 * poll just polls), so each is `repeatable`: with several instances it fails over to the next one
 * whenever the current cannot be reached or hangs (Caller).
 */
import type { DataLossDecision, HostChannel, Order, Registration, Report } from '../core/host-protocol.ts';
import type { OrdersWire } from '../wire/host-protocol.ts';
import { ROUTES, pathOf } from '../wire/routes.ts';
import type { Caller } from './caller.ts';

/** Extra time an order poll may take beyond its wait. */
const POLL_GRACE_MS = 30_000;

export class HostProtocolClient implements HostChannel {
  constructor(private readonly c: Caller) {}

  async register(hostId: string, registration: Registration): Promise<void> {
    await this.c.call('POST', pathOf(ROUTES.hostRegister, { hostId }), { version: 'none', body: registration, repeatable: true });
  }

  /** Orders for the host's partitions; the service holds the call up to `waitMs` when it has none. */
  async pollOrders(hostId: string, waitMs: number, signal?: AbortSignal): Promise<Order[]> {
    const r = await this.c.call<OrdersWire>('GET', pathOf(ROUTES.hostOrders, { hostId }), { version: 'none', query: { WaitMs: waitMs }, timeoutMs: waitMs + POLL_GRACE_MS, signal, repeatable: true });
    return r.Orders;
  }

  async report(hostId: string, report: Report): Promise<void> {
    await this.c.call('POST', pathOf(ROUTES.hostReport, { hostId }), { version: 'none', body: report, repeatable: true });
  }

  /** What to do about data loss in one of the host's partitions. */
  dataLoss(hostId: string, partitionId: string): Promise<DataLossDecision> {
    return this.c.call('POST', pathOf(ROUTES.hostDataLoss, { hostId }), { version: 'none', body: { PartitionId: partitionId }, repeatable: true });
  }
}

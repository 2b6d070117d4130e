/** The host's side of the host protocol over HTTP, for a host in another process. */
import { callLifeboat } from '../client/http.ts';
import type { DataLossDecision, HostChannel, Order, Registration, Report } from '../core/host-protocol.ts';

export interface HttpHostChannelOptions {
  /** A `host` token bound to this host's id (or an admin token): sent as Authorization: Bearer. */
  readonly token?: string | undefined;
}

export class HttpHostChannel implements HostChannel {
  constructor(private readonly baseUrl: string, private readonly options: HttpHostChannelOptions = {}) {}

  private call(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<unknown> {
    return callLifeboat(this.baseUrl, method, path, { token: this.options.token, body, timeoutMs });
  }

  /** Who the service takes this channel's token for (a host token names its host id). */
  async whoAmI(): Promise<{ Name: string; Role: string; HostId?: string }> {
    return (await this.call('GET', '/Lifeboat/$/Me?api-version=6.4')) as { Name: string; Role: string; HostId?: string };
  }

  async register(hostId: string, registration: Registration): Promise<void> {
    await this.call('POST', `/Lifeboat/Hosts/${encodeURIComponent(hostId)}/$/Register`, registration);
  }

  async pollOrders(hostId: string, waitMs: number): Promise<Order[]> {
    const r = (await this.call('GET', `/Lifeboat/Hosts/${encodeURIComponent(hostId)}/$/Orders?WaitMs=${waitMs}`, undefined, waitMs + 30_000)) as { Orders: Order[] };
    return r.Orders;
  }

  async report(hostId: string, report: Report): Promise<void> {
    await this.call('POST', `/Lifeboat/Hosts/${encodeURIComponent(hostId)}/$/Report`, report);
  }

  async dataLoss(hostId: string, partitionId: string): Promise<DataLossDecision> {
    return (await this.call('POST', `/Lifeboat/Hosts/${encodeURIComponent(hostId)}/$/DataLoss`, { PartitionId: partitionId })) as DataLossDecision;
  }
}

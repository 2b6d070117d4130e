/** The host's side of the host protocol over HTTP, for a host in another process. */
import { ERROR_CATALOGUE, type ErrorCode, LifeboatError } from '../core/errors.ts';
import type { DataLossDecision, HostChannel, Order, Registration, Report } from '../core/host-protocol.ts';

export interface HttpHostChannelOptions {
  /** A `host` token bound to this host's id (or an admin token): sent as Authorization: Bearer. */
  readonly token?: string | undefined;
}

export class HttpHostChannel implements HostChannel {
  constructor(private readonly baseUrl: string, private readonly options: HttpHostChannelOptions = {}) {}

  private async call(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<unknown> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json as { Error?: { Code?: string; Message?: string } } | undefined)?.Error;
      const code = e?.Code && e.Code in ERROR_CATALOGUE ? (e.Code as ErrorCode) : 'E_FAIL';
      throw new LifeboatError(code, `The Lifeboat service answered ${res.status}: ${e?.Message ?? text.slice(0, 200)}`);
    }
    return json;
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

/** The host's side of the host protocol over HTTP, for a host in another process. */
import { ERROR_CATALOGUE, type ErrorCode, LifeboatError } from '../core/errors.ts';
import type { DataLossDecision, HostChannel, Order, Registration, Report } from '../core/host-protocol.ts';

export class HttpHostChannel implements HostChannel {
  constructor(private readonly baseUrl: string) {}

  private async call(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<unknown> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const e = (json as { Error?: { Code?: string; Message?: string } } | undefined)?.Error;
      const code = e?.Code && e.Code in ERROR_CATALOGUE ? (e.Code as ErrorCode) : 'E_FAIL';
      throw new LifeboatError(code, `The Lifeboat service answered ${res.status}: ${e?.Message ?? text}`);
    }
    return json;
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

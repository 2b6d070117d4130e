/**
 * The metrics of an out-of-process host (`lifeboat host --metrics-port`): a small HTTP server of
 * its own serving `GET /metrics` (Prometheus text) and `GET /healthz`, since a host has no REST API
 * a Prometheus server could scrape. What it serves: the process's metrics (process_*, nodejs_*),
 * the storage requests and retries of the host's StorageRegistry (pass `storage` as its meter),
 * the operations the host carried out (pass its channel through `observe`), and
 * `lifeboat_host_info{host_id}`. docs/metrics.md lists them.
 *
 * Access: `/metrics` needs `Authorization: Bearer <token>`, the token given here — a metrics
 * token (`lifeboat token create --role metrics`), the same one Prometheus sends to the service. It
 * is compared here (SHA-256 digests, in constant time), so scraping a host needs no call to the
 * service and works while the service is down; revoking the token at the service does not revoke
 * it here (restart the host with a new one). Never the host's own token: that one works the host
 * protocol, whose orders carry storage credentials, and no scraper should hold it. `/healthz` is
 * public and says `{"Status":"ok"}`. Everything else is 404. Plain HTTP unless `tls` is given:
 * bind it to loopback or a private network.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { type MetricsText, StorageMetrics, exposition, processMetricsRegistry } from '../api/metrics.ts';
import { LifeboatError } from '../core/errors.ts';
import type { HostChannel, Order, Report } from '../core/host-protocol.ts';

export interface HostMetricsOptions {
  /** The host's id: `lifeboat_host_info{host_id}`. */
  readonly hostId: string;
  /** Address to listen on (default 127.0.0.1). */
  readonly bind?: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
  /** The bearer token a scraper must send: a metrics token (16 to 256 printable characters). */
  readonly token: string;
  /** HTTPS instead of HTTP. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /** Serve the process's own metrics (default true). */
  readonly processMetrics?: boolean;
}

export interface HostMetrics {
  /** Where it listens, e.g. http://127.0.0.1:9464. */
  readonly url: string;
  readonly registry: Registry;
  /** The meter of the host's StorageRegistry: `new StorageRegistry({ ..., meter: metrics.storage })`. */
  readonly storage: StorageMetrics;
  /** The channel the Host is given: the same calls, and each operation's end counted. */
  observe(channel: HostChannel): HostChannel;
  metrics(): Promise<MetricsText>;
  close(): Promise<void>;
}

/** Orders remembered between their hand-out and their end report; beyond this the oldest are forgotten. */
const MAX_TRACKED = 10_000;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Counts what a host carries out, from the calls it makes on its channel. */
class HostOperationMetrics {
  private readonly operations: Counter<'operation' | 'outcome'>;
  private readonly bytes: Counter<'operation' | 'type'>;
  /** Orders handed to this host and not yet reported ended, with their kind. */
  private readonly open = new Map<string, 'backup' | 'restore'>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.operations = new Counter({
      name: 'lifeboat_host_operations_total', help: 'Backups and restores this host carried out and reported ended, by operation (backup, restore) and outcome (success, failure).',
      labelNames: ['operation', 'outcome'], registers,
    });
    this.bytes = new Counter({
      name: 'lifeboat_host_bytes_total', help: 'Bytes of this host\'s successful operations, by operation and type: logical (the partition\'s bytes read or written) or stored (written to storage).',
      labelNames: ['operation', 'type'], registers,
    });
    const open = this.open;
    new Gauge({
      name: 'lifeboat_host_operations_in_flight', help: 'Orders this host received and has not yet reported ended, by operation.',
      labelNames: ['operation'], registers,
      collect() {
        const n = { backup: 0, restore: 0 };
        for (const kind of open.values()) n[kind]++;
        for (const [operation, count] of Object.entries(n)) this.set({ operation }, count);
      },
    });
    for (const operation of ['backup', 'restore']) {
      for (const outcome of ['success', 'failure']) this.operations.inc({ operation, outcome }, 0);
      for (const type of ['logical', 'stored']) this.bytes.inc({ operation, type }, 0);
    }
  }

  ordered(orders: readonly Order[]): void {
    for (const o of orders) {
      this.open.delete(o.OperationId);
      this.open.set(o.OperationId, o.Kind === 'Restore' ? 'restore' : 'backup');
      if (this.open.size > MAX_TRACKED) this.open.delete(this.open.keys().next().value as string);
    }
  }

  reported(r: Report): void {
    if (r.State === 'InProgress') return;
    const known = this.open.get(r.OperationId);
    this.open.delete(r.OperationId);
    const operation = known ?? (r.State === 'Success' && r.Restored ? 'restore' : r.State === 'Success' && r.Backup ? 'backup' : undefined);
    if (!operation) return;
    this.operations.inc({ operation, outcome: r.State === 'Success' ? 'success' : 'failure' });
    if (r.State !== 'Success' || !r.Progress) return;
    this.bytes.inc({ operation, type: 'logical' }, r.Progress.BytesTransferred);
    if (r.Progress.StoredBytes !== undefined) this.bytes.inc({ operation, type: 'stored' }, r.Progress.StoredBytes);
  }
}

export async function startHostMetrics(o: HostMetricsOptions): Promise<HostMetrics> {
  if (!/^[\x21-\x7e]{16,256}$/.test(o.token)) throw new LifeboatError('E_INVALIDARG', 'The metrics token must be 16 to 256 printable characters (lifeboat token create --role metrics).');
  const registry = new Registry();
  const storage = new StorageMetrics(registry);
  const operations = new HostOperationMetrics(registry);
  new Gauge({ name: 'lifeboat_host_info', help: 'Always 1; host_id is the id this host registers with.', labelNames: ['host_id'], registers: [registry] }).set({ host_id: o.hostId }, 1);
  const metrics = (): Promise<MetricsText> => exposition(o.processMetrics === false ? [registry] : [processMetricsRegistry(), registry]);
  const expected = digest(o.token);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '').split('?')[0];
    const send = (status: number, body: string, type = 'application/json', extra: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, '{"Status":"method not allowed"}', 'application/json', { allow: 'GET, HEAD' });
    if (path === '/healthz') return send(200, '{"Status":"ok"}');
    if (path !== '/metrics') return send(404, '{"Status":"not found"}');
    const m = /^Bearer ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '');
    if (!m || !timingSafeEqual(digest(m[1] as string), expected)) return send(401, '{"Status":"unauthenticated"}', 'application/json', { 'www-authenticate': 'Bearer' });
    const text = await metrics();
    return send(200, text.body, text.contentType);
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"Status":"error"}');
    });
  };
  const server: Server = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, listener) : createServer(listener);
  server.requestTimeout = 30_000;
  const bind = o.bind ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${o.tls ? 'https' : 'http'}://${bind.includes(':') ? `[${bind}]` : bind}:${port}`;

  return {
    url, registry, storage, metrics,
    observe: (channel) => ({
      register: (hostId, registration) => channel.register(hostId, registration),
      pollOrders: async (hostId, waitMs, signal) => {
        const orders = await channel.pollOrders(hostId, waitMs, signal);
        operations.ordered(orders);
        return orders;
      },
      report: async (hostId, report) => {
        await channel.report(hostId, report);
        operations.reported(report);
      },
      dataLoss: (hostId, partitionId) => channel.dataLoss(hostId, partitionId),
    }),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

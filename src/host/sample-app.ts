/**
 * A key-value stateful service with its own small HTTP endpoint: `PUT /kv/{key}` (body = value),
 * `GET /kv/{key}`, `DELETE /kv/{key}`, `GET /kv` (each partition's id, count and LSN). Keys are
 * hashed to partitions. The sample application `fabric:/SampleApp` is one:
 * `fabric:/SampleApp/MyStatefulService`, UniformInt64Range over the whole Int64 range in 4
 * partitions.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { INT64_MAX, INT64_MIN } from '../core/partitioning.ts';
import type { Clock } from '../core/clock.ts';
import { isLifeboatError } from '../core/errors.ts';
import type { PartitionScheme } from '../core/partitioning.ts';
import { type DataLossHandler, StatefulService } from '../state/index.ts';

export const SAMPLE_SERVICE_NAME = 'fabric:/SampleApp/MyStatefulService';
const DICTIONARY = 'kv';
const MAX_VALUE_BYTES = 1024 * 1024;

export interface SampleApp {
  readonly service: StatefulService;
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

export const SAMPLE_PARTITIONING: PartitionScheme = { kind: 'UniformInt64Range', count: 4, lowKey: INT64_MIN, highKey: INT64_MAX };

export interface KvAppOptions {
  readonly dataDir: string;
  readonly host?: string;
  /** Port of the HTTP endpoint; 0 picks a free one. */
  readonly port: number;
  readonly serviceName?: string;
  readonly partitioning?: PartitionScheme;
  readonly onDataLoss?: DataLossHandler;
  /** The clock backups are dated by (tests inject one). */
  readonly clock?: Clock;
  /** Data loss found at open waits for `service.handlePendingDataLoss()` (see StatefulService). */
  readonly deferDataLoss?: boolean;
}

export async function startSampleApp(o: KvAppOptions): Promise<SampleApp> {
  const service = await StatefulService.open({
    name: o.serviceName ?? SAMPLE_SERVICE_NAME,
    partitioning: o.partitioning ?? SAMPLE_PARTITIONING,
    dataDir: o.dataDir,
    ...(o.onDataLoss ? { onDataLoss: o.onDataLoss } : {}),
    ...(o.clock ? { clock: o.clock } : {}),
    ...(o.deferDataLoss ? { deferDataLoss: true } : {}),
  });
  const server = createServer((req, res) => {
    handle(service, req, res).catch((err: unknown) => send(res, 500, { Error: { Code: 'E_FAIL', Message: String(err) } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    service,
    server,
    url: `http://${address}:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
    },
  };
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_VALUE_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function handle(service: StatefulService, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sample');
  if (url.pathname === '/kv' && req.method === 'GET') {
    send(res, 200, service.partitionList.map((p) => ({ PartitionId: p.id, Count: p.dictionary(DICTIONARY).count(), Lsn: p.lastLsn.toString() })));
    return;
  }
  const m = /^\/kv\/(.+)$/.exec(url.pathname);
  if (!m) return send(res, 404, { Error: { Code: 'E_INVALIDARG', Message: 'Use /kv/{key}.' } });
  let key: string;
  try {
    key = decodeURIComponent(m[1] ?? '');
  } catch {
    return send(res, 400, { Error: { Code: 'E_INVALIDARG', Message: 'The key is not valid URL encoding.' } });
  }
  const partition = service.partitionForKey(key);
  try {
    if (req.method === 'GET') {
      const value = partition.dictionary(DICTIONARY).get(key);
      if (value === undefined) return send(res, 404, { Error: { Code: 'FABRIC_E_KEY_NOT_FOUND', Message: `No value for '${key}'.` } });
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-partition-id': partition.id });
      res.end(typeof value === 'string' ? value : JSON.stringify(value));
    } else if (req.method === 'PUT') {
      const body = await readBody(req);
      if (body === undefined) return send(res, 413, { Error: { Code: 'E_INVALIDARG', Message: `Values are at most ${MAX_VALUE_BYTES} bytes.` } });
      const { lsn } = partition.transact((tx) => tx.dictionary(DICTIONARY).set(key, body.toString('utf8')));
      send(res, 200, { Key: key, PartitionId: partition.id, Lsn: String(lsn) });
    } else if (req.method === 'DELETE') {
      const { value: existed } = partition.transact((tx) => tx.dictionary(DICTIONARY).delete(key));
      send(res, existed ? 200 : 404, existed ? { Key: key, PartitionId: partition.id } : { Error: { Code: 'FABRIC_E_KEY_NOT_FOUND', Message: `No value for '${key}'.` } });
    } else {
      send(res, 405, { Error: { Code: 'E_INVALIDARG', Message: 'Use GET, PUT or DELETE.' } });
    }
  } catch (err) {
    if (isLifeboatError(err)) return send(res, err.status, { Error: { Code: err.code, Message: err.message } });
    throw err;
  }
}

/**
 * Operators' routes: `GET /metrics` (Prometheus text; metrics tokens, readers and admins),
 * `GET /healthz` (alive) and `GET /readyz` (able to serve), both public and revealing nothing:
 * a fixed body, the same for every cause, no id, name, version or error text (docs/metrics.md).
 */
import type { FastifyInstance } from 'fastify';
import { ROUTES } from '../wire/routes.ts';

export interface OperatorOptions {
  /** The metrics to serve, in Prometheus text format; absent: no /metrics route. */
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly body: string }>;
  /**
   * Whether the service can serve now (catalog reachable, background loops running, hosts seen);
   * absent: ready whenever alive. A check that throws, or takes longer than `readyTimeoutMs`, is
   * "not ready".
   */
  readonly ready?: () => Promise<boolean>;
  /** How long /readyz waits for `ready` (default 2 s): a probe must answer before its own timeout. */
  readonly readyTimeoutMs?: number;
}

const ALIVE = { Status: 'ok' } as const;
const READY = { Status: 'ready' } as const;
const NOT_READY = { Status: 'not ready' } as const;

/** `ready()`, false if it throws or does not answer within `ms`. */
async function readyWithin(ready: () => Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      ready().then((r) => r === true, () => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function registerOperatorRoutes(app: FastifyInstance, o: OperatorOptions = {}): void {
  const metrics = o.metrics;
  if (metrics) {
    app.get(ROUTES.metrics, { config: { access: 'metrics' } }, async (_req, reply) => {
      const m = await metrics();
      return reply.header('content-type', m.contentType).header('cache-control', 'no-store').send(m.body);
    });
  }
  app.get(ROUTES.healthz, { config: { access: 'public' } }, async (_req, reply) => reply.header('cache-control', 'no-store').send(ALIVE));
  app.get(ROUTES.readyz, { config: { access: 'public' } }, async (_req, reply) => {
    const ready = o.ready ? await readyWithin(o.ready, o.readyTimeoutMs ?? 2000) : true;
    return reply.code(ready ? 200 : 503).header('cache-control', 'no-store').send(ready ? READY : NOT_READY);
  });
}

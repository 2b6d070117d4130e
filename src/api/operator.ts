/**
 * Operators' routes: `GET /metrics` (Prometheus text; metrics tokens, readers and admins),
 * `GET /healthz` (alive) and `GET /readyz` (able to serve), both public and revealing nothing.
 */
import type { FastifyInstance } from 'fastify';

export interface OperatorOptions {
  /** The metrics to serve, in Prometheus text format; absent: no /metrics route. */
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly body: string }>;
  /** Whether the service can serve now (catalog reachable, background loops running, hosts seen). */
  readonly ready?: () => Promise<boolean>;
}

export function registerOperatorRoutes(_app: FastifyInstance, _o: OperatorOptions = {}): void {
  // Filled in by issue 21's metrics work.
}

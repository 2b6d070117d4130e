/**
 * The web explorer's static files, served at `/explorer` without a credential (they hold no data:
 * every call the page makes carries the signed-in token).
 */
import type { FastifyInstance } from 'fastify';

export function registerExplorer(_app: FastifyInstance): void {
  // Filled in by issue 21's explorer work.
}

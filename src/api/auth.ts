/**
 * The API's gate, in front of every route (and of the not-found answer): the Host and Origin
 * checks that stop DNS rebinding and cross-site requests, authentication (bearer token or a
 * verified client certificate), authorization by the access each route declares, and the audit
 * of every mutating call. It runs in onRequest, before any body is read, so an unauthenticated
 * caller gets a small 401 and allocates nothing beyond its headers.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ACCESSES, type Access, type Principal, authorize } from '../core/access.ts';
import type { AccessService } from '../service/access.ts';
import { sendError } from './http.ts';
import type { Logger } from '../core/logger.ts';

export interface GateOptions {
  readonly access: AccessService;
  /**
   * Without authentication (`--insecure-no-auth`): every caller is an admin. Host, Origin and
   * content-type checks still hold.
   */
  readonly noAuth?: boolean;
  /** Host names (no port) the Host header may carry; loopback names are always allowed. */
  readonly allowedHosts: readonly string[];
  /** The port the service listens on, once known (Origin must name it). */
  readonly port: () => number | undefined;
  readonly tls: boolean;
  /** Only warnings: refusals worth an operator's eye. */
  readonly log: Pick<Logger, 'warn'>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route needs. Every route must say; buildApp refuses one that does not. */
    access?: Access;
    /**
     * Audit this route's calls (default: every route that is not `read`, except those saying
     * false); 'refusals': only those refused or denied (a host's reports, which the operation's
     * own record keeps, would otherwise push people's actions out of the log in an hour).
     */
    audit?: boolean | 'refusals';
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]', '::1'];
const ANONYMOUS: Principal = { name: 'anonymous', role: 'reader', via: 'none' };
const INSECURE: Principal = { name: 'insecure-no-auth', role: 'admin', via: 'none' };

/** The host name of a Host header value (`name[:port]`), lower case, or undefined when malformed. */
function hostName(value: string | undefined): string | undefined {
  if (!value || value.length > 300) return undefined;
  try {
    const u = new URL(`http://${value}`);
    if (u.username || u.password || u.pathname !== '/' || u.search) return undefined;
    return u.hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** The entity a call names, for the audit log: the path's ids, in route order. */
function entityOf(req: FastifyRequest): string {
  const params = (req.params ?? {}) as Record<string, string>;
  return Object.values(params).join('/').slice(0, 512);
}

export interface RouteAccess {
  readonly method: string;
  readonly url: string;
  readonly access: Access;
}

const routeTables = new WeakMap<FastifyInstance, RouteAccess[]>();

/** Every route of an app with the gate, and the access it declared (tests check each one). */
export function routeTable(app: FastifyInstance): readonly RouteAccess[] {
  return routeTables.get(app) ?? [];
}

export function installGate(app: FastifyInstance, o: GateOptions): void {
  const hosts = new Set([...LOOPBACK, ...o.allowedHosts.map((h) => h.toLowerCase())]);

  const table: RouteAccess[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access === undefined || !ACCESSES.includes(access)) {
      throw new Error(`Route ${String(route.method)} ${route.url} has no access decision (config.access).`);
    }
    for (const method of [route.method].flat()) if (method !== 'HEAD') table.push({ method, url: route.url, access });
  });

  const denied = new WeakSet<FastifyRequest>();
  const deny = (req: FastifyRequest, reply: FastifyReply, status: 401 | 403, message: string): FastifyReply => {
    denied.add(req);
    if (status === 401) reply.header('WWW-Authenticate', 'Bearer realm="lifeboat"');
    return sendError(reply, status === 401 ? 'LIFEBOAT_E_UNAUTHENTICATED' : 'E_ACCESSDENIED', message);
  };

  app.addHook('onRequest', async (req, reply) => {
    // 1. DNS rebinding: a page at evil.example whose name now points at 127.0.0.1 still sends Host: evil.example.
    const host = hostName(req.headers.host);
    if (host === undefined || !hosts.has(host)) {
      return deny(req, reply, 403, 'The Host header does not name this service; add the name to --allowed-hosts to use it.');
    }
    // 2. Cross-site: a browser names the page's origin; only the service's own is accepted.
    const origin = req.headers.origin;
    if (origin !== undefined || req.headers['sec-fetch-site'] === 'cross-site') {
      if (!sameOrigin(origin, hosts, o.tls ? 'https:' : 'http:', o.port())) return deny(req, reply, 403, 'Requests from other sites are refused.');
    }
    // 3. Who is it? A public route (liveness, the explorer's static files) does not ask.
    if (req.routeOptions.config?.access === 'public') return undefined;
    const principal = o.noAuth ? INSECURE : await authenticate(req, o.access);
    if (!principal) {
      req.principal = ANONYMOUS;
      return deny(req, reply, 401, 'Authentication required: send Authorization: Bearer <token> or a client certificate mapped to a role.');
    }
    req.principal = principal;
    // 4. May it? (A request for no route has no config: authenticated callers get the 404.)
    const access = req.routeOptions.config?.access;
    if (access === undefined) return undefined;
    const hostId = (req.params as Record<string, string> | undefined)?.hostId;
    const d = authorize(principal, access, hostId);
    if (!d.allowed) return deny(req, reply, 403, d.reason);
    return undefined;
  });

  app.addHook('onResponse', async (req, reply) => {
    const config = req.routeOptions.config;
    const audited = config?.access !== undefined && (config.audit ?? (!['read', 'any', 'metrics', 'public'].includes(config.access) && req.method !== 'GET'));
    if (!audited) return;
    const p = req.principal ?? ANONYMOUS;
    const status = reply.statusCode;
    const outcome = denied.has(req) ? 'denied' : status < 400 ? 'allowed' : 'refused';
    if (config.audit === 'refusals' && outcome === 'allowed') return;
    const entry = { principal: p.name, role: p.via === 'none' && p !== INSECURE ? 'none' : p.role, via: p.via, method: req.method, route: req.routeOptions.url ?? '', entity: entityOf(req), status, outcome } as const;
    req.log.info({ audit: entry }, 'audit');
    try {
      await o.access.audit(entry);
    } catch (err) {
      o.log.warn({ err: String(err) }, 'audit: the entry could not be stored');
    }
  });
}

function sameOrigin(origin: string | undefined, hosts: ReadonlySet<string>, scheme: string, port: number | undefined): boolean {
  if (origin === undefined || origin === 'null') return false;
  try {
    const u = new URL(origin);
    const p = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
    return u.protocol === scheme && hosts.has(u.hostname.toLowerCase()) && port !== undefined && p === port;
  } catch {
    return false;
  }
}

async function authenticate(req: FastifyRequest, access: AccessService): Promise<Principal | undefined> {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer ([\x21-\x7e]+)$/i.exec(header.trim());
    // A credential that is given and wrong is refused, even with a good certificate beside it.
    return m ? access.authenticateToken(m[1] as string) : undefined;
  }
  const socket = req.raw.socket as TLSSocket;
  if (access.acceptsCertificates && socket.encrypted && socket.authorized) {
    return access.authenticateCertificate(socket.getPeerCertificate());
  }
  return undefined;
}

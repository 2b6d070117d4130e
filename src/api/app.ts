/**
 * The REST API: Service Fabric's BackupRestore routes (on-demand backup, restore, progress,
 * listing), Lifeboat's extensions (VerifyBackup, GetRetentionPlan), the hierarchy queries a
 * client needs, and the internal routes hosts use. Thin: every route checks its input and calls
 * one use case; errors become FabricError bodies.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import type { Report } from '../core/host-protocol.ts';
import { idToName, isGuid } from '../core/ids.ts';
import type { BackupScope, LifeboatService } from '../service/lifeboat-service.ts';
import type { BackupKey } from '../service/listing.ts';
import type { RetentionSweeper } from '../service/retention-sweeper.ts';
import type { AccessService } from '../service/access.ts';
import { PREVIEW_API_VERSION, SKIP_AUTO_RESTORE_API_VERSION } from '../wire/api-version.ts';
import type { BackupInfoWire } from '../wire/backups.ts';
import { previewEpochNames } from '../wire/epoch.ts';
import { fabricError } from '../wire/errors.ts';
import { applicationWire, partitionWire, serviceWire } from '../wire/hierarchy.ts';
import { type EntityLevelName, ROUTES, protectionRoute } from '../wire/routes.ts';
import { type GateOptions, installGate } from './auth.ts';
import { registerExplorer } from './explorer.ts';
import { type OperatorOptions, registerOperatorRoutes } from './operator.ts';
import { boolParam, checkApiVersion, dateRange, intParam, page, query, sendError } from './http.ts';

/** A host's registration: services and partitions, never megabytes (a 10,000-partition host needs ~3 MB). */
const REGISTRATION_BODY_LIMIT = 4 * 1024 * 1024;

export interface AppOptions {
  readonly service: LifeboatService;
  readonly retention: RetentionSweeper;
  readonly access: AccessService;
  /** The gate's settings other than the access service (see GateOptions). */
  readonly gate: Omit<GateOptions, 'access' | 'log'>;
  /** HTTPS, and client certificates checked against `ca` when given (mutual TLS). */
  readonly https?: { readonly key: Buffer; readonly cert: Buffer; readonly ca?: Buffer };
  readonly logger?: boolean | object;
  /** Largest request body of the public API, in bytes. */
  readonly bodyLimit?: number;
  /** /metrics, /healthz, /readyz. */
  readonly operator?: OperatorOptions;
}

type Req = FastifyRequest<{ Params: Record<string, string> }>;

function partitionIdOf(req: Req): string {
  const id = req.params.partitionId ?? '';
  invalidArgUnless(isGuid(id), `'${id}' is not a partition id (a GUID).`);
  return id.toLowerCase();
}

function objectBody(req: FastifyRequest, required: boolean, what: string): Record<string, unknown> | undefined {
  const b = req.body;
  if (b === undefined || b === null) {
    invalidArgUnless(!required, `${what} needs a JSON body.`);
    return undefined;
  }
  invalidArgUnless(typeof b === 'object' && !Array.isArray(b), `The body of ${what} must be a JSON object.`);
  return b as Record<string, unknown>;
}

const backupKey = (b: BackupInfoWire): string => `${b.ServiceName}#${b.PartitionInformation.Id ?? ''}#${b.CreationTimeUtc}#${b.BackupId}`;

function sortedPage(items: BackupInfoWire[], q: Map<string, string>): ReturnType<typeof page<BackupInfoWire>> {
  return page([...items].sort((a, b) => (backupKey(a) < backupKey(b) ? -1 : backupKey(a) > backupKey(b) ? 1 : 0)), backupKey, q);
}

/** A backup list's ContinuationToken: the last key returned, as base64url JSON (pasted into URLs unencoded, as SF's clients do). */
function tokenOfBackupKey(key: BackupKey): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

function backupKeyOfToken(raw: string | undefined): BackupKey | undefined {
  if (!raw) return undefined;
  const bad = 'ContinuationToken is not one this server gave.';
  invalidArgUnless(raw.length <= 2048 && /^[A-Za-z0-9_-]+$/.test(raw), bad);
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  invalidArgUnless(Array.isArray(key) && key.length === 4 && key.every((k) => typeof k === 'string'), bad);
  return key as unknown as BackupKey;
}

function listFilter(q: Map<string, string>): { latest: boolean; start?: Date; end?: Date } {
  return { latest: boolParam(q, 'Latest'), ...dateRange(q.get('startdatetimefilter'), q.get('enddatetimefilter')) };
}

export function buildApp(o: AppOptions): FastifyInstance {
  const service = o.service;
  const app = Fastify({
    logger: o.logger ?? false,
    ...(o.https
      ? {
        // A client certificate is asked for, not required: a bearer token also authenticates. The
        // gate trusts a certificate only when TLS verified it against the client CA.
          https: { key: o.https.key, cert: o.https.cert, ...(o.https.ca ? { ca: o.https.ca, requestCert: true, rejectUnauthorized: false } : {}) },
        }
      : {}),
    bodyLimit: o.bodyLimit ?? 1024 * 1024,
    // A client has 30 s to send its whole request (headers and body): a slow sender cannot hold
    // sockets open for ever. Order polls wait in the response, not here.
    requestTimeout: 30_000,
    // One line per request, at debug (below): Fastify's two at info per request were most of the
    // log — and of a busy leader's writes — with hosts polling and reporting (the audit log
    // already tells who changed what).
    logController: new LogController({ disableRequestLogging: true }),
    // Service Fabric ids carry `~`, `:`, `#`: keep paths as they come.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2048 },
    // What the router refuses before any route runs (a malformed URL, an over-long id) gets the FabricError shape too.
    frameworkErrors: (err, _req, reply) => {
      void sendError(reply, 'E_INVALIDARG', err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A path parameter is longer than 2048 characters.' : 'The request URL is not valid.', 400);
    },
  });

  installGate(app, { ...o.gate, access: o.access, log: { warn: (obj, msg) => app.log.warn(obj, msg) } });
  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, url: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request completed');
  });

  // Bodies are JSON and nothing else: a browser form or a text/plain fetch (which need no CORS
  // preflight) is refused before it is read. An empty body is no body (the .NET client sends
  // empty bodies with Content-Type: application/json where the body is optional).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (req, _payload, done) => {
    done(new LifeboatError('LIFEBOAT_E_UNSUPPORTED_MEDIA_TYPE', `Request bodies must be application/json, not ${String(req.headers['content-type'] ?? 'untyped').slice(0, 100)}.`), undefined);
  });
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      done(new LifeboatError('E_INVALIDARG', 'The request body is not valid JSON.'), undefined);
    }
  });

  app.addHook('onSend', async (_req, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    if (err instanceof LifeboatError) {
      if (err.code === 'LIFEBOAT_E_BUSY') reply.header('Retry-After', '1');
      return sendError(reply, err.code, err.message);
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 'FABRIC_E_VALUE_TOO_LARGE', `The request body is larger than ${o.bodyLimit ?? 1024 * 1024} bytes.`);
    if (err.statusCode === 415) return sendError(reply, 'LIFEBOAT_E_UNSUPPORTED_MEDIA_TYPE', 'Request bodies must be application/json.');
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) return sendError(reply, 'E_INVALIDARG', err.message, 400);
    req.log.error({ err }, 'unexpected error');
    return sendError(reply, 'E_FAIL', 'An unexpected error occurred; see the Lifeboat log.');
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(fabricError('FABRIC_E_ENDPOINT_NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0] ?? ''}.`));
  });

  const backupRoute = (fn: (req: Req, q: Map<string, string>, reply: FastifyReply) => Promise<unknown>, minimumApiVersion?: number) => async (req: Req, reply: FastifyReply) => {
    const q = query(req);
    checkApiVersion(q, 'backup', minimumApiVersion);
    const out = await fn(req, q, reply);
    return q.get('api-version') === PREVIEW_API_VERSION && out !== reply ? previewEpochNames(out) : out;
  };
  const queryRoute = (fn: (req: Req, q: Map<string, string>) => Promise<unknown>) => async (req: Req) => {
    const q = query(req);
    checkApiVersion(q, 'query');
    return fn(req, q);
  };

  // ---- hierarchy ------------------------------------------------------------------------------
  app.get(ROUTES.applications, { config: { access: 'read' } }, queryRoute(async (_req, q) => page((await service.hierarchy.listApplications()).map(applicationWire), (a) => String(a.Id), q)));
  app.get(ROUTES.application, { config: { access: 'read' } }, queryRoute(async (req) => applicationWire(await service.hierarchy.getApplication(idToName(req.params.applicationId ?? '')))));
  app.get(ROUTES.services, { config: { access: 'read' } }, queryRoute(async (req, q) => {
    const services = await service.hierarchy.listServices(idToName(req.params.applicationId ?? ''));
    return page(services.map(serviceWire), (s) => String(s.Id), q);
  }));
  app.get(ROUTES.partitions, { config: { access: 'read' } }, queryRoute(async (req, q) => {
    const partitions = await service.hierarchy.listPartitions(idToName(req.params.serviceId ?? ''));
    const items = partitions.map((p, i) => ({ key: String(i).padStart(10, '0'), wire: partitionWire(p) }));
    const p = page(items, (i) => i.key, q);
    return { ContinuationToken: p.ContinuationToken, Items: p.Items.map((i) => i.wire) };
  }));
  app.get(ROUTES.partitionHealth, { config: { access: 'read' } }, queryRoute(async (req, q) => {
    const filter = intParam(q, 'EventsHealthStateFilter') ?? 0;
    invalidArgUnless(filter >= 0 && filter <= 65535, 'EventsHealthStateFilter must be a mask from 0 to 65535.');
    for (const name of ['ReplicasHealthStateFilter']) {
      const v = intParam(q, name);
      invalidArgUnless(v === undefined || (v >= 0 && v <= 65535), `${name} must be a mask from 0 to 65535.`);
    }
    boolParam(q, 'ExcludeHealthStatistics');
    return service.health.partitionHealth(partitionIdOf(req), filter);
  }));
  app.get(ROUTES.partition, { config: { access: 'read' } }, queryRoute(async (req) => partitionWire(await service.hierarchy.getPartition(partitionIdOf(req)))));

  // ---- on-demand backup and restore ---------------------------------------------------------------
  app.post(ROUTES.backupPartition, { config: { access: 'admin' } }, backupRoute(async (req, q, reply) => {
    const id = partitionIdOf(req);
    await service.backups.backupPartition(id, objectBody(req, false, 'BackupPartition'), intParam(q, 'BackupTimeout'));
    return reply.code(202).send();
  }));
  app.get(ROUTES.backupProgress, { config: { access: 'read' } }, backupRoute(async (req) => service.backups.backupProgress(partitionIdOf(req))));
  app.post(ROUTES.skipAutoRestore, { config: { access: 'admin' } }, backupRoute(async (req, q, reply) => {
    await service.dataLoss.skipAutoRestore(partitionIdOf(req), intParam(q, 'RestoreTimeout'));
    return reply.code(202).send();
  }, Number(SKIP_AUTO_RESTORE_API_VERSION)));
  app.post(ROUTES.restorePartition, { config: { access: 'admin' } }, backupRoute(async (req, q, reply) => {
    const id = partitionIdOf(req);
    const latest = boolParam(q, 'Latest');
    await service.restores.restorePartition(id, objectBody(req, false, 'RestorePartition'), intParam(q, 'RestoreTimeout'), latest);
    return reply.code(202).send();
  }));
  app.get(ROUTES.restoreProgress, { config: { access: 'read' } }, backupRoute(async (req) => service.restores.restoreProgress(partitionIdOf(req))));
  // Lifeboat's extension: check a backup and its chain without restoring (body as RestorePartition's).
  app.post(ROUTES.verifyBackup, { config: { access: 'read' } }, backupRoute(async (req, q) => {
    const id = partitionIdOf(req);
    const latest = boolParam(q, 'Latest');
    return service.verification.verifyBackup(id, objectBody(req, false, 'VerifyBackup'), latest);
  }));

  // ---- listing ------------------------------------------------------------------------------
  // Lifeboat's extension: what retention would keep and delete now, each with its reason.
  app.get(ROUTES.retentionPlan, { config: { access: 'read' } }, backupRoute(async (req) => o.retention.preview(partitionIdOf(req))));
  const indexPage = async (scope: BackupScope, q: Map<string, string>): Promise<{ ContinuationToken: string; Items: BackupInfoWire[] }> => {
    const max = intParam(q, 'MaxResults') ?? 0;
    invalidArgUnless(max >= 0, 'MaxResults must be 0 or more.');
    const p = await service.listing.pageBackups(scope, listFilter(q), { after: backupKeyOfToken(q.get('continuationtoken')), maxResults: max });
    return { ContinuationToken: p.next ? tokenOfBackupKey(p.next) : '', Items: p.items };
  };
  app.get(ROUTES.partitionBackups, { config: { access: 'read' } }, backupRoute(async (req, q) => indexPage({ kind: 'Partition', id: partitionIdOf(req) }, q)));
  app.get(ROUTES.serviceBackups, { config: { access: 'read' } }, backupRoute(async (req, q) => indexPage({ kind: 'Service', name: idToName(req.params.serviceId ?? '') }, q)));
  app.get(ROUTES.applicationBackups, { config: { access: 'read' } }, backupRoute(async (req, q) => indexPage({ kind: 'Application', name: idToName(req.params.applicationId ?? '') }, q)));
  app.post(ROUTES.backupsInStorage, { config: { access: 'read' } }, backupRoute(async (req, q) => {
    const body = objectBody(req, true, 'GetBackupsFromBackupLocation') as Record<string, unknown>;
    invalidArgUnless(body.Latest === undefined || body.Latest === null || typeof body.Latest === 'boolean', 'Latest must be true or false.');
    const items = await service.listing.backupsInStorage(body.Storage, body.BackupEntity, { latest: body.Latest === true, ...dateRange(body.StartDateTimeFilter, body.EndDateTimeFilter) });
    return sortedPage(items, q);
  }));

  // ---- backup policies ----------------------------------------------------------------------------
  const policyName = (req: Req): string => req.params.backupPolicyName ?? '';
  app.post(ROUTES.createPolicy, { config: { access: 'admin' } }, backupRoute(async (req, q, reply) => {
    const validate = boolParam(q, 'ValidateConnection');
    await service.policies.createPolicy(objectBody(req, true, 'CreateBackupPolicy'), validate);
    return reply.code(201).send();
  }));
  app.get(ROUTES.policies, { config: { access: 'read' } }, backupRoute(async (_req, q) => page(await service.policies.listPolicies(), (p) => String(p.Name), q)));
  app.get(ROUTES.policy, { config: { access: 'read' } }, backupRoute(async (req) => service.policies.getPolicy(policyName(req))));
  app.post(ROUTES.updatePolicy, { config: { access: 'admin' } }, backupRoute(async (req, q, reply) => {
    const validate = boolParam(q, 'ValidateConnection');
    await service.policies.updatePolicy(policyName(req), objectBody(req, true, 'UpdateBackupPolicy'), validate);
    return reply.code(200).send();
  }));
  app.post(ROUTES.deletePolicy, { config: { access: 'admin' } }, backupRoute(async (req, _q, reply) => {
    await service.policies.deletePolicy(policyName(req));
    return reply.code(200).send();
  }));
  app.get(ROUTES.policyEntities, { config: { access: 'read' } }, backupRoute(async (req, q) => {
    const p = page(await service.policies.entitiesOfPolicy(policyName(req)), (e) => e.key, q);
    return { ContinuationToken: p.ContinuationToken, Items: p.Items.map((e) => e.wire) };
  }));

  // ---- protection: enable, disable, suspend, resume, configuration ----------------------------------
  const scopes: ReadonlyArray<{ level: EntityLevelName; scope: (req: Req) => BackupScope }> = [
    { level: 'Application', scope: (req) => ({ kind: 'Application', name: idToName(req.params.applicationId ?? '') }) },
    { level: 'Service', scope: (req) => ({ kind: 'Service', name: idToName(req.params.serviceId ?? '') }) },
    { level: 'Partition', scope: (req) => ({ kind: 'Partition', id: partitionIdOf(req) }) },
  ];
  for (const { level, scope } of scopes) {
    app.post(protectionRoute(level, 'EnableBackup'), { config: { access: 'admin' } }, backupRoute(async (req, _q, reply) => {
      const s = scope(req);
      await service.protection.enableBackup(s, objectBody(req, true, 'EnableBackup'));
      return reply.code(202).send();
    }));
    app.post(protectionRoute(level, 'DisableBackup'), { config: { access: 'admin' } }, backupRoute(async (req, _q, reply) => {
      const s = scope(req);
      await service.protection.disableBackup(s, objectBody(req, false, 'DisableBackup'));
      return reply.code(202).send();
    }));
    app.post(protectionRoute(level, 'SuspendBackup'), { config: { access: 'admin' } }, backupRoute(async (req, _q, reply) => {
      await service.protection.suspendBackup(scope(req));
      return reply.code(202).send();
    }));
    app.post(protectionRoute(level, 'ResumeBackup'), { config: { access: 'admin' } }, backupRoute(async (req, _q, reply) => {
      await service.protection.resumeBackup(scope(req));
      return reply.code(202).send();
    }));
    app.get(protectionRoute(level, 'GetBackupConfigurationInfo'), { config: { access: 'read' } }, backupRoute(async (req, q) => {
      const s = scope(req);
      const items = await service.protection.backupConfiguration(s);
      if (s.kind === 'Partition') return items[0];
      const p = page(items.map((wire, i) => ({ key: String(i).padStart(10, '0'), wire })), (i) => i.key, q);
      return { ContinuationToken: p.ContinuationToken, Items: p.Items.map((i) => i.wire) };
    }));
  }

  // ---- hosts (internal) ---------------------------------------------------------------------
  app.register(async (hosts) => {
    hosts.post(ROUTES.hostRegister, { bodyLimit: REGISTRATION_BODY_LIMIT, config: { access: 'host' } }, async (req: Req, reply) => {
      await service.hosts.register(req.params.hostId ?? '', objectBody(req, true, 'Register') as never);
      return reply.code(200).send({});
    });
    hosts.get(ROUTES.hostOrders, { config: { access: 'host' } }, async (req: Req, reply) => {
      const wait = intParam(query(req), 'WaitMs') ?? 0;
      const gone = new AbortController();
      // The response closes before it is sent only when the host hung up.
      reply.raw.once('close', () => gone.abort());
      return { Orders: await service.hosts.pollOrders(req.params.hostId ?? '', Math.max(0, wait), gone.signal) };
    });
    hosts.post(ROUTES.hostDataLoss, { config: { access: 'host' } }, async (req: Req) => {
      const body = objectBody(req, true, 'DataLoss') as Record<string, unknown>;
      invalidArgUnless(typeof body.PartitionId === 'string' && isGuid(body.PartitionId), 'PartitionId must be a GUID.');
      return service.hosts.dataLoss(req.params.hostId ?? '', body.PartitionId.toLowerCase());
    });
    hosts.post(ROUTES.hostReport, { config: { access: 'host', audit: 'refusals' } }, async (req: Req, reply) => {
      await service.hosts.report(req.params.hostId ?? '', objectBody(req, true, 'Report') as unknown as Report);
      return reply.code(200).send({});
    });
  });

  // ---- access: tokens, the caller, the audit log (Lifeboat's own) -----------------------------------
  const access = o.access;
  const lifeboatRoute = (fn: (req: Req, q: Map<string, string>, reply: FastifyReply) => Promise<unknown>) => async (req: Req, reply: FastifyReply) => {
    const q = query(req);
    checkApiVersion(q, 'backup');
    return fn(req, q, reply);
  };
  app.post(ROUTES.createToken, { config: { access: 'admin' } }, lifeboatRoute(async (req, _q, reply) => reply.code(201).send(await access.createToken(objectBody(req, true, 'CreateToken')))));
  app.get(ROUTES.tokens, { config: { access: 'admin' } }, lifeboatRoute(async (_req, q) => page(await access.listTokens(), (t) => t.Name, q)));
  app.post(ROUTES.revokeToken, { config: { access: 'admin' } }, lifeboatRoute(async (req, _q, reply) => {
    await access.revokeToken(req.params.tokenName ?? '');
    return reply.code(200).send({});
  }));
  // The web explorer's one-time sign-in link (`lifeboat start` prints it): its code, once, for the
  // admin token. Public, as the link is the credential; audited, as a sign-in is worth a record.
  app.post(ROUTES.signIn, { config: { access: 'public', audit: true } }, lifeboatRoute(async (req) => {
    const body = objectBody(req, true, 'SignIn') as Record<string, unknown>;
    return access.redeemSignInCode(body.Code);
  }));
  // Who the caller is: lets a host started with a host token learn its host id, and a CLI its role.
  app.get(ROUTES.me, { config: { access: 'any' } }, lifeboatRoute(async (req) => whoAmI(req)));
  app.get(ROUTES.auditLog, { config: { access: 'admin' } }, lifeboatRoute(async (_req, q) => {
    const max = intParam(q, 'MaxResults') ?? 0;
    invalidArgUnless(max >= 0, 'MaxResults must be 0 or more.');
    const limit = max === 0 ? 1000 : Math.min(max, 1000);
    const raw = q.get('continuationtoken');
    invalidArgUnless(raw === undefined || /^\d{1,15}$/.test(raw), 'ContinuationToken is not one this server gave.');
    const rows = await access.auditLog(raw === undefined ? 0 : Number(raw), limit + 1);
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return {
      ContinuationToken: rows.length > limit && last ? String(last.seq) : '',
      Items: items.map((a) => ({
        Seq: a.seq, TimeUtc: a.timeUtc, Principal: a.principal, Role: a.role, Via: a.via, Method: a.method, Route: a.route, Entity: a.entity, Status: a.status, Outcome: a.outcome,
      })),
    };
  }));

  registerOperatorRoutes(app, o.operator);
  registerExplorer(app);
  return app;
}

function whoAmI(req: FastifyRequest): Record<string, unknown> {
  const p = req.principal;
  return { Name: p?.name ?? '', Role: p?.role ?? '', Via: p?.via ?? '', ...(p?.hostId !== undefined ? { HostId: p.hostId } : {}) };
}

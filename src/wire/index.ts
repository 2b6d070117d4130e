/**
 * The REST API's wire contract, in Service Fabric's spelling: every shape a route takes or
 * answers, the small pure conversions to them, route paths and api-versions. Imports only
 * src/core; the server (src/api, src/service) and the client (src/client) share it.
 */
export * from './access.ts';
export * from './api-version.ts';
export * from './backups.ts';
export * from './epoch.ts';
export * from './errors.ts';
export * from './health.ts';
export * from './hierarchy.ts';
export * from './host-protocol.ts';
export * from './operations.ts';
export * from './paging.ts';
export * from './policy.ts';
export * from './protection.ts';
export * from './routes.ts';
export * from './time.ts';

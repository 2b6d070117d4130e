/**
 * api-versions a client sends. The rules a server applies to them are core/api-version.ts's,
 * where these constants are declared.
 */
export { BACKUP_API_VERSION, PREVIEW_API_VERSION, QUERY_API_VERSION } from '../core/api-version.ts';

/** SkipAutoRestore came with Service Fabric 9.1: the lowest api-version that route takes. */
export const SKIP_AUTO_RESTORE_API_VERSION = '9.1';

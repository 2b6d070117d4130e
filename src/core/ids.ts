/**
 * Service Fabric entity ids in REST paths: an application or service id is its name without
 * `fabric:/`, with `/` written `~` (`fabric:/App/Svc` ↔ `App~Svc`); a partition id is a GUID.
 */
import { LifeboatError } from './errors.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuid(s: unknown): s is string {
  return typeof s === 'string' && GUID.test(s);
}

export function nameToId(name: string): string {
  return name.slice('fabric:/'.length).split('/').join('~');
}

/** `App~Svc` → `fabric:/App/Svc`; also accepts the name itself and a URL-encoded `/`. */
export function idToName(id: string): string {
  let s = id;
  if (s.startsWith('fabric:/')) s = s.slice('fabric:/'.length);
  s = s.replace(/%2f/gi, '/').replace(/~/g, '/');
  if (!s || s.split('/').some((seg) => seg.length === 0)) throw new LifeboatError('E_INVALIDARG', `'${id}' is not a valid entity id.`);
  return `fabric:/${s}`;
}

export function applicationOf(serviceName: string): string {
  const rest = serviceName.slice('fabric:/'.length);
  return `fabric:/${rest.split('/')[0] ?? ''}`;
}

export const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';

/**
 * Service Fabric names. A service is named `fabric:/App/Service` (more segments are allowed:
 * `fabric:/App/Group/Service`); its application is `fabric:/App`.
 */
import { invalidArgUnless } from './errors.ts';

const SEGMENT = /^[^/\s~?#%\\]+$/u;

export interface ServiceName {
  readonly uri: string;
  readonly application: string;
  /** The service part after the application, e.g. `Service` or `Group/Service`. */
  readonly service: string;
}

export function parseServiceName(uri: unknown): ServiceName {
  invalidArgUnless(typeof uri === 'string', 'A service name must be a string like fabric:/App/Service.');
  invalidArgUnless(uri.startsWith('fabric:/'), `Service name '${uri}' must start with 'fabric:/'.`);
  const segments = uri.slice('fabric:/'.length).split('/');
  invalidArgUnless(segments.length >= 2, `Service name '${uri}' must have an application and a service: fabric:/App/Service.`);
  for (const s of segments) invalidArgUnless(SEGMENT.test(s), `Service name '${uri}' has an empty or invalid segment.`);
  return { uri, application: `fabric:/${segments[0] ?? ''}`, service: segments.slice(1).join('/') };
}

/** The typed client (src/client) as tests use it: authenticated as the test admin unless told otherwise. */
import { LifeboatClient, type LifeboatClientOptions } from '../../src/client/lifeboat-client.ts';
import { TEST_ADMIN_TOKEN } from './api-http.ts';

/** A LifeboatClient of the service at `baseUrl` with the test admin's token (or `token`). */
export function adminClient(baseUrl: string, options: Omit<LifeboatClientOptions, 'baseUrl'> = {}): LifeboatClient {
  return new LifeboatClient({ token: TEST_ADMIN_TOKEN, ...options, baseUrl });
}

/**
 * s3rver for the S3 tests: the server itself (a child process with the operations s3rver lacks,
 * faults and a request record) is bench/emulators/s3rver.ts, which the benchmarks share.
 */
import { after, before } from 'node:test';
import { type S3rverHandle, s3rverMissing, startS3rver } from '../../bench/emulators/s3rver.ts';

export { type RecordedRequest, type S3Fault, S3RVER_KEY, type S3rverHandle, s3rverMissing, startS3rver } from '../../bench/emulators/s3rver.ts';

/**
 * s3rver for a test file, like azuriteForTests: started in a before hook and stopped after, unless
 * it is not installed (a reason to skip, which CI refuses: LIFEBOAT_REQUIRE_ALL_BACKENDS=1).
 */
export function s3rverForTests(): { readonly skip: string | undefined; server(): S3rverHandle } {
  const skip = s3rverMissing();
  let handle: S3rverHandle | undefined;
  const stops: Array<() => unknown> = [];
  if (!skip) {
    before(async () => { handle = await startS3rver({ after: (fn) => { stops.push(fn); } }); });
    after(async () => { for (const stop of stops.reverse()) await stop(); });
  }
  return {
    skip,
    server: () => {
      if (!handle) throw new Error(skip ?? 's3rver is not running (its before hook failed or has not run)');
      return handle;
    },
  };
}

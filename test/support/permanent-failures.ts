/** Permanent failures of a file share, for the storage contract (test/contract/storage.contract.ts). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { RetryingStore } from '../../src/storage/retry.ts';
import type { PermanentFailureCase } from '../contract/storage.contract.ts';
import { tempDir } from './tmp.ts';

/**
 * A share whose path runs through a regular file (ENOTDIR): it will not heal by itself, root or
 * not (permission bits do not stop root). `wrap` puts a wrapper (a FaultyStore) around the share.
 */
export function fileShareUnderAFile(t: { after(fn: () => unknown): void }, wrap: (s: BlobStore) => BlobStore = (s) => s): PermanentFailureCase[] {
  const root = tempDir(t as Parameters<typeof tempDir>[0]);
  writeFileSync(join(root, 'a-file'), 'x');
  return [{
    what: 'a share under a file', message: /a-file\/share cannot be used: ENOTDIR/, ops: ['validate', 'put', 'list'],
    open: (retry) => new RetryingStore(wrap(new FileShareStore(join(root, 'a-file', 'share'))), retry),
  }];
}

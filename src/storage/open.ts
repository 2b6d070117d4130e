/** Builds the BlobStore a storage description names, applying what this installation allows. */
import { isAbsolute, resolve } from 'node:path';
import { LifeboatError } from '../core/errors.ts';
import type { StorageDescription } from '../core/storage-description.ts';
import { FileShareStore, insideRoots } from './fileshare.ts';
import type { BlobStore } from './port.ts';

export interface StoragePolicy {
  /** Absolute folders FileShare paths must be inside. */
  readonly fileShareRoots: readonly string[];
}

export function openStorage(d: StorageDescription, policy: StoragePolicy): BlobStore {
  switch (d.StorageKind) {
    case 'FileShare': {
      if (!isAbsolute(d.Path)) throw new LifeboatError('E_INVALIDARG', `FileShare Path '${d.Path}' must be an absolute path.`);
      const path = resolve(d.Path);
      if (!insideRoots(path, policy.fileShareRoots.map((r) => resolve(r)))) {
        throw new LifeboatError('E_INVALIDARG', `FileShare Path '${d.Path}' is outside the folders this Lifeboat may write to (${policy.fileShareRoots.join(', ')}); set --fileshare-roots / LIFEBOAT_FILESHARE_ROOTS to allow it.`);
      }
      return new FileShareStore(path);
    }
    default:
      throw new LifeboatError('E_INVALIDARG', `StorageKind ${d.StorageKind} is not available yet; use FileShare.`);
  }
}

/**
 * The backup data object (`.lbk`), version 2: the files of a replica backup folder in blocks, each
 * compressed (zstd, or gzip where zstd cannot be loaded), checksummed (SHA-256) and, with a
 * keyring, encrypted (AES-256-GCM under a per-backup data key whose wrapped form the caller keeps
 * in `.bkmetadata`). Layout: docs/backup-format.md; bytes: layout.ts; per-block work on worker
 * threads: pool.ts (worker.mjs running codec.mjs).
 *
 * - `encodeFolder` streams a folder into an archive: the stream is pulled by the upload, so memory
 *   stays flat (a bounded number of blocks in flight, the output's backpressure). encoder.ts.
 * - `decodeToFolder` writes an archive's files into an empty folder, checking everything, and
 *   reads version 1 archives too (archive.ts). decoder.ts.
 * - `verifyArchive` checks an archive without writing anything; without the key it checks the
 *   stored bytes and the structure only, and says so. verify.ts.
 * Damage is LIFEBOAT_E_BACKUP_CORRUPT with where and what: the file, the block, the byte offset.
 */
export type { Compression } from './layout.ts';
export type { Keyring, WrappedDataKey } from './keys.ts';
export { checkWrappedDataKey, makeKeyring, parseKeyring, rewrapDataKey } from './keys.ts';
export { type BlockRunner, createBlockPool, defaultWorkers } from './pool.ts';
export { type ArchiveInput, type ArchivedFile, type EncodeOptions, type EncodeResult, type EncodedArchive, encodeFiles, encodeFolder } from './encoder.ts';
export { type ArchiveSink, type ArchiveSummary, type ReadOptions, archiveVersion, decodeFiles, decodeToFolder } from './decoder.ts';
export { verifyArchive } from './verify.ts';

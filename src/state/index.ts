/**
 * The state library (`lifeboat/state`): partitioned stateful services with transactional
 * reliable dictionaries on SQLite, LSNs and epochs, replica backup and restore, and data loss.
 */
export { StatefulService, type ServiceOptions } from './service.ts';
export {
  Partition, DEFAULT_MAX_CHAIN_LOG_BYTES, type DataLossHandler, type PartitionOpenOptions, type PartitionStatus, type RestoreContext,
} from './partition.ts';
export {
  Transaction, DictionaryReader, TransactionDictionary, type Committed, type EnumerateOptions, type Entry, type JsonValue, type Value,
} from './transaction.ts';
export { type BackupFileSource, type BackupOptions, type BackupStream, type BackupWriter } from './backup.ts';
export {
  type RestoreOptions, type RestorePolicy, type RestoreResult, type RestoreSource, type StreamedFullBackup,
} from './restore.ts';
export {
  type BackupInfo, type BackupFile, FULL_DATA_FILE, INCREMENTAL_DATA_FILE, METADATA_FILE, readBackupMetadata, parseBackupMetadata, findBackupFolders,
} from './backup-folder.ts';
export type { Durability } from './store.ts';
export type { Epoch, StateVersion } from '../core/epoch.ts';
export type { PartitionInfo, PartitionKey, PartitionScheme } from '../core/partitioning.ts';
export type { BackupOption, LastBackup } from '../core/backup-chain.ts';
export { LifeboatError, isLifeboatError, type ErrorCode } from '../core/errors.ts';
export type { Clock } from '../core/clock.ts';

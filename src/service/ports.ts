/**
 * What every use case of the service works with: the catalog and storage ports, the clock, ids,
 * the logger and the installation's keys. Built once (`servicePorts`) and shared by the modules
 * `LifeboatService` composes.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { invalidArgUnless } from '../core/errors.ts';
import { DEFAULT_HOST_GRACE_MS } from '../core/host-liveness.ts';
import { type Logger, silentLogger } from '../core/logger.ts';
import type { StorageDescription } from '../core/storage-description.ts';
import type { Catalog } from '../catalog/port.ts';
import type { Keyring } from '../format/lbk2/index.ts';
import { BackupRepository } from '../repository/backup-repository.ts';
import type { BlobStore } from '../storage/port.ts';
import { type ServiceEvents, noServiceEvents } from './observer.ts';

export interface ServiceDeps {
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly openStorage: (d: StorageDescription) => BlobStore;
  readonly newId?: () => string;
  readonly log?: Logger;
  /** The installation's encryption keys: VerifyBackup authenticates encrypted backups with them; key rotation re-wraps under the current one. */
  readonly keyring?: Keyring | undefined;
  /** `--require-encrypted-restores`: with a keyring, a restore of a chain holding an unencrypted backup is refused. */
  readonly requireEncryptedRestores?: boolean;
  /** Who hears of operation changes and scheduled backups (the metrics); default nobody. */
  readonly events?: ServiceEvents;
  /** Real time, for what is about processes (host liveness, order claims), whatever clock schedules run on; default the system's. */
  readonly wallClock?: Clock;
  /** How long a host may be unseen before it is down and its operations fail (default DEFAULT_HOST_GRACE_MS). */
  readonly hostGraceMs?: number;
}

export interface ServicePorts {
  readonly catalog: Catalog;
  readonly clock: Clock;
  /** Opens a storage; throws for kinds, paths and endpoints this installation does not allow. */
  readonly storageFor: (d: StorageDescription) => BlobStore;
  /** The backups in a storage (src/repository): every read, write and delete of a backup goes through it. */
  readonly repositoryFor: (d: StorageDescription) => BackupRepository;
  readonly newId: () => string;
  readonly log: Logger;
  readonly keyring: Keyring | undefined;
  readonly requireEncryptedRestores: boolean;
  readonly events: ServiceEvents;
  readonly wallClock: Clock;
  readonly hostGraceMs: number;
}

export function servicePorts(deps: ServiceDeps): ServicePorts {
  return {
    catalog: deps.catalog, clock: deps.clock, storageFor: deps.openStorage, repositoryFor: (d) => new BackupRepository(deps.openStorage(d)), newId: deps.newId ?? randomUUID,
    log: deps.log ?? silentLogger, keyring: deps.keyring, requireEncryptedRestores: deps.requireEncryptedRestores === true, events: deps.events ?? noServiceEvents,
    wallClock: deps.wallClock ?? { now: () => new Date() }, hostGraceMs: deps.hostGraceMs ?? DEFAULT_HOST_GRACE_MS,
  };
}

const MIN_TIMEOUT_MINUTES = 1;
const MAX_TIMEOUT_MINUTES = 7 * 24 * 60;

/** A BackupTimeout or RestoreTimeout in minutes (default 10). */
export function timeoutMinutes(value: number | undefined, what: string): number {
  if (value === undefined) return 10;
  invalidArgUnless(Number.isInteger(value) && value >= MIN_TIMEOUT_MINUTES && value <= MAX_TIMEOUT_MINUTES, `${what} must be a whole number of minutes from ${MIN_TIMEOUT_MINUTES} to ${MAX_TIMEOUT_MINUTES}.`);
  return value;
}

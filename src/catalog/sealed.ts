/**
 * SealedCatalog: a Catalog decorator that keeps the secrets of storage descriptions sealed at rest.
 * Every secret field (SECRET_FIELDS: PrimaryPassword, SecondaryPassword, ConnectionString,
 * SecretAccessKey) of a policy's storage, and anywhere in an operation's request (its `storage`,
 * and whatever else carries a storage description), is written as
 *
 *   lbsealed:v1:<base64 of iv (12) | ciphertext | tag (16)>
 *
 * AES-256-GCM under the catalog key, the field's name bound in as additional data (a sealed
 * password moved into another field does not open). Reads unseal, so the service above works on
 * clear descriptions (storageIdentity reads the AccountName of a ConnectionString) and never sees
 * a sealed one. A value that is not sealed (a catalog written before sealing) reads as it is;
 * `sealExisting()` seals those of policies and active operations once, at startup.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { LifeboatError } from '../core/errors.ts';
import type { BackupPolicy } from '../core/policy.ts';
import type { Outcome, ProtectionState } from '../core/protection.ts';
import { SECRET_FIELDS, type StorageDescription } from '../core/storage-description.ts';
import type {
  BackupIndex, Catalog, Fence, HierarchyStore, EndOutcome, HostReportRecords, LeaseStore, OperationKind, OperationPatch, OperationRecord, OperationStore, PolicyDeletion, PolicyRecord, PolicyStore,
  ProtectionChange, ScheduleStore, SignalBus,
} from './port.ts';

export const SEALED_PREFIX = 'lbsealed:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SECRET_SET: ReadonlySet<string> = new Set(SECRET_FIELDS);

/** What `sealExisting` did. */
export interface SealReport {
  /** Policies whose clear secrets were sealed. */
  readonly policies: number;
  /**
   * Active operations whose request still holds a clear secret: the port has no method that
   * rewrites a request, so they stay as they are until they end.
   */
  readonly operationsLeftClear: number;
}

function aad(field: string): Buffer {
  return Buffer.from(`lifeboat catalog secret v1 ${field}`, 'utf8');
}

export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(SEALED_PREFIX);
}

/** The sealing of values of the secret fields, under one key. */
export class SecretSealer {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (!Buffer.isBuffer(key) || key.length !== 32) throw new LifeboatError('E_INVALIDARG', 'The catalog key must be 32 bytes (AES-256).');
    this.#key = Buffer.from(key);
  }

  seal(field: string, clear: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(aad(field));
    const body = Buffer.concat([cipher.update(clear, 'utf8'), cipher.final()]);
    return SEALED_PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
  }

  /** Opens a sealed value of `field`; a value that is not sealed comes back as it is. */
  unseal(field: string, value: string): string {
    if (!isSealed(value)) return value;
    const raw = Buffer.from(value.slice(SEALED_PREFIX.length), 'base64');
    if (raw.length < IV_BYTES + TAG_BYTES) throw unsealError(field, 'it is truncated');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(aad(field));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw unsealError(field, 'it does not authenticate', err);
    }
  }

  /**
   * A copy of `value` with every secret field, at any depth, sealed. A value that already looks
   * sealed is sealed again: it came from a caller (the service only ever holds opened values), and
   * taking it as sealed would let whoever copied one from a catalog file have Lifeboat open it.
   */
  sealDeep<T>(value: T): T {
    return this.#walk(value, (field, v) => this.seal(field, v)) as T;
  }

  /** Seals the clear secret fields only (for values read from the catalog as they are stored). */
  sealClearDeep<T>(value: T): T {
    return this.#walk(value, (field, v) => (isSealed(v) ? v : this.seal(field, v))) as T;
  }

  /** A copy of `value` with every sealed secret field opened. */

  unsealDeep<T>(value: T): T {
    return this.#walk(value, (field, v) => this.unseal(field, v)) as T;
  }

  /** True when a secret field somewhere in `value` is a clear (not sealed) string. */
  hasClear(value: unknown): boolean {
    let clear = false;
    this.#walk(value, (_f, v) => {
      if (!isSealed(v)) clear = true;
      return v;
    });
    return clear;
  }

  #walk(value: unknown, fn: (field: string, v: string) => string): unknown {
    if (Array.isArray(value)) return value.map((v) => this.#walk(v, fn));
    if (value === null || typeof value !== 'object') return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_SET.has(k) && typeof v === 'string' ? fn(k, v) : this.#walk(v, fn);
    }
    return out;
  }
}

function unsealError(field: string, why: string, cause?: unknown): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_CATALOG_KEY_MISMATCH',
    `A ${field} sealed in the catalog cannot be opened: ${why}. The catalog key (catalog.key in the data directory, or --catalog-key) is not the key it was sealed with, or the catalog is damaged. Start with the right key, or update the policy with its secret again.`,
    cause === undefined ? undefined : { cause });
}

/** Seals what an operation's request and result carry; opens them on every read. */
class SealedOperations implements OperationStore {
  constructor(private readonly inner: OperationStore, private readonly sealer: SecretSealer) {}

  #seal(op: OperationRecord): OperationRecord {
    return { ...op, request: this.sealer.sealDeep(op.request), result: this.sealer.sealDeep(op.result) };
  }

  #open(op: OperationRecord): OperationRecord;
  #open(op: OperationRecord | undefined): OperationRecord | undefined;
  #open(op: OperationRecord | undefined): OperationRecord | undefined {
    return op && { ...op, request: this.sealer.unsealDeep(op.request), result: this.sealer.unsealDeep(op.result) };
  }

  async insert(op: OperationRecord, fence?: Fence): Promise<{ inserted: true } | { inserted: false; active: OperationRecord }> {
    const out = await this.inner.insert(this.#seal(op), fence);
    return out.inserted ? out : { inserted: false, active: this.#open(out.active) };
  }

  insertMany(ops: readonly OperationRecord[], fence?: Fence): Promise<Set<string>> {
    return this.inner.insertMany(ops.map((op) => this.#seal(op)), fence);
  }

  update(id: string, patch: OperationPatch): Promise<boolean> {
    return this.inner.update(id, this.#sealPatch(patch));
  }

  end(id: string, patch: OperationPatch, report: HostReportRecords): Promise<EndOutcome> {
    // The partition's state and the backup's index row hold no secret (the index keeps a storage identity, not credentials).
    return this.inner.end(id, this.#sealPatch(patch), report);
  }

  #sealPatch(patch: OperationPatch): OperationPatch {
    // A result (BackupId, location, epoch, LSN) holds no storage description today; sealed all
    // the same should one ever carry a secret field (and opened on read).
    return patch.result === undefined ? patch : { ...patch, result: this.sealer.sealDeep(patch.result) };
  }

  async get(id: string): Promise<OperationRecord | undefined> {
    return this.#open(await this.inner.get(id));
  }

  async latest(partitionId: string, kind: OperationKind): Promise<OperationRecord | undefined> {
    return this.#open(await this.inner.latest(partitionId, kind));
  }

  async latestOf(partitionIds: readonly string[], kind: OperationKind): Promise<Map<string, OperationRecord>> {
    const found = await this.inner.latestOf(partitionIds, kind);
    return new Map([...found].map(([id, op]) => [id, this.#open(op) as OperationRecord]));
  }

  async latestEnded(partitionId: string, kinds: readonly OperationKind[]): Promise<OperationRecord | undefined> {
    return this.#open(await this.inner.latestEnded(partitionId, kinds));
  }

  async active(hostId?: string): Promise<OperationRecord[]> {
    return (await this.inner.active(hostId)).map((op) => this.#open(op));
  }

  activeIds(): Promise<Set<string>> {
    return this.inner.activeIds();
  }

  async getMany(ids: readonly string[]): Promise<Map<string, OperationRecord>> {
    const found = await this.inner.getMany(ids);
    return new Map([...found].map(([id, op]) => [id, this.#open(op)]));
  }

  async claimOrders(hostId: string, nowUtc: string, againBeforeUtc: string): Promise<OperationRecord[]> {
    return (await this.inner.claimOrders(hostId, nowUtc, againBeforeUtc)).map((op) => this.#open(op));
  }

  releaseOrders(hostId: string): Promise<void> {
    return this.inner.releaseOrders(hostId);
  }
}

/** Seals the storage of a policy (it carries the secrets); opens it on every read. Protection holds policy names only. */
class SealedPolicies implements PolicyStore {
  constructor(private readonly inner: PolicyStore, private readonly sealer: SecretSealer) {}

  /** `clearOnly`: seal only the secrets not sealed yet (a policy read as it is stored). */
  seal<T extends { policy: BackupPolicy }>(p: T, clearOnly = false): T {
    const storage = clearOnly ? this.sealer.sealClearDeep(p.policy.storage) : this.sealer.sealDeep(p.policy.storage);
    return { ...p, policy: { ...p.policy, storage } };
  }

  #open(p: PolicyRecord): PolicyRecord;
  #open(p: PolicyRecord | undefined): PolicyRecord | undefined;
  #open(p: PolicyRecord | undefined): PolicyRecord | undefined {
    return p && { ...p, policy: { ...p.policy, storage: this.sealer.unsealDeep<StorageDescription>(p.policy.storage) } };
  }

  insert(p: PolicyRecord): Promise<boolean> {
    return this.inner.insert(this.seal(p));
  }

  update(p: Omit<PolicyRecord, 'createdUtc'>): Promise<boolean> {
    return this.inner.update(this.seal(p));
  }

  async get(name: string): Promise<PolicyRecord | undefined> {
    return this.#open(await this.inner.get(name));
  }

  async list(): Promise<PolicyRecord[]> {
    return (await this.inner.list()).map((p) => this.#open(p));
  }

  delete(name: string): Promise<Outcome<PolicyDeletion>> {
    return this.inner.delete(name);
  }

  getProtection(): Promise<ProtectionState> {
    return this.inner.getProtection();
  }

  changeProtection<T extends { state: ProtectionState }>(change: ProtectionChange<T>): Promise<Outcome<T>> {
    return this.inner.changeProtection(change);
  }
}

/**
 * Seals the secrets of every storage description the catalog stores; opens them on every read.
 * Only operations and policies carry them: the hierarchy, the backup index (storageKey is
 * storageIdentity: no secrets), the schedules (policy names and storage keys only), the leases and
 * the signals are the inner catalog's own parts.
 */
export class SealedCatalog implements Catalog {
  readonly hierarchy: HierarchyStore;
  readonly operations: OperationStore;
  readonly backups: BackupIndex;
  readonly policies: PolicyStore;
  readonly schedules: ScheduleStore;
  readonly leases: LeaseStore;
  readonly signals: SignalBus;
  readonly #inner: Catalog;
  readonly #sealer: SecretSealer;
  readonly #policies: SealedPolicies;

  /** `key`: the catalog key, 32 bytes (loadOrCreateCatalogKey). */
  constructor(inner: Catalog, key: Buffer) {
    this.#sealer = new SecretSealer(key);
    this.#inner = inner;
    this.hierarchy = inner.hierarchy;
    this.operations = new SealedOperations(inner.operations, this.#sealer);
    this.backups = inner.backups;
    this.#policies = new SealedPolicies(inner.policies, this.#sealer);
    this.policies = this.#policies;
    this.schedules = inner.schedules;
    this.leases = inner.leases;
    this.signals = inner.signals;
  }

  /**
   * Seals the clear secrets of a catalog written before sealing: every policy (rewritten through
   * `policies.update` with its own uniqueId and updatedUtc, so the scheduler sees no change). Run it
   * at startup, before the service serves requests (a policy updated between its read and its
   * rewrite here would be overwritten). Operations' requests cannot be rewritten through the port;
   * the count of active ones still clear is reported (ended ones cannot be listed).
   */
  async sealExisting(): Promise<SealReport> {
    let policies = 0;
    for (const p of await this.#inner.policies.list()) {
      if (!this.#sealer.hasClear(p.policy.storage)) continue;
      const sealed = this.#policies.seal(p, true);
      if (await this.#inner.policies.update({ name: sealed.name, policy: sealed.policy, uniqueId: sealed.uniqueId, updatedUtc: sealed.updatedUtc })) policies++;
    }
    const operationsLeftClear = (await this.#inner.operations.active()).filter((op) => this.#sealer.hasClear(op.request)).length;
    return { policies, operationsLeftClear };
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/**
 * Protection: which backup policy applies to a partition, whether its periodic backups are
 * suspended, and what enable / disable / suspend / resume / delete-policy may do — pure functions
 * over an immutable state, returning the new state or a refusal as data. Follows Service Fabric's
 * BRS (sf-behaviour.md §2.3, §2.4, rules 12–13; `GetBackupMappingOperation`, `SuspendBackupOperation`,
 * `DisableBackupMappingOperation`, `DeleteBackupPolicyOperation`, `RetentionManager.DisablePolicyAsync`).
 *
 * Entities are keyed as Service Fabric keys its mapping store, except partitions:
 *   Application `fabric:/App` · Service `fabric:/App/Svc` (or `fabric:/App/Group/Svc`) · Partition: its id.
 * A partition id alone (a GUID, lower-cased) is unique in the cluster, is what the REST API addresses
 * partitions by, and cannot be mistaken for a name — `fabric:/App/Svc/<id>` could, when service names
 * have more than two segments. The mapping and suspension values keep the whole entity, so the
 * service of a partition is never parsed out of a key.
 */
import { applicationOf } from './ids.ts';

export type BackupEntity =
  | { readonly kind: 'Application'; readonly applicationName: string }
  | { readonly kind: 'Service'; readonly serviceName: string }
  | { readonly kind: 'Partition'; readonly serviceName: string; readonly partitionId: string };

export type EntityLevel = BackupEntity['kind'];

/** A partition and the names above it. */
export interface PartitionRef {
  readonly applicationName: string;
  readonly serviceName: string;
  readonly partitionId: string;
}

export interface ProtectionMapping {
  readonly entity: BackupEntity;
  readonly policyName: string;
}

/** Everything protection decisions need; the catalog persists it. Keys are `entityKey(entity)`. */
export interface ProtectionState {
  readonly mappings: ReadonlyMap<string, ProtectionMapping>;
  readonly suspensions: ReadonlyMap<string, BackupEntity>;
}

export const EMPTY_PROTECTION: ProtectionState = { mappings: new Map(), suspensions: new Map() };

/**
 * The codes refusals carry. They are Service Fabric's (spec spellings, sf-rest-api.md §5.2–5.3) and
 * not all are in the error catalogue yet: FABRIC_E_BACKUP_IS_ENABLED (400),
 * FABRIC_E_BACKUP_POLICY_NOT_EXISTING (404), FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING (409).
 */
export type ProtectionRefusalCode =
  | 'FABRIC_E_BACKUP_NOT_ENABLED'
  | 'FABRIC_E_BACKUP_IS_ENABLED'
  | 'FABRIC_E_BACKUP_POLICY_NOT_EXISTING'
  | 'FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING';

export interface Refusal {
  readonly ok: false;
  readonly code: ProtectionRefusalCode;
  readonly message: string;
}

export type Outcome<T> = ({ readonly ok: true } & T) | Refusal;

const refuse = (code: ProtectionRefusalCode, message: string): Refusal => ({ ok: false, code, message });

export function entityKey(e: BackupEntity): string {
  switch (e.kind) {
    case 'Application': return e.applicationName;
    case 'Service': return e.serviceName;
    case 'Partition': return e.partitionId.toLowerCase();
  }
}

/** How Service Fabric writes the entity in messages and stores: `fabric:/App/Svc/<partitionId>` for a partition. */
export function entityUri(e: BackupEntity): string {
  return e.kind === 'Partition' ? `${e.serviceName}/${e.partitionId.toLowerCase()}` : entityKey(e);
}

const describe = (e: BackupEntity): string => `${e.kind} ${entityUri(e)}`;

export function partitionEntity(p: PartitionRef): BackupEntity {
  return { kind: 'Partition', serviceName: p.serviceName, partitionId: p.partitionId };
}

/** The entity and the levels above it, most specific first: partition, service, application. */
export function lineage(e: BackupEntity): BackupEntity[] {
  switch (e.kind) {
    case 'Application': return [e];
    case 'Service': return [e, { kind: 'Application', applicationName: applicationOf(e.serviceName) }];
    case 'Partition': return [e, ...lineage({ kind: 'Service', serviceName: e.serviceName })];
  }
}

/** Whether `e` is strictly below `ancestor` (a partition below its service and application, a service below its application). */
export function isBelow(e: BackupEntity, ancestor: BackupEntity): boolean {
  const k = entityKey(ancestor);
  return lineage(e).slice(1).some((a) => a.kind === ancestor.kind && entityKey(a) === k);
}

export interface EffectivePolicy {
  readonly policyName: string;
  /** `PolicyInheritedFrom`: the level the mapping was found at. */
  readonly inheritedFrom: EntityLevel;
  readonly mapping: ProtectionMapping;
}

/**
 * The policy that applies to an entity: its own mapping, else its service's, else its
 * application's — the most specific wins, and a change higher up never overrides a mapping below
 * (§2.3, rule 12). Undefined when none applies (`PolicyInheritedFrom` Invalid).
 */
export function effectivePolicyOf(mappings: ProtectionState['mappings'], entity: BackupEntity): EffectivePolicy | undefined {
  for (const level of lineage(entity)) {
    const mapping = mappings.get(entityKey(level));
    if (mapping) return { policyName: mapping.policyName, inheritedFrom: level.kind, mapping };
  }
  return undefined;
}

/** `effectivePolicyOf` for a partition. */
export function effectivePolicy(mappings: ProtectionState['mappings'], partition: PartitionRef): EffectivePolicy | undefined {
  return effectivePolicyOf(mappings, partitionEntity(partition));
}

export interface SuspensionInfo {
  readonly isSuspended: boolean;
  /** `SuspensionInheritedFrom`: the most specific level suspended, as `GetBackupMappingOperation` reports it; Invalid when not suspended. */
  readonly inheritedFrom: EntityLevel | 'Invalid';
}

/** Whether an entity is suspended: its own key, its service's or its application's is (§2.4, rule 13). */
export function suspensionOf(suspensions: ProtectionState['suspensions'], entity: BackupEntity): SuspensionInfo {
  for (const level of lineage(entity)) {
    if (suspensions.has(entityKey(level))) return { isSuspended: true, inheritedFrom: level.kind };
  }
  return { isSuspended: false, inheritedFrom: 'Invalid' };
}

/** `suspensionOf` for a partition. */
export function suspension(suspensions: ProtectionState['suspensions'], partition: PartitionRef): SuspensionInfo {
  return suspensionOf(suspensions, partitionEntity(partition));
}

/**
 * What the scheduler of a partition should run: the effective policy when there is one and the
 * partition is not suspended. A suspended partition keeps its policy (retention still applies to
 * it) but takes no periodic backups (rule 13).
 */
export function periodicBackupPolicy(state: ProtectionState, partition: PartitionRef):
  { readonly run: true; readonly policyName: string } | { readonly run: false; readonly why: 'NotEnabled' | 'Suspended' } {
  const eff = effectivePolicy(state.mappings, partition);
  if (!eff) return { run: false, why: 'NotEnabled' };
  if (suspension(state.suspensions, partition).isSuspended) return { run: false, why: 'Suspended' };
  return { run: true, policyName: eff.policyName };
}

/** Mappings and suspensions strictly below an entity: the overrides Get{Application,Service}BackupConfigurationInfo lists. */
export function overridesBelow(state: ProtectionState, entity: BackupEntity): { mappings: ProtectionMapping[]; suspended: BackupEntity[] } {
  const byKey = <T>(entries: Iterable<[string, T]>): T[] => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  return {
    mappings: byKey(state.mappings.entries()).filter((m) => isBelow(m.entity, entity)),
    suspended: byKey(state.suspensions.entries()).filter((s) => isBelow(s, entity)),
  };
}

/** The entities a policy is enabled on, by key (GetAllEntitiesBackedUpByPolicy). */
export function entitiesOfPolicy(state: ProtectionState, policyName: string): BackupEntity[] {
  return [...state.mappings.entries()].filter(([, m]) => m.policyName === policyName)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, m]) => m.entity);
}

/** Something that knows the policy names in the store. */
export interface PolicyNames {
  has(name: string): boolean;
}

/**
 * The store rules on policy names: create refuses an existing name
 * (FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING, 409); get, update, delete and enable refuse an unknown
 * one (FABRIC_E_BACKUP_POLICY_NOT_EXISTING, 404). Names are compared exactly, as Service Fabric's
 * store does. Undefined when the operation may go ahead.
 */
export function policyNameRefusal(policies: PolicyNames, name: string, operation: 'create' | 'get' | 'update' | 'delete' | 'enable'): Refusal | undefined {
  if (operation === 'create') {
    return policies.has(name) ? refuse('FABRIC_E_BACKUP_POLICY_ALREADY_EXISTING', `A backup policy named '${name}' already exists.`) : undefined;
  }
  return policies.has(name) ? undefined : refuse('FABRIC_E_BACKUP_POLICY_NOT_EXISTING', `Backup policy '${name}' does not exist.`);
}

const withMapping = (state: ProtectionState, key: string, m: ProtectionMapping | undefined): ProtectionState => {
  const mappings = new Map(state.mappings);
  if (m) mappings.set(key, m);
  else mappings.delete(key);
  return { ...state, mappings };
};

const withSuspension = (state: ProtectionState, key: string, e: BackupEntity | undefined): ProtectionState => {
  const suspensions = new Map(state.suspensions);
  if (e) suspensions.set(key, e);
  else suspensions.delete(key);
  return { ...state, suspensions };
};

/**
 * Enable backup of an entity with a policy: puts the mapping at exactly that level; a mapping
 * already there is replaced (UpdateProtection; `replaced` names the old policy). Lower mappings keep
 * overriding it. Refused with FABRIC_E_BACKUP_POLICY_NOT_EXISTING for an unknown policy. (Refusing
 * stateless or volatile services — FABRIC_E_INVALID_FOR_STATELESS_SERVICES — needs the service's
 * description and is the service layer's check.)
 */
export function enableBackup(
  state: ProtectionState, entity: BackupEntity, policyName: string, policies: PolicyNames,
): Outcome<{ state: ProtectionState; replaced: string | undefined; changed: boolean }> {
  const unknown = policyNameRefusal(policies, policyName, 'enable');
  if (unknown) return unknown;
  const key = entityKey(entity);
  const before = state.mappings.get(key);
  if (before?.policyName === policyName) return { ok: true, state, replaced: undefined, changed: false };
  return { ok: true, state: withMapping(state, key, { entity, policyName }), replaced: before?.policyName, changed: true };
}

/**
 * Disable backup of an entity: allowed only where a mapping was made at exactly that level, else
 * FABRIC_E_BACKUP_NOT_ENABLED (§2.3, rule 12) — the message says where the inherited policy can be
 * disabled. Partitions below fall back to what they inherit from above. Suspensions stay as they
 * are (Service Fabric keeps them). For CleanBackup see `cleanBackupTargets`, called with the state
 * *before* this change.
 */
export function disableBackup(state: ProtectionState, entity: BackupEntity): Outcome<{ state: ProtectionState; removed: ProtectionMapping }> {
  const key = entityKey(entity);
  const mapping = state.mappings.get(key);
  if (!mapping) {
    const inherited = effectivePolicyOf(state.mappings, entity);
    return refuse('FABRIC_E_BACKUP_NOT_ENABLED', inherited
      ? `Backup is not enabled at ${describe(entity)} itself: it inherits policy '${inherited.policyName}' from ${describe(inherited.mapping.entity)}; disable it there.`
      : `Backup is not enabled for ${describe(entity)}.`);
  }
  return { ok: true, state: withMapping(state, key, undefined), removed: mapping };
}

/** Whether suspending or resuming `entity` concerns a protected partition: a policy applies to it, or to something below it. */
function protectionAtOrBelow(state: ProtectionState, entity: BackupEntity): boolean {
  if (effectivePolicyOf(state.mappings, entity)) return true;
  for (const m of state.mappings.values()) if (isBelow(m.entity, entity)) return true;
  return false;
}

/**
 * Suspend periodic backups of an entity and everything below it: records the suspension at exactly
 * that level (idempotent). Needs protection at, above or below the entity, else
 * FABRIC_E_BACKUP_NOT_ENABLED. Service Fabric accepts a suspension wherever *any* mapping exists in
 * the same application, even on a sibling service where it suspends nothing (`SuspendBackupOperation`);
 * we refuse that, as the docs' rule says (§2.4: "at any level that is currently protected").
 */
export function suspendBackup(state: ProtectionState, entity: BackupEntity): Outcome<{ state: ProtectionState; changed: boolean }> {
  if (!protectionAtOrBelow(state, entity)) return refuse('FABRIC_E_BACKUP_NOT_ENABLED', `Backup is not enabled for ${describe(entity)} or anything below it; there is nothing to suspend.`);
  const key = entityKey(entity);
  if (state.suspensions.has(key)) return { ok: true, state, changed: false };
  return { ok: true, state: withSuspension(state, key, entity), changed: true };
}

/**
 * Resume periodic backups where they were suspended: removes the suspension recorded at exactly
 * that entity. Idempotent — resuming an entity that is not suspended there succeeds and changes
 * nothing (Service Fabric answers 202); if it is still suspended from above, `stillSuspendedFrom`
 * says where to resume instead. A suspension below the entity is not touched. Needs protection as
 * suspend does (FABRIC_E_BACKUP_NOT_ENABLED).
 */
export function resumeBackup(
  state: ProtectionState, entity: BackupEntity,
): Outcome<{ state: ProtectionState; changed: boolean; stillSuspendedFrom: BackupEntity | undefined }> {
  if (!protectionAtOrBelow(state, entity)) return refuse('FABRIC_E_BACKUP_NOT_ENABLED', `Backup is not enabled for ${describe(entity)} or anything below it; there is nothing to resume.`);
  const key = entityKey(entity);
  const next = state.suspensions.has(key) ? withSuspension(state, key, undefined) : state;
  const still = lineage(entity).slice(1).find((a) => next.suspensions.has(entityKey(a)));
  return { ok: true, state: next, changed: next !== state, stillSuspendedFrom: still };
}

/**
 * Delete a policy: unknown → FABRIC_E_BACKUP_POLICY_NOT_EXISTING; still enabled on an entity that
 * exists → FABRIC_E_BACKUP_IS_ENABLED (§2.2). Mappings on entities that no longer exist are removed
 * first, with the suspensions that were under this policy (`DeleteBackupPolicyOperation`). On
 * success the caller removes the policy itself and its retention state.
 */
export function deletePolicy(
  state: ProtectionState, policyName: string, policies: PolicyNames, entityExists: (e: BackupEntity) => boolean,
): Outcome<{ state: ProtectionState; removedMappings: ProtectionMapping[]; removedSuspensions: BackupEntity[] }> {
  const unknown = policyNameRefusal(policies, policyName, 'delete');
  if (unknown) return unknown;
  const mine = entitiesOfPolicy(state, policyName);
  const live = mine.filter(entityExists);
  if (live.length > 0) {
    const first = live[0] as BackupEntity;
    return refuse('FABRIC_E_BACKUP_IS_ENABLED',
      `Backup policy '${policyName}' is enabled for ${describe(first)}${live.length > 1 ? ` and ${live.length - 1} more` : ''}; disable backup there first.`);
  }
  const removedSuspensions = [...state.suspensions.values()].filter((s) => effectivePolicyOf(state.mappings, s)?.policyName === policyName);
  const mappings = new Map([...state.mappings].filter(([, m]) => m.policyName !== policyName));
  const suspensions = new Map([...state.suspensions].filter(([, s]) => !removedSuspensions.includes(s)));
  return {
    ok: true, state: { mappings, suspensions },
    removedMappings: [...state.mappings.values()].filter((m) => m.policyName === policyName),
    removedSuspensions,
  };
}

export interface CleanBackupTarget {
  readonly partition: PartitionRef;
  /** Delete all of this partition's backups in the disabled policy's storage. */
  readonly clean: boolean;
  readonly reason: string;
}

/**
 * DisableBackup with `CleanBackup: true`: for each partition below the disabled entity (`partitions`:
 * all partitions of the entity, listed by the caller), whether to delete all its backups in the
 * disabled policy's storage (§2.3). Called with the state *before* the disable.
 *
 * - A partition with a more specific mapping was not using the disabled mapping: untouched.
 * - A partition left with no policy: cleaned.
 * - A partition that now inherits a policy writing to **another** storage: cleaned.
 * - A partition that now inherits a policy writing to the **same** storage: not cleaned — its
 *   backups there are the ones the inherited policy continues (same folder per partition) and
 *   retention now manages. This is the documented intent; Service Fabric's code inverts the check
 *   (`RetentionManager.DisablePolicyAsync`, §3), cleaning exactly these — we do not copy that.
 * - When the storage of either policy is unknown (`storageOf` gives undefined), nothing is deleted:
 *   deletion cannot be undone.
 *
 * `storageOf` names a policy's storage place (e.g. `storageIdentity(policy.storage)`): equal strings
 * mean the same place.
 */
export function cleanBackupTargets(
  before: ProtectionState, disabled: BackupEntity, partitions: readonly PartitionRef[], storageOf: (policyName: string) => string | undefined,
): CleanBackupTarget[] {
  const key = entityKey(disabled);
  const removed = before.mappings.get(key);
  if (!removed) return partitions.map((partition) => ({ partition, clean: false, reason: `not cleaned: backup is not enabled at ${describe(disabled)}` }));
  const after = withMapping(before, key, undefined);
  const oldStorage = storageOf(removed.policyName);
  return partitions.map((partition): CleanBackupTarget => {
    const eff = effectivePolicy(before.mappings, partition);
    if (!eff || entityKey(eff.mapping.entity) !== key || eff.mapping.entity.kind !== disabled.kind) {
      return { partition, clean: false, reason: eff ? `not cleaned: has its own policy '${eff.policyName}' at ${eff.inheritedFrom} level` : 'not cleaned: not protected by the disabled mapping' };
    }
    const next = effectivePolicy(after.mappings, partition);
    if (!next) return { partition, clean: true, reason: `cleaned: no policy applies any more (was '${removed.policyName}')` };
    const nextStorage = storageOf(next.policyName);
    if (oldStorage === undefined || nextStorage === undefined) {
      return { partition, clean: false, reason: `not cleaned: the storage of policy '${oldStorage === undefined ? removed.policyName : next.policyName}' is unknown` };
    }
    return nextStorage === oldStorage
      ? { partition, clean: false, reason: `not cleaned: still inherits policy '${next.policyName}' from ${next.inheritedFrom} level, which writes to the same storage` }
      : { partition, clean: true, reason: `cleaned: now inherits policy '${next.policyName}' from ${next.inheritedFrom} level, which writes to another storage` };
  });
}

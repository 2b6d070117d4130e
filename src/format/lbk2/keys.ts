/**
 * Keys of `.lbk` version 2 (docs/backup-format.md, "Encryption"): the keyring of key-encryption
 * keys, the per-backup data key wrapped under one of them (the record that goes in `.bkmetadata`
 * as `Body.Encryption`, so rotation re-wraps it without touching the data), and the keys derived
 * from a data key for one archive. Key bytes never appear in messages; key ids may.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { LifeboatError } from '../../core/errors.ts';

/** Key-encryption keys: `current` wraps new data keys; every key (current or other) unwraps by id. */
export interface Keyring {
  readonly current: { readonly id: string; readonly key: Buffer };
  readonly others: ReadonlyMap<string, Buffer>;
}

/** The wrapped data key of one backup, as stored in `.bkmetadata` (`Body.Encryption`). */
export interface WrappedDataKey {
  readonly KeyId: string;
  readonly Algorithm: 'AES-256-GCM';
  /** base64 of the 32-byte encrypted data key followed by the 16-byte GCM tag. */
  readonly WrappedKey: string;
  /** base64 of the random 12-byte GCM nonce. */
  readonly Nonce: string;
}

export const WRAP_ALGORITHM = 'AES-256-GCM';
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function wrapAad(keyId: string): Buffer {
  return Buffer.from(`lifeboat lbk2 data key ${keyId}`, 'utf8');
}

function decodeBase64(text: string): Buffer | undefined {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
}

/** A keyring from ids and 32-byte keys; E_INVALIDARG for a bad id, a key of another length, or an unknown current id. */
export function makeKeyring(currentId: string, keys: ReadonlyMap<string, Buffer>, source = 'The keyring'): Keyring {
  for (const [id, key] of keys) {
    if (!KEY_ID.test(id)) throw new LifeboatError('E_INVALIDARG', `${source}: key id '${id.slice(0, 64)}' is not 1 to 64 of A-Z a-z 0-9 . _ -.`);
    if (key.length !== 32) throw new LifeboatError('E_INVALIDARG', `${source}: key '${id}' is ${key.length} bytes; AES-256 keys are 32 bytes.`);
  }
  const current = keys.get(currentId);
  if (!current) throw new LifeboatError('E_INVALIDARG', `${source}: the current key id '${currentId}' is not among its keys.`);
  const others = new Map([...keys].filter(([id]) => id !== currentId));
  return { current: { id: currentId, key: current }, others };
}

/**
 * Reads a keyring from JSON text: `{"current":"k2","keys":{"k1":"<base64 of 32 bytes>","k2":"…"}}`.
 * `source` names where the text came from (a file, a setting) for the messages.
 */
export function parseKeyring(text: string, source = 'The keyring'): Keyring {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new LifeboatError('E_INVALIDARG', `${source} is not JSON: expected {"current":"<key id>","keys":{"<key id>":"<base64 of 32 bytes>"}}.`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new LifeboatError('E_INVALIDARG', `${source} is not a JSON object with "current" and "keys".`);
  const { current, keys } = doc as { current?: unknown; keys?: unknown };
  if (typeof current !== 'string' || current === '') throw new LifeboatError('E_INVALIDARG', `${source} has no "current" key id (a string).`);
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) throw new LifeboatError('E_INVALIDARG', `${source} has no "keys" object of key id to base64 key.`);
  const map = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(keys as Record<string, unknown>)) {
    const key = typeof value === 'string' ? decodeBase64(value) : undefined;
    if (!key) throw new LifeboatError('E_INVALIDARG', `${source}: key '${id.slice(0, 64)}' is not a base64 string.`);
    map.set(id, key);
  }
  return makeKeyring(current, map, source);
}

/** The key with `id`, or LIFEBOAT_E_ENCRYPTION_KEY_MISSING naming the ids the keyring has. */
export function keyById(keyring: Keyring, id: string, what: string): Buffer {
  const key = keyring.current.id === id ? keyring.current.key : keyring.others.get(id);
  if (key) return key;
  const have = [keyring.current.id, ...keyring.others.keys()].join(', ');
  throw new LifeboatError('LIFEBOAT_E_ENCRYPTION_KEY_MISSING', `${what} is encrypted with key '${id}', which is not in the keyring (it has ${have}).`);
}

/** Wraps `dataKey` under the keyring's current key, with a fresh random nonce. */
export function wrapDataKey(dataKey: Buffer, keyring: Keyring): WrappedDataKey {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyring.current.key, nonce);
  cipher.setAAD(wrapAad(keyring.current.id));
  const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
  return { KeyId: keyring.current.id, Algorithm: WRAP_ALGORITHM, WrappedKey: wrapped.toString('base64'), Nonce: nonce.toString('base64') };
}

/**
 * The data key inside `wrapped`, unwrapped with the keyring's key of that id (current or other).
 * LIFEBOAT_E_ENCRYPTION_KEY_MISSING when the keyring has no such id; LIFEBOAT_E_ENCRYPTION_KEY_MISMATCH
 * when the key of that id does not open it (another key under the same id, or a damaged record).
 */
export function unwrapDataKey(wrapped: WrappedDataKey, keyring: Keyring, what = 'The backup'): Buffer {
  const record = checkWrappedDataKey(wrapped, what);
  const kek = keyById(keyring, record.KeyId, what);
  const bytes = Buffer.from(record.WrappedKey, 'base64');
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(record.Nonce, 'base64'));
    decipher.setAAD(wrapAad(record.KeyId));
    decipher.setAuthTag(bytes.subarray(32));
    return Buffer.concat([decipher.update(bytes.subarray(0, 32)), decipher.final()]);
  } catch {
    throw new LifeboatError('LIFEBOAT_E_ENCRYPTION_KEY_MISMATCH',
      `${what}: its data key does not unwrap with key '${record.KeyId}' of the keyring: that key is not the one it was wrapped with, or the wrapped key record is damaged.`);
  }
}

/**
 * Re-wraps a backup's data key under `keyring.current` (key rotation): unwraps it with whichever
 * key of the keyring it names, wraps it again with a fresh nonce. The data object is untouched;
 * the caller stores the result in the backup's `.bkmetadata` in place of the old record.
 */
export function rewrapDataKey(wrapped: WrappedDataKey, keyring: Keyring): WrappedDataKey {
  const dataKey = unwrapDataKey(wrapped, keyring, 'The backup');
  try {
    return wrapDataKey(dataKey, keyring);
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Checks the shape of a wrapped data key record read from `.bkmetadata` (`Body.Encryption`);
 * LIFEBOAT_E_BACKUP_CORRUPT naming `what` when it is malformed.
 */
export function checkWrappedDataKey(value: unknown, what: string): WrappedDataKey {
  const bad = (why: string): LifeboatError => new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `${what}: its wrapped data key record is malformed: ${why}.`);
  if (typeof value !== 'object' || value === null) throw bad('not an object');
  const r = value as Record<string, unknown>;
  if (typeof r.KeyId !== 'string' || !KEY_ID.test(r.KeyId)) throw bad('KeyId');
  if (r.Algorithm !== WRAP_ALGORITHM) throw bad(`Algorithm '${String(r.Algorithm).slice(0, 40)}' is not ${WRAP_ALGORITHM}`);
  if (typeof r.WrappedKey !== 'string' || decodeBase64(r.WrappedKey)?.length !== 48) throw bad('WrappedKey is not base64 of 48 bytes');
  if (typeof r.Nonce !== 'string' || decodeBase64(r.Nonce)?.length !== 12) throw bad('Nonce is not base64 of 12 bytes');
  return { KeyId: r.KeyId, Algorithm: WRAP_ALGORITHM, WrappedKey: r.WrappedKey, Nonce: r.Nonce };
}

/** The keys one archive uses, derived from its data key and archive id (HKDF-SHA256). */
export interface ArchiveKeys {
  /** AES-256-GCM key of the blocks and the trailer's digests. */
  readonly blockKey: Buffer;
  /** 16 bytes stored in the header, to tell a data key of another archive from damage. */
  readonly keyCheck: Buffer;
}

export function deriveArchiveKeys(dataKey: Buffer, archiveId: Buffer): ArchiveKeys {
  return {
    blockKey: Buffer.from(hkdfSync('sha256', dataKey, archiveId, 'lifeboat lbk2 block key', 32)),
    keyCheck: Buffer.from(hkdfSync('sha256', dataKey, archiveId, 'lifeboat lbk2 key check', 16)),
  };
}

export function keyCheckMatches(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

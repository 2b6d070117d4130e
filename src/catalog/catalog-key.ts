/**
 * The catalog key: the AES-256 key that seals the secrets the catalog stores (SealedCatalog),
 * kept apart from the catalog in `<dataDir>/catalog.key` (32 random bytes, base64, mode 0600).
 * A copy of the catalog without the key reveals no secret; losing the key loses the secrets
 * (policies must then be updated with them again), not the backups.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LifeboatError } from '../core/errors.ts';

export const CATALOG_KEY_FILE = 'catalog.key';
export const CATALOG_KEY_BYTES = 32;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Refuses (E_INVALIDARG) a file that holds a secret (catalog key, keyring) unless it is a regular
 * file only its owner may read or write: no permission bits for group or others. `what` names the
 * file in the message ("the keyring file (--encryption-keys)"). Not checked on Windows, whose
 * permissions mode bits do not describe.
 */
export function checkPrivateFile(path: string, what: string): void {
  let mode: number;
  let isFile: boolean;
  try {
    const st = statSync(path);
    mode = st.mode;
    isFile = st.isFile();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LifeboatError('E_INVALIDARG', `${what} ${path} cannot be read (${code ?? String(err)}).`, { cause: err });
  }
  if (!isFile) throw new LifeboatError('E_INVALIDARG', `${what} ${path} is not a regular file.`);
  if (process.platform === 'win32') return;
  const perms = mode & 0o777;
  if ((perms & 0o077) !== 0) {
    throw new LifeboatError('E_INVALIDARG',
      `${what} ${path} has mode ${perms.toString(8).padStart(4, '0')}: other users may read or change it. It holds a secret; make it private (chmod 600 ${path}) and start again.`);
  }
}

/** Reads the catalog key of `dataDir`, creating it (32 random bytes, mode 0600) when there is none. */
export function loadOrCreateCatalogKey(dataDir: string): Buffer {
  const path = join(dataDir, CATALOG_KEY_FILE);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    return readCatalogKey(path);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  createKeyFile(path, randomBytes(CATALOG_KEY_BYTES));
  // Read back what is there: a concurrent start may have created the file first.
  return readCatalogKey(path);
}

/** Reads and checks a catalog key file; throws ENOENT (as node does) when it does not exist. */
export function readCatalogKey(path: string): Buffer {
  statSync(path); // ENOENT for a missing file, before the checks
  checkPrivateFile(path, 'The catalog key file');
  const text = readFileSync(path, 'utf8').trim();
  const key = BASE64.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (key.length !== CATALOG_KEY_BYTES) {
    throw new LifeboatError('E_INVALIDARG',
      `The catalog key file ${path} does not hold ${CATALOG_KEY_BYTES} bytes in base64: it is damaged or not a catalog key. Put back the copy of it you kept; without it the secrets sealed in the catalog cannot be read (update the policies with their secrets again after removing it).`);
  }
  return key;
}

/**
 * Writes the key into a temporary file (O_EXCL, 0600, fsynced), then links it to its name: the
 * link is atomic and never replaces a key already there, so a crash leaves either no key file or
 * a whole one, and of two concurrent starts both use the key that won.
 */
function createKeyFile(path: string, key: Buffer): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeSync(fd, `${key.toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  fsyncDir(join(path, '..'));
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory; the key file itself is on disk.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

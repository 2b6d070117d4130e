/**
 * The change-log file of an incremental backup (`changes.log`): a header, one record per change
 * in (LSN, seq) order, and a trailer with the record count. Integers are little-endian. The whole
 * file's SHA-256 is kept in the backup's metadata; the decoder also checks structure, order and
 * the LSN range, so damage is caught even before the checksum is compared.
 *
 *   header  : "LBCL" u8 version=1, 3 bytes zero
 *   record  : u8 op, u8 valueType (0 none, 1 text, 2 bytes), u32 seq, u32 dict, i64 lsn,
 *             u32 keyLength, u32 valueLength, key (UTF-8), value
 *   trailer : u8 0xFF, u64 recordCount
 */
import { LifeboatError } from '../core/errors.ts';

export const ChangeOp = { Set: 1, Delete: 2, CreateDictionary: 3, DropDictionary: 4 } as const;
export type ChangeOp = (typeof ChangeOp)[keyof typeof ChangeOp];

export interface ChangeRecord {
  readonly lsn: bigint;
  readonly seq: number;
  readonly op: ChangeOp;
  readonly dict: number;
  /** The entry key; for dictionary operations, the dictionary's name. */
  readonly key: string | null;
  /** JSON text, bytes, or null (deletes and dictionary operations). */
  readonly value: string | Uint8Array | null;
}

const MAGIC = Buffer.from([0x4c, 0x42, 0x43, 0x4c, 1, 0, 0, 0]); // "LBCL", version 1
const RECORD_HEAD = 1 + 1 + 4 + 4 + 8 + 4 + 4;
/** Fixed bytes of a record besides its key and value. */
export const CHANGE_RECORD_OVERHEAD = RECORD_HEAD;
const TRAILER = 0xff;

export function encodeHeader(): Buffer {
  return Buffer.from(MAGIC);
}

export function encodeRecord(r: ChangeRecord): Buffer {
  const key = r.key === null ? null : Buffer.from(r.key, 'utf8');
  const value = r.value === null ? null : typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : r.value;
  const keyLen = key?.length ?? 0;
  const valueLen = value?.length ?? 0;
  const buf = Buffer.allocUnsafe(RECORD_HEAD + keyLen + valueLen);
  buf.writeUInt8(r.op, 0);
  buf.writeUInt8(r.value === null ? 0 : typeof r.value === 'string' ? 1 : 2, 1);
  buf.writeUInt32LE(r.seq, 2);
  buf.writeUInt32LE(r.dict, 6);
  buf.writeBigInt64LE(r.lsn, 10);
  buf.writeUInt32LE(key === null ? 0xffffffff : keyLen, 18);
  buf.writeUInt32LE(valueLen, 22);
  if (key) key.copy(buf, RECORD_HEAD);
  if (value) buf.set(value, RECORD_HEAD + keyLen);
  return buf;
}

export function encodeTrailer(count: number): Buffer {
  const buf = Buffer.alloc(9);
  buf.writeUInt8(TRAILER, 0);
  buf.writeBigUInt64LE(BigInt(count), 1);
  return buf;
}

/** Size a change counts for in the chain's log-size limit. */
export function changeLogBytes(key: string | null, value: string | Uint8Array | null): number {
  return RECORD_HEAD + (key === null ? 0 : Buffer.byteLength(key)) + (value === null ? 0 : typeof value === 'string' ? Buffer.byteLength(value) : value.length);
}

function corrupt(file: string, what: string): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Change log ${file} is damaged: ${what}.`);
}

/**
 * Decodes a change-log file chunk by chunk. Yields records in batches; throws
 * LIFEBOAT_E_BACKUP_CORRUPT on any structural damage, out-of-order record or LSN outside
 * [firstLsn, lastLsn].
 */
export async function* decodeChangeLog(
  chunks: AsyncIterable<Buffer>,
  opts: { file: string; firstLsn: bigint; lastLsn: bigint },
): AsyncGenerator<ChangeRecord[]> {
  let pending: Buffer = Buffer.alloc(0);
  let headerSeen = false;
  let count = 0;
  let done = false;
  let prevLsn = -1n;
  let prevSeq = -1;
  for await (const chunk of chunks) {
    if (done) throw corrupt(opts.file, 'bytes after the trailer');
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    if (!headerSeen) {
      if (pending.length < MAGIC.length) continue;
      if (!pending.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt(opts.file, 'wrong header');
      headerSeen = true;
      at = MAGIC.length;
    }
    const batch: ChangeRecord[] = [];
    while (at < pending.length) {
      const op = pending.readUInt8(at);
      if (op === TRAILER) {
        if (pending.length - at < 9) break;
        const declared = pending.readBigUInt64LE(at + 1);
        if (declared !== BigInt(count + batch.length)) throw corrupt(opts.file, `trailer says ${declared} records, found ${count + batch.length}`);
        at += 9;
        done = true;
        if (at !== pending.length) throw corrupt(opts.file, 'bytes after the trailer');
        break;
      }
      if (pending.length - at < RECORD_HEAD) break;
      const valueType = pending.readUInt8(at + 1);
      const seq = pending.readUInt32LE(at + 2);
      const dict = pending.readUInt32LE(at + 6);
      const lsn = pending.readBigInt64LE(at + 10);
      const rawKeyLen = pending.readUInt32LE(at + 18);
      const keyLen = rawKeyLen === 0xffffffff ? 0 : rawKeyLen;
      const valueLen = pending.readUInt32LE(at + 22);
      if (op < ChangeOp.Set || op > ChangeOp.DropDictionary || valueType > 2) throw corrupt(opts.file, `unknown record kind at LSN ${lsn}`);
      if (keyLen + valueLen > 1 << 30) throw corrupt(opts.file, 'record larger than 1 GiB');
      if (pending.length - at < RECORD_HEAD + keyLen + valueLen) break;
      if (lsn < opts.firstLsn || lsn > opts.lastLsn) throw corrupt(opts.file, `LSN ${lsn} outside ${opts.firstLsn}..${opts.lastLsn}`);
      if (lsn < prevLsn || (lsn === prevLsn && seq <= prevSeq)) throw corrupt(opts.file, `record LSN ${lsn}/${seq} out of order`);
      prevLsn = lsn;
      prevSeq = seq;
      const keyStart = at + RECORD_HEAD;
      const key = rawKeyLen === 0xffffffff ? null : pending.toString('utf8', keyStart, keyStart + keyLen);
      const valueBytes = pending.subarray(keyStart + keyLen, keyStart + keyLen + valueLen);
      const value = valueType === 0 ? null : valueType === 1 ? valueBytes.toString('utf8') : Buffer.from(valueBytes);
      batch.push({ lsn, seq, op: op as ChangeOp, dict, key, value });
      at = keyStart + keyLen + valueLen;
    }
    pending = pending.subarray(at);
    count += batch.length;
    if (batch.length) yield batch;
  }
  if (!headerSeen) throw corrupt(opts.file, 'missing header');
  if (!done) throw corrupt(opts.file, 'missing trailer (truncated file)');
}

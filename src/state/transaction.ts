/**
 * Transactions and the reliable dictionaries of a partition: read access (`DictionaryReader`),
 * read and write access inside a transaction (`TransactionDictionary`), and `Transaction`, which
 * logs each change for the change log. The partition (partition.ts) commits them; both reach each
 * other's internals only through the `internal` symbol, which the library does not export.
 */
import { LifeboatError, invalidArgUnless } from '../core/errors.ts';
import { prefixUpperBound } from '../core/keys.ts';
import { ChangeOp, changeLogBytes } from './changelog-codec.ts';
import type { Partition } from './partition.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A dictionary value: anything JSON can hold, or bytes. */
export type Value = JsonValue | Uint8Array;

export interface Committed<T> {
  /** The commit's LSN, or undefined when the transaction changed nothing. */
  readonly lsn: bigint | undefined;
  readonly value: T;
}

export interface EnumerateOptions {
  /** Only keys starting with this. */
  readonly prefix?: string;
  /** Keys ≥ this. */
  readonly from?: string;
  /** Keys < this. */
  readonly to?: string;
  /** Keys > this: continue a paged enumeration after the last key seen. */
  readonly after?: string;
  readonly limit?: number;
  readonly reverse?: boolean;
}

export interface Entry {
  readonly key: string;
  readonly value: Value;
}

const MAX_KEY_BYTES = 64 * 1024;

function encodeValue(value: unknown): string | Uint8Array {
  if (value instanceof Uint8Array) return value;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new LifeboatError('E_INVALIDARG', `Value cannot be stored as JSON: ${(err as Error).message}.`);
  }
  invalidArgUnless(text !== undefined, 'Value must be JSON (not undefined or a function) or bytes.');
  return text;
}

function decodeValue(stored: string | Buffer): Value {
  return typeof stored === 'string' ? (JSON.parse(stored) as JsonValue) : stored;
}

function checkKey(key: unknown): asserts key is string {
  invalidArgUnless(typeof key === 'string', 'Dictionary keys must be strings.');
  invalidArgUnless(Buffer.byteLength(key) <= MAX_KEY_BYTES, `Dictionary keys must be at most ${MAX_KEY_BYTES} bytes.`);
}

export function checkDictionaryName(name: unknown): asserts name is string {
  invalidArgUnless(typeof name === 'string' && name.length > 0 && name.length <= 1024, 'A dictionary name must be a non-empty string of at most 1024 characters.');
}

function bounds(o: EnumerateOptions): { lower?: string; lowerInclusive?: boolean; upper?: string; limit?: number; reverse?: boolean } {
  let lower: string | undefined;
  let lowerInclusive = true;
  let upper: string | undefined;
  const raise = (k: string, inclusive: boolean): void => {
    if (lower === undefined || k > lower || (k === lower && !inclusive)) {
      lower = k;
      lowerInclusive = inclusive;
    }
  };
  const lowerUpper = (k: string): void => {
    if (upper === undefined || k < upper) upper = k;
  };
  if (o.prefix !== undefined) {
    checkKey(o.prefix);
    raise(o.prefix, true);
    const ub = prefixUpperBound(o.prefix);
    if (ub !== undefined) lowerUpper(ub);
  }
  if (o.from !== undefined) { checkKey(o.from); raise(o.from, true); }
  if (o.after !== undefined) { checkKey(o.after); raise(o.after, false); }
  if (o.to !== undefined) { checkKey(o.to); lowerUpper(o.to); }
  if (o.limit !== undefined) invalidArgUnless(Number.isSafeInteger(o.limit) && o.limit >= 0, 'limit must be a whole number ≥ 0.');
  return {
    ...(lower !== undefined ? { lower, lowerInclusive } : {}),
    ...(upper !== undefined ? { upper } : {}),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    ...(o.reverse ? { reverse: true } : {}),
  };
}

/** The key under which a partition and its transactions reach each other's internals. */
export const internal = Symbol('internal');

/** Read access to one dictionary. */
export class DictionaryReader {
  constructor(
    protected readonly partition: Partition,
    readonly name: string,
  ) {}

  protected id(): number | undefined {
    return this.partition[internal].dictId(this.name);
  }

  get(key: string): Value | undefined {
    checkKey(key);
    const id = this.id();
    if (id === undefined) return undefined;
    const stored = this.partition[internal].store().get(id, key);
    return stored === undefined ? undefined : decodeValue(stored);
  }

  has(key: string): boolean {
    checkKey(key);
    const id = this.id();
    return id !== undefined && this.partition[internal].store().get(id, key) !== undefined;
  }

  count(): number {
    const id = this.id();
    return id === undefined ? 0 : this.partition[internal].store().count(id);
  }

  /** Entries in key order (UTF-8 byte order), within the bounds given. */
  enumerate(options: EnumerateOptions = {}): Entry[] {
    const b = bounds(options);
    const id = this.id();
    if (id === undefined) return [];
    return this.partition[internal].store().range(id, b).map((r) => ({ key: r.key, value: decodeValue(r.value) }));
  }
}

/** Read and write access to one dictionary inside a transaction. */
export class TransactionDictionary extends DictionaryReader {
  constructor(
    partition: Partition,
    name: string,
    private readonly tx: Transaction,
  ) {
    super(partition, name);
  }

  /** Sets the key to a JSON value (anything JSON.stringify keeps: plain objects, arrays, …) or bytes. */
  set(key: string, value: unknown): void {
    checkKey(key);
    const encoded = encodeValue(value);
    const id = this.tx[internal].ensureDictionary(this.name);
    this.partition[internal].store().upsert(id, key, encoded);
    this.tx[internal].log(ChangeOp.Set, id, key, encoded);
  }

  /** Removes the key; returns whether it was there. */
  delete(key: string): boolean {
    checkKey(key);
    const id = this.id();
    if (id === undefined || !this.partition[internal].store().delete(id, key)) return false;
    this.tx[internal].log(ChangeOp.Delete, id, key, null);
    return true;
  }
}

/** A transaction in progress. Valid only inside the function given to `Partition.transact`. */
export class Transaction {
  private seq = 0;
  private bytes = 0;
  private open = true;

  constructor(
    private readonly partition: Partition,
    readonly lsn: bigint,
  ) {}

  dictionary(name: string): TransactionDictionary {
    checkDictionaryName(name);
    this.assertOpen();
    return new TransactionDictionary(this.partition, name, this);
  }

  /** Removes a dictionary and all its entries; returns whether it existed. */
  removeDictionary(name: string): boolean {
    checkDictionaryName(name);
    this.assertOpen();
    const p = this.partition[internal];
    const id = p.dictId(name);
    if (id === undefined) return false;
    p.store().dropDictionary(id);
    p.forgetDictionary(name);
    this.log(ChangeOp.DropDictionary, id, name, null);
    return true;
  }

  private assertOpen(): void {
    invalidArgUnless(this.open, 'The transaction has ended; use it only inside the function given to transact().');
  }

  private log(op: ChangeOp, dict: number, key: string | null, value: string | Uint8Array | null): void {
    this.assertOpen();
    this.partition[internal].store().log(this.lsn, this.seq++, op, dict, key, value);
    this.bytes += changeLogBytes(key, value);
  }

  readonly [internal] = {
    ensureDictionary: (name: string): number => {
      this.assertOpen();
      const p = this.partition[internal];
      const existing = p.dictId(name);
      if (existing !== undefined) return existing;
      const id = p.allocateDictionary(name);
      p.store().createDictionary(id, name);
      this.log(ChangeOp.CreateDictionary, id, name, null);
      return id;
    },
    log: (op: ChangeOp, dict: number, key: string | null, value: string | Uint8Array | null): void => this.log(op, dict, key, value),
    end: (): { changes: number; bytes: number } => {
      this.open = false;
      return { changes: this.seq, bytes: this.bytes };
    },
  };
}

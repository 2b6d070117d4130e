/**
 * FaultyStore: a BlobStore for tests that wraps another and injects faults by rules, and counts
 * calls.
 *
 * Contract:
 * - Every call is recorded in `calls` (operation, key — for `list` the prefix, for `validate` ''
 *   — and a get's range), in the order made; `count(op)` totals them.
 * - Each rule counts the calls it matches (its operations and its key filter: a string is a
 *   prefix, a RegExp is tested) from 1, and fires on the calls it names in `calls` (default every
 *   one), each with `probability` (default 1) drawn from a PRNG seeded by `seed`: the same calls
 *   give the same faults on every run. Every fired rule is recorded in `fired`.
 * - On one call, fired `delay` rules wait first (through the injected `sleep`), then the first
 *   fired `fail` rule fails the call, else stream rules shape the data.
 * - `fail` rejects with its error without reaching the inner store; with `lostResponse` the inner
 *   call runs (and may commit) and its outcome is replaced by the error; on `list` with
 *   `afterItems` the inner listing yields that many entries first.
 * - `break-put` errors the body piped into the inner put after `afterBytes` bytes (at its end if
 *   shorter: the rule is there to make the put fail), so the inner put itself fails and its
 *   atomicity is exercised. If the inner put resolves anyway, the put fails saying so.
 * - `break-get` errors the returned stream once it delivered `afterBytes` bytes; a stream that ends
 *   sooner ends normally (a connection that drops every K bytes still lets a short read through).
 * - `flip-byte` XORs the byte at object offset `offset` with `mask` (default 0xff) when a get's
 *   range covers it.
 */
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { invalidArgUnless } from '../core/errors.ts';
import type { BlobStore, ObjectInfo, PutOptions } from './port.ts';
import { transientStorageError } from './retry.ts';

export type Operation = 'put' | 'get' | 'head' | 'list' | 'delete' | 'validate';

interface Selector {
  /** A string is a key prefix; a RegExp is tested against the key. */
  readonly key?: string | RegExp;
  /** Which of the calls this rule matches it fires on, from 1; default every one. */
  readonly calls?: number | readonly number[];
  /** Fires on a named call with this probability, from the store's seeded PRNG (default 1). */
  readonly probability?: number;
}

export type FaultRule = Selector & (
  | {
    readonly kind: 'fail';
    readonly op: Operation | readonly Operation[];
    readonly error: Error | (() => Error);
    /** The inner call runs, then the caller gets the error: an answer lost on the way back. */
    readonly lostResponse?: boolean;
    /** `list`: yield this many inner entries before failing. */
    readonly afterItems?: number;
    /** `put`: only bodies of this kind (a Readable body cannot be retried). */
    readonly body?: 'bytes' | 'stream';
  }
  | { readonly kind: 'break-put'; readonly afterBytes: number; readonly error: Error | (() => Error); readonly body?: 'bytes' | 'stream' }
  | { readonly kind: 'break-get'; readonly afterBytes: number; readonly error: Error | (() => Error) }
  | { readonly kind: 'flip-byte'; readonly offset: number; readonly mask?: number }
  | { readonly kind: 'delay'; readonly op: Operation | readonly Operation[]; readonly ms: number }
);

export interface FaultyOptions {
  /** Seeds the PRNG that `probability` draws from (default 1). */
  readonly seed?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface Call {
  readonly op: Operation;
  readonly key: string;
  readonly range?: { readonly start: number; readonly end?: number };
}

export interface Fired {
  /** Index of the rule in the list given. */
  readonly rule: number;
  readonly kind: FaultRule['kind'];
  readonly op: Operation;
  readonly key: string;
}

/** A transient fault, as an adapter would report a network reset. */
export function transientFault(message = 'injected transient fault'): () => Error {
  return () => transientStorageError(message);
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1); good enough to pick faults and test cases. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function opsOf(rule: FaultRule): readonly Operation[] {
  switch (rule.kind) {
    case 'fail':
    case 'delay':
      return typeof rule.op === 'string' ? [rule.op] : rule.op;
    case 'break-put':
      return ['put'];
    case 'break-get':
    case 'flip-byte':
      return ['get'];
  }
}

function errorOf(e: Error | (() => Error)): Error {
  return typeof e === 'function' ? e() : e;
}

function chunksOf(body: Readable | Uint8Array): AsyncIterable<unknown> | Iterable<unknown> {
  return body instanceof Uint8Array ? [body] : body;
}

/** Passes `source` through and throws `error` once `afterBytes` passed — or at the end if `atEnd`. */
async function* breakAfter(source: AsyncIterable<unknown> | Iterable<unknown>, afterBytes: number, error: Error, atEnd: boolean, onBreak: () => void): AsyncGenerator<Uint8Array> {
  let passed = 0;
  for await (const c of source) {
    const b = c as Uint8Array;
    if (passed + b.byteLength >= afterBytes) {
      if (afterBytes > passed) yield b.subarray(0, afterBytes - passed);
      onBreak();
      throw error;
    }
    passed += b.byteLength;
    yield b;
  }
  if (!atEnd) return;
  onBreak();
  throw error;
}

async function* flipAt(source: Readable, start: number, offset: number, mask: number): AsyncGenerator<Uint8Array> {
  let at = start;
  for await (const c of source) {
    const b = c as Uint8Array;
    if (offset >= at && offset < at + b.byteLength) {
      // Copy: the inner store may still own its buffer.
      const copy = Buffer.from(b);
      copy[offset - at] = (copy[offset - at] ?? 0) ^ mask;
      yield copy;
    } else {
      yield b;
    }
    at += b.byteLength;
  }
}

export class FaultyStore implements BlobStore {
  readonly description: string;
  readonly calls: Call[] = [];
  readonly fired: Fired[] = [];
  private readonly matched: number[];
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly inner: BlobStore, private readonly rules: readonly FaultRule[] = [], options: FaultyOptions = {}) {
    this.description = `${inner.description} (with faults)`;
    this.matched = rules.map(() => 0);
    this.random = seededRandom(options.seed ?? 1);
    this.sleep = options.sleep ?? ((ms) => delay(ms));
    for (const r of rules) {
      invalidArgUnless(r.probability === undefined || (r.probability >= 0 && r.probability <= 1), `A fault's probability must be in [0, 1], not ${r.probability}.`);
      if (r.kind === 'break-put' || r.kind === 'break-get') invalidArgUnless(r.afterBytes >= 0, `afterBytes must not be negative (${r.afterBytes}).`);
    }
  }

  /** How many calls of `op` (or of all operations) were made. */
  count(op?: Operation): number {
    return op === undefined ? this.calls.length : this.calls.filter((c) => c.op === op).length;
  }

  /** Records the call and returns the rules that fire on it. Synchronous, so call order decides. */
  private fire(call: Call, body?: Readable | Uint8Array): FaultRule[] {
    this.calls.push(call);
    const out: FaultRule[] = [];
    this.rules.forEach((rule, i) => {
      if (!opsOf(rule).includes(call.op)) return;
      if (typeof rule.key === 'string' ? !call.key.startsWith(rule.key) : rule.key && !rule.key.test(call.key)) return;
      if ((rule.kind === 'fail' || rule.kind === 'break-put') && rule.body && body !== undefined
        && rule.body !== (body instanceof Uint8Array ? 'bytes' : 'stream')) return;
      const n = ++this.matched[i]!;
      const named = rule.calls === undefined || (typeof rule.calls === 'number' ? rule.calls === n : rule.calls.includes(n));
      if (!named) return;
      if (rule.probability !== undefined && this.random() >= rule.probability) return;
      this.fired.push({ rule: i, kind: rule.kind, op: call.op, key: call.key });
      out.push(rule);
    });
    return out;
  }

  /** Waits for fired delays; returns the fired `fail` rule, if any. */
  private async before(fired: readonly FaultRule[]): Promise<Extract<FaultRule, { kind: 'fail' }> | undefined> {
    for (const r of fired) if (r.kind === 'delay') await this.sleep(r.ms);
    return fired.find((r): r is Extract<FaultRule, { kind: 'fail' }> => r.kind === 'fail');
  }

  private async run<T>(fired: readonly FaultRule[], fn: () => Promise<T>): Promise<T> {
    const fail = await this.before(fired);
    if (!fail) return fn();
    if (fail.lostResponse) await fn().catch(() => undefined);
    throw errorOf(fail.error);
  }

  async put(key: string, body: Readable | Uint8Array, options?: PutOptions): Promise<void> {
    const fired = this.fire({ op: 'put', key }, body);
    const cut = fired.find((r): r is Extract<FaultRule, { kind: 'break-put' }> => r.kind === 'break-put');
    return this.run(fired, () => (cut ? this.cutPut(key, body, options, cut) : this.inner.put(key, body, options)));
  }

  private async cutPut(key: string, body: Readable | Uint8Array, options: PutOptions | undefined, cut: Extract<FaultRule, { kind: 'break-put' }>): Promise<void> {
    let broke = false;
    const cutBody = Readable.from(breakAfter(chunksOf(body), cut.afterBytes, errorOf(cut.error), true, () => { broke = true; }), { objectMode: false });
    // The piped stream errors, so the inner put must fail with it and leave nothing behind.
    await this.inner.put(key, cutBody, options);
    throw new Error(`FaultyStore: ${this.inner.description} committed ${key} although its body failed${broke ? '' : ' (before the break was reached)'}.`);
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    const fired = this.fire({ op: 'get', key, ...(range ? { range: { ...range } } : {}) });
    const source = await this.run(fired, () => this.inner.get(key, range));
    let out: Readable = source;
    for (const r of fired) {
      if (r.kind === 'flip-byte') out = Readable.from(flipAt(out, range?.start ?? 0, r.offset, r.mask ?? 0xff), { objectMode: false });
    }
    const brk = fired.find((r): r is Extract<FaultRule, { kind: 'break-get' }> => r.kind === 'break-get');
    if (brk) out = Readable.from(breakAfter(out, brk.afterBytes, errorOf(brk.error), false, () => undefined), { objectMode: false });
    return out;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return this.run(this.fire({ op: 'head', key }), () => this.inner.head(key));
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    // Counted when called, like the other operations, not when iteration starts.
    return this.listing(prefix, this.fire({ op: 'list', key: prefix }));
  }

  private async *listing(prefix: string, fired: readonly FaultRule[]): AsyncGenerator<ObjectInfo> {
    const fail = await this.before(fired);
    if (!fail) {
      yield* this.inner.list(prefix);
      return;
    }
    if (fail.afterItems !== undefined || fail.lostResponse) {
      let n = 0;
      for await (const info of this.inner.list(prefix)) {
        if (fail.afterItems === undefined) continue;
        if (n >= fail.afterItems) break;
        n++;
        yield info;
      }
    }
    throw errorOf(fail.error);
  }

  async delete(key: string): Promise<void> {
    return this.run(this.fire({ op: 'delete', key }), () => this.inner.delete(key));
  }

  async validate(): Promise<void> {
    return this.run(this.fire({ op: 'validate', key: '' }), () => this.inner.validate());
  }
}

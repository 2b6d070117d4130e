/**
 * RetryingStore: the storage contract holds over a store that fails transiently (FaultyStore), and
 * each retry rule does what src/storage/retry.ts says. Sleeps are recorded, never waited.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { isLifeboatError, LifeboatError } from '../../src/core/errors.ts';
import { FaultyStore, transientFault } from '../../src/storage/faults.ts';
import type { FaultRule, Operation } from '../../src/storage/faults.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import { type BlobStore, lendsChunks } from '../../src/storage/port.ts';
import { backoffDelay, isTransient, isTransientCause, RetryingStore, transientStorageError } from '../../src/storage/retry.ts';
import type { RetryInfo, RetryOptions } from '../../src/storage/retry.ts';
import { runStorageContract } from '../contract/storage.contract.ts';
import { borrowAll } from '../support/lending.ts';
import { fileShareUnderAFile } from '../support/permanent-failures.ts';
import { tempDir } from '../support/tmp.ts';

const reset = transientFault('injected: connection reset');

// Every operation's first call fails; after that, failures, lost put answers, listings and reads
// cut short come at random (seeded, so every run sees the same ones). Streamed puts are left
// alone: they cannot be retried, by design.
const contractFaults: FaultRule[] = [
  ...(['get', 'head', 'list', 'delete', 'validate'] as const).map((op): FaultRule => ({ kind: 'fail', op, calls: 1, error: reset })),
  { kind: 'fail', op: 'put', body: 'bytes', calls: 1, error: reset },
  { kind: 'fail', op: ['get', 'head', 'delete', 'validate'], probability: 0.3, error: reset },
  { kind: 'fail', op: 'put', body: 'bytes', lostResponse: true, probability: 0.3, error: reset },
  { kind: 'fail', op: 'list', afterItems: 2, probability: 0.4, error: reset },
  { kind: 'break-get', key: 'big/', afterBytes: 5 << 20, error: reset },
  { kind: 'break-get', afterBytes: 3, probability: 0.4, error: reset },
];
const contractStores: FaultyStore[] = [];

runStorageContract({
  name: 'RetryingStore over transient faults',
  create: async (t) => {
    const faulty = new FaultyStore(new FileShareStore(join(tempDir(t), 'share')), contractFaults, { seed: 2026 });
    contractStores.push(faulty);
    // Ten attempts: a seeded run must not hang on a streak of random faults.
    return new RetryingStore(faulty, { maxAttempts: 10, sleep: async () => undefined, random: () => 0.5 });
  },
  // The random faults above are transient by design; the permanent failure is checked without them.
  permanentFailures: async (t) => fileShareUnderAFile(t, (s) => new FaultyStore(s)),
});

it('the contract run above really met every kind of fault', () => {
  const kinds = new Set(contractStores.flatMap((s) => s.fired.map((f) => `${f.kind} ${f.op}${contractFaults[f.rule]?.kind === 'fail' && (contractFaults[f.rule] as { lostResponse?: boolean }).lostResponse ? ' lost' : ''}`)));
  for (const k of ['fail get', 'fail head', 'fail list', 'fail delete', 'fail validate', 'fail put', 'fail put lost', 'break-get get']) {
    assert.ok(kinds.has(k), `${k} never fired: ${[...kinds].join(', ')}`);
  }
  const bigReads = contractStores.flatMap((s) => s.calls.filter((c) => c.op === 'get' && c.key === 'big/object'));
  assert.ok(bigReads.filter((c) => (c.range?.start ?? 0) >= 5 << 20).length >= 4, 'the large read was resumed mid-stream, again and again');
});

interface Rig {
  inner: FileShareStore;
  faulty: FaultyStore;
  store: RetryingStore;
  slept: number[];
  retries: RetryInfo[];
}

function rig(t: { after(fn: () => unknown): void }, rules: FaultRule[], options: RetryOptions = {}): Rig {
  const inner = new FileShareStore(join(tempDir(t), 'share'));
  const faulty = new FaultyStore(inner, rules);
  const slept: number[] = [];
  const retries: RetryInfo[] = [];
  const store = new RetryingStore(faulty, {
    sleep: async (ms) => { slept.push(ms); },
    random: () => 0.5,
    onRetry: (info) => { retries.push(info); },
    ...options,
  });
  return { inner, faulty, store, slept, retries };
}

async function bytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function keys(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Deterministic bytes that differ from one offset to the next. */
function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = 0x12345678;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Fails the calls of `op` numbered `calls` with distinct transient errors. */
function failing(op: Operation, calls?: number[]): FaultRule {
  let n = 0;
  return { kind: 'fail', op, ...(calls ? { calls } : {}), error: () => transientStorageError(`injected: reset #${++n}`) };
}

it('back-off ceilings double up to the cap, and the wait is a jittered fraction of the ceiling', () => {
  const ceilings = [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000];
  assert.deepEqual(ceilings.map((_, i) => backoffDelay(i + 1, 200, 10_000, () => 0.999999)), ceilings.map((c) => c - 1));
  assert.deepEqual(ceilings.map((_, i) => backoffDelay(i + 1, 200, 10_000, () => 0)), ceilings.map(() => 0));
  assert.deepEqual(ceilings.map((_, i) => backoffDelay(i + 1, 200, 10_000, () => 0.25)), ceilings.map((c) => c / 4));
});

it('waits the jittered back-off between attempts, drawing the jitter from the injected random', async (t) => {
  const draws = [0.9, 0.1, 0.7, 0.3];
  const { inner, faulty, store, slept } = rig(t, [failing('head', [1, 2, 3, 4])], { random: () => draws.shift() ?? assert.fail('drew too often') });
  await inner.put('h/x', Buffer.from('x'));
  assert.equal((await store.head('h/x'))?.size, 1);
  assert.deepEqual(slept, [180, 40, 560, 480]); // 0.9·200, 0.1·400, 0.7·800, 0.3·1600
  assert.equal(faulty.count('head'), 5);
});

it('gives up after maxAttempts with the last error, saying how many attempts it made', async (t) => {
  const { faulty, store, slept, retries } = rig(t, [failing('head')], { maxAttempts: 3 });
  const err = await store.head('h/x').then(() => assert.fail('head succeeded'), (e: unknown) => e);
  assert.ok(isLifeboatError(err, 'LIFEBOAT_E_STORAGE_UNAVAILABLE'));
  assert.match(err.message, /reset #3\. Gave up after 3 attempts\.$/);
  assert.match((err.cause as Error).message, /reset #3$/);
  assert.equal(err.details?.attempts, 3);
  assert.ok(isTransient(err), 'still marked transient: trying later may help');
  assert.equal(faulty.count('head'), 3);
  assert.equal(slept.length, 2);
  assert.deepEqual(retries.map((r) => r.attempt), [1, 2]);
});

it('a RetryingStore over another does not retry what the inner one gave up on', async (t) => {
  const { faulty, store } = rig(t, [failing('delete')], { maxAttempts: 3 });
  const outer = new RetryingStore(store, { maxAttempts: 3, sleep: async () => undefined });
  await assert.rejects(outer.delete('d/x'), /Gave up after 3 attempts\.$/);
  assert.equal(faulty.count('delete'), 3);
});

it('does not retry permanent errors', async (t) => {
  const denied = (): Error => new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', 'injected: 403 access denied');
  const corrupt = (): Error => new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', 'injected: bad checksum');
  const { inner, faulty, store, slept, retries } = rig(t, [
    { kind: 'fail', op: 'head', error: denied },
    { kind: 'fail', op: 'get', key: 'bad/', error: corrupt },
  ]);
  await inner.put('e/exists', Buffer.from('x'));
  await inner.put('bad/obj', Buffer.from('x'));
  await assert.rejects(store.head('e/exists'), /access denied/);
  await assert.rejects(store.get('e/missing'), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_NOT_FOUND'));
  await assert.rejects(store.get('bad/obj'), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_BACKUP_CORRUPT'));
  await assert.rejects(store.put('e/exists', Buffer.from('y')), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS'));
  await assert.rejects(store.put('a/../b', Buffer.from('y')), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'));
  assert.deepEqual([faulty.count('head'), faulty.count('get'), faulty.count('put')], [1, 2, 2]);
  assert.deepEqual(slept, []);
  assert.deepEqual(retries, []);
});

it('a first put that finds the key taken fails, even when the stored bytes are the same', async (t) => {
  const { inner, store } = rig(t, []);
  await inner.put('p/same', Buffer.from('same'));
  await assert.rejects(store.put('p/same', Buffer.from('same')), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS'));
});

it('a streamed put is tried once and fails with the transient error', async (t) => {
  const { faulty, store, retries } = rig(t, [failing('put', [1])]);
  const err = await store.put('p/stream', Readable.from([Buffer.from('once')])).then(() => assert.fail('put succeeded'), (e: unknown) => e);
  assert.ok(isTransient(err));
  assert.doesNotMatch((err as Error).message, /Gave up/);
  assert.equal(faulty.count('put'), 1);
  assert.deepEqual(retries, []);
  assert.equal(await store.head('p/stream'), undefined);
});

it('a put with a body factory is retried with a fresh stream, also after the body broke midway', async (t) => {
  const data = pattern(300_000);
  const { faulty, store, retries } = rig(t, [
    { kind: 'break-put', afterBytes: 100_000, calls: 1, error: reset },
    failing('put', [2]),
  ]);
  let made = 0;
  const factory = (): Readable => {
    made++;
    return Readable.from((function* () { for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024); })());
  };
  await store.put('p/factory', factory);
  assert.equal(made, 3);
  assert.equal(faulty.count('put'), 3);
  assert.deepEqual(retries.map((r) => [r.operation, r.key, r.attempt]), [['put', 'p/factory', 1], ['put', 'p/factory', 2]]);
  assert.equal(sha256(await bytes(await store.get('p/factory'))), sha256(data));
});

it('a put of bytes is retried', async (t) => {
  const { faulty, store } = rig(t, [failing('put', [1, 2])]);
  await store.put('p/bytes', Buffer.from('bytes'));
  assert.equal(faulty.count('put'), 3);
  assert.equal((await bytes(await store.get('p/bytes'))).toString(), 'bytes');
});

it('a retried put whose earlier attempt committed (answer lost) succeeds when the stored bytes are its own', async (t) => {
  const data = pattern(200_000);
  const { inner, faulty, store, retries } = rig(t, [{ kind: 'fail', op: 'put', lostResponse: true, calls: [1, 3], error: reset }]);
  await store.put('p/lost', data);
  assert.equal(faulty.count('put'), 2); // the lost one, then OBJECT_EXISTS: same bytes, so success
  assert.equal(retries.length, 1);
  assert.equal(sha256(await bytes(await inner.get('p/lost'))), sha256(data));
  // The same with a factory: its bytes are compared by hashing a fresh stream.
  await store.put('p/lost-factory', () => Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
  assert.equal(sha256(await bytes(await inner.get('p/lost-factory'))), sha256(data));
});

it('a retried put that finds other bytes under the key fails OBJECT_EXISTS', async (t) => {
  const { inner, store } = rig(t, [failing('put', [1])]);
  await inner.put('p/taken', Buffer.from('theirs'));
  await assert.rejects(store.put('p/taken', Buffer.from('mine!!')), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS'));
  assert.equal((await bytes(await inner.get('p/taken'))).toString(), 'theirs');
});

it('a read broken mid-stream resumes at the next byte; the bytes match exactly', async (t) => {
  const data = pattern(3 * (1 << 20) + 123);
  const k = (1 << 20) + 7;
  const { inner, faulty, store, retries } = rig(t, [{ kind: 'break-get', afterBytes: k, calls: [1, 2], error: reset }]);
  await inner.put('g/big', data);
  const got = await bytes(await store.get('g/big'));
  assert.equal(got.length, data.length);
  assert.equal(sha256(got), sha256(data));
  assert.deepEqual(faulty.calls.filter((c) => c.op === 'get').map((c) => c.range), [undefined, { start: k }, { start: 2 * k }]);
  assert.deepEqual(retries.map((r) => [r.operation, r.offset, r.attempt]), [['get', k, 1], ['get', 2 * k, 1]]);
});

it('a ranged read resumes within its range', async (t) => {
  const data = pattern(2 << 20);
  const { inner, faulty, store } = rig(t, [{ kind: 'break-get', afterBytes: 300_001, calls: 1, error: reset }, failing('get', [2])]);
  await inner.put('g/ranged', data);
  const got = await bytes(await store.get('g/ranged', { start: 1000, end: 1_500_000 }));
  assert.equal(sha256(got), sha256(data.subarray(1000, 1_500_000)));
  assert.deepEqual(faulty.calls.filter((c) => c.op === 'get').map((c) => c.range), [
    { start: 1000, end: 1_500_000 }, { start: 301_001, end: 1_500_000 }, { start: 301_001, end: 1_500_000 },
  ]);
});

it('a read that fails without progress gives up after maxAttempts; progress resets the count', async (t) => {
  const stuck = rig(t, [{ kind: 'break-get', afterBytes: 0, error: reset }], { maxAttempts: 3 });
  await stuck.inner.put('g/x', pattern(1000));
  await assert.rejects(bytes(await stuck.store.get('g/x')), /Gave up after 3 attempts\.$/);
  assert.equal(stuck.faulty.count('get'), 3);

  const data = pattern(500_000);
  const hiccups = rig(t, [{ kind: 'break-get', afterBytes: 100_000, calls: [1, 2, 3], error: reset }], { maxAttempts: 2 });
  await hiccups.inner.put('g/y', data);
  assert.equal(sha256(await bytes(await hiccups.store.get('g/y'))), sha256(data));
  assert.equal(hiccups.faulty.count('get'), 4);
});

it('a read broken by a permanent error is not resumed', async (t) => {
  const { inner, faulty, store } = rig(t, [{ kind: 'break-get', afterBytes: 10, error: () => new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', 'injected: lease lost') }]);
  await inner.put('g/z', pattern(100));
  await assert.rejects(bytes(await store.get('g/z')), /lease lost$/);
  assert.equal(faulty.count('get'), 1);
});

it('a listing broken midway resumes after the last key, without duplicates or gaps', async (t) => {
  const all = Array.from({ length: 10 }, (_, i) => `l/${String(i).padStart(2, '0')}`);
  const { inner, faulty, store, retries } = rig(t, [
    { kind: 'fail', op: 'list', calls: 1, afterItems: 3, error: reset },
    { kind: 'fail', op: 'list', calls: 2, afterItems: 5, error: reset },
    { kind: 'fail', op: 'list', calls: 3, error: reset },
  ]);
  for (const key of all) await inner.put(key, Buffer.from(key));
  assert.deepEqual(await keys(store, 'l/'), all);
  assert.equal(faulty.count('list'), 4);
  assert.deepEqual(retries.map((r) => [r.afterKey, r.attempt]), [['l/02', 1], ['l/04', 1], ['l/04', 2]]);
});

it('a listing that fails before yielding anything gives up after maxAttempts', async (t) => {
  const { faulty, store } = rig(t, [failing('list')], { maxAttempts: 4 });
  await assert.rejects(keys(store, 'l/'), /Gave up after 4 attempts\.$/);
  assert.equal(faulty.count('list'), 4);
});

it('tells onRetry what it retries, why, and how long it waits', async (t) => {
  const { inner, store, retries } = rig(t, [failing('head', [1]), failing('validate', [1])]);
  await inner.put('o/k', Buffer.from('k'));
  await store.head('o/k');
  await store.validate();
  assert.equal(retries.length, 2);
  const [head, validate] = retries;
  assert.deepEqual({ ...head, error: undefined }, { operation: 'head', key: 'o/k', attempt: 1, delayMs: 100, reason: 'injected: reset #1', error: undefined });
  assert.ok(isTransient(head?.error));
  assert.deepEqual([validate?.operation, validate?.key], ['validate', '']);
});

it('marks and recognises transient errors', () => {
  const cause = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  const e = transientStorageError('S3 bucket b: ECONNRESET', { cause, details: { bucket: 'b' } });
  assert.ok(isLifeboatError(e, 'LIFEBOAT_E_STORAGE_UNAVAILABLE'));
  assert.ok(isTransient(e));
  assert.equal(e.cause, cause);
  assert.deepEqual(e.details, { bucket: 'b', transient: true });
  assert.ok(!isTransient(new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', 'auth failed')));
  assert.ok(!isTransient(new LifeboatError('LIFEBOAT_E_STORAGE_NOT_FOUND', 'x', { details: { transient: true } })));
  assert.ok(!isTransient(Object.assign(new Error('raw'), { code: 'ECONNRESET' })));

  assert.ok(isTransientCause(cause));
  assert.ok(isTransientCause({ statusCode: 503 }));
  assert.ok(isTransientCause({ $metadata: { httpStatusCode: 429 } }));
  assert.ok(isTransientCause({ status: 500 }));
  assert.ok(!isTransientCause({ statusCode: 403 }));
  assert.ok(!isTransientCause({ statusCode: 404 }));
  assert.ok(!isTransientCause({ code: 'ECONNREFUSED' }));
  assert.ok(!isTransientCause(null));
});

it('refuses unusable options', () => {
  const inner = new FileShareStore('/nonexistent');
  for (const o of [{ maxAttempts: 0 }, { maxAttempts: 1.5 }, { baseDelayMs: -1 }, { baseDelayMs: 500, maxDelayMs: 100 }]) {
    assert.throws(() => new RetryingStore(inner, o), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'), JSON.stringify(o));
  }
});

it('a get lends what its inner store lends, and a borrowed read broken mid-stream resumes exactly too', async (t) => {
  const data = pattern(3 * (1 << 20) + 123);
  const share = new FileShareStore(join(tempDir(t), 'share'));
  await share.put('g/big', data);
  const direct = await new RetryingStore(share).get('g/big');
  assert.ok(lendsChunks(direct));
  const borrowed = await borrowAll(direct);
  assert.equal(borrowed.buffers, 1, 'the file share\'s one buffer, passed through');
  assert.equal(sha256(borrowed.bytes), sha256(data));

  const k = (1 << 20) + 7;
  const { inner, store } = rig(t, [{ kind: 'break-get', afterBytes: k, calls: [1, 2], error: reset }]);
  await inner.put('g/big', data);
  const broken = await store.get('g/big');
  assert.ok(lendsChunks(broken));
  assert.equal(sha256((await borrowAll(broken)).bytes), sha256(data));
});

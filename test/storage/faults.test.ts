/**
 * FaultyStore: with no rules it keeps the storage contract; each rule kind does what it says, on
 * the calls it names, the same way on every run.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { isLifeboatError, LifeboatError } from '../../src/core/errors.ts';
import { FaultyStore, transientFault } from '../../src/storage/faults.ts';
import type { FaultRule } from '../../src/storage/faults.ts';
import { FileShareStore } from '../../src/storage/fileshare.ts';
import type { BlobStore } from '../../src/storage/port.ts';
import { isTransient } from '../../src/storage/retry.ts';
import { runStorageContract } from '../contract/storage.contract.ts';
import { fileShareUnderAFile } from '../support/permanent-failures.ts';
import { tempDir } from '../support/tmp.ts';

runStorageContract({
  name: 'FaultyStore without rules', create: async (t) => new FaultyStore(new FileShareStore(join(tempDir(t), 'share'))),
  permanentFailures: async (t) => fileShareUnderAFile(t, (s) => new FaultyStore(s)),
});

async function bytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reads until the stream fails; returns what arrived and the error. */
async function bytesUntilError(s: Readable): Promise<{ got: Buffer; error: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of s) chunks.push(c as Buffer);
  } catch (error) {
    return { got: Buffer.concat(chunks), error };
  }
  assert.fail('the stream ended without an error');
}

async function keys(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

function setup(t: { after(fn: () => unknown): void }, rules: FaultRule[], options?: ConstructorParameters<typeof FaultyStore>[2]) {
  const root = join(tempDir(t), 'share');
  const inner = new FileShareStore(root);
  return { root, inner, store: new FaultyStore(inner, rules, options) };
}

const permanent = (): Error => new LifeboatError('LIFEBOAT_E_STORAGE_UNAVAILABLE', 'injected: access denied');

it('fail: fails only the named calls among those matching its operation and key prefix', async (t) => {
  const { inner, store } = setup(t, [{ kind: 'fail', op: 'head', key: 'a/', calls: 2, error: permanent }]);
  await inner.put('a/2', Buffer.from('x'));
  assert.equal(await store.head('b/x'), undefined);
  assert.equal(await store.head('a/1'), undefined);
  await assert.rejects(store.head('a/2'), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_UNAVAILABLE') && /access denied/.test((e as Error).message));
  assert.equal(await store.head('a/3'), undefined);
  assert.equal(store.count('head'), 4);
  assert.deepEqual(store.fired, [{ rule: 0, kind: 'fail', op: 'head', key: 'a/2' }]);
});

it('fail: a RegExp key and a list of calls, across several operations', async (t) => {
  const { inner, store } = setup(t, [{ kind: 'fail', op: ['get', 'delete'], key: /\.lbk$/, calls: [1, 3], error: transientFault('reset') }]);
  await inner.put('p/x.bkmetadata', Buffer.from('m'));
  await inner.put('p/y.lbk', Buffer.from('data'));
  assert.equal((await bytes(await store.get('p/x.bkmetadata'))).toString(), 'm');
  await assert.rejects(store.get('p/y.lbk'), (e: unknown) => isTransient(e) && /reset/.test((e as Error).message));
  await store.delete('p/nothing.lbk');
  await assert.rejects(store.delete('p/y.lbk'), (e: unknown) => isTransient(e));
  assert.ok(await inner.head('p/y.lbk'), 'a failed call never reached the inner store');
  await store.delete('p/y.lbk');
  assert.equal(await inner.head('p/y.lbk'), undefined);
  assert.deepEqual(store.calls.map((c) => `${c.op} ${c.key}`), ['get p/x.bkmetadata', 'get p/y.lbk', 'delete p/nothing.lbk', 'delete p/y.lbk', 'delete p/y.lbk']);
});

it('fail with lostResponse: the call takes effect but the caller gets the error', async (t) => {
  const { inner, store } = setup(t, [{ kind: 'fail', op: ['put', 'delete'], lostResponse: true, error: transientFault() }]);
  await assert.rejects(store.put('k/1', Buffer.from('committed')), (e: unknown) => isTransient(e));
  assert.equal((await bytes(await inner.get('k/1'))).toString(), 'committed');
  await assert.rejects(store.delete('k/1'), (e: unknown) => isTransient(e));
  assert.equal(await inner.head('k/1'), undefined);
});

it('fail: a put rule can be limited to byte bodies or to stream bodies', async (t) => {
  const { store } = setup(t, [{ kind: 'fail', op: 'put', body: 'stream', error: permanent }]);
  await store.put('b/bytes', Buffer.from('fine'));
  await assert.rejects(store.put('b/stream', Readable.from([Buffer.from('refused')])), /access denied/);
});

it('fail on list after some entries: yields them, then fails', async (t) => {
  const { inner, store } = setup(t, [{ kind: 'fail', op: 'list', afterItems: 2, error: transientFault() }]);
  for (const k of ['l/1', 'l/2', 'l/3']) await inner.put(k, Buffer.from(k));
  const got: string[] = [];
  await assert.rejects(async () => {
    for await (const o of store.list('l/')) got.push(o.key);
  }, (e: unknown) => isTransient(e));
  assert.deepEqual(got, ['l/1', 'l/2']);
});

it('break-put: the inner put fails with the error and leaves nothing, not even a temporary file', async (t) => {
  const broken = new Error('link dropped');
  const { root, store } = setup(t, [{ kind: 'break-put', afterBytes: 100_000, error: broken, calls: [1, 2] }]);
  const big = Readable.from((function* () { for (let i = 0; i < 8; i++) yield Buffer.alloc(64 * 1024, i); })());
  await assert.rejects(store.put('bp/big', big), (e: unknown) => e === broken);
  // Shorter than afterBytes: it fails at the end instead of committing.
  await assert.rejects(store.put('bp/small', Buffer.from('tiny')), (e: unknown) => e === broken);
  assert.equal(await store.head('bp/big'), undefined);
  assert.deepEqual(await keys(store, 'bp/'), []);
  assert.deepEqual(readdirSync(join(root, 'bp')), []);
  await store.put('bp/small', Buffer.from('tiny'));
  assert.equal((await bytes(await store.get('bp/small'))).toString(), 'tiny');
});

it('break-put: an inner store that commits despite the failed body is caught', async () => {
  const careless: BlobStore = {
    description: 'careless',
    put: async () => undefined, // never reads the body
    get: async () => Readable.from([]),
    head: async () => undefined,
    list: async function* () { /* empty */ },
    delete: async () => undefined,
    validate: async () => undefined,
  };
  const store = new FaultyStore(careless, [{ kind: 'break-put', afterBytes: 1, error: new Error('cut') }]);
  await assert.rejects(store.put('x', Buffer.from('abc')), /careless committed x although its body failed/);
});

it('break-get: the stream delivers exactly afterBytes bytes, then fails', async (t) => {
  const { inner, store } = setup(t, [{ kind: 'break-get', afterBytes: 70_000, error: transientFault('reset mid-read'), calls: 1 }]);
  const data = Buffer.alloc(200_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  await inner.put('g/obj', data);
  const { got, error } = await bytesUntilError(await store.get('g/obj'));
  assert.ok(isTransient(error));
  assert.deepEqual(got, data.subarray(0, 70_000));
  assert.deepEqual(await bytes(await store.get('g/obj')), data, 'only the first call breaks');
});

it('break-get: a stream that ends before afterBytes ends normally; one that reaches it exactly fails', async (t) => {
  const { inner, store } = setup(t, [{ kind: 'break-get', afterBytes: 4, error: new Error('late') }]);
  await inner.put('g/short', Buffer.from('short'));
  assert.equal((await bytes(await store.get('g/short', { start: 2 }))).toString(), 'ort');
  const { got, error } = await bytesUntilError(await store.get('g/short', { start: 1 }));
  assert.equal(got.toString(), 'hort');
  assert.match((error as Error).message, /late/);
});

it('flip-byte: flips the byte at the object offset, in whole and ranged reads, and only there', async (t) => {
  const { inner, store } = setup(t, [{ kind: 'flip-byte', offset: 100_000 }, { kind: 'flip-byte', key: 'f/masked', offset: 3, mask: 0x01 }]);
  const data = Buffer.alloc(150_000, 0x5a);
  await inner.put('f/obj', data);
  const whole = await bytes(await store.get('f/obj'));
  const diff = [...whole.keys()].filter((i) => whole[i] !== data[i]);
  assert.deepEqual(diff, [100_000]);
  assert.equal(whole[100_000], 0x5a ^ 0xff);
  const ranged = await bytes(await store.get('f/obj', { start: 99_990, end: 100_010 }));
  assert.deepEqual([...ranged.keys()].filter((i) => ranged[i] !== 0x5a), [10]);
  assert.deepEqual(await bytes(await store.get('f/obj', { start: 0, end: 100_000 })), data.subarray(0, 100_000));
  await inner.put('f/masked', Buffer.from('abcdef'));
  assert.equal((await bytes(await store.get('f/masked'))).toString(), 'abceef');
  assert.deepEqual(await bytes(await inner.get('f/obj')), data, 'the stored object is untouched');
});

it('delay: waits through the injected sleep before the call, then a fail rule may still fail it', async (t) => {
  const slept: number[] = [];
  const { store } = setup(t, [
    { kind: 'delay', op: ['head', 'validate'], ms: 250 },
    { kind: 'delay', op: 'head', ms: 1000, calls: 2 },
    { kind: 'fail', op: 'head', calls: 2, error: permanent },
  ], { sleep: async (ms) => { slept.push(ms); } });
  await store.head('d/1');
  await assert.rejects(store.head('d/2'), /access denied/);
  await store.validate();
  await store.delete('d/1');
  assert.deepEqual(slept, [250, 250, 1000, 250]);
});

it('probability: the same seed fires on the same calls; another seed differs', async (t) => {
  const pattern = async (seed: number): Promise<boolean[]> => {
    const { store } = setup(t, [{ kind: 'fail', op: 'head', probability: 0.3, error: permanent }], { seed });
    const out: boolean[] = [];
    for (let i = 0; i < 60; i++) out.push(await store.head(`h/${i}`).then(() => false, () => true));
    return out;
  };
  const a = await pattern(42);
  assert.deepEqual(await pattern(42), a);
  assert.notDeepEqual(await pattern(7), a);
  const hits = a.filter(Boolean).length;
  assert.ok(hits > 0 && hits < 60, `some calls fail and some do not (${hits} of 60)`);
});

it('counts every call with its key and range', async (t) => {
  const { store } = setup(t, []);
  await store.put('c/1', Buffer.from('12345'));
  await bytes(await store.get('c/1', { start: 1, end: 3 }));
  await keys(store, 'c/');
  await store.validate();
  assert.deepEqual(store.calls, [
    { op: 'put', key: 'c/1' },
    { op: 'get', key: 'c/1', range: { start: 1, end: 3 } },
    { op: 'list', key: 'c/' },
    { op: 'validate', key: '' },
  ]);
  assert.equal(store.count(), 4);
  assert.equal(store.count('get'), 1);
  assert.equal(store.count('head'), 0);
});

it('refuses a probability outside [0, 1]', () => {
  const inner = new FileShareStore('/nonexistent');
  assert.throws(() => new FaultyStore(inner, [{ kind: 'fail', op: 'get', probability: 2, error: permanent }]), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'));
});

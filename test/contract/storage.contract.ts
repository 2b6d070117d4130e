/**
 * The storage contract: what every BlobStore adapter must do (src/storage/port.ts). Each adapter's
 * test file calls runStorageContract with a factory that gives a fresh, empty store. A skip must
 * say why; CI refuses skips (LIFEBOAT_REQUIRE_ALL_BACKENDS=1).
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { isLifeboatError } from '../../src/core/errors.ts';
import { type BlobStore, isTransient, lendsChunks } from '../../src/storage/port.ts';
import type { RetryInfo, RetryOptions } from '../../src/storage/retry.ts';
import { borrowAll } from '../support/lending.ts';

export interface StorageContractOptions {
  readonly name: string;
  /** A fresh, empty store for one test. */
  readonly create: (t: { after(fn: () => unknown): void }) => Promise<BlobStore>;
  /** Why the whole suite cannot run here (e.g. the server is missing), or undefined. */
  readonly skip?: string;
  /**
   * Faults of this backend that will not heal by themselves (a missing container, rejected
   * credentials, a refused connection, a share under a file): each must fail at once, as
   * LIFEBOAT_E_STORAGE_UNAVAILABLE not marked transient, so a RetryingStore does not wait on it.
   * Required: every backend says what its permanent failures are.
   */
  readonly permanentFailures: (t: { after(fn: () => unknown): void }) => Promise<readonly PermanentFailureCase[]>;
}

/** One permanent failure of a backend, and the operations it is checked on. */
export interface PermanentFailureCase {
  readonly what: string;
  /** The failing store, wrapped in a RetryingStore with these options (as openStorage builds it). */
  readonly open: (retry: RetryOptions) => BlobStore;
  /** What the message must say. */
  readonly message: RegExp;
  readonly ops: ReadonlyArray<'validate' | 'put' | 'get' | 'head' | 'list'>;
}

async function text(s: Readable): Promise<string> {
  return Buffer.concat(await chunksOf(s)).toString('utf8');
}

async function chunksOf(s: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return chunks;
}

async function keys(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

export function runStorageContract(o: StorageContractOptions): void {
  if (o.skip && process.env.LIFEBOAT_REQUIRE_ALL_BACKENDS === '1') {
    it(`${o.name}: storage contract`, () => assert.fail(`the ${o.name} backend was skipped (${o.skip}) but CI requires every backend`));
    return;
  }
  describe(`${o.name}: storage contract`, { ...(o.skip ? { skip: o.skip } : {}) }, () => {
    it('fails at once on permanent failures, not marked transient and not retried', async (t) => {
      const cases = await o.permanentFailures(t);
      assert.ok(cases.length > 0, 'a backend names at least one permanent failure');
      for (const c of cases) {
        const retries: RetryInfo[] = [];
        const s = c.open({ sleep: async () => undefined, onRetry: (i) => { retries.push(i); } });
        const run = {
          validate: () => s.validate(), put: () => s.put('k', Buffer.from('x')), get: () => s.get('k'), head: () => s.head('k'), list: () => keys(s, ''),
        };
        for (const op of c.ops) {
          await assert.rejects(run[op](), (e: unknown) => {
            assert.ok(isLifeboatError(e, 'LIFEBOAT_E_STORAGE_UNAVAILABLE'), `${c.what}, ${op}: ${inspect(e)}`);
            assert.equal(isTransient(e), false, `${c.what}, ${op}: marked transient: ${e.message}`);
            assert.match(e.message, c.message, `${c.what}, ${op}`);
            return true;
          });
        }
        assert.deepEqual(retries, [], c.what);
      }
    });

    it('reads back what was put, whole and in ranges', async (t) => {
      const s = await o.create(t);
      await s.put('App/Svc/p1/a.lbk', Buffer.from('hello, world'));
      assert.equal(await text(await s.get('App/Svc/p1/a.lbk')), 'hello, world');
      assert.equal(await text(await s.get('App/Svc/p1/a.lbk', { start: 7 })), 'world');
      assert.equal(await text(await s.get('App/Svc/p1/a.lbk', { start: 0, end: 5 })), 'hello');
      const head = await s.head('App/Svc/p1/a.lbk');
      assert.equal(head?.size, 12);
      assert.ok(head?.modifiedUtc instanceof Date);
    });

    it('streams a large object in and out', async (t) => {
      const s = await o.create(t);
      const chunk = Buffer.alloc(1 << 20, 7);
      const n = 24;
      await s.put('big/object', Readable.from((function* () { for (let i = 0; i < n; i++) yield chunk; })()));
      assert.equal((await s.head('big/object'))?.size, n * chunk.length);
      let total = 0;
      for await (const c of await s.get('big/object')) total += (c as Buffer).length;
      assert.equal(total, n * chunk.length);
    });

    it('stores a lending body right, borrowing its reused buffer or reading its stream', async (t) => {
      const s = await o.create(t);
      // The producer writes every chunk into one buffer: a borrower that kept a chunk past the next would store the wrong bytes.
      const n = 12;
      const produce = function* (lend: boolean): Generator<Buffer> {
        const reused = Buffer.alloc(256 * 1024);
        for (let i = 0; i < n; i++) {
          reused.fill(i + 1);
          yield lend ? reused : Buffer.from(reused);
        }
      };
      let borrowed = false;
      const body = Object.assign(Readable.from(produce(false)), { borrowChunks: () => { borrowed = true; return (async function* () { yield* produce(true); })(); } });
      await s.put('lent/object', body);
      const back = Buffer.concat(await chunksOf(await s.get('lent/object')));
      assert.equal(back.length, n * 256 * 1024);
      for (let i = 0; i < n; i++) assert.equal(back[i * 256 * 1024 + 1000], i + 1, `chunk ${i} (${borrowed ? 'borrowed' : 'read from the stream'})`);
    });

    it('a get that lends hands over the right bytes to a borrower that is done with each chunk before the next', async (t) => {
      const s = await o.create(t);
      const data = Buffer.alloc(3 * 1024 * 1024 + 12345);
      for (let i = 0; i + 4 <= data.length; i += 4) data.writeUInt32LE(i, i);
      await s.put('lent/get', data);
      for (const range of [undefined, { start: 1000, end: 2 * 1024 * 1024 + 7 }]) {
        const got = await s.get('lent/get', range);
        const bytes = lendsChunks(got) ? (await borrowAll(got)).bytes : Buffer.concat(await chunksOf(got));
        assert.ok(bytes.equals(data.subarray(range?.start ?? 0, range?.end)), `range ${JSON.stringify(range)}`);
      }
    });

    it('never overwrites a committed object', async (t) => {
      const s = await o.create(t);
      await s.put('x/y', Buffer.from('first'));
      await assert.rejects(s.put('x/y', Buffer.from('second')), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_OBJECT_EXISTS'));
      assert.equal(await text(await s.get('x/y')), 'first');
    });

    it('replaces an object atomically only when asked to overwrite', async (t) => {
      const s = await o.create(t);
      await s.put('m/doc.bkmetadata', Buffer.from('version one'), { overwrite: true });
      assert.equal(await text(await s.get('m/doc.bkmetadata')), 'version one');
      await s.put('m/doc.bkmetadata', Readable.from([Buffer.from('version '), Buffer.from('two, longer')]), { overwrite: true });
      assert.equal(await text(await s.get('m/doc.bkmetadata')), 'version two, longer');
      assert.equal((await s.head('m/doc.bkmetadata'))?.size, 'version two, longer'.length);
      assert.deepEqual(await keys(s, 'm/'), ['m/doc.bkmetadata']);
      const failing = new Readable({
        read() {
          this.push(Buffer.from('partial'));
          this.destroy(new Error('source broke'));
        },
      });
      await assert.rejects(s.put('m/doc.bkmetadata', failing, { overwrite: true }));
      assert.equal(await text(await s.get('m/doc.bkmetadata')), 'version two, longer');
    });

    it('leaves nothing visible when a put fails midway', async (t) => {
      const s = await o.create(t);
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(64 * 1024, 1));
          this.destroy(new Error('source broke'));
        },
      });
      await assert.rejects(s.put('half/written', failing));
      assert.equal(await s.head('half/written'), undefined);
      assert.deepEqual(await keys(s, 'half/'), []);
      await s.put('half/written', Buffer.from('ok'));
      assert.equal(await text(await s.get('half/written')), 'ok');
    });

    it('says what is missing: get fails NOT_FOUND, head is undefined, delete is fine', async (t) => {
      const s = await o.create(t);
      await assert.rejects(s.get('no/such'), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_STORAGE_NOT_FOUND'));
      assert.equal(await s.head('no/such'), undefined);
      await s.delete('no/such');
    });

    it('lists every key under a prefix once, in byte order', async (t) => {
      const s = await o.create(t);
      const all = ['a/b/2026-01-01 00.00.00.lbk', 'a/b/2026-01-01 00.00.00.bkmetadata', 'a/b0', 'a/b/c/d', 'a/a', 'a/b-x', 'b/z', 'a/b/é'];
      for (const k of all) await s.put(k, Buffer.from(k));
      const sorted = (ks: string[]): string[] => [...ks].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual(await keys(s, 'a/'), sorted(all.filter((k) => k.startsWith('a/'))));
      assert.deepEqual(await keys(s, 'a/b/'), sorted(all.filter((k) => k.startsWith('a/b/'))));
      assert.deepEqual(await keys(s, 'a/b'), sorted(all.filter((k) => k.startsWith('a/b'))));
      assert.deepEqual(await keys(s, 'zzz/'), []);
      assert.deepEqual(await keys(s, ''), sorted(all));
    });

    it('deletes', async (t) => {
      const s = await o.create(t);
      await s.put('d/1', Buffer.from('1'));
      await s.put('d/2', Buffer.from('2'));
      await s.delete('d/1');
      assert.deepEqual(await keys(s, 'd/'), ['d/2']);
      await s.delete('d/1');
    });

    it('refuses keys that are not plain relative paths', async (t) => {
      const s = await o.create(t);
      for (const k of ['', '/abs', 'a//b', 'a/../b', '../up', 'a/./b', 'back\\slash']) {
        await assert.rejects(s.put(k, Buffer.from('x')), (e: unknown) => isLifeboatError(e, 'E_INVALIDARG'), JSON.stringify(k));
      }
    });

    it('validates a usable store', async (t) => {
      const s = await o.create(t);
      await s.validate();
    });
  });
}

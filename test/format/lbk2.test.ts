/**
 * `.lbk` version 2: round trips (compressions, encryption, block boundaries), the zstd fallback,
 * damage at every byte and truncation at every length caught by decode and verify with a message
 * that says where, keys (missing, wrong, rotated), version 1 still read, and flat memory on a
 * large stream. The archive is parsed here from the layout in docs/backup-format.md, independently
 * of src/format/lbk2/layout.ts, so the document is tested too.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, createReadStream, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isLifeboatError, type ErrorCode } from '../../src/core/errors.ts';
import { packFolder } from '../../src/format/archive.ts';
import {
  type ArchivedFile, type ArchiveSink, type BlockRunner, type Compression, type EncodeOptions, type Keyring, type ReadOptions, type WrappedDataKey,
  archiveVersion, createBlockPool, decodeFiles, decodeToFolder, encodeFiles, encodeFolder, makeKeyring, parseKeyring, rewrapDataKey, verifyArchive,
} from '../../src/format/lbk2/index.ts';
import { lendingStream } from '../../src/fs/lending.ts';
import { BoundedQueue, Handoff } from '../../src/fs/streams.ts';
import { tempDir } from '../support/tmp.ts';

const MISSING_ZSTD = 'lifeboat-test-no-such-zstd';

async function bytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function chunked(b: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) chunks.push(b.subarray(i, i + size));
  return Readable.from(chunks);
}

function keyringOf(current: string, keys: Record<string, Buffer>): Keyring {
  return makeKeyring(current, new Map(Object.entries(keys)));
}

/** Text that compresses like logs or JSON rows do, from a seed. */
function textLike(n: number, seed: number): Buffer {
  const words = ['partition', 'lsn', 'epoch', 'backup', 'value', 'key', 'chain', 'restore', 'replica', 'storage', 'commit', 'page'];
  let x = seed >>> 0 || 1;
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    const line = `{"${words[x % 12]}":${x % 100000},"${words[(x >>> 8) % 12]}":"${(x >>> 4).toString(36)}"}\n`;
    parts.push(line);
    len += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

async function encode(folder: string, options: EncodeOptions): Promise<{ archive: Buffer; encryption?: WrappedDataKey; compression: Compression; framesSha256: string; size: number }> {
  const enc = await encodeFolder(folder, options);
  const archive = await bytes(enc.stream);
  const r = await enc.result;
  return { archive, ...(r.encryption ? { encryption: r.encryption } : {}), compression: r.compression, framesSha256: r.framesSha256, size: r.bytes };
}

function expectCode(code: ErrorCode, ...parts: string[]): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isLifeboatError(e, code), `expected ${code}, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message '${e.message}' lacks '${p}'`);
    return true;
  };
}

/** Regions of a version 2 archive, read with the offsets of docs/backup-format.md alone. */
interface Region { readonly start: number; readonly end: number; readonly says: string }
function regionsOf(a: Buffer): Region[] {
  const regions: Region[] = [];
  const fileCount = a.readUInt32LE(12);
  const cipher = a[6] as number;
  let at = 48;
  const names: string[] = [];
  for (let i = 0; i < fileCount; i++) {
    const len = a[at] as number;
    names.push(a.subarray(at + 1, at + 1 + len).toString('latin1'));
    at += 1 + len;
  }
  at += 32;
  regions.push({ start: 0, end: at, says: 'header' });
  for (let f = 0; f < fileCount; f++) {
    for (let b = 0; ; b++) {
      const final = ((a[at + 2] as number) & 1) === 1;
      const end = at + 52 + a.readUInt32LE(at + 16);
      regions.push({ start: at, end, says: `${names[f]} block ${b} (frame at byte ${at})` });
      at = end;
      if (final) break;
    }
  }
  const trailerEnd = at + 8 + 24 * fileCount + 32 * fileCount + (cipher ? 16 : 0) + 32;
  regions.push({ start: at, end: trailerEnd, says: `trailer (at byte ${at})` });
  regions.push({ start: trailerEnd, end: trailerEnd + 32, says: `footer (at byte ${trailerEnd})` });
  assert.equal(trailerEnd + 32, a.length, 'the layout accounts for every byte');
  assert.equal(Number(a.readBigUInt64LE(a.length - 32)), at, 'the footer points at the trailer');
  return regions;
}

/** The frames digest worked out from the layout: every byte but the frames' payloads, in order. */
function framesDigestOf(a: Buffer): string {
  const h = createHash('sha256');
  for (const r of regionsOf(a)) h.update(r.says.includes(' block ') ? a.subarray(r.start, r.start + 52) : a.subarray(r.start, r.end));
  return h.digest('hex');
}

const SMALL_BLOCK = 256;
function smallFolder(root: string, name = 'in'): string {
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'backup.metadata'), '{"body":{"backupId":"x"},"sha256":"y"}');
  // Blocks of SMALL_BLOCK: compressible ones, an incompressible one, a short last one.
  writeFileSync(join(dir, 'data.sqlite'), Buffer.concat([textLike(2 * SMALL_BLOCK, 3), randomBytes(SMALL_BLOCK), textLike(100, 4)]));
  writeFileSync(join(dir, 'empty'), '');
  return dir;
}

let pool: BlockRunner;
before(() => {
  pool = createBlockPool(2);
});
after(async () => {
  await pool.close();
});

describe('round trips', () => {
  const BLOCK = 4096;
  const files: Record<string, Buffer> = {
    'backup.metadata': Buffer.from('{"body":{},"sha256":"0"}'),
    'empty': Buffer.alloc(0),
    'one-byte': Buffer.from('x'),
    'exact.bin': textLike(3 * BLOCK, 1), // ends on a block boundary
    'data.sqlite': Buffer.concat([textLike(5 * BLOCK, 2), randomBytes(2 * BLOCK + 17)]),
  };
  const folder = join(tempDir({ after }), 'in'); // one folder for the suite, removed after it
  before(() => {
    mkdirSync(folder);
    for (const [name, data] of Object.entries(files)) writeFileSync(join(folder, name), data);
  });

  for (const compression of ['zstd', 'gzip', 'none'] as const) {
    for (const encrypted of [false, true]) {
      it(`${compression}, ${encrypted ? 'encrypted' : 'not encrypted'}: decode gives every file back, verify passes`, async (t) => {
        const keyring = encrypted ? keyringOf('k1', { k1: randomBytes(32) }) : undefined;
        const enc = await encode(folder, { blockSize: BLOCK, compression, workers: pool, ...(keyring ? { keyring } : {}) });
        assert.equal(enc.compression, compression);
        assert.equal(enc.archive[4], 2);
        assert.equal(enc.archive[5], { none: 0, zstd: 1, gzip: 2 }[compression]);
        assert.equal(enc.archive[6], encrypted ? 1 : 0);
        assert.equal(enc.size, enc.archive.length);
        assert.equal(enc.framesSha256, framesDigestOf(enc.archive));
        assert.equal(enc.encryption !== undefined, encrypted);
        regionsOf(enc.archive);
        if (compression !== 'none') assert.ok(enc.archive.length < files['data.sqlite']!.length + files['exact.bin']!.length, 'it compressed');
        const read: ReadOptions = { keyring, encryption: enc.encryption };
        // Chunks of any size, through the pool and inline.
        for (const [size, workers] of [[1, 0], [999, pool], [enc.archive.length, 2]] as const) {
          const out = join(tempDir(t), 'out');
          mkdirSync(out);
          const s = await decodeToFolder(chunked(enc.archive, size), out, 'test', { ...read, workers });
          assert.deepEqual(readdirSync(out).sort(), Object.keys(files).sort());
          for (const [name, data] of Object.entries(files)) assert.deepEqual(readFileSync(join(out, name)), data, `${name}, chunks of ${size}`);
          assert.equal(s.bytes, Object.values(files).reduce((n, b) => n + b.length, 0));
          assert.equal(s.storedBytes, enc.archive.length);
          assert.equal(s.authenticated, encrypted);
          assert.equal(s.framesSha256, enc.framesSha256, 'the decoder works out the digest the encoder recorded');
        }
        const v = await verifyArchive(chunked(enc.archive, 777), 'test', { ...read, workers: pool });
        assert.equal(v.framesSha256, enc.framesSha256);
        assert.deepEqual(
          { files: v.files, contentsChecked: v.contentsChecked, authenticated: v.authenticated, encrypted: v.encrypted },
          { files: 5, contentsChecked: true, authenticated: encrypted, encrypted },
        );
        if (encrypted) {
          const keyless = await verifyArchive(Readable.from([enc.archive]), 'test', { workers: 0 });
          assert.deepEqual(
            { contentsChecked: keyless.contentsChecked, authenticated: keyless.authenticated, blocks: keyless.blocks },
            { contentsChecked: false, authenticated: false, blocks: v.blocks },
          );
          assert.equal(keyless.framesSha256, enc.framesSha256, 'without the key too');
        }
      });
    }
  }

  it('an empty folder and the default block size with a private pool', async (t) => {
    const empty = join(tempDir(t), 'empty');
    mkdirSync(empty);
    const enc = await encode(empty, {});
    const out = join(tempDir(t), 'out');
    mkdirSync(out);
    const s = await decodeToFolder(Readable.from([enc.archive]), out, 'test');
    assert.deepEqual({ files: s.files, blocks: s.blocks, bytes: s.bytes }, { files: 0, blocks: 0, bytes: 0 });
    const big = join(tempDir(t), 'big');
    mkdirSync(big);
    writeFileSync(join(big, 'data.sqlite'), Buffer.concat([textLike(2 << 20, 5), randomBytes(1 << 20)]));
    const e2 = await encode(big, { workers: 2 });
    const out2 = join(tempDir(t), 'out2');
    mkdirSync(out2);
    assert.equal((await decodeToFolder(Readable.from([e2.archive]), out2, 'test', { workers: 2 })).blocks, 3);
    assert.deepEqual(readFileSync(join(out2, 'data.sqlite')), readFileSync(join(big, 'data.sqlite')));
  });

  it('one pool serves several archives at once, each with its own key', async (t) => {
    const rings = [keyringOf('a', { a: randomBytes(32) }), keyringOf('b', { b: randomBytes(32) })];
    const encoded = await Promise.all(rings.map((keyring) => encode(folder, { blockSize: BLOCK, keyring, workers: pool })));
    await Promise.all(encoded.map(async (enc, i) => {
      const out = join(tempDir(t), 'out');
      mkdirSync(out);
      await decodeToFolder(chunked(enc.archive, 5000), out, `archive ${i}`, { encryption: enc.encryption, keyring: rings[i], workers: pool });
      assert.deepEqual(readFileSync(join(out, 'data.sqlite')), files['data.sqlite']);
    }));
  });

  it('zstd falls back to gzip when the zstd package cannot be loaded, and the header says so', async (t) => {
    const enc = await encode(folder, { blockSize: BLOCK, compression: 'zstd', zstdModule: MISSING_ZSTD, workers: pool });
    assert.equal(enc.compression, 'gzip');
    assert.equal(enc.archive[5], 2);
    const out = join(tempDir(t), 'out');
    mkdirSync(out);
    await decodeToFolder(Readable.from([enc.archive]), out, 'test', { workers: pool, zstdModule: MISSING_ZSTD });
    assert.deepEqual(readFileSync(join(out, 'data.sqlite')), files['data.sqlite']);
    // A zstd archive where zstd is missing: a clear refusal before anything is written.
    const zstd = await encode(folder, { blockSize: BLOCK, compression: 'zstd', workers: pool });
    const out2 = join(tempDir(t), 'out2');
    mkdirSync(out2);
    await assert.rejects(decodeToFolder(Readable.from([zstd.archive]), out2, 'test', { zstdModule: MISSING_ZSTD }), expectCode('LIFEBOAT_E_CODEC_UNAVAILABLE', 'zstd'));
    assert.deepEqual(readdirSync(out2), []);
  });

  it('refuses a folder that is not empty, bad options and names that cannot be files', async (t) => {
    const out = join(tempDir(t), 'out');
    mkdirSync(out);
    writeFileSync(join(out, 'x'), '');
    const enc = await encode(folder, { blockSize: BLOCK, workers: 0 });
    await assert.rejects(decodeToFolder(Readable.from([enc.archive]), out, 'test'), expectCode('E_INVALIDARG', 'not empty'));
    await assert.rejects(encodeFolder(folder, { blockSize: 8 }), expectCode('E_INVALIDARG', 'blockSize'));
    await assert.rejects(encodeFolder(folder, { compression: 'lz4' as Compression }), expectCode('E_INVALIDARG', 'compression'));
    const odd = join(tempDir(t), 'odd');
    mkdirSync(odd);
    writeFileSync(join(odd, 'a b'), '');
    await assert.rejects(encodeFolder(odd), expectCode('E_INVALIDARG', "'a b'"));
  });

  it('an archive stream closed early settles its result with E_ABORT', async () => {
    const enc = await encodeFolder(folder, { blockSize: 16, workers: pool });
    for await (const _ of enc.stream) break;
    await assert.rejects(enc.result, expectCode('E_ABORT'));
  });
});

describe('files given one by one', () => {
  /** A sink that keeps each file's bytes (copied: the decoder reuses its buffers) in the order written. */
  function memorySink(): ArchiveSink & { files: Array<{ name: string; data: Buffer }> } {
    const files: Array<{ name: string; data: Buffer }> = [];
    let parts: Buffer[] = [];
    let name = '';
    return {
      files,
      open: async (n) => { name = n; parts = []; },
      write: async (d) => { parts.push(Buffer.from(d)); },
      close: async (file) => {
        const data = Buffer.concat(parts);
        // What the decoder says it wrote is what the sink got.
        assert.deepEqual(file, { name, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
        files.push({ name, data });
      },
    };
  }

  it('a file by path and length, a stream, and content made last from the digests before it, in the order given', async (t) => {
    const dir = tempDir(t);
    const big = Buffer.concat([textLike(300_000, 3), randomBytes(50_000)]);
    writeFileSync(join(dir, 'z.db'), Buffer.concat([big, Buffer.from('not in the archive')]));
    const streamed = textLike(70_001, 9);
    let seen: readonly ArchivedFile[] = [];
    const keyring = keyringOf('k', { k: randomBytes(32) });
    for (const options of [{ blockSize: 65536, workers: 2 }, { blockSize: 4096, workers: 0, keyring }] as EncodeOptions[]) {
      const enc = await encodeFiles([
        { name: 'z.db', path: join(dir, 'z.db'), bytes: big.length },
        { name: 'm.log', stream: chunked(streamed, 1000) },
        { name: 'a.json', content: (before) => { seen = before; return Buffer.from(JSON.stringify(before)); } },
      ], options);
      const archive = await bytes(enc.stream);
      const r = await enc.result;
      const expected = [
        { name: 'z.db', bytes: big.length, sha256: createHash('sha256').update(big).digest('hex') },
        { name: 'm.log', bytes: streamed.length, sha256: createHash('sha256').update(streamed).digest('hex') },
      ];
      assert.deepEqual(seen, expected);
      assert.deepEqual(r.archived.slice(0, 2), expected);
      assert.equal(archiveVersion(archive), 2);
      const read = { ...(r.encryption ? { encryption: r.encryption, keyring } : {}) };
      const sink = memorySink();
      const summary = await decodeFiles(Readable.from([archive]), 'mem', sink, { ...read, workers: 1 });
      assert.equal(summary.files, 3);
      assert.deepEqual(sink.files.map((f) => f.name), ['z.db', 'm.log', 'a.json']);
      assert.ok(sink.files[0]?.data.equals(big));
      assert.ok(sink.files[1]?.data.equals(streamed));
      assert.deepEqual(JSON.parse(sink.files[2]?.data.toString() ?? ''), expected);
      // Into a folder too, whatever the order.
      const out = join(dir, `out-${options.blockSize}`);
      mkdirSync(out);
      await decodeToFolder(Readable.from([archive]), out, 'mem', read);
      assert.deepEqual(readdirSync(out).sort(), ['a.json', 'm.log', 'z.db']);
      assert.ok(readFileSync(join(out, 'z.db')).equals(big));
    }
  });

  it('reads a file on disk with O_DIRECT into its slots where the file system takes it, and the same archive contents either way', async (t) => {
    const dir = tempDir(t);
    const blockSize = 65536;
    // Whole blocks, a short tail, and a length limit that ends inside a block.
    const data = Buffer.concat([textLike(5 * blockSize, 11), randomBytes(3 * blockSize + 777)]);
    writeFileSync(join(dir, 'd'), data);
    const flag = (fsConstants as { O_DIRECT?: number }).O_DIRECT;
    let direct = false;
    try {
      if (flag !== undefined) closeSync(openSync(join(dir, 'd'), fsConstants.O_RDONLY | flag));
      direct = flag !== undefined;
    } catch {
      direct = false; // this file system refuses O_DIRECT: everything goes through the cache
    }
    const pool = createBlockPool(2);
    try {
      for (const [limit, directRead] of [[undefined, true], [undefined, false], [6 * blockSize + 100, true]] as const) {
        const want = data.subarray(0, limit ?? data.length);
        const enc = await encodeFiles([{ name: 'd', path: join(dir, 'd'), ...(limit ? { bytes: limit } : {}) }], { blockSize, workers: pool, directRead });
        const archive = await bytes(enc.stream);
        const r = await enc.result;
        assert.deepEqual(r.archived, [{ name: 'd', bytes: want.length, sha256: createHash('sha256').update(want).digest('hex') }]);
        // Full blocks are read into slots (direct); a tail shorter than a block through the cache.
        const fullBlocks = Math.floor(want.length / blockSize) * blockSize;
        const tail = limit === undefined ? want.length - fullBlocks : 0; // a read of a whole block that found the end
        assert.equal(r.directBytes, direct && directRead ? fullBlocks + tail : 0, `limit ${limit}, directRead ${directRead}`);
        const sink = memorySink();
        await decodeFiles(Readable.from([archive]), 'mem', sink, { workers: 0 });
        assert.ok(sink.files[0]?.data.equals(want));
      }
    } finally {
      await pool.close();
    }
  });

  it('refuses repeated names and a file shorter than the bytes asked for; decodeFiles leaves version 1 to decodeToFolder', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'f'), 'short');
    await assert.rejects(encodeFiles([{ name: 'a', content: () => Buffer.alloc(1) }, { name: 'a', content: () => Buffer.alloc(1) }]), expectCode('E_INVALIDARG', 'distinct'));
    const enc = await encodeFiles([{ name: 'f', path: join(dir, 'f'), bytes: 100 }], { workers: 0 });
    await assert.rejects(bytes(enc.stream), /ended 95 bytes before the 100/);
    await assert.rejects(enc.result, /ended 95 bytes before/);
    mkdirSync(join(dir, 'v1'));
    writeFileSync(join(dir, 'v1', 'x'), 'y');
    const v1 = await bytes(await packFolder(join(dir, 'v1')));
    assert.equal(archiveVersion(v1), 1);
    assert.equal(archiveVersion(Buffer.from('nope!')), undefined);
    await assert.rejects(decodeFiles(Readable.from([v1]), 'old', memorySink()), expectCode('E_INVALIDARG', 'version 1'));
  });

  it('a damaged block fails decodeFiles after the files before it were written, naming the block', async (t) => {
    const dir = tempDir(t);
    const data = textLike(200_000, 4);
    writeFileSync(join(dir, 'd'), data);
    const enc = await encodeFiles([{ name: 'd', path: join(dir, 'd') }, { name: 'm', content: () => Buffer.from('meta') }], { blockSize: 16384, workers: 0 });
    const archive = await bytes(enc.stream);
    const at = Math.floor(archive.length / 2);
    archive[at] = (archive[at] as number) ^ 1;
    const sink = memorySink();
    await assert.rejects(decodeFiles(Readable.from([archive]), 'obj', sink, { workers: 0 }), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'obj', 'd block'));
    assert.equal(sink.files.length, 0, 'the damaged file was never closed');
  });

  it('writes to the sink one at a time and in order while the next blocks are read and opened; a failing write fails the decode', async (t) => {
    const dir = tempDir(t);
    const data = Buffer.concat([textLike(150_000, 6), randomBytes(100_000)]);
    writeFileSync(join(dir, 'd'), data);
    const enc = await encodeFiles([{ name: 'd', path: join(dir, 'd') }], { blockSize: 4096, workers: 2 });
    const archive = await bytes(enc.stream);
    let writing = false;
    let blocksOpenedMeanwhile = 0;
    const parts: Buffer[] = [];
    const slowSink: ArchiveSink = {
      open: async () => undefined,
      write: async (d) => {
        assert.equal(writing, false, 'a write began before the one before it ended');
        writing = true;
        parts.push(Buffer.from(d));
        const before = opened;
        await new Promise((r) => setTimeout(r, 1));
        blocksOpenedMeanwhile = Math.max(blocksOpenedMeanwhile, opened - before);
        writing = false;
      },
      close: async () => undefined,
    };
    let opened = 0;
    const counting: BlockRunner = {
      size: 2,
      seal: (job, transfer) => pool.seal(job, transfer),
      open: (job, transfer) => { opened++; return pool.open(job, transfer); },
      share: (bytes) => pool.share(bytes),
      close: async () => undefined,
    };
    await decodeFiles(Readable.from([archive]), 'obj', slowSink, { workers: counting });
    assert.ok(Buffer.concat(parts).equals(data), 'every byte, in order');
    assert.ok(blocksOpenedMeanwhile > 0, 'blocks were read and handed to the pool while a write was under way');

    let n = 0;
    const failing: ArchiveSink = {
      open: async () => undefined,
      write: async () => { if (++n === 3) throw new Error('disk full'); },
      close: async () => { assert.fail('closed a file whose write failed'); },
    };
    await assert.rejects(decodeFiles(Readable.from([archive]), 'obj', failing, { workers: pool }), /disk full/);
  });

  it('reads ahead of a slow upload: blocks are read and sealed while the consumer is not pulling', async (t) => {
    const dir = tempDir(t);
    // Incompressible, past the stream's own 1 MiB buffer: what is sealed beyond that waits in the queue.
    const data = randomBytes(64 * 65536);
    writeFileSync(join(dir, 'd'), data);
    let sealed = 0;
    const counting: BlockRunner = {
      size: 2,
      seal: (job, transfer) => { sealed++; return pool.seal(job, transfer); },
      open: (job, transfer) => pool.open(job, transfer),
      share: (bytes) => pool.share(bytes),
      close: async () => undefined,
    };
    const enc = await encodeFiles([{ name: 'd', path: join(dir, 'd') }], { blockSize: 65536, workers: counting });
    const it = enc.stream[Symbol.asyncIterator]();
    await it.next(); // the header
    // Until the reading stops on its own (no pull meanwhile).
    for (let last = -1, deadline = Date.now() + 10_000; sealed !== last && Date.now() < deadline;) {
      last = sealed;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(sealed >= 20, `${sealed} blocks were sealed while nothing was pulled`);
    assert.ok(sealed < 40, `but only as many as the stream's buffer and the queue hold, not ${sealed}`);
    const rest: Buffer[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value as Buffer);
    assert.equal((await enc.result).plainBytes, data.length);
  });
});

describe('block worker priority', () => {
  /** Nice value of every thread of this process, by thread id (field 19 of /proc/self/task/<tid>/stat). */
  const niceByThread = (): Map<string, number> => new Map(readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return [tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
  }));
  const sealOne = (runner: BlockRunner): Promise<unknown> => {
    const plain = Buffer.alloc(4096, 'lifeboat ');
    return runner.seal({ fileIndex: 0, blockIndex: 0, final: true, plain, compression: 1, headerSha: Buffer.alloc(32) }, [plain.buffer as ArrayBuffer]);
  };

  const linux = process.platform === 'linux';
  const mine = linux ? niceByThread().get(String(process.pid)) : undefined;
  const skip = !linux ? 'thread nice values are read from Linux /proc' : mine !== 0 ? `this process runs at nice ${mine}, not 0` : false;

  it('runs the workers, and only them, at the nice value asked for (10 by default), so serving threads come first', { skip }, async () => {
    for (const [asked, expected] of [[undefined, 10], [3, 3], [0, 0]] as Array<[number | undefined, number]>) {
      const before = niceByThread(); // so a thread of the pool before, still exiting, is not counted
      const own = createBlockPool(2, asked === undefined ? {} : { nice: asked });
      try {
        await Promise.all([sealOne(own), sealOne(own)]); // both workers started (a job goes to the least busy)
        const started = [...niceByThread()].filter(([tid]) => !before.has(tid));
        // Each worker's own thread is made nice; any other new thread stays at the caller's priority.
        if (expected === 0) assert.ok(started.length > 0 && started.every(([, n]) => n === 0), `nice 0: every new thread at the process's priority, got ${JSON.stringify(started)}`);
        else assert.equal(started.filter(([, n]) => n === expected).length, 2, `nice ${expected}: one thread per worker, got ${JSON.stringify(started)}`);
        assert.equal(niceByThread().get(String(process.pid)), 0, 'the calling thread keeps its priority');
      } finally {
        await own.close();
      }
    }
    assert.throws(() => createBlockPool(1, { nice: 20 }), /not 0\.\.19/);
    assert.throws(() => createBlockPool(1, { nice: -1 }), /not 0\.\.19/);
  });
});

describe('shared regions', () => {
  it('blocks in a region shared with the workers go there and back as places in it, and a released region is handed out again', async () => {
    const own = createBlockPool(1);
    try {
      const region = own.share(4 * 65536);
      assert.ok(region.buffer.buffer instanceof SharedArrayBuffer);
      const plain = region.buffer.subarray(0, 65536);
      plain.fill('lifeboat ');
      const packed = region.buffer.subarray(3 * 65536, 4 * 65536);
      const sealed = await own.seal({ fileIndex: 0, blockIndex: 0, final: true, plain, out: packed, compression: 1, headerSha: Buffer.alloc(32) }, [plain.buffer as ArrayBuffer]);
      // The plaintext was not moved away (a transferred buffer would be detached here) and comes back as a view on the region.
      assert.equal(plain.length, 65536);
      assert.deepEqual(sealed.spare?.map((b) => [b.buffer === region.buffer.buffer, b.byteOffset]), [[true, plain.byteOffset]], 'the plaintext place is spare');
      const [header, ...stored] = sealed.parts as Buffer[];
      // zstd wrote the stored bytes where the job said: the part is a view on the region, nothing new.
      assert.equal(stored.length, 1);
      assert.equal(stored[0]?.buffer, region.buffer.buffer);
      assert.equal(stored[0]?.byteOffset, packed.byteOffset);
      assert.ok((stored[0]?.length ?? 0) < 1000, 'compressed');
      const payload = region.buffer.subarray(65536, 2 * 65536);
      const storedLength = Buffer.concat(stored).copy(payload);
      const out = region.buffer.subarray(2 * 65536, 3 * 65536);
      const opened = await own.open({ header: header as Buffer, payload: payload.subarray(0, storedLength), out, headerSha: Buffer.alloc(32), contents: true }, []);
      assert.equal(opened.plain?.buffer, region.buffer.buffer, 'the plaintext is in the region');
      assert.equal(opened.plain?.byteOffset, out.byteOffset, 'where the job said');
      assert.ok(Buffer.from(opened.plain as Uint8Array).equals(Buffer.alloc(65536, 'lifeboat ')));
      assert.deepEqual(opened.spare?.map((b) => b.byteOffset), [payload.byteOffset], 'the payload place is handed back as spare, the out place is not');
      region.release();
      region.release(); // twice is once
      assert.equal(own.share(4 * 65536).buffer.buffer, region.buffer.buffer, 'the same region again');
      assert.notEqual(own.share(4 * 65536).buffer.buffer, region.buffer.buffer, 'it is in use: another one');
    } finally {
      await own.close();
    }
  });

  it('a raw block read into a shared slot reaches the stream as a copy: later blocks reuse the slot', async (t) => {
    const dir = tempDir(t);
    const data = randomBytes(40 * 4096); // incompressible: stored as read
    writeFileSync(join(dir, 'd'), data);
    const enc = await encodeFiles([{ name: 'd', path: join(dir, 'd') }], { blockSize: 4096, workers: pool });
    const chunks: Buffer[] = [];
    for await (const c of enc.stream) chunks.push(c as Buffer); // kept, not copied: a reused slot would change them
    assert.ok(chunks.every((c) => !(c.buffer instanceof SharedArrayBuffer)), 'no chunk is a view on a shared region');
    const parts: Buffer[] = [];
    await decodeFiles(Readable.from(chunks), 'obj', { open: async () => undefined, write: async (d) => { parts.push(Buffer.from(d)); }, close: async () => undefined }, { workers: pool });
    assert.ok(Buffer.concat(parts).equals(data));
  });
});

describe('lending', () => {
  it('the encoder lends the stored bytes where the workers compressed them, reusing each slot once the next chunk is asked for', async (t) => {
    const dir = tempDir(t);
    const text = Buffer.from('{"order":"pending","region":"europe"} '.repeat(4000));
    const data = Buffer.concat([text, randomBytes(3 * 4096), text]); // compressed blocks, then raw ones, then compressed
    writeFileSync(join(dir, 'd'), data);
    const enc = await encodeFiles([{ name: 'd', path: join(dir, 'd') }], { blockSize: 4096, workers: pool });
    const copies: Buffer[] = [];
    const slots = new Set<string>();
    let lentPayloads = 0;
    for await (const c of enc.stream.borrowChunks()) {
      if (c.buffer instanceof SharedArrayBuffer) {
        lentPayloads++;
        slots.add(String(c.byteOffset));
      }
      copies.push(Buffer.from(c)); // the borrower is done with it before asking for the next
    }
    const r = await enc.result;
    assert.equal(lentPayloads, r.blocks, 'every payload was lent from the shared region, none copied');
    assert.ok(slots.size < lentPayloads, `slots were reused (${slots.size} places for ${lentPayloads} payloads)`);
    // The same archive as the stream gives.
    const again = await encodeFiles([{ name: 'd', path: join(dir, 'd') }], { blockSize: 4096, workers: pool });
    const streamed: Buffer[] = [];
    for await (const c of again.stream) streamed.push(c as Buffer);
    assert.equal(Buffer.concat(copies).length, Buffer.concat(streamed).length);
    const parts: Buffer[] = [];
    await decodeFiles(Readable.from(copies), 'obj', { open: async () => undefined, write: async (d) => { parts.push(Buffer.from(d)); }, close: async () => undefined }, { workers: pool });
    assert.ok(Buffer.concat(parts).equals(data));
  });

  it('the decoder borrows from a lending source: chunks of any size from one reused buffer decode right, and a flipped byte is still caught', async (t) => {
    const dir = tempDir(t);
    const text = Buffer.from('{"order":"pending","region":"europe"} '.repeat(3000));
    const data = Buffer.concat([text, randomBytes(5 * 4096 + 17), text]);
    writeFileSync(join(dir, 'd'), data);
    const enc = await encodeFiles([{ name: 'd', path: join(dir, 'd') }], { blockSize: 4096, workers: pool });
    const archive = Buffer.concat(await (async () => { const a: Buffer[] = []; for await (const c of enc.stream) a.push(c as Buffer); return a; })());
    // Chunks of 1 to 9000 bytes, each written into the same buffer, which is scribbled over once the next is asked for.
    const lendingSource = (bytes: Buffer): Readable => {
      let lent = 0;
      const chunks = async function* (lend: boolean): AsyncGenerator<Uint8Array> {
        const reused = Buffer.alloc(9000);
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const n = Math.min(bytes.length - at, 1 + ((i * 2654435761) % 9000));
          bytes.copy(reused, 0, at, at + n);
          at += n;
          if (lend) lent++;
          yield lend ? reused.subarray(0, n) : Buffer.from(reused.subarray(0, n));
          reused.fill(0xee);
        }
      };
      return Object.assign(lendingStream(chunks, {}), { lentChunks: () => lent });
    };
    const source = lendingSource(archive);
    const parts: Buffer[] = [];
    await decodeFiles(source, 'obj', { open: async () => undefined, write: async (d) => { parts.push(Buffer.from(d)); }, close: async () => undefined }, { workers: pool });
    assert.ok(Buffer.concat(parts).equals(data));
    assert.ok((source as unknown as { lentChunks(): number }).lentChunks() > 3, 'it borrowed');
    const damaged = Buffer.from(archive);
    const mid = Math.floor(damaged.length / 2);
    damaged[mid] = (damaged[mid] ?? 0) ^ 0x10;
    await assert.rejects(verifyArchive(lendingSource(damaged), 'obj', { workers: pool }), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_BACKUP_CORRUPT'));
  });

  it('a lending stream gives its chunks one way only: read, or borrowed', async () => {
    const made: boolean[] = [];
    const chunks = async function* (lend: boolean): AsyncGenerator<Buffer> { made.push(lend); yield Buffer.from(lend ? 'lent' : 'read'); };
    const a = lendingStream(chunks, {});
    const got: string[] = [];
    for await (const c of a.borrowChunks()) got.push(Buffer.from(c).toString());
    assert.deepEqual(got, ['lent']);
    await assert.rejects((async () => { for await (const _ of a) void _; })(), /already taken/);
    const b = lendingStream(chunks, {});
    for await (const c of b) got.push(String(c));
    assert.throws(() => b.borrowChunks(), /already taken/);
    assert.deepEqual(got, ['lent', 'read']);
    assert.deepEqual(made, [true, false], 'each made its chunks once, and only when asked');
    lendingStream(chunks, {}).destroy(); // destroyed unread: nothing is made
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(made, [true, false]);
  });
});

describe('handoff', () => {
  it('hands chunks over one at a time without copying; a push resolves once the next chunk is asked for', async () => {
    const h = new Handoff();
    const buf = Buffer.from('aaaa');
    let released = false;
    const pushed = h.push(buf).then(() => { released = true; });
    const it = h[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.value, buf, 'the same buffer, not a copy');
    await new Promise((r) => setImmediate(r));
    assert.equal(released, false, 'the producer waits while the consumer holds the chunk');
    const second = it.next();
    await pushed;
    assert.equal(released, true);
    h.end();
    assert.equal((await second).done, true);
  });

  it('fail ends the consumer with the error and a waiting push too; a consumer that stops makes pushes fail', async () => {
    const h = new Handoff();
    const waiting = h.push(Buffer.from('x'));
    h.fail(new Error('damaged'));
    await assert.rejects(waiting, /damaged/);
    await assert.rejects((async () => { for await (const _ of h) void _; })(), /damaged/);

    const h2 = new Handoff();
    const p1 = h2.push(Buffer.from('1'));
    for await (const _ of h2) break; // takes one, then stops
    await p1;
    await assert.rejects(h2.push(Buffer.from('2')), /stopped reading/);
  });
});

describe('bounded queue', () => {
  it('keeps the order, makes the producer wait for room and the consumer for items, and ends after what was pushed', async () => {
    const q = new BoundedQueue<number>(2);
    assert.equal(await q.push(1), true);
    assert.equal(await q.push(2), true);
    let third = false;
    const pushing = q.push(3).then((ok) => { third = ok; });
    await new Promise((r) => setImmediate(r));
    assert.equal(third, false, 'no room for a third');
    assert.equal(await q.shift(), 1);
    await pushing;
    assert.equal(third, true);
    const waiting = q.shift().then((v) => v); // 2 is there
    assert.equal(await waiting, 2);
    assert.equal(await q.shift(), 3);
    const later = q.shift();
    q.end();
    assert.equal(await later, undefined);
    assert.equal(await q.push(4), false, 'nothing is taken after the end');
  });

  it('fail reaches the consumer after the items before it; close releases a waiting producer and drain hands back the rest', async () => {
    const q = new BoundedQueue<string>(1);
    await q.push('a');
    q.fail(new Error('read failed'));
    assert.equal(await q.shift(), 'a');
    await assert.rejects(q.shift(), /read failed/);

    const c = new BoundedQueue<string>(1);
    await c.push('x');
    const blocked = c.push('y');
    c.close();
    assert.equal(await blocked, false);
    assert.deepEqual(c.drain(), ['x']);
    assert.throws(() => new BoundedQueue(0), RangeError);
  });
});

describe('damage', () => {
  let plain: Buffer;
  let sealed: Buffer;
  let encryption: WrappedDataKey;
  const keyring = keyringOf('k1', { k1: randomBytes(32) });
  const root = tempDir({ after });
  before(async () => {
    const folder = smallFolder(root);
    plain = (await encode(folder, { blockSize: SMALL_BLOCK, workers: 0 })).archive;
    const enc = await encode(folder, { blockSize: SMALL_BLOCK, keyring, workers: pool });
    sealed = enc.archive;
    encryption = enc.encryption as WrappedDataKey;
  });

  it('the small archives have a header, compressed and raw frames, a trailer and a footer', () => {
    for (const a of [plain, sealed]) {
      const regions = regionsOf(a);
      assert.equal(regions.length, 1 + 1 + 4 + 1 + 1 + 1, 'header; frames of backup.metadata (1), data.sqlite (4), empty (1); trailer; footer');
      const codecs = regions.filter((r) => r.says.includes('frame')).map((r) => a[r.start + 3]);
      assert.ok(codecs.includes(0) && codecs.includes(1), `raw and zstd blocks: ${codecs.join(',')}`);
    }
  });

  for (const kind of ['not encrypted', 'encrypted'] as const) {
    it(`${kind}: a flipped byte anywhere is caught by decode and by verify, saying where`, async (t) => {
      const archive = kind === 'encrypted' ? sealed : plain;
      const read: ReadOptions = kind === 'encrypted' ? { keyring, encryption } : {};
      const root = tempDir(t);
      const regions = regionsOf(archive);
      let i = 0;
      for (const region of regions) {
        for (let pos = region.start; pos < region.end; pos++) {
          const damaged = Buffer.from(archive);
          damaged[pos] = (damaged[pos] as number) ^ (pos % 2 ? 0x01 : 0xff); // one bit, or the whole byte
          const where = `obj-${pos}`;
          const check = expectCode('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is damaged`, region.says);
          const out = join(root, String(i++));
          mkdirSync(out);
          await assert.rejects(decodeToFolder(Readable.from([damaged]), out, where, { ...read, workers: 0 }), check, `decode, byte ${pos}`);
          assert.deepEqual(readdirSync(out), [], 'a failed decode leaves the folder empty');
          await assert.rejects(verifyArchive(chunked(damaged, 100), where, { ...read, workers: pool }), check, `verify, byte ${pos}`);
          if (kind === 'encrypted') await assert.rejects(verifyArchive(Readable.from([damaged]), where, { workers: 0 }), check, `verify without the key, byte ${pos}`);
        }
      }
      assert.equal(i, archive.length);
    });
  }

  it('a truncation at any length and bytes after the end are caught', async (t) => {
    const root = tempDir(t);
    for (const archive of [plain, sealed]) {
      const read: ReadOptions = archive === sealed ? { keyring, encryption } : {};
      // Every length, by decode and verify in turn (each meets every region).
      for (let len = 0; len < archive.length; len++) {
        const check = expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'truncated');
        if (len % 2) {
          await assert.rejects(verifyArchive(Readable.from([archive.subarray(0, len)]), 'cut', { workers: 0 }), check, `verify, length ${len}`);
          continue;
        }
        const out = join(root, `${archive === sealed ? 's' : 'p'}${len}`);
        mkdirSync(out);
        await assert.rejects(decodeToFolder(Readable.from([archive.subarray(0, len)]), out, 'cut', { ...read, workers: 0 }), check, `decode, length ${len}`);
        assert.deepEqual(readdirSync(out), []);
      }
      const out = join(root, 'extra');
      mkdirSync(out, { recursive: true });
      await assert.rejects(decodeToFolder(Readable.from([archive, Buffer.from('x')]), out, 'x', { ...read, workers: 0 }), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', `bytes after the end (at byte ${archive.length})`));
      await assert.rejects(verifyArchive(Readable.from([archive, Buffer.from('x')]), 'x', { workers: 0 }), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'bytes after the end'));
    }
  });

  /** Rewrites a frame's SHA-256 as someone who changed it on purpose would. */
  function reseal(a: Buffer, frameAt: number): void {
    const stored = a.readUInt32LE(frameAt + 16);
    createHash('sha256').update(a.subarray(frameAt, frameAt + 20)).update(a.subarray(frameAt + 52, frameAt + 52 + stored)).digest().copy(a, frameAt + 20);
  }

  it('blocks moved or cut with their checksums recomputed fail authentication; verify without the key says it did not authenticate', async (t) => {
    const folder = join(tempDir(t), 'in');
    mkdirSync(folder);
    writeFileSync(join(folder, 'data.sqlite'), randomBytes(3 * 64)); // incompressible: three raw frames of one size
    const enc = await encode(folder, { blockSize: 64, keyring, workers: 0 });
    const frames = regionsOf(enc.archive).filter((r) => r.says.includes('frame'));
    const [f0, f1, f2] = frames as [Region, Region, Region];
    const read = { keyring, encryption: enc.encryption, workers: 0 };

    const swapped = Buffer.from(enc.archive);
    enc.archive.copy(swapped, f0.start + 52, f1.start + 52, f1.end);
    enc.archive.copy(swapped, f1.start + 52, f0.start + 52, f0.end);
    reseal(swapped, f0.start);
    reseal(swapped, f1.start);
    const out = join(tempDir(t), 'out');
    mkdirSync(out);
    await assert.rejects(decodeToFolder(Readable.from([swapped]), out, 'swap', read), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'data.sqlite block 0', 'authentication failed'));
    const keyless = await verifyArchive(Readable.from([swapped]), 'swap', { workers: 0 });
    assert.equal(keyless.authenticated, false, 'checksums alone cannot see a deliberate change, and the result says so');
    await assert.rejects(verifyArchive(Readable.from([swapped]), 'swap', read), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'authentication failed'));

    // Drop the last block and mark the one before it final: the flag is authenticated.
    const cut = Buffer.concat([enc.archive.subarray(0, f2.start), enc.archive.subarray(f2.end)]);
    cut[f1.start + 2] = 1;
    reseal(cut, f1.start);
    await assert.rejects(verifyArchive(Readable.from([cut]), 'cut', read), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'data.sqlite block 1', 'authentication failed'));
  });
});

describe('keys', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const root = tempDir({ after });
  let folder: string;
  let enc: { archive: Buffer; encryption?: WrappedDataKey };
  before(async () => {
    folder = smallFolder(root);
    enc = await encode(folder, { blockSize: SMALL_BLOCK, keyring: keyringOf('k1', { k1 }), workers: 0 });
  });
  const decode = async (t: { after(fn: () => void): void }, archive: Buffer, options: ReadOptions): Promise<void> => {
    const out = join(tempDir(t), 'out');
    mkdirSync(out);
    await decodeToFolder(Readable.from([archive]), out, 'obj', { workers: 0, ...options });
    assert.deepEqual(readFileSync(join(out, 'data.sqlite')), readFileSync(join(folder, 'data.sqlite')));
  };
  const noKeyIn = (e: unknown): boolean => {
    const m = (e as Error).message;
    for (const k of [k1, k2]) assert.ok(!m.includes(k.toString('base64')) && !m.includes(k.toString('hex')), 'no key in the message');
    return true;
  };

  it('the wrapped data key record is what goes in .bkmetadata', () => {
    const e = enc.encryption as WrappedDataKey;
    assert.deepEqual(Object.keys(e).sort(), ['Algorithm', 'KeyId', 'Nonce', 'WrappedKey']);
    assert.equal(e.KeyId, 'k1');
    assert.equal(e.Algorithm, 'AES-256-GCM');
    assert.equal(Buffer.from(e.WrappedKey, 'base64').length, 48);
    assert.equal(Buffer.from(e.Nonce, 'base64').length, 12);
  });

  it('a missing key, a wrong key, a damaged record and a record of another backup are refused clearly', async (t) => {
    const out = join(tempDir(t), 'out');
    mkdirSync(out);
    const e = enc.encryption as WrappedDataKey;
    const src = (): Readable => Readable.from([enc.archive]);
    await assert.rejects(decodeToFolder(src(), out, 'obj', { keyring: keyringOf('k1', { k1 }) }), (x) => expectCode('LIFEBOAT_E_ENCRYPTION_KEY_MISSING', 'Body.Encryption')(x) && noKeyIn(x));
    await assert.rejects(decodeToFolder(src(), out, 'obj', { encryption: e }), expectCode('LIFEBOAT_E_ENCRYPTION_KEY_MISSING', 'no keyring'));
    await assert.rejects(decodeToFolder(src(), out, 'obj', { encryption: e, keyring: keyringOf('k2', { k2 }) }), (x) => expectCode('LIFEBOAT_E_ENCRYPTION_KEY_MISSING', "key 'k1'", 'k2')(x) && noKeyIn(x));
    await assert.rejects(decodeToFolder(src(), out, 'obj', { encryption: e, keyring: keyringOf('k1', { k1: k2 }) }), (x) => expectCode('LIFEBOAT_E_ENCRYPTION_KEY_MISMATCH', "key 'k1'")(x) && noKeyIn(x));
    const wrapped = Buffer.from(e.WrappedKey, 'base64');
    wrapped[3] = (wrapped[3] as number) ^ 1;
    await assert.rejects(decodeToFolder(src(), out, 'obj', { encryption: { ...e, WrappedKey: wrapped.toString('base64') }, keyring: keyringOf('k1', { k1 }) }), expectCode('LIFEBOAT_E_ENCRYPTION_KEY_MISMATCH'));
    await assert.rejects(decodeToFolder(src(), out, 'obj', { encryption: { ...e, KeyId: 'k 1' }, keyring: keyringOf('k1', { k1 }) }), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'KeyId'));
    const other = await encode(folder, { blockSize: SMALL_BLOCK, keyring: keyringOf('k1', { k1 }), workers: 0 });
    await assert.rejects(decodeToFolder(src(), out, 'obj', { encryption: other.encryption, keyring: keyringOf('k1', { k1 }) }), expectCode('LIFEBOAT_E_ENCRYPTION_KEY_MISMATCH', 'not this archive'));
    const unencrypted = await encode(folder, { blockSize: SMALL_BLOCK, workers: 0 });
    await assert.rejects(decodeToFolder(Readable.from([unencrypted.archive]), out, 'obj', { encryption: e, keyring: keyringOf('k1', { k1 }) }), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'not encrypted'));
    assert.deepEqual(readdirSync(out), []);
  });

  it('rotation: re-wrapped under a new key, the backup reads with a keyring of only the new key; the old record still reads with the old key', async (t) => {
    const rotated = keyringOf('k2', { k1, k2 });
    const rewrapped = rewrapDataKey(enc.encryption as WrappedDataKey, rotated);
    assert.equal(rewrapped.KeyId, 'k2');
    assert.notEqual(rewrapped.WrappedKey, enc.encryption?.WrappedKey);
    await decode(t, enc.archive, { encryption: rewrapped, keyring: keyringOf('k2', { k2 }) });
    await decode(t, enc.archive, { encryption: enc.encryption, keyring: rotated });
    await decode(t, enc.archive, { encryption: enc.encryption, keyring: keyringOf('k1', { k1 }) });
    assert.throws(() => rewrapDataKey(enc.encryption as WrappedDataKey, keyringOf('k2', { k2 })), expectCode('LIFEBOAT_E_ENCRYPTION_KEY_MISSING', "'k1'"));
    // Re-wrapping twice (k1 → k2 → k3) reads with k3 alone.
    const k3 = randomBytes(32);
    const again = rewrapDataKey(rewrapped, keyringOf('k3', { k2, k3 }));
    await decode(t, enc.archive, { encryption: again, keyring: keyringOf('k3', { k3 }) });
    const v = await verifyArchive(Readable.from([enc.archive]), 'obj', { encryption: again, keyring: keyringOf('k3', { k3 }), workers: 0 });
    assert.equal(v.authenticated, true);
  });

  it('parseKeyring reads the JSON keyring and refuses bad ones without showing keys', () => {
    const text = JSON.stringify({ current: 'k2', keys: { k1: k1.toString('base64'), k2: k2.toString('base64') } });
    const ring = parseKeyring(text);
    assert.equal(ring.current.id, 'k2');
    assert.deepEqual(ring.current.key, k2);
    assert.deepEqual([...ring.others.keys()], ['k1']);
    assert.deepEqual(ring.others.get('k1'), k1);
    const short = randomBytes(16).toString('base64');
    const cases: Array<[string, string]> = [
      ['{', 'not JSON'],
      ['[]', 'not a JSON object'],
      [JSON.stringify({ keys: {} }), '"current"'],
      [JSON.stringify({ current: 'k1', keys: [] }), '"keys"'],
      [JSON.stringify({ current: 'k1', keys: { k1: short } }), "key 'k1' is 16 bytes"],
      [JSON.stringify({ current: 'k9', keys: { k1: k1.toString('base64') } }), "current key id 'k9'"],
      [JSON.stringify({ current: 'k1', keys: { k1: 'not base64!' } }), 'not a base64 string'],
      [JSON.stringify({ current: 'k1', keys: { k1: 42 } }), 'not a base64 string'],
      [JSON.stringify({ current: 'a b', keys: { 'a b': k1.toString('base64') } }), "key id 'a b'"],
    ];
    for (const [bad, says] of cases) {
      assert.throws(() => parseKeyring(bad, 'LIFEBOAT_KEYRING'), (e: unknown) => expectCode('E_INVALIDARG', 'LIFEBOAT_KEYRING', says)(e) && !(e as Error).message.includes(short), says);
    }
  });
});

describe('version 1', () => {
  it('version 1 archives still decode and verify, and their damage is caught', async (t) => {
    const folder = smallFolder(tempDir(t));
    const v1 = await bytes(await packFolder(folder));
    assert.equal(v1[4], 1);
    const out = join(tempDir(t), 'out');
    mkdirSync(out);
    const s = await decodeToFolder(chunked(v1, 50), out, 'old');
    assert.equal(s.version, 1);
    for (const name of ['backup.metadata', 'data.sqlite', 'empty']) assert.deepEqual(readFileSync(join(out, name)), readFileSync(join(folder, name)));
    const v = await verifyArchive(chunked(v1, 50), 'old');
    assert.deepEqual({ version: v.version, files: v.files, storedBytes: v.storedBytes }, { version: 1, files: 3, storedBytes: v1.length });
    const damaged = Buffer.from(v1);
    damaged[v1.length - 5] = (damaged[v1.length - 5] as number) ^ 1;
    const out2 = join(tempDir(t), 'out2');
    mkdirSync(out2);
    await assert.rejects(decodeToFolder(Readable.from([damaged]), out2, 'old'), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'old'));
    assert.deepEqual(readdirSync(out2), []);
    await assert.rejects(verifyArchive(Readable.from([damaged]), 'old'), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'data.sqlite does not match'));
    await assert.rejects(verifyArchive(Readable.from([v1.subarray(0, 30)]), 'old'), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'truncated'));
    await assert.rejects(verifyArchive(Readable.from([Buffer.from('LBKA\x07')]), 'odd'), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'version 7'));
    await assert.rejects(verifyArchive(Readable.from([Buffer.from('PK\x03\x04zip')]), 'odd'), expectCode('LIFEBOAT_E_BACKUP_CORRUPT', 'not a Lifeboat backup archive'));
  });
});

describe('memory', () => {
  it('encoding and decoding 512 MiB, encrypted, streamed from one into the other, keeps the resident set flat', async (t) => {
    const root = tempDir(t);
    const input = join(root, 'in');
    mkdirSync(input);
    writeFileSync(join(input, 'backup.metadata'), '{}');
    // Mixed random and text-like data, written in 1 MiB pieces so the test itself stays small.
    const total = 512;
    const inputHash = createHash('sha256');
    const fh = await open(join(input, 'data.sqlite'), 'w');
    const text = textLike(1 << 20, 9);
    for (let i = 0; i < total; i++) {
      const piece = i % 2 ? randomBytes(1 << 20) : text;
      if (i % 2 === 0) piece.writeUInt32LE(i, 0); // no two text pieces alike
      inputHash.update(piece);
      await fh.write(piece);
    }
    await fh.close();
    const output = join(root, 'out');
    mkdirSync(output);

    const keyring = keyringOf('k1', { k1: randomBytes(32) });
    const baseline = process.memoryUsage.rss();
    let peak = baseline;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 20);
    try {
      const enc = await encodeFolder(input, { keyring });
      const [summary, result] = await Promise.all([
        decodeToFolder(enc.stream, output, 'big', { encryption: enc.encryption, keyring }),
        enc.result,
      ]);
      assert.equal(summary.bytes, total * (1 << 20) + 2);
      assert.equal(summary.storedBytes, result.bytes);
    } finally {
      clearInterval(timer);
    }
    const growthMb = (peak - baseline) / 1e6;
    t.diagnostic(`peak RSS growth ${growthMb.toFixed(1)} MB over a baseline of ${(baseline / 1e6).toFixed(1)} MB`);
    assert.ok(growthMb < 200, `peak RSS grew by ${growthMb.toFixed(1)} MB`);
    const outputHash = createHash('sha256');
    for await (const c of createReadStream(join(output, 'data.sqlite'), { highWaterMark: 1 << 20 })) outputHash.update(c as Buffer);
    assert.equal(outputHash.digest('hex'), inputHash.digest('hex'));
  });
});

// The per-block work of `.lbk` version 2 (docs/backup-format.md): seal = compress, encrypt,
// checksum one block into a frame; open = check, decrypt, decompress one frame. Used by the
// worker threads (worker.mjs) and, with `workers: 0`, inline on the calling thread.
// Plain JavaScript: workers run without a TypeScript loader (bin/lifeboat.mjs registers tsx on
// the main thread only). Types: codec.d.mts.
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { gunzipSync, gzipSync } from 'node:zlib';

export const CODEC_RAW = 0;
export const CODEC_ZSTD = 1;
export const CODEC_GZIP = 2;
export const FRAME_FIELDS = 20;
export const FRAME_HEADER = 52;
export const TAG_BYTES = 16;
export const DEFAULT_ZSTD_MODULE = 'zstd-napi/binding';
// zstd level 1, not the default 3: on the bench's partition (1109 MiB, half text, half base64)
// it compresses in 4.1 CPU-s against 5.1 and stores 516 MiB against 512.5; backups, bound by the
// workers, took ~12% less time. gzip is the fallback, so it is tuned for speed too: on 1 MiB of
// JSON-like text here, level 1 ran at 82 MiB/s (ratio 0.37) against level 6's 30 MiB/s (0.31).
const ZSTD_LEVEL = 1;
const GZIP_LEVEL = 1;

const require = createRequire(import.meta.url);
const zstdCache = new Map();

/**
 * The zstd binding at `specifier` (zstd-napi's low-level API), or null when it cannot be loaded
 * or does not work. Cached per specifier; tests pass a missing one to take the fallback path.
 */
export function loadZstd(specifier = DEFAULT_ZSTD_MODULE) {
  if (!zstdCache.has(specifier)) {
    let zstd = null;
    try {
      const binding = require(specifier);
      const cctx = new binding.CCtx();
      const dctx = new binding.DCtx();
      const probe = Buffer.alloc(256, 7);
      const packed = Buffer.alloc(64);
      const back = Buffer.alloc(256);
      const n = cctx.compress(packed, probe, ZSTD_LEVEL);
      if (dctx.decompress(back, packed.subarray(0, n)) === 256 && back.equals(probe)) zstd = { cctx, dctx };
    } catch {
      zstd = null;
    }
    zstdCache.set(specifier, zstd);
  }
  return zstdCache.get(specifier);
}

function asBuffer(u8) {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

// A buffer that owns its whole ArrayBuffer, so it can be transferred to another thread.
function owned(buf) {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) return buf;
  const copy = Buffer.allocUnsafeSlow(buf.length);
  buf.copy(copy);
  return copy;
}

/** 96-bit GCM nonce: u32 fileIndex, u32 blockIndex, u32 domain (0 block, 1 trailer digests). */
export function nonceFor(fileIndex, blockIndex, domain) {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32LE(fileIndex, 0);
  nonce.writeUInt32LE(blockIndex, 4);
  nonce.writeUInt32LE(domain, 8);
  return nonce;
}

// The worker's compression output when the job brings no room for it; reused, since each result is copied out of it.
let scratch = Buffer.allocUnsafeSlow(0);

// The stored bytes, or null when the block does not shrink. With `out` (room the caller owns,
// maybe in a region shared with it) zstd writes there and the result is a view on it: nothing
// is allocated, so no new buffer reaches the caller per block.
function compress(codec, plain, zstdModule, out) {
  if (codec === CODEC_ZSTD) {
    const zstd = loadZstd(zstdModule);
    if (!zstd) throw new Error('zstd is not available');
    const into = out && out.length >= plain.length - 1 ? out : undefined;
    if (!into && scratch.length < plain.length) scratch = Buffer.allocUnsafeSlow(plain.length);
    // A destination one byte short of the input: zstd fails when the block would not shrink.
    try {
      const n = zstd.cctx.compress((into ?? scratch).subarray(0, plain.length - 1), plain, ZSTD_LEVEL);
      if (into) return into.subarray(0, n);
      const packed = Buffer.allocUnsafeSlow(n);
      scratch.copy(packed, 0, 0, n);
      return packed;
    } catch {
      return null;
    }
  }
  if (codec === CODEC_GZIP) {
    const packed = gzipSync(plain, { level: GZIP_LEVEL });
    return packed.length < plain.length ? owned(packed) : null;
  }
  return null;
}

/**
 * Seals one block of plaintext into a frame: `parts` are its bytes in order (the 52-byte frame
 * header, then the stored bytes in one or two pieces), `spare` the job's buffers (plaintext, out)
 * that no part uses (the caller reuses them), `transfer` the buffers that may move to another thread.
 * job: { fileIndex, blockIndex, final, plain, out?, compression, zstdModule?, key?, headerSha }
 */
export function sealBlock(job) {
  const plain = asBuffer(job.plain);
  const out = job.out ? asBuffer(job.out) : undefined;
  let codec = CODEC_RAW;
  let body = plain;
  if (plain.length > 1 && job.compression !== CODEC_RAW) {
    const packed = compress(job.compression, plain, job.zstdModule, out);
    if (packed) {
      codec = job.compression;
      body = packed;
    }
  }
  const key = job.key ? asBuffer(job.key) : undefined;
  const head = Buffer.alloc(FRAME_HEADER);
  head.write('BK', 0, 'latin1');
  head[2] = job.final ? 1 : 0;
  head[3] = codec;
  head.writeUInt32LE(job.fileIndex, 4);
  head.writeUInt32LE(job.blockIndex, 8);
  head.writeUInt32LE(plain.length, 12);
  head.writeUInt32LE(body.length + (key ? TAG_BYTES : 0), 16);
  let stored = [body];
  if (key) {
    const cipher = createCipheriv('aes-256-gcm', key, nonceFor(job.fileIndex, job.blockIndex, 0));
    cipher.setAAD(Buffer.concat([asBuffer(job.headerSha), head.subarray(0, FRAME_FIELDS)]));
    const ct = owned(cipher.update(body));
    const rest = cipher.final(); // empty for GCM
    stored = rest.length ? [ct, owned(rest), owned(cipher.getAuthTag())] : [ct, owned(cipher.getAuthTag())];
  }
  const sum = createHash('sha256').update(head.subarray(0, FRAME_FIELDS));
  for (const part of stored) sum.update(part);
  sum.digest().copy(head, FRAME_FIELDS);
  const parts = [head, ...stored];
  // plain and out may be two places in one shared region: told apart by where they start.
  const uses = (b) => stored.some((p) => p.buffer === b.buffer && p.byteOffset === b.byteOffset);
  const spare = [plain, out].filter((b) => b && !uses(b));
  const transfer = new Set(parts.filter((p) => p.length >= 4096).map((p) => p.buffer));
  for (const b of spare) transfer.add(b.buffer);
  return { parts, spare, transfer: [...transfer] };
}

/**
 * Opens one frame. job: { header (52 bytes), payload, out?, key?, headerSha, zstdModule?, contents }.
 * `payload` and `out` (room for the plaintext, optional) are views on buffers the caller owns
 * whole. The caller has checked the header's structure (lengths, indexes, codec). Returns
 * { plain } when `contents` (possibly a view on payload or out), `spare` (the job's buffers that
 * `plain` does not use, for reuse), `transfer`; or { error: { kind } } with kind one of 'checksum',
 * 'auth', 'codec', 'decompress'.
 */
export function openBlock(job) {
  const header = asBuffer(job.header);
  const payload = asBuffer(job.payload);
  const out = job.out ? asBuffer(job.out) : undefined;
  // plain is a view at the start of payload or out, or a buffer of its own; payload and out may be
  // two places in one shared region, so they are told apart by where they start.
  const holds = (b, plain) => b.buffer === plain.buffer && b.byteOffset === plain.byteOffset;
  const result = (plain) => {
    const spare = [payload, out].filter((b) => b && (!plain || !holds(b, plain)));
    const transfer = new Set(spare.map((b) => b.buffer));
    if (plain) transfer.add(plain.buffer);
    return plain ? { plain, spare, transfer: [...transfer] } : { spare, transfer: [...transfer] };
  };
  const failed = (kind) => ({ error: { kind }, ...result(undefined) });
  const sum = createHash('sha256').update(header.subarray(0, FRAME_FIELDS)).update(payload).digest();
  if (!sum.equals(header.subarray(FRAME_FIELDS, FRAME_HEADER))) return failed('checksum');
  if (!job.contents) return result(undefined);
  const codec = header[3];
  const plainLength = header.readUInt32LE(12);
  let body = payload;
  if (job.key) {
    const fileIndex = header.readUInt32LE(4);
    const blockIndex = header.readUInt32LE(8);
    const decipher = createDecipheriv('aes-256-gcm', asBuffer(job.key), nonceFor(fileIndex, blockIndex, 0));
    decipher.setAAD(Buffer.concat([asBuffer(job.headerSha), header.subarray(0, FRAME_FIELDS)]));
    decipher.setAuthTag(payload.subarray(payload.length - TAG_BYTES));
    try {
      const a = decipher.update(payload.subarray(0, payload.length - TAG_BYTES));
      const b = decipher.final();
      body = owned(b.length ? Buffer.concat([a, b]) : a);
    } catch {
      return failed('auth');
    }
  }
  if (codec === CODEC_RAW) return result(body);
  if (codec === CODEC_ZSTD) {
    const zstd = loadZstd(job.zstdModule);
    if (!zstd) return failed('codec');
    // Exactly the recorded length: more output than that fails instead of growing memory.
    const plain = out && out.length >= plainLength ? out.subarray(0, plainLength) : Buffer.allocUnsafeSlow(plainLength);
    try {
      if (zstd.dctx.decompress(plain, body) !== plainLength) return failed('decompress');
    } catch {
      return failed('decompress');
    }
    return result(plain);
  }
  if (codec === CODEC_GZIP) {
    let plain;
    try {
      plain = gunzipSync(body, { maxOutputLength: Math.max(plainLength, 1) });
    } catch {
      return failed('decompress');
    }
    if (plain.length !== plainLength) return failed('decompress');
    return result(owned(plain));
  }
  return failed('decompress');
}

/**
 * The byte layout of `.lbk` version 2 (specified in docs/backup-format.md): header, block frame
 * fields, trailer and footer, each with its encoder and its checks. No I/O; encoder.ts and decoder.ts stream.
 * Little-endian throughout.
 */
import { createHash } from 'node:crypto';
import { CODEC_GZIP, CODEC_RAW, CODEC_ZSTD, type Codec, FRAME_FIELDS, TAG_BYTES } from './codec.mjs';

export const MAGIC = Buffer.from('LBKA', 'latin1');
export const VERSION = 2;
export const HEADER_FIXED = 48;
export const SHA_BYTES = 32;
export const TRAILER_MAGIC = Buffer.from('LBKT', 'latin1');
export const TRAILER_FIXED = 8;
export const TRAILER_ENTRY = 24;
export const FOOTER_BYTES = 32;
export const FOOTER_MAGIC = Buffer.from('LBKA2END', 'latin1');
export const MIN_BLOCK = 16;
export const MAX_BLOCK = 64 * 1024 * 1024;
export const DEFAULT_BLOCK = 1024 * 1024;
export const MAX_FILES = 65535;
export const CIPHER_NONE = 0;
export const CIPHER_AES256GCM = 1;
/** Names the writer accepts and the reader creates: flat, no separators, not `.` or `..`. */
export const SAFE_NAME = /^[A-Za-z0-9._-]{1,255}$/;

export type Compression = 'zstd' | 'gzip' | 'none';
export const COMPRESSION_CODE: Readonly<Record<Compression, Codec>> = { none: CODEC_RAW, zstd: CODEC_ZSTD, gzip: CODEC_GZIP };
export const COMPRESSION_NAME: Readonly<Record<number, Compression>> = { [CODEC_RAW]: 'none', [CODEC_ZSTD]: 'zstd', [CODEC_GZIP]: 'gzip' };

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function safeName(name: string): boolean {
  return SAFE_NAME.test(name) && name !== '.' && name !== '..';
}

export interface Header {
  readonly compression: Codec;
  readonly cipher: 0 | 1;
  readonly blockSize: number;
  readonly archiveId: Buffer;
  /** 16 bytes; zeros when not encrypted. */
  readonly keyCheck: Buffer;
  readonly names: readonly string[];
}

/** The whole header: fixed part, names, SHA-256 of everything before it. */
export function encodeHeader(h: Header): Buffer {
  const fixed = Buffer.alloc(HEADER_FIXED);
  MAGIC.copy(fixed, 0);
  fixed[4] = VERSION;
  fixed[5] = h.compression;
  fixed[6] = h.cipher;
  fixed.writeUInt32LE(h.blockSize, 8);
  fixed.writeUInt32LE(h.names.length, 12);
  h.archiveId.copy(fixed, 16);
  h.keyCheck.copy(fixed, 32);
  const names = h.names.map((n) => Buffer.concat([Buffer.from([n.length]), Buffer.from(n, 'latin1')]));
  const body = Buffer.concat([fixed, ...names]);
  return Buffer.concat([body, sha256(body)]);
}

/** The fixed part's fields, or why they are wrong (the checksum is checked after the names). */
export function parseHeaderFixed(b: Buffer): { compression: Codec; cipher: 0 | 1; blockSize: number; fileCount: number; archiveId: Buffer; keyCheck: Buffer } | string {
  if (b[5] !== CODEC_RAW && b[5] !== CODEC_ZSTD && b[5] !== CODEC_GZIP) return `unknown compression ${b[5]}`;
  if (b[6] !== CIPHER_NONE && b[6] !== CIPHER_AES256GCM) return `unknown cipher ${b[6]}`;
  if (b[7] !== 0) return 'reserved byte is not zero';
  const blockSize = b.readUInt32LE(8);
  if (blockSize < MIN_BLOCK || blockSize > MAX_BLOCK) return `block size ${blockSize} is out of range`;
  const fileCount = b.readUInt32LE(12);
  if (fileCount > MAX_FILES) return `file count ${fileCount} is out of range`;
  const keyCheck = Buffer.from(b.subarray(32, 48));
  if (b[6] === CIPHER_NONE && keyCheck.some((x) => x !== 0)) return 'key check of an unencrypted archive is not zero';
  return { compression: b[5], cipher: b[6], blockSize, fileCount, archiveId: Buffer.from(b.subarray(16, 32)), keyCheck };
}

export interface FrameFields {
  readonly final: boolean;
  readonly codec: number;
  readonly fileIndex: number;
  readonly blockIndex: number;
  readonly plainLength: number;
  readonly storedLength: number;
}

export function readFrameFields(b: Buffer): FrameFields & { marker: boolean; flags: number } {
  return {
    marker: b[0] === 0x42 && b[1] === 0x4b, flags: b[2] as number, final: ((b[2] as number) & 1) === 1, codec: b[3] as number,
    fileIndex: b.readUInt32LE(4), blockIndex: b.readUInt32LE(8), plainLength: b.readUInt32LE(12), storedLength: b.readUInt32LE(16),
  };
}

/**
 * Why a frame's fields cannot be the next frame (file `fileIndex`, block `blockIndex`) of an
 * archive with this header, or undefined. These checks come before the checksum: they decide how
 * many bytes the frame has, so they must hold for the frame to be read at all.
 */
export function frameProblem(b: Buffer, h: { compression: number; cipher: number; blockSize: number }, fileIndex: number, blockIndex: number): string | undefined {
  const f = readFrameFields(b.subarray(0, FRAME_FIELDS));
  const tag = h.cipher === CIPHER_NONE ? 0 : TAG_BYTES;
  if (!f.marker) return 'no frame marker';
  if ((f.flags & ~1) !== 0) return `unknown flags ${f.flags}`;
  if (f.codec !== CODEC_RAW && f.codec !== h.compression) return `codec ${f.codec} is not the archive's`;
  if (f.fileIndex !== fileIndex) return `file index ${f.fileIndex} where ${fileIndex} was due`;
  if (f.blockIndex !== blockIndex) return `block index ${f.blockIndex} where ${blockIndex} was due`;
  if (f.plainLength > h.blockSize) return `block length ${f.plainLength} exceeds the block size`;
  if (!f.final && f.plainLength !== h.blockSize) return `a block that is not its file's last holds ${f.plainLength} bytes, not the block size`;
  if (f.final && blockIndex > 0 && f.plainLength === 0) return 'an empty last block after other blocks';
  if (f.codec === CODEC_RAW && f.storedLength !== f.plainLength + tag) return `stored length ${f.storedLength} of a raw block of ${f.plainLength} bytes`;
  if (f.codec !== CODEC_RAW && (f.storedLength < tag + 1 || f.storedLength >= f.plainLength + tag)) return `stored length ${f.storedLength} of a compressed block of ${f.plainLength} bytes`;
  return undefined;
}

export interface TrailerFile {
  /** Plaintext bytes of the file. */
  readonly bytes: number;
  /** Bytes of the file's frames in the object, frame headers included. */
  readonly storedBytes: number;
  readonly blocks: number;
}

/** The trailer's index part: magic, file count, one entry per file. */
export function encodeTrailerIndex(files: readonly TrailerFile[]): Buffer {
  const b = Buffer.alloc(TRAILER_FIXED + TRAILER_ENTRY * files.length);
  TRAILER_MAGIC.copy(b, 0);
  b.writeUInt32LE(files.length, 4);
  files.forEach((f, i) => {
    const at = TRAILER_FIXED + TRAILER_ENTRY * i;
    b.writeBigUInt64LE(BigInt(f.bytes), at);
    b.writeBigUInt64LE(BigInt(f.storedBytes), at + 8);
    b.writeUInt32LE(f.blocks, at + 16);
  });
  return b;
}

/** The index entries, or why they are malformed. */
export function parseTrailerIndex(b: Buffer, fileCount: number): TrailerFile[] | string {
  if (!b.subarray(0, 4).equals(TRAILER_MAGIC)) return 'no trailer marker';
  if (b.readUInt32LE(4) !== fileCount) return `file count ${b.readUInt32LE(4)} differs from the header's ${fileCount}`;
  const files: TrailerFile[] = [];
  for (let i = 0; i < fileCount; i++) {
    const at = TRAILER_FIXED + TRAILER_ENTRY * i;
    const bytes = b.readBigUInt64LE(at);
    const storedBytes = b.readBigUInt64LE(at + 8);
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER) || storedBytes > BigInt(Number.MAX_SAFE_INTEGER)) return `sizes of file ${i} out of range`;
    if (b.readUInt32LE(at + 20) !== 0) return `reserved bytes of file ${i} are not zero`;
    files.push({ bytes: Number(bytes), storedBytes: Number(storedBytes), blocks: b.readUInt32LE(at + 16) });
  }
  return files;
}

export function trailerLength(fileCount: number, cipher: number): number {
  return TRAILER_FIXED + TRAILER_ENTRY * fileCount + SHA_BYTES * fileCount + (cipher === CIPHER_NONE ? 0 : TAG_BYTES) + SHA_BYTES;
}

export function encodeFooter(trailerOffset: number, trailerBytes: number): Buffer {
  const b = Buffer.alloc(FOOTER_BYTES);
  b.writeBigUInt64LE(BigInt(trailerOffset), 0);
  b.writeUInt32LE(trailerBytes, 8);
  sha256(b.subarray(0, 16)).copy(b, 16, 0, 8);
  FOOTER_MAGIC.copy(b, 24);
  return b;
}

/** Why a footer is not the one of a trailer at `trailerOffset` of `trailerBytes`, or undefined. */
export function footerProblem(b: Buffer, trailerOffset: number, trailerBytes: number): string | undefined {
  if (!b.subarray(24, 32).equals(FOOTER_MAGIC)) return 'no end marker';
  if (!sha256(b.subarray(0, 16)).subarray(0, 8).equals(b.subarray(16, 24))) return 'checksum mismatch';
  if (b.readBigUInt64LE(0) !== BigInt(trailerOffset)) return `trailer offset ${b.readBigUInt64LE(0)} where the trailer is at ${trailerOffset}`;
  if (b.readUInt32LE(8) !== trailerBytes) return `trailer length ${b.readUInt32LE(8)} where it is ${trailerBytes}`;
  if (b.readUInt32LE(12) !== 0) return 'reserved bytes are not zero';
  return undefined;
}

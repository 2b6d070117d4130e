/** Types of codec.mjs: the per-block work of `.lbk` version 2, shared by workers and the inline path. */

export declare const CODEC_RAW: 0;
export declare const CODEC_ZSTD: 1;
export declare const CODEC_GZIP: 2;
export declare const FRAME_FIELDS: 20;
export declare const FRAME_HEADER: 52;
export declare const TAG_BYTES: 16;
export declare const DEFAULT_ZSTD_MODULE: string;

export type Codec = 0 | 1 | 2;

export interface ZstdBinding {
  readonly cctx: unknown;
  readonly dctx: unknown;
}

export interface SealJob {
  readonly fileIndex: number;
  readonly blockIndex: number;
  readonly final: boolean;
  readonly plain: Uint8Array;
  /** Room for the compressed bytes (at least the block's length less one), on a buffer the caller owns whole: the stored bytes are then a view on it. */
  readonly out?: Uint8Array | undefined;
  /** The archive's compression; the block is stored raw when that does not shrink it. */
  readonly compression: Codec;
  readonly zstdModule?: string | undefined;
  /** The archive's block key (not the data key); absent when not encrypted. */
  readonly key?: Uint8Array | undefined;
  readonly headerSha: Uint8Array;
}

export interface SealResult {
  /** The frame's bytes in order: the 52-byte frame header, then the stored bytes in pieces. */
  readonly parts: readonly Uint8Array[];
  /** The job's buffers (plaintext, out) that no part uses, for the caller to reuse. */
  readonly spare?: readonly Uint8Array[];
  /** Buffers that may move to another thread (not sent back by the worker). */
  readonly transfer?: readonly ArrayBuffer[];
}

export interface OpenJob {
  /** The 52-byte frame header (fields and SHA-256). */
  readonly header: Uint8Array;
  /** The stored bytes: a view on a buffer the caller owns whole. */
  readonly payload: Uint8Array;
  /** Room for the plaintext (at least the block's length), on a buffer the caller owns whole. */
  readonly out?: Uint8Array | undefined;
  readonly key?: Uint8Array | undefined;
  readonly headerSha: Uint8Array;
  readonly zstdModule?: string | undefined;
  /** Decrypt and decompress too; false checks only the stored bytes' SHA-256. */
  readonly contents: boolean;
}

export type OpenErrorKind = 'checksum' | 'auth' | 'codec' | 'decompress';

export interface OpenResult {
  /** The plaintext (when `contents`): maybe a view on the job's payload or out. */
  readonly plain?: Uint8Array;
  /** The job's buffers `plain` does not use, for reuse. */
  readonly spare?: readonly Uint8Array[];
  readonly error?: { readonly kind: OpenErrorKind };
  readonly transfer?: readonly ArrayBuffer[];
}

export declare function loadZstd(specifier?: string): ZstdBinding | null;
export declare function nonceFor(fileIndex: number, blockIndex: number, domain: number): Buffer;
export declare function sealBlock(job: SealJob): SealResult;
export declare function openBlock(job: OpenJob): OpenResult;

/**
 * What the encoder and the decoder of `.lbk` version 2 share: small buffer helpers, the error for
 * damage, the block pool they run on (their own or the caller's) and the block buffers they take
 * from a region shared with it (pool.ts `share`), laid out alike so that one region serves both.
 */
import { LifeboatError } from '../../core/errors.ts';
import { alignUp } from '../../fs/direct-io.ts';
import { type BlockRunner, type SharedRegion, createBlockPool, defaultWorkers } from './pool.ts';

export const noop = (): void => undefined;

/** A Buffer over the same memory (Buffer.from(Uint8Array) would copy). */
export function view(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function corrupt(where: string, what: string): LifeboatError {
  return new LifeboatError('LIFEBOAT_E_BACKUP_CORRUPT', `Backup data ${where} is damaged: ${what}.`);
}

export function runnerOf(workers: number | BlockRunner | undefined): { runner: BlockRunner; own: boolean } {
  if (typeof workers === 'object') return { runner: workers, own: false };
  return { runner: createBlockPool(workers ?? defaultWorkers()), own: true };
}

/** At most this much of a region shared with the workers per archive; past it, blocks get buffers of their own. */
const SHARED_BYTES = 64 * 1024 * 1024;

/**
 * The free block buffers of one encode or decode: slots of a region shared with the pool
 * (pool.ts `share`), `stride` apart and `size` long, and past them buffers of their own that
 * came back from the workers. The encoder and the decoder ask for the same region (slots of a
 * block and its tag, as many as a decode needs) so that one region, kept by the pool, serves
 * backups and restores in turn; slots are handed out latest freed first, so pages no block
 * needed are never touched and cost no memory.
 */
export class BlockBuffers {
  private readonly free: Buffer[] = [];
  private readonly region: SharedRegion | undefined;

  private readonly stride: number;

  /** Slots of `size` bytes, at least `room` apart (rounded up to DIRECT_ALIGN, so that each slot can take a direct read). */
  constructor(runner: BlockRunner, private readonly wanted: number, room: number, private readonly size = room) {
    const stride = alignUp(room);
    this.stride = stride;
    const count = Math.min(wanted, Math.floor(SHARED_BYTES / stride));
    if (count < 1) return;
    this.region = runner.share(count * stride);
    for (let i = count - 1; i >= 0; i--) this.free.push(this.slot(i));
  }

  private slot(i: number): Buffer {
    return (this.region as SharedRegion).buffer.subarray(i * this.stride, i * this.stride + this.size);
  }

  /** The whole slot `u8` lies in, when it is a view on the shared region. */
  slotOf(u8: Uint8Array): Buffer | undefined {
    const r = this.region?.buffer;
    return r && u8.buffer === r.buffer ? this.slot(Math.floor((u8.byteOffset - r.byteOffset) / this.stride)) : undefined;
  }

  /** A free buffer of `size` bytes, if any. */
  take(): Buffer | undefined {
    return this.free.pop();
  }

  /** `u8` is free again: its slot, or its whole buffer when that is `size` long (a few are kept). */
  give(u8: Uint8Array): void {
    const slot = this.slotOf(u8);
    if (slot) this.free.push(slot);
    else if (u8.buffer.byteLength === this.size && this.free.length < this.wanted) this.free.push(Buffer.from(u8.buffer as ArrayBuffer));
  }

  /** Call once no job on the region is in flight. */
  release(): void {
    this.region?.release();
  }
}

/** Blocks of a file on disk read ahead of the one being hashed (see `encodeFiles`). */
export const READ_AHEAD = 2;

/**
 * Slots for a queue of `window` blocks, the same for the encoder and the decoder (so one region
 * serves both in turn): two per queued block (plaintext and stored bytes), those of the block
 * waiting for room in the queue, of the one being hashed and of the reads ahead of it, and the
 * one being written.
 * Short of slots, blocks get buffers of their own, which is slower.
 */
export const slotsFor = (window: number): number => window * 2 + 5 + READ_AHEAD;

/**
 * The block pool of `.lbk` version 2: a few worker threads that seal (compress, encrypt, checksum)
 * and open (check, decrypt, decompress) blocks in parallel. Callers keep the order and bound the
 * number of blocks in flight; the pool only runs jobs. Buffers move to and from the workers by
 * transfer, not copy, and come back for reuse where they can. Workers are unref'd while idle, so
 * a pool that is not closed does not keep a process alive; a pool with jobs in flight does.
 *
 * A caller that works through many blocks keeps them in a region it shares with the workers once
 * (`share`): views on it go in jobs and come back in results as places in it, not as buffers, so
 * no thread sees a new buffer per block (shared.mjs says why that matters).
 *
 * `size: 0` gives the inline runner: the same jobs on the calling thread (for tiny archives and tests).
 *
 * Workers run at a lower CPU priority (`nice`, BLOCK_WORKER_NICE by default; Linux, where a thread
 * has its own nice value): when the cores are contended, the threads that serve the partitions,
 * and the one writing a restore's blocks in order, come before compressing the blocks ahead.
 * On idle cores it changes nothing.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { openBlock, sealBlock, type OpenJob, type OpenResult, type SealJob, type SealResult } from './codec.mjs';
import { alignedRegion } from '../../fs/direct-io.ts';
import { fromShared, toShared } from './shared.mjs';

export interface BlockRunner {
  /** Threads doing the work (0 for the inline runner); callers keep about twice this many blocks in flight. */
  readonly size: number;
  /** Runs a job; the buffers in `transfer` move to the worker (the caller must not touch them until the result comes back). */
  seal(job: SealJob, transfer: readonly ArrayBuffer[]): Promise<SealResult>;
  open(job: OpenJob, transfer: readonly ArrayBuffer[]): Promise<OpenResult>;
  /**
   * A region of `bytes` the workers can see: views on it in a job reach the worker without moving,
   * and views on it in a result come back the same way. The caller owns its use (which block is
   * where) and must not write where a job in flight reads or writes. Its bytes are whatever an
   * earlier user left (a released region is handed out again). It is an `alignedRegion`
   * (src/fs/direct-io.ts): places in it DIRECT_ALIGN apart can take direct I/O.
   */
  share(bytes: number): SharedRegion;
  close(): Promise<void>;
}

export interface SharedRegion {
  /** All of the region. */
  readonly buffer: Buffer;
  /** The workers let go of it; call once no job on it is in flight. */
  release(): void;
}

/**
 * The block workers' nice value by default. Measured on the bench's 1.1 GiB partition (2 cores,
 * interleaved rounds in one process): restores 1.95–2.07 s against 2.03–2.31 s at nice 0, backups
 * 2.74–3.12 s against 2.88–3.10 s; the event loop, which orders, hashes and writes, waits less.
 */
export const BLOCK_WORKER_NICE = 10;

export interface BlockPoolOptions {
  /** The workers' nice value, 0 (the caller's priority) to 19 (lowest); BLOCK_WORKER_NICE by default. */
  readonly nice?: number;
}

/** Workers by default: min(4, cores). */
export function defaultWorkers(): number {
  return Math.min(4, availableParallelism());
}

interface Pending {
  readonly resolve: (out: SealResult | OpenResult) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

/** A pool of `size` worker threads (size ≥ 1), or the inline runner for size 0. */
export function createBlockPool(size = defaultWorkers(), options: BlockPoolOptions = {}): BlockRunner {
  if (!Number.isInteger(size) || size < 0 || size > 64) throw new RangeError(`block pool size ${size} is not 0..64`);
  const nice = options.nice ?? BLOCK_WORKER_NICE;
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) throw new RangeError(`block worker nice ${nice} is not 0..19`);
  return size === 0 ? inlineRunner : new BlockPool(size, nice);
}

const inlineRunner: BlockRunner = {
  size: 0,
  seal: async (job) => sealBlock(job),
  open: async (job) => openBlock(job),
  share: (bytes) => ({ buffer: Buffer.from(alignedRegion(bytes), 0, bytes), release: () => undefined }),
  close: async () => undefined,
};

/** Released shared regions a pool keeps for reuse, at most (an encode's and a decode's, a few times over). */
const MAX_IDLE_SHARED_BYTES = 96 * 1024 * 1024;

/** Buffers that can move to a worker: not empty, and not shared (a shared one is there already). */
const movable = (transfer: readonly ArrayBuffer[]): ArrayBuffer[] => transfer.filter((b) => b.byteLength > 0 && !((b as unknown) instanceof SharedArrayBuffer));

class BlockPool implements BlockRunner {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private inFlight = 0;
  private broken: Error | undefined;
  private readonly regions = new Map<number, SharedArrayBuffer>();
  private readonly regionIds = new Map<SharedArrayBuffer, number>();
  private nextRegion = 0;
  /** Regions released, oldest first, for `share` to hand out again. */
  private readonly idle: SharedArrayBuffer[] = [];

  constructor(size: number, nice: number) {
    this.size = size;
    for (let i = 0; i < size; i++) {
      // execArgv []: the worker is plain JavaScript and needs no loader (tsx) of the parent's.
      const worker = new Worker(new URL('./worker.mjs', import.meta.url), { execArgv: [], workerData: { nice } });
      const slot: Slot = { worker, pending: new Map() };
      worker.on('message', (msg: { id: number; out?: SealResult | OpenResult; error?: string }) => {
        const p = slot.pending.get(msg.id);
        if (!p) return;
        slot.pending.delete(msg.id);
        this.done();
        if (msg.error !== undefined) p.reject(new Error(`block worker: ${msg.error}`));
        else {
          try {
            p.resolve(fromShared((msg.out ?? {}) as Record<string, unknown>, (id) => this.regions.get(id)) as SealResult | OpenResult);
          } catch (err) {
            p.reject(err as Error);
          }
        }
      });
      const fail = (err: Error): void => {
        this.broken ??= err;
        for (const p of slot.pending.values()) {
          this.done();
          p.reject(err);
        }
        slot.pending.clear();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`block worker exited with code ${code}`)));
      worker.unref();
      this.slots.push(slot);
    }
  }

  seal(job: SealJob, transfer: readonly ArrayBuffer[]): Promise<SealResult> {
    return this.run('seal', job, transfer) as Promise<SealResult>;
  }

  open(job: OpenJob, transfer: readonly ArrayBuffer[]): Promise<OpenResult> {
    return this.run('open', job, transfer) as Promise<OpenResult>;
  }

  share(bytes: number): SharedRegion {
    // A region let go of is kept for the next archive: a new one per archive would be freed only
    // once every worker's heap collected its handle on it, and idle workers seldom collect.
    const at = this.idle.findIndex((r) => r.byteLength >= bytes && r.byteLength - bytes < 65536); // alignedRegion rounds up to 64 KiB
    let region = at >= 0 ? (this.idle.splice(at, 1)[0] as SharedArrayBuffer) : undefined;
    if (!region) {
      region = alignedRegion(bytes);
      const id = this.nextRegion++;
      this.regions.set(id, region);
      this.regionIds.set(region, id);
      // Before any job that names it: a worker takes its messages in order.
      for (const s of this.slots) s.worker.postMessage({ op: 'share', shared: id, region });
    }
    const kept = region;
    let released = false;
    return {
      buffer: Buffer.from(kept, 0, bytes),
      release: () => {
        if (released) return;
        released = true;
        this.idle.push(kept);
        let idleBytes = this.idle.reduce((n, r) => n + r.byteLength, 0);
        while (idleBytes > MAX_IDLE_SHARED_BYTES) {
          const old = this.idle.shift() as SharedArrayBuffer;
          idleBytes -= old.byteLength;
          const id = this.regionIds.get(old) as number;
          this.regions.delete(id);
          this.regionIds.delete(old);
          for (const s of this.slots) s.worker.postMessage({ op: 'unshare', shared: id });
        }
      },
    };
  }

  async close(): Promise<void> {
    this.broken ??= new Error('block pool closed');
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private run(op: 'seal' | 'open', job: SealJob | OpenJob, transfer: readonly ArrayBuffer[]): Promise<SealResult | OpenResult> {
    if (this.broken) return Promise.reject(this.broken);
    // The least busy worker; callers bound the total, so queues stay short.
    let slot = this.slots[0] as Slot;
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (this.inFlight++ === 0) for (const s of this.slots) s.worker.ref();
      try {
        slot.worker.postMessage({ id, op, job: toShared(job, (r) => this.regionIds.get(r)) }, movable(transfer));
      } catch (err) {
        slot.pending.delete(id);
        this.done();
        reject(err as Error);
      }
    });
  }

  private done(): void {
    if (--this.inFlight === 0) for (const s of this.slots) s.worker.unref();
  }
}

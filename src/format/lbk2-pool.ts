/**
 * The block pool of `.lbk` version 2: a few worker threads that seal (compress, encrypt, checksum)
 * and open (check, decrypt, decompress) blocks in parallel. Callers keep the order and bound the
 * number of blocks in flight; the pool only runs jobs. Buffers move to and from the workers by
 * transfer, not copy, and come back for reuse where they can. Workers are unref'd while idle, so
 * a pool that is not closed does not keep a process alive; a pool with jobs in flight does.
 *
 * `size: 0` gives the inline runner: the same jobs on the calling thread (for tiny archives and tests).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { openBlock, sealBlock, type OpenJob, type OpenResult, type SealJob, type SealResult } from './lbk2-codec.mjs';

export interface BlockRunner {
  /** Threads doing the work (0 for the inline runner); callers keep about twice this many blocks in flight. */
  readonly size: number;
  /** Runs a job; the buffers in `transfer` move to the worker (the caller must not touch them until the result comes back). */
  seal(job: SealJob, transfer: readonly ArrayBuffer[]): Promise<SealResult>;
  open(job: OpenJob, transfer: readonly ArrayBuffer[]): Promise<OpenResult>;
  close(): Promise<void>;
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
export function createBlockPool(size = defaultWorkers()): BlockRunner {
  if (!Number.isInteger(size) || size < 0 || size > 64) throw new RangeError(`block pool size ${size} is not 0..64`);
  return size === 0 ? inlineRunner : new BlockPool(size);
}

const inlineRunner: BlockRunner = {
  size: 0,
  seal: async (job) => sealBlock(job),
  open: async (job) => openBlock(job),
  close: async () => undefined,
};

class BlockPool implements BlockRunner {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private inFlight = 0;
  private broken: Error | undefined;

  constructor(size: number) {
    this.size = size;
    for (let i = 0; i < size; i++) {
      // execArgv []: the worker is plain JavaScript and needs no loader (tsx) of the parent's.
      const worker = new Worker(new URL('./lbk2-worker.mjs', import.meta.url), { execArgv: [] });
      const slot: Slot = { worker, pending: new Map() };
      worker.on('message', (msg: { id: number; out?: SealResult | OpenResult; error?: string }) => {
        const p = slot.pending.get(msg.id);
        if (!p) return;
        slot.pending.delete(msg.id);
        this.done();
        if (msg.error !== undefined) p.reject(new Error(`block worker: ${msg.error}`));
        else p.resolve(msg.out ?? {});
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
        slot.worker.postMessage({ id, op, job }, transfer.filter((b) => b.byteLength > 0));
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

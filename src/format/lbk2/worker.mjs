// A worker thread of the `.lbk` v2 block pool (pool.ts): runs seal/open jobs from
// codec.mjs and hands the resulting buffers back without copying (transfer). Blocks in a
// region shared with it once ('share') arrive and go back as places in it (shared.mjs).
// Plain JavaScript: it runs without a TypeScript loader.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { openBlock, sealBlock } from './codec.mjs';
import { fromShared, toShared } from './shared.mjs';

// This thread only (pool.ts says why): on Linux a thread is a task with its own id and nice
// value, named by /proc/thread-self. Elsewhere, or where it is not allowed, the worker runs as is.
if (workerData?.nice > 0) {
  try {
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), workerData.nice);
  } catch {
    // not Linux, or no /proc: same priority as the caller
  }
}

const regions = new Map(); // id -> SharedArrayBuffer
const ids = new Map(); // SharedArrayBuffer -> id
// A shared region is with the parent already: it cannot, and need not, be transferred.
const movable = (b) => b.byteLength > 0 && !(b instanceof SharedArrayBuffer);

parentPort.on('message', (msg) => {
  if (msg.op === 'share') {
    regions.set(msg.shared, msg.region);
    ids.set(msg.region, msg.shared);
    return;
  }
  if (msg.op === 'unshare') {
    ids.delete(regions.get(msg.shared));
    regions.delete(msg.shared);
    return;
  }
  try {
    const job = fromShared(msg.job, (id) => regions.get(id));
    const { transfer, ...out } = msg.op === 'seal' ? sealBlock(job) : openBlock(job);
    parentPort.postMessage({ id: msg.id, out: toShared(out, (r) => ids.get(r)) }, transfer.filter(movable));
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
  }
});

// A worker thread of the `.lbk` v2 block pool (lbk2-pool.ts): runs seal/open jobs from
// lbk2-codec.mjs and hands the resulting buffers back without copying (transfer). Blocks in a
// region shared with it once ('share') arrive and go back as places in it (lbk2-shared.mjs).
// Plain JavaScript: it runs without a TypeScript loader.
import { parentPort } from 'node:worker_threads';
import { openBlock, sealBlock } from './lbk2-codec.mjs';
import { fromShared, toShared } from './lbk2-shared.mjs';

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

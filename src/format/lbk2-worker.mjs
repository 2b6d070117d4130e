// A worker thread of the `.lbk` v2 block pool (lbk2-pool.ts): runs seal/open jobs from
// lbk2-codec.mjs and hands the resulting buffers back without copying (transfer).
// Plain JavaScript: it runs without a TypeScript loader.
import { parentPort } from 'node:worker_threads';
import { openBlock, sealBlock } from './lbk2-codec.mjs';

parentPort.on('message', (msg) => {
  try {
    const { transfer, ...out } = msg.op === 'seal' ? sealBlock(msg.job) : openBlock(msg.job);
    parentPort.postMessage({ id: msg.id, out }, transfer.filter((b) => b.byteLength > 0));
  } catch (err) {
    parentPort.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
  }
});

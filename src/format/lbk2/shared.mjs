// Shared regions for the `.lbk` v2 block pool (pool.ts, worker.mjs): a caller's blocks
// can live in a SharedArrayBuffer that every worker was given once, so a job names a place in it
// ({ shared, at, length }) instead of moving a buffer to the worker and back.
//
// Why: every buffer a thread receives by transfer is a new ArrayBuffer to that thread's V8 heap,
// counted as fresh external memory until a collection finds the old one dead. At a block per
// millisecond the main thread received a gigabyte or two of them per restore, which set off a
// full (mark-compact) collection every 64 MB: 26-35 of them per 1 GiB restore, and half again
// the CPU time. Views on a region already known cost nothing of the kind.
// Plain JavaScript: the workers run without a TypeScript loader. Types: shared.d.mts.
import { Buffer } from 'node:buffer';

const isRef = (v) => typeof v === 'object' && v !== null && typeof v.shared === 'number' && typeof v.at === 'number' && typeof v.length === 'number' && Object.keys(v).length === 3;

function refOf(v, idOf) {
  if (!(v instanceof Uint8Array) || !(v.buffer instanceof SharedArrayBuffer)) return v;
  const shared = idOf(v.buffer);
  return shared === undefined ? v : { shared, at: v.byteOffset, length: v.byteLength };
}

/**
 * `message` with each field (and each element of an array field) that is a view on a region
 * `idOf` knows replaced by its place in it. One level deep: jobs and results are flat.
 */
export function toShared(message, idOf) {
  const out = {};
  for (const [k, v] of Object.entries(message)) out[k] = Array.isArray(v) ? v.map((x) => refOf(x, idOf)) : refOf(v, idOf);
  return out;
}

/** The reverse of toShared: each place becomes a Buffer view on its region (no copy). */
export function fromShared(message, regionOf) {
  const view = (v) => {
    if (!isRef(v)) return v;
    const region = regionOf(v.shared);
    if (!region) throw new Error(`shared region ${v.shared} is not known here`);
    return Buffer.from(region, v.at, v.length);
  };
  const out = {};
  for (const [k, v] of Object.entries(message)) out[k] = Array.isArray(v) ? v.map(view) : view(v);
  return out;
}

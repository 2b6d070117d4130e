// Copies [0, length) of one file into a new file, hashing it, fsyncing it — on a worker thread,
// so a large backup or restore copy does not take the event loop (and writers) with it.
// Plain JavaScript: it runs in a worker without a TypeScript loader.
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Buffer } from 'node:buffer';

const { from, to, length } = workerData;
let fin;
let fout;
try {
  fin = openSync(from, 'r');
  fout = openSync(to, 'wx', 0o600); // partition data: the owner's only
  const buf = Buffer.allocUnsafe(1 << 20);
  const hash = createHash('sha256');
  const end = length ?? Number.MAX_SAFE_INTEGER;
  let pos = 0;
  let unsynced = 0;
  while (pos < end) {
    const n = readSync(fin, buf, 0, Math.min(buf.length, end - pos), pos);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    let written = 0;
    while (written < n) written += writeSync(fout, buf, written, n - written);
    pos += n;
    // Flush as we go: one fsync of a whole large file at the end stalls every other writer on the disk.
    unsynced += n;
    if (unsynced >= 64 * 1024 * 1024) {
      fdatasyncSync(fout);
      unsynced = 0;
    }
  }
  fsyncSync(fout);
  parentPort.postMessage({ bytes: pos, sha256: hash.digest('hex') });
} catch (err) {
  parentPort.postMessage({ error: { message: err.message, code: err.code } });
} finally {
  if (fin !== undefined) closeSync(fin);
  if (fout !== undefined) closeSync(fout);
}

/**
 * Backups handed to a writer instead of a folder (what a host uploads straight into storage), and
 * restores from a full backup given as a stream (what a host decodes as it downloads): the
 * writer reads the pinned snapshot itself and writes on, `backup.metadata` is made last from the
 * writer's digest, and a restore writes the stream straight into the next generation, comparing
 * it with the metadata that arrives after it. Damage, a writer that fails and a metadata that
 * never comes leave the partition exactly as it was.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import {
  type BackupFile, type BackupInfo, type BackupStream, type Partition, type StreamedFullBackup, isLifeboatError, parseBackupMetadata,
} from '../../src/state/index.ts';
import { dump, openSingleton } from '../support/state.ts';
import { tempDir } from '../support/tmp.ts';

interface Written {
  readonly stream: BackupStream;
  /** Each file's bytes, in the order the writer read them. */
  readonly files: Array<{ name: string; bytes: Buffer }>;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A writer that reads every file as an archive encoder would (a file by path and length, a stream, content last). */
function memoryWriter(into: Written[], during?: () => void): (b: BackupStream) => Promise<string> {
  return async (stream) => {
    const files: Written['files'] = [];
    const before: BackupFile[] = [];
    for (const f of stream.files) {
      let bytes: Buffer;
      if ('path' in f) {
        during?.(); // before reading: what is written now must not reach the pinned file
        const fh = await open(f.path, 'r');
        try {
          bytes = Buffer.alloc(f.bytes);
          await fh.read(bytes, 0, f.bytes, 0);
        } finally {
          await fh.close();
        }
      } else if ('stream' in f) {
        const chunks: Buffer[] = [];
        for await (const c of f.stream) chunks.push(Buffer.from(c));
        bytes = Buffer.concat(chunks);
      } else {
        bytes = Buffer.from(f.content(before));
      }
      files.push({ name: f.name, bytes });
      before.push({ name: f.name, bytes: bytes.length, sha256: sha(bytes) });
    }
    into.push({ stream, files });
    return `memory:${stream.backupId}`;
  };
}

const fileOf = (w: Written, name: string): Buffer => {
  const f = w.files.find((x) => x.name === name);
  assert.ok(f, `the writer read ${name}`);
  return f.bytes;
};

/** Writes what a writer read into a folder, as a decoded archive would be. */
function toFolder(w: Written, folder: string): string {
  mkdirSync(folder, { recursive: true });
  for (const f of w.files) writeFileSync(join(folder, f.name), f.bytes);
  return folder;
}

/** A streamed full backup from bytes, in chunks that reuse one buffer; the metadata comes after the data. */
function streamed(data: Buffer, metadataText: Buffer, where: string, chunk = 4096): StreamedFullBackup & { readonly pulled: () => number } {
  let pulled = 0;
  let dataDone!: () => void;
  const finished = new Promise<void>((resolve) => { dataDone = resolve; });
  const reused = Buffer.alloc(chunk);
  return {
    data: (async function* () {
      for (let at = 0; at < data.length; at += chunk) {
        const n = data.copy(reused, 0, at, at + chunk);
        pulled += n;
        yield reused.subarray(0, n);
        reused.fill(0xee); // the consumer must be done with the chunk once it asks for the next
      }
      dataDone();
    })(),
    metadata: finished.then(() => parseBackupMetadata(metadataText.toString('utf8'), where)),
    pulled: () => pulled,
  };
}

function fill(p: Partition, n: number, prefix: string): void {
  p.transact((tx) => {
    for (let i = 0; i < n; i++) tx.dictionary('d').set(`${prefix}${i}`, { i, text: `${prefix}-${'x'.repeat(200)}-${i}` });
  });
}

it('hands a full and an incremental backup to a writer: the pinned database file, then backup.metadata with the writer\'s digest', async (t) => {
  const dir = tempDir(t);
  const { service, partition: p } = await openSingleton(join(dir, 'data'));
  t.after(() => service.close());
  fill(p, 500, 'a');
  const atBackup = dump(p);
  const written: Written[] = [];
  let writesDuring = 0;
  const full = await p.backup({
    option: 'Full',
    // Writers go on while the writer reads the snapshot: they land in the WAL, not in what it reads.
    writer: memoryWriter(written, () => { fill(p, 50, `during${writesDuring++}-`); }),
  });
  assert.equal(written.length, 1);
  const w = written[0] as Written;
  assert.deepEqual(w.files.map((f) => f.name), ['data.sqlite', 'backup.metadata']);
  assert.equal(w.stream.option, 'Full');
  assert.equal(w.stream.backupId, full.backupId);
  assert.equal(full.directory, `memory:${full.backupId}`);
  const meta = parseBackupMetadata(fileOf(w, 'backup.metadata').toString('utf8'), 'mem');
  const data = fileOf(w, 'data.sqlite');
  assert.deepEqual(meta.files, [{ name: 'data.sqlite', bytes: data.length, sha256: sha(data) }]);
  assert.deepEqual(full.files, meta.files);
  assert.equal(meta.lastLsn, full.lastLsn);
  assert.equal(meta.lastLsn, 1n, 'the snapshot holds the one commit before the backup, not those made during it');
  assert.equal(p.lastCompletedBackup?.backupId, full.backupId);
  assert.ok(writesDuring > 0);

  fill(p, 20, 'b');
  const inc = await p.backup({ option: 'Incremental', writer: memoryWriter(written) });
  const wi = written[1] as Written;
  assert.deepEqual(wi.files.map((f) => f.name), ['changes.log', 'backup.metadata']);
  const incMeta = parseBackupMetadata(fileOf(wi, 'backup.metadata').toString('utf8'), 'mem');
  assert.equal(incMeta.parentBackupId, full.backupId);
  assert.equal(incMeta.recordCount, 20 + 50 * writesDuring);
  assert.deepEqual(incMeta.files, [{ name: 'changes.log', bytes: fileOf(wi, 'changes.log').length, sha256: sha(fileOf(wi, 'changes.log')) }]);
  assert.equal(inc.recordCount, incMeta.recordCount);
  const atIncremental = dump(p);

  // Restore: the full as a stream (chunks reused), the incremental as a folder.
  p.transact((tx) => tx.dictionary('d').set('later', 1));
  const s = streamed(data, fileOf(w, 'backup.metadata'), 'memory:full');
  const r = await p.restore([s, toFolder(wi, join(dir, 'inc'))], { policy: 'Force' });
  assert.deepEqual(r.chain, [full.backupId, inc.backupId]);
  assert.equal(s.pulled(), data.length);
  assert.deepEqual(dump(p), atIncremental);
  assert.notDeepEqual(atBackup, atIncremental);
  p.transact((tx) => tx.dictionary('d').set('after', 2));
});

it('a streamed full backup that is damaged, or whose metadata fails or does not match, leaves the partition as it was', async (t) => {
  const dir = tempDir(t);
  const { service, partition: p } = await openSingleton(join(dir, 'data'));
  t.after(() => service.close());
  fill(p, 300, 'a');
  const written: Written[] = [];
  await p.backup({ option: 'Full', writer: memoryWriter(written) });
  const w = written[0] as Written;
  const data = fileOf(w, 'data.sqlite');
  const metaText = fileOf(w, 'backup.metadata');
  fill(p, 10, 'now');
  const before = dump(p);
  const lsn = p.lastLsn;
  const epoch = p.epoch;

  const expectUnchanged = (): void => {
    assert.deepEqual(dump(p), before);
    assert.equal(p.lastLsn, lsn);
    assert.deepEqual(p.epoch, epoch);
    assert.equal(p.status, 'Ready');
  };

  const flipped = Buffer.from(data);
  const mid = Math.floor(flipped.length / 2);
  flipped[mid] = (flipped[mid] as number) ^ 0x40;
  await assert.rejects(p.restore([streamed(flipped, metaText, 'memory:flipped')], { policy: 'Force' }),
    (err: unknown) => isLifeboatError(err, 'LIFEBOAT_E_BACKUP_CORRUPT') && /memory:flipped/.test(err.message) && /checksum/.test(err.message));
  expectUnchanged();

  const cut = streamed(data.subarray(0, data.length - 4096), metaText, 'memory:cut');
  await assert.rejects(p.restore([cut], { policy: 'Force' }), (err: unknown) => isLifeboatError(err, 'LIFEBOAT_E_BACKUP_CORRUPT'));
  expectUnchanged();

  // The source finds damage after all the data was handed over (e.g. in the archive's trailer).
  const late: StreamedFullBackup = {
    data: streamed(data, metaText, 'x').data,
    metadata: new Promise<BackupInfo>((_, reject) => setTimeout(() => reject(Object.assign(new Error('trailer damaged'), { code: 'X' })), 20)),
  };
  await assert.rejects(p.restore([late], { policy: 'Force' }), /trailer damaged/);
  expectUnchanged();

  // A data stream that fails half-way.
  const failing: StreamedFullBackup = {
    data: (async function* () {
      yield data.subarray(0, 8192);
      throw new Error('connection reset');
    })(),
    metadata: Promise.resolve(parseBackupMetadata(metaText.toString('utf8'), 'x')),
  };
  await assert.rejects(p.restore([failing], { policy: 'Force' }), /connection reset/);
  expectUnchanged();

  // A stream is only the first link of a chain.
  await assert.rejects(p.restore([join(dir, 'nowhere'), streamed(data, metaText, 'x')] as never, { policy: 'Force' }),
    (err: unknown) => isLifeboatError(err, 'E_INVALIDARG'));
  expectUnchanged();

  // Safe refuses a backup not newer than the partition, once its metadata is known.
  await assert.rejects(p.restore([streamed(data, metaText, 'memory:safe')], { policy: 'Safe' }),
    (err: unknown) => isLifeboatError(err, 'FABRIC_E_RESTORE_SAFE_CHECK_FAILED'));
  expectUnchanged();

  // A source that hashed the data itself (a decoder does): its digest stands for the data, so one
  // that disagrees with the metadata is refused as damage even though the bytes are right.
  const wrongDigest = { ...streamed(data, metaText, 'memory:digest'), dataSha256: Promise.resolve(sha(flipped)) };
  await assert.rejects(p.restore([wrongDigest], { policy: 'Force' }),
    (err: unknown) => isLifeboatError(err, 'LIFEBOAT_E_BACKUP_CORRUPT') && /checksum/.test(err.message));
  expectUnchanged();
  const failedDigest = { ...streamed(data, metaText, 'memory:digest'), dataSha256: Promise.reject(new Error('trailer digest damaged')) };
  failedDigest.dataSha256.catch(() => undefined);
  await assert.rejects(p.restore([failedDigest], { policy: 'Force' }), /trailer digest damaged/);
  expectUnchanged();

  // And the good one restores, with or without the source's digest.
  await p.restore([{ ...streamed(data, metaText, 'memory:good'), dataSha256: Promise.resolve(sha(data)) }], { policy: 'Force' });
  assert.equal(p.lastLsn, 1n);
  await p.restore([streamed(data, metaText, 'memory:good')], { policy: 'Force' });
  assert.equal(p.lastLsn, 1n);
  assert.equal(readFileSync(join(dir, 'data', 'partitions', p.id, 'state.json'), 'utf8').includes('"generation":3'), true);
});

it('a writer that fails or never writes backup.metadata fails the backup, and the chain does not move', async (t) => {
  const dir = tempDir(t);
  const { service, partition: p } = await openSingleton(join(dir, 'data'));
  t.after(() => service.close());
  fill(p, 50, 'a');
  const written: Written[] = [];
  const full = await p.backup({ option: 'Full', writer: memoryWriter(written) });
  fill(p, 5, 'b');

  await assert.rejects(p.backup({ option: 'Incremental', writer: async () => { throw new Error('upload failed'); } }), /upload failed/);
  assert.equal(p.lastCompletedBackup?.backupId, full.backupId);

  // Reads the data, skips the metadata.
  await assert.rejects(p.backup({
    option: 'Incremental',
    writer: async (b) => {
      for (const f of b.files) if ('stream' in f) for await (const _ of f.stream) void _;
      return 'nowhere';
    },
  }), (err: unknown) => isLifeboatError(err, 'E_FAIL') && /did not write backup\.metadata/.test(err.message));
  assert.equal(p.lastCompletedBackup?.backupId, full.backupId);

  // Asks for the metadata without reading the change log to its end.
  await assert.rejects(p.backup({
    option: 'Incremental',
    writer: async (b) => {
      const meta = b.files.find((f) => 'content' in f);
      if (meta && 'content' in meta) meta.content([{ name: 'changes.log', bytes: 1, sha256: '00' }]);
      return 'nowhere';
    },
  }), (err: unknown) => isLifeboatError(err, 'E_FAIL') && /not read to its end/.test(err.message));
  assert.equal(p.lastCompletedBackup?.backupId, full.backupId);

  // Not both a folder and a writer.
  await assert.rejects(p.backup({ option: 'Full', folder: join(dir, 'f'), writer: memoryWriter(written) }), (err: unknown) => isLifeboatError(err, 'E_INVALIDARG'));

  // The partition goes on: writes, and an incremental that continues the full.
  fill(p, 5, 'c');
  const inc = await p.backup({ option: 'Incremental', writer: memoryWriter(written) });
  assert.equal(inc.parentBackupId, full.backupId);
  assert.equal(inc.recordCount, 10);
});

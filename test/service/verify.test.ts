/**
 * Damaged backups and whole chains, through the REST API of a real Lifeboat: VerifyBackup checks a
 * backup and its chain without restoring; a byte flipped in a stored `.lbk` (data, frame header,
 * trailer, footer) or `.bkmetadata` is caught by VerifyBackup and by Restore with an error naming
 * the object and where, and the partition keeps its data; an incremental chain (periodic backups
 * on a fake clock) verifies as a chain, a damaged incremental fails the restore mid-chain without
 * harm, and a missing middle backup is a broken chain; and backups written as `.lbk` version 1
 * with a version 1 `.bkmetadata` (the previous code) still verify and restore.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { backupDataKey, metadataKeyOf } from '../../src/core/backup-layout.ts';
import { packFolder } from '../../src/format/archive.ts';
import { encodeBkMetadata } from '../../src/format/bkmetadata.ts';
import { decodeToFolder, encodeFiles } from '../../src/format/lbk2/index.ts';
import type { Partition } from '../../src/state/index.ts';
import { type Named, backupNow, keyringOf, keys, restoreNow, samplePartition, stateOf, storedMetadata, verifyBody, verifyNow } from '../support/backup-e2e.ts';
import { type TestLifeboat, startTestLifeboat } from '../support/lifeboat.ts';
import { fakeClock, step, write } from '../support/periodic.ts';
import { SERVICE_NAME } from '../support/sample.ts';
import { tempDir } from '../support/tmp.ts';

/** Where the parts of a stored `.lbk` version 2 are, read from its layout (docs/backup-format.md). */
function layoutOf(object: Buffer): { names: string[]; frames: Array<{ at: number; fileIndex: number; storedLength: number }>; trailerAt: number; footerAt: number } {
  let at = 48;
  const fileCount = object.readUInt32LE(12);
  const names: string[] = [];
  for (let i = 0; i < fileCount; i++) {
    names.push(object.subarray(at + 1, at + 1 + (object[at] as number)).toString('latin1'));
    at += 1 + (object[at] as number);
  }
  at += 32;
  const footerAt = object.length - 32;
  const trailerAt = Number(object.readBigUInt64LE(footerAt));
  const frames: Array<{ at: number; fileIndex: number; storedLength: number }> = [];
  while (at < trailerAt) {
    const storedLength = object.readUInt32LE(at + 16);
    frames.push({ at, fileIndex: object.readUInt32LE(at + 4), storedLength });
    at += 52 + storedLength;
  }
  return { names, frames, trailerAt, footerAt };
}

/** Flips one byte of a stored object; returns a function that puts it back. */
function flip(path: string, at: number): () => void {
  const original = readFileSync(path);
  const damaged = Buffer.from(original);
  damaged[at] = (damaged[at] as number) ^ 0x5a;
  writeFileSync(path, damaged);
  return () => writeFileSync(path, original);
}

function errorOf(v: { json: Record<string, unknown> }): { Code: string; Message: string } {
  return v.json.Error as { Code: string; Message: string };
}

it('a byte flipped in a stored .lbk (data, frame header, trailer, footer) or .bkmetadata is caught by VerifyBackup and Restore, and the partition keeps its data', async (t) => {
  const lb = await startTestLifeboat(t);
  const p = samplePartition(lb);
  p.transact((tx) => { for (let i = 0; i < 300; i++) tx.dictionary('kv').set(`key${i}`, `value ${i} `.repeat(20)); });
  const snapshot = p.dictionary('kv').enumerate();
  const b = await backupNow(lb, p.id);
  const path = join(lb.share, b.BackupLocation);
  const { names, frames, trailerAt, footerAt } = layoutOf(readFileSync(path));
  assert.deepEqual(names, ['data.sqlite', 'backup.metadata'], 'the data first, its metadata (with its digest) after it');
  const data = frames.find((f) => f.fileIndex === 0);
  assert.ok(data && data.storedLength > 100, 'a frame of data.sqlite');
  p.transact((tx) => tx.dictionary('kv').set('after', 'the backup'));

  const places = [
    { name: 'data region', at: data.at + 52 + Math.floor(data.storedLength / 2), message: /data\.sqlite block 0 \(frame at byte \d+\): checksum mismatch/ },
    { name: 'frame header', at: data.at + 12, message: /data\.sqlite block 0 \(frame at byte \d+\)/ },
    { name: 'trailer', at: trailerAt + 10, message: /the trailer \(at byte \d+\)/ },
    { name: 'footer', at: footerAt + 2, message: /the footer \(at byte \d+\)/ },
  ];
  for (const place of places) {
    const undo = flip(path, place.at);
    const v = await verifyNow(lb, p.id, verifyBody(lb, b));
    assert.equal(v.status, 400, `${place.name}: ${JSON.stringify(v.json)}`);
    assert.equal(errorOf(v).Code, 'LIFEBOAT_E_BACKUP_CORRUPT', place.name);
    assert.ok(errorOf(v).Message.includes(b.BackupLocation), `${place.name}: names the object: ${errorOf(v).Message}`);
    assert.match(errorOf(v).Message, place.message, place.name);

    const before = { ...stateOf(p), epoch: p.epoch };
    const r = await restoreNow(lb, p.id, b);
    assert.equal(r.progress?.RestoreState, 'Failure', `${place.name}: ${JSON.stringify(r)}`);
    assert.equal(r.progress?.FailureError?.Code, 'LIFEBOAT_E_BACKUP_CORRUPT', place.name);
    assert.ok(r.progress?.FailureError?.Message.includes(b.BackupLocation), place.name);
    assert.match(r.progress?.FailureError?.Message ?? '', place.message, place.name);
    // Found before the partition was touched: data, LSN, epoch and status as they were.
    assert.deepEqual({ ...stateOf(p), epoch: p.epoch }, before, `${place.name}: the partition is unchanged`);
    undo();
  }

  // The metadata: read by VerifyBackup, and by Restore when it is asked (so refused at once).
  const metaKey = metadataKeyOf(b.BackupLocation);
  const undo = flip(join(lb.share, metaKey), 40);
  const v = await verifyNow(lb, p.id, verifyBody(lb, b));
  assert.equal(v.status, 400, JSON.stringify(v.json));
  assert.equal(errorOf(v).Code, 'LIFEBOAT_E_BACKUP_CORRUPT');
  assert.ok(errorOf(v).Message.includes(metaKey), errorOf(v).Message);
  const before = stateOf(p);
  const r = await restoreNow(lb, p.id, b);
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /LIFEBOAT_E_BACKUP_CORRUPT/);
  assert.ok(r.text.includes(metaKey), r.text);
  assert.deepEqual(stateOf(p), before);
  undo();

  // Whole again: it verifies and restores, so the failures above were the flipped bytes.
  const ok = await verifyNow(lb, p.id, verifyBody(lb, b));
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.deepEqual((ok.json.Chain as Array<Record<string, unknown>>).map((c) => [c.Version, c.Encrypted, c.ContentsChecked, c.Authenticated]), [[2, false, true, false]]);
  const restored = await restoreNow(lb, p.id, b);
  assert.equal(restored.progress?.RestoreState, 'Success', JSON.stringify(restored));
  assert.deepEqual(p.dictionary('kv').enumerate(), snapshot);
});

it('verifies an incremental chain as a chain; a damaged incremental fails the restore mid-chain harmlessly; a missing middle backup is a broken chain', async (t) => {
  const clock = fakeClock();
  const lb = await startTestLifeboat(t, { clock, scheduler: { manual: true, jitterMs: 0 }, encryptionKeys: keyringOf('k1', keys('k1')) });
  const p = samplePartition(lb);
  await lb.service.policies.createPolicy({
    Name: 'every-minute', AutoRestoreOnDataLoss: false, MaxIncrementalBackups: 3, Schedule: { ScheduleKind: 'FrequencyBased', Interval: 'PT1M' }, Storage: lb.storage,
  }, false);
  await lb.service.protection.enableBackup({ kind: 'Partition', id: p.id }, { BackupPolicyName: 'every-minute' });
  await lb.scheduler.tick();
  for (let i = 0; i < 3; i++) {
    write([p], String(i));
    await step(lb, clock);
  }
  const list = ((await lb.service.listing.pageBackups({ kind: 'Partition', id: p.id }, { latest: false }, { maxResults: 0 })).items)
    .sort((a, c) => Number(BigInt(a.LsnOfLastBackupRecord) - BigInt(c.LsnOfLastBackupRecord)));
  assert.deepEqual(list.map((b) => b.BackupType), ['Full', 'Incremental', 'Incremental']);
  const [full, middle, last] = [list[0], list[1], list[2]] as [Named, Named, Named];

  // No body: the newest backup in the policy's storage, and its chain, full backup first.
  for (const [body, query] of [[undefined, ''], [{ BackupStorage: lb.storage }, '&Latest=true']] as const) {
    const v = await verifyNow(lb, p.id, body, query);
    assert.equal(v.status, 200, JSON.stringify(v.json));
    assert.equal(v.json.BackupId, last.BackupId);
    assert.deepEqual((v.json.Chain as Array<Record<string, unknown>>).map((c) => [c.BackupId, c.BackupLocation, c.BackupType, c.Encrypted, c.Authenticated]),
      list.map((b) => [b.BackupId, b.BackupLocation, b.BackupType, true, true]));
  }

  // A damaged incremental: found while the partition applies the chain; the restore fails and the partition keeps its data.
  write([p], 'later');
  const lastPath = join(lb.share, last.BackupLocation);
  const { names, frames } = layoutOf(readFileSync(lastPath));
  const frame = frames.find((f) => f.fileIndex === names.indexOf('changes.log')) as { at: number; storedLength: number };
  const undo = flip(lastPath, frame.at + 52 + Math.floor(frame.storedLength / 2));
  const v = await verifyNow(lb, p.id, verifyBody(lb, last));
  assert.equal(errorOf(v).Code, 'LIFEBOAT_E_BACKUP_CORRUPT', JSON.stringify(v.json));
  assert.ok(errorOf(v).Message.includes(last.BackupLocation), errorOf(v).Message);
  const before = stateOf(p);
  const r = await restoreNow(lb, p.id, last);
  assert.equal(r.progress?.FailureError?.Code, 'LIFEBOAT_E_BACKUP_CORRUPT', JSON.stringify(r));
  assert.match(r.progress?.FailureError?.Message ?? '', /changes\.log block 0 \(frame at byte \d+\)/);
  assert.ok(r.progress?.FailureError?.Message.includes(last.BackupLocation));
  assert.deepEqual(stateOf(p), before, 'the partition keeps its data and goes on serving');
  p.transact((tx) => tx.dictionary('kv').set('still', 'writable'));
  undo();

  // The middle backup's data gone: damage, named.
  const middleData = join(lb.share, middle.BackupLocation);
  const middleBytes = readFileSync(middleData);
  rmSync(middleData);
  const gone = await verifyNow(lb, p.id, verifyBody(lb, last));
  assert.equal(errorOf(gone).Code, 'LIFEBOAT_E_BACKUP_CORRUPT', JSON.stringify(gone.json));
  assert.match(errorOf(gone).Message, new RegExp(`${middle.BackupLocation.replace(/[.]/g, '\\.')} is missing`));
  // The middle backup gone altogether: a broken chain, for VerifyBackup and Restore alike; the full alone is fine.
  rmSync(join(lb.share, metadataKeyOf(middle.BackupLocation)));
  const broken = await verifyNow(lb, p.id, verifyBody(lb, last));
  assert.equal(broken.status, 400);
  assert.equal(errorOf(broken).Code, 'LIFEBOAT_E_BACKUP_CHAIN_BROKEN', JSON.stringify(broken.json));
  assert.ok(errorOf(broken).Message.includes(middle.BackupLocation), errorOf(broken).Message);
  const refused = await restoreNow(lb, p.id, last);
  assert.equal(refused.status, 400, refused.text);
  assert.match(refused.text, /LIFEBOAT_E_BACKUP_CHAIN_BROKEN/);
  const fullOnly = await verifyNow(lb, p.id, verifyBody(lb, full));
  assert.equal(fullOnly.status, 200, JSON.stringify(fullOnly.json));
  assert.equal((fullOnly.json.Chain as unknown[]).length, 1);
  writeFileSync(middleData, middleBytes);
});

/** Writes a backup of `p` as the code before `.lbk` version 2 did: packFolder (version 1) and a version 1 .bkmetadata. */
async function storeV1(lb: TestLifeboat, p: Partition, option: 'Full' | 'Incremental', parent: Named | undefined, folder: string, at: Date): Promise<Named> {
  const info = await p.backup({ option, folder });
  const location = backupDataKey(SERVICE_NAME, p.id, at);
  const chunks: Buffer[] = [];
  for await (const c of await packFolder(folder)) chunks.push(c as Buffer);
  const data = Buffer.concat(chunks);
  mkdirSync(dirname(join(lb.share, location)), { recursive: true });
  writeFileSync(join(lb.share, location), data);
  writeFileSync(join(lb.share, metadataKeyOf(location)), encodeBkMetadata({
    BackupId: info.backupId, BackupChainId: info.backupChainId, ParentBackupId: parent?.BackupId ?? '', ParentBackupLocation: parent?.BackupLocation ?? '',
    BackupLocation: location, BackupType: option, ApplicationName: 'fabric:/SampleApp', ServiceName: SERVICE_NAME, PartitionId: p.id, PartitionInformation: p.info,
    EpochOfLastBackupRecord: { DataLossVersion: info.epoch.dataLossVersion.toString(), ConfigurationVersion: info.epoch.configurationVersion.toString() },
    LsnOfLastBackupRecord: info.lastLsn.toString(), FirstLsn: info.firstLsn.toString(), CreationTimeUtc: info.takenAtUtc, ServiceManifestVersion: '1.0.0',
    DataSize: data.length, DataSha256: createHash('sha256').update(data).digest('hex'),
  }, 1));
  return { BackupId: info.backupId, BackupLocation: location };
}

it('backups written as .lbk version 1 with a version 1 .bkmetadata still verify and restore, as a chain', async (t) => {
  const lb = await startTestLifeboat(t);
  const p = samplePartition(lb);
  const dir = tempDir(t);
  write([p], 'a');
  const at = new Date(Date.UTC(2025, 0, 1, 10, 0, 0));
  const full = await storeV1(lb, p, 'Full', undefined, join(dir, 'full'), at);
  write([p], 'b');
  const inc = await storeV1(lb, p, 'Incremental', full, join(dir, 'inc'), new Date(at.getTime() + 60_000));
  const snapshot = p.dictionary('kv').enumerate();
  assert.equal(readFileSync(join(lb.share, inc.BackupLocation))[4], 1, 'the data object is version 1');
  assert.match(readFileSync(join(lb.share, metadataKeyOf(inc.BackupLocation)), 'utf8'), /"Version":1,/);

  const v = await verifyNow(lb, p.id, verifyBody(lb, inc));
  assert.equal(v.status, 200, JSON.stringify(v.json));
  assert.deepEqual((v.json.Chain as Array<Record<string, unknown>>).map((c) => [c.BackupId, c.BackupType, c.Version, c.Blocks, c.ContentsChecked, c.Authenticated]),
    [[full.BackupId, 'Full', 1, 0, true, false], [inc.BackupId, 'Incremental', 1, 0, true, false]]);

  write([p], 'c');
  const r = await restoreNow(lb, p.id, inc);
  assert.equal(r.progress?.RestoreState, 'Success', JSON.stringify(r));
  assert.deepEqual(p.dictionary('kv').enumerate(), snapshot);

  // Damage in a version 1 object is caught too.
  const undo = flip(join(lb.share, full.BackupLocation), 200);
  const bad = await verifyNow(lb, p.id, verifyBody(lb, inc));
  assert.equal(errorOf(bad).Code, 'LIFEBOAT_E_BACKUP_CORRUPT', JSON.stringify(bad.json));
  assert.ok(errorOf(bad).Message.includes(full.BackupLocation));
  undo();
});

it('the .bkmetadata records the frames digest of its data object, so a valid archive of the same files put in its place is refused', async (t) => {
  const lb = await startTestLifeboat(t);
  const p = samplePartition(lb);
  p.transact((tx) => { for (let i = 0; i < 200; i++) tx.dictionary('kv').set(`key${i}`, `value ${i} `.repeat(20)); });
  const b = await backupNow(lb, p.id);
  const path = join(lb.share, b.BackupLocation);
  const object = readFileSync(path);
  // Worked out from the layout: header, each frame's 52-byte header (with its payload's SHA-256), trailer, footer.
  const { frames, trailerAt } = layoutOf(object);
  const h = createHash('sha256').update(object.subarray(0, frames[0]?.at ?? trailerAt));
  for (const f of frames) h.update(object.subarray(f.at, f.at + 52));
  h.update(object.subarray(trailerAt));
  const m = storedMetadata(lb, b.BackupLocation);
  assert.equal(m.DataFramesSha256, h.digest('hex'));
  assert.equal(m.DataSize, object.length);

  // The same files encoded again: every block and digest inside is right, the size is the same,
  // only the archive id differs — nothing but the metadata's record of this object tells them apart.
  const dir = tempDir(t);
  await decodeToFolder(Readable.from([object]), dir, 'copy', { workers: 0 });
  const again = await encodeFiles([
    { name: 'data.sqlite', path: join(dir, 'data.sqlite') },
    { name: 'backup.metadata', content: () => readFileSync(join(dir, 'backup.metadata')) },
  ], { workers: 0 });
  const chunks: Buffer[] = [];
  for await (const c of again.stream) chunks.push(c as Buffer);
  const other = Buffer.concat(chunks);
  assert.equal(other.length, object.length);
  assert.ok(!other.equals(object));
  writeFileSync(path, other);

  const v = await verifyNow(lb, p.id, verifyBody(lb, b));
  assert.equal(v.status, 400, JSON.stringify(v.json));
  assert.equal(errorOf(v).Code, 'LIFEBOAT_E_BACKUP_CORRUPT');
  assert.match(errorOf(v).Message, /DataFramesSha256/);
  p.transact((tx) => tx.dictionary('kv').set('after', 'the backup'));
  const before = { ...stateOf(p), epoch: p.epoch };
  const r = await restoreNow(lb, p.id, b);
  assert.equal(r.progress?.RestoreState, 'Failure', JSON.stringify(r));
  assert.equal(r.progress?.FailureError?.Code, 'LIFEBOAT_E_BACKUP_CORRUPT');
  assert.match(r.progress?.FailureError?.Message ?? '', /DataFramesSha256/);
  assert.deepEqual({ ...stateOf(p), epoch: p.epoch }, before, 'the partition is unchanged');

  writeFileSync(path, object);
  assert.equal((await verifyNow(lb, p.id, verifyBody(lb, b))).status, 200);
  assert.equal((await restoreNow(lb, p.id, b)).progress?.RestoreState, 'Success');
});

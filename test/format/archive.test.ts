import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { isLifeboatError } from '../../src/core/errors.ts';
import { packFolder, unpackArchive } from '../../src/format/archive.ts';
import { decodeBkMetadata, encodeBkMetadata } from '../../src/format/bkmetadata.ts';
import { tempDir } from '../support/tmp.ts';

async function bytes(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

it('packs a folder into one stream and unpacks it exactly, in chunks of any size', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'in'));
  writeFileSync(join(dir, 'in', 'backup.metadata'), '{"x":1}');
  writeFileSync(join(dir, 'in', 'data.sqlite'), Buffer.alloc(300_000, 9));
  writeFileSync(join(dir, 'in', 'empty'), '');
  const archive = await bytes(await packFolder(join(dir, 'in')));
  for (const size of [1, 7, 4096, archive.length]) {
    const out = join(dir, `out-${size}`);
    mkdirSync(out);
    const chunks: Buffer[] = [];
    for (let i = 0; i < archive.length; i += size) chunks.push(archive.subarray(i, i + size));
    await unpackArchive(Readable.from(chunks), out, 'test');
    for (const f of ['backup.metadata', 'data.sqlite', 'empty']) assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(dir, 'in', f)), `${f} with chunks of ${size}`);
  }
});

it('catches a flipped byte, a truncation and trailing bytes', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'in'));
  writeFileSync(join(dir, 'in', 'a'), Buffer.alloc(10_000, 1));
  const archive = await bytes(await packFolder(join(dir, 'in')));
  const cases: Array<[string, Buffer]> = [
    ['flipped', Buffer.from(archive.map((b, i) => (i === archive.length - 100 ? b ^ 1 : b)))],
    ['truncated', archive.subarray(0, archive.length - 10)],
    ['trailing', Buffer.concat([archive, Buffer.from('extra')])],
    ['header', Buffer.concat([Buffer.from('XXXX'), archive.subarray(4)])],
  ];
  for (const [name, damaged] of cases) {
    const out = join(dir, name);
    mkdirSync(out);
    await assert.rejects(unpackArchive(Readable.from([damaged]), out, name), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_BACKUP_CORRUPT'), name);
  }
});

it('.bkmetadata round-trips and refuses tampering', () => {
  const m = {
    BackupId: '11111111-1111-4111-8111-111111111111', BackupChainId: '11111111-1111-4111-8111-111111111111', ParentBackupId: '', ParentBackupLocation: '',
    BackupLocation: 'App/Svc/p/2026-01-01 00.00.00.lbk', BackupType: 'Full' as const, ApplicationName: 'fabric:/App', ServiceName: 'fabric:/App/Svc',
    PartitionId: '22222222-2222-4222-8222-222222222222', PartitionInformation: { kind: 'Int64Range' as const, lowKey: -5n, highKey: 5n },
    EpochOfLastBackupRecord: { DataLossVersion: '1', ConfigurationVersion: '2' }, LsnOfLastBackupRecord: '42', FirstLsn: '1',
    CreationTimeUtc: '2026-01-01T00:00:00.000Z', ServiceManifestVersion: '1.0.0', DataSize: 10, DataSha256: 'ab',
  };
  const enc = encodeBkMetadata(m);
  assert.deepEqual(decodeBkMetadata(enc, 'x'), m);
  const tampered = Buffer.from(enc.toString().replace('"42"', '"43"'));
  assert.throws(() => decodeBkMetadata(tampered, 'x'), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_BACKUP_CORRUPT'));
  assert.throws(() => decodeBkMetadata(Buffer.from('nope'), 'x'), (e: unknown) => isLifeboatError(e, 'LIFEBOAT_E_BACKUP_CORRUPT'));
});

import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { LifeboatError } from '../core/errors.ts';
import { bytesText } from '../core/bytes.ts';
import { EXIT, Output, type Terminal, UsageError, ageText, exitCodeOf } from './output.ts';

function terminal(tty: boolean, env: Record<string, string> = {}): Terminal & { text(): string } {
  const out = Object.assign(new PassThrough(), { isTTY: tty });
  const err = Object.assign(new PassThrough(), { isTTY: tty });
  const chunks: string[] = [];
  out.on('data', (d: Buffer) => chunks.push(d.toString()));
  err.on('data', (d: Buffer) => chunks.push(d.toString()));
  return { stdout: out, stderr: err, stdin: new PassThrough(), env, text: () => chunks.join('') };
}

describe('exit codes', () => {
  const answered = (status: number, code: ConstructorParameters<typeof LifeboatError>[0] = 'E_FAIL'): LifeboatError => new LifeboatError(code, 'x', { details: { status } });
  it('follow the HTTP status the service answered', () => {
    assert.equal(exitCodeOf(answered(401, 'LIFEBOAT_E_UNAUTHENTICATED')), EXIT.auth);
    assert.equal(exitCodeOf(answered(403, 'E_ACCESSDENIED')), EXIT.auth);
    assert.equal(exitCodeOf(answered(404, 'FABRIC_E_PARTITION_NOT_FOUND')), EXIT.notFound);
    assert.equal(exitCodeOf(answered(409, 'FABRIC_E_BACKUP_IN_PROGRESS')), EXIT.busy);
    assert.equal(exitCodeOf(answered(400, 'E_INVALIDARG')), EXIT.usage);
    assert.equal(exitCodeOf(answered(400, 'LIFEBOAT_E_BACKUP_CORRUPT')), EXIT.failed);
    assert.equal(exitCodeOf(answered(500)), EXIT.failed);
  });
  it('a LifeboatError of the CLI\'s own takes its catalogue status; usage errors 2; anything else 1', () => {
    assert.equal(exitCodeOf(new LifeboatError('FABRIC_E_APPLICATION_NOT_FOUND')), EXIT.notFound);
    assert.equal(exitCodeOf(new UsageError('no')), EXIT.usage);
    assert.equal(exitCodeOf(new TypeError('fetch failed')), EXIT.failed);
    assert.equal(exitCodeOf(new LifeboatError('FABRIC_E_TIMEOUT')), EXIT.failed);
  });
});

describe('Output', () => {
  it('colours and bars only at a terminal without NO_COLOR', () => {
    assert.equal(new Output(terminal(true)).bars, true);
    assert.equal(new Output(terminal(true), { json: true }).bars, false);
    assert.equal(new Output(terminal(true), { quiet: true }).bars, false);
    assert.equal(new Output(terminal(true, { NO_COLOR: '1' })).fancy, false);
    assert.equal(new Output(terminal(true, { NO_COLOR: '' })).fancy, true, 'an empty NO_COLOR is not set (no-color.org)');
    assert.equal(new Output(terminal(false)).fancy, false);
  });

  it('prints an error with its code and the catalogue\'s hint, and answers its exit code', () => {
    const t = terminal(false);
    const code = new Output(t).error(new LifeboatError('FABRIC_E_BACKUP_IN_PROGRESS', 'The Lifeboat service answered 409 FABRIC_E_BACKUP_IN_PROGRESS: busy', { details: { status: 409 } }));
    assert.equal(code, EXIT.busy);
    assert.equal(t.text(), 'error: The Lifeboat service answered 409 FABRIC_E_BACKUP_IN_PROGRESS: busy\nhint: Wait for the running backup to finish; backups of one partition are never queued.\n');
  });

  it('tables are plain columns, no trailing blanks', () => {
    const t = terminal(false);
    new Output(t).table(['A', 'LONGER'], [['x', ''], ['yy', 'z']]);
    assert.equal(t.text(), 'A   LONGER\nx\nyy  z\n');
  });
});

it('ageText and bytesText', () => {
  const now = Date.parse('2026-12-07T10:00:00Z');
  assert.deepEqual(['2026-12-07T09:59:18Z', '2026-12-07T09:30:00Z', '2026-12-07T05:00:00Z', '2026-12-01T10:00:00Z'].map((t) => ageText(t, now)), ['42s', '30m', '5h', '6d']);
  assert.deepEqual([512, 1536, 25 * 1024 * 1024, 3 * 1024 ** 3].map(bytesText), ['512 B', '1.5 KiB', '25 MiB', '3.0 GiB']);
});

import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { it } from 'node:test';
import { parseStorageOption, parseTimeOption, parseTimeoutMinutes } from './common.ts';
import { UsageError } from './output.ts';
import { choiceOf, interruptQuestion } from './interrupt.ts';

const usage = (e: unknown): boolean => e instanceof UsageError;

it('--storage: fileshare:<path> (made absolute) or a BackupStorage JSON', () => {
  assert.deepEqual(parseStorageOption('fileshare:/srv/backups'), { StorageKind: 'FileShare', Path: '/srv/backups' });
  assert.deepEqual(parseStorageOption('fileshare:rel/dir'), { StorageKind: 'FileShare', Path: resolve('rel/dir') });
  assert.equal(parseStorageOption('{"StorageKind":"FileShare","Path":"/b"}').StorageKind, 'FileShare');
  for (const bad of ['nowhere', 'fileshare:', '{not json', '{"StorageKind":"Tape"}']) assert.throws(() => parseStorageOption(bad), usage, bad);
});

it('--time, --since, --until: date-times as UTC; --timeout: minutes or hours', () => {
  assert.equal(parseTimeOption('2026-12-07T09:30:00+01:00', '--time'), '2026-12-07T08:30:00.000Z');
  assert.throws(() => parseTimeOption('yesterday', '--time'), usage);
  assert.deepEqual(['10', '10m', '2h'].map(parseTimeoutMinutes), [10, 10, 120]);
  for (const bad of ['0', '1.5', 'soon', '-3']) assert.throws(() => parseTimeoutMinutes(bad), usage, bad);
});

it('Ctrl-C: the question says cancelling is not there yet, until a cancel is given', () => {
  assert.match(interruptQuestion({ what: 'The backup' }), /\[d\]etach.*keep \[w\]aiting.*issue 23.*Ctrl-C again detaches/s);
  assert.doesNotMatch(interruptQuestion({ what: 'The backup' }), /\[c\]ancel/);
  assert.match(interruptQuestion({ what: 'The backup', cancel: async () => {} }), /\[c\]ancel/);
  assert.deepEqual(['d', 'Detach', 'w', '', 'x', 'c'].map((a) => choiceOf(a, false)), ['detach', 'detach', 'wait', 'wait', 'wait', 'wait']);
  assert.equal(choiceOf('c', true), 'cancel');
});

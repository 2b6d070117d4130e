import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type OperationState, nextOperation, phaseOf, phaseOfMany } from './operation.ts';

test('an ended operation never changes, whatever happens to it', () => {
  for (const state of ['Success', 'Failure', 'Timeout'] as const) {
    assert.equal(nextOperation('Backup', state, { type: 'HostStarted' }), undefined);
    assert.equal(nextOperation('Backup', state, { type: 'DeadlinePassed' }), undefined);
    assert.equal(nextOperation('Restore', state, { type: 'HostSucceeded', result: {} }), undefined);
  }
});

test('a host starting names the in-progress state by kind', () => {
  assert.deepEqual(nextOperation('Backup', 'Accepted', { type: 'HostStarted' }), { state: 'BackupInProgress' });
  assert.deepEqual(nextOperation('PeriodicBackup', 'Accepted', { type: 'HostStarted' }), { state: 'BackupInProgress' });
  assert.deepEqual(nextOperation('Restore', 'Accepted', { type: 'HostStarted' }), { state: 'RestoreInProgress' });
});

test('a deadline ends an active operation with FABRIC_E_TIMEOUT, in Service Fabric\'s words', () => {
  assert.deepEqual(nextOperation('Restore', 'RestoreInProgress', { type: 'DeadlinePassed' }),
    { state: 'Timeout', failure: { Code: 'FABRIC_E_TIMEOUT', Message: 'The request of restore has timed out.' } });
});

test('a host\'s restart cuts only what it had started; Accepted ones are handed out again', () => {
  assert.equal(nextOperation('Backup', 'Accepted', { type: 'HostRestarted' }), undefined);
  assert.equal(nextOperation('Backup', 'BackupInProgress', { type: 'HostRestarted' })?.failure?.Code, 'E_ABORT');
  assert.match(nextOperation('Restore', 'RestoreInProgress', { type: 'HostRestarted' })?.failure?.Message ?? '', /restore.*cut off.*host restarted/);
});

test('a host that is down fails what it had, queued or started, naming the host', () => {
  for (const state of ['Accepted', 'BackupInProgress'] as const) {
    const c = nextOperation('PeriodicBackup', state, { type: 'HostDown', hostId: 'h7', lastSeenUtc: '2026-01-01T00:00:00.000Z' });
    assert.equal(c?.state, 'Failure');
    assert.equal(c?.failure?.Code, 'LIFEBOAT_E_HOST_LOST');
    assert.match(c?.failure?.Message ?? '', /host h7.*not been seen since 2026-01-01T00:00:00.000Z/);
  }
  assert.equal(nextOperation('Backup', 'Success', { type: 'HostDown', hostId: 'h7', lastSeenUtc: '2026-01-01T00:00:00.000Z' }), undefined);
});

test('SkipAutoRestore drops only an auto-restore not yet handed out', () => {
  assert.equal(nextOperation('Restore', 'Accepted', { type: 'AutoRestoreSkipped' })?.state, 'Failure');
  assert.equal(nextOperation('Restore', 'RestoreInProgress', { type: 'AutoRestoreSkipped' }), undefined);
  assert.equal(nextOperation('Backup', 'Accepted', { type: 'AutoRestoreSkipped' }), undefined);
});

test('phases: one per state, and several parts give partial failure', () => {
  const all: OperationState[] = ['Accepted', 'BackupInProgress', 'RestoreInProgress', 'Success', 'Failure', 'Timeout'];
  assert.deepEqual(all.map(phaseOf), ['Accepted', 'InProgress', 'InProgress', 'Succeeded', 'Failed', 'TimedOut']);
  assert.equal(phaseOfMany(['Success', 'Success']), 'Succeeded');
  assert.equal(phaseOfMany(['Success', 'Failure']), 'PartiallyFailed');
  assert.equal(phaseOfMany(['Success', 'Timeout']), 'PartiallyFailed');
  assert.equal(phaseOfMany(['Failure', 'Timeout']), 'Failed');
  assert.equal(phaseOfMany(['Timeout', 'Timeout']), 'TimedOut');
  assert.equal(phaseOfMany(['Success', 'BackupInProgress']), 'InProgress');
  assert.equal(phaseOfMany(['Accepted', 'Accepted']), 'Accepted');
  assert.equal(phaseOfMany(['Accepted', 'Success']), 'InProgress');
});

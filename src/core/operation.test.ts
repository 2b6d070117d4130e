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

test('a restart cuts only what a host had started; Accepted ones are handed out again', () => {
  assert.equal(nextOperation('Backup', 'Accepted', { type: 'CutByRestart' }), undefined);
  assert.equal(nextOperation('Backup', 'BackupInProgress', { type: 'CutByRestart' })?.failure?.Code, 'E_ABORT');
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

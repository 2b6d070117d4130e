/**
 * Backup policies on the wire (Service Fabric's BackupPolicyDescription): the request body of
 * CreateBackupPolicy and UpdateBackupPolicy and the answer of the policy reads. The rules that
 * read and write them are the core's (core/policy.ts), re-exported here.
 */
import type { StorageDescription } from '../core/storage-description.ts';

export { policyToWire, scheduleToWire } from '../core/policy.ts';
export type { StorageDescription } from '../core/storage-description.ts';

export type FrequencyBasedScheduleWire = {
  ScheduleKind: 'FrequencyBased';
  /** An ISO 8601 duration, e.g. PT10M; whole minutes. */
  Interval: string;
};

export type TimeBasedScheduleWire = {
  ScheduleKind: 'TimeBased';
  ScheduleFrequencyType: 'Daily' | 'Weekly';
  /** Days of the week (Weekly). */
  RunDays?: string[];
  /** Times of day as date-times of which only the time counts, e.g. 0001-01-01T09:00:00Z. */
  RunTimes: string[];
};

export type BackupScheduleWire = FrequencyBasedScheduleWire | TimeBasedScheduleWire;

export type RetentionPolicyWire = {
  RetentionPolicyType: 'Basic';
  /** An ISO 8601 duration: how old a backup must be before retention may delete it. */
  RetentionDuration: string;
  /** Never fewer backups of a partition than this; 0: no floor. */
  MinimumNumberOfBackups?: number;
};

/** BackupPolicyDescription. In answers, storage secrets read "****". */
export type BackupPolicyWire = {
  Name: string;
  AutoRestoreOnDataLoss: boolean;
  MaxIncrementalBackups: number;
  Schedule: BackupScheduleWire;
  Storage: StorageDescription;
  RetentionPolicy?: RetentionPolicyWire;
};

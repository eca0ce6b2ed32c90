import { BackupType } from '../../core';
import { BackupSchedule } from './schedule';

/** One schedule of backups of one type (the same shape as the AWS CDK flavour's). */
export interface ScheduledBackup {
  /** @default BackupType.FULL */
  readonly type?: BackupType;
  /** When backups of this type run. */
  readonly schedule: BackupSchedule;
}

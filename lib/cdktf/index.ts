// The cloud-neutral part of the CDK for Terraform flavour (`db-backup-constructs/cdktf`): the
// model and the value classes (BackupSchedule, Duration, Retention, …), loading no provider.
// Each cloud's constructs are in their own entry, which loads only its own provider and
// re-exports everything here:
//   import { DatabaseBackup, BackupSchedule, Retention } from 'db-backup-constructs/cdktf/aws';
//   import { DatabaseBackup, BackupSchedule, Retention } from 'db-backup-constructs/cdktf/google';
export * from '../core';
export * from './common';

// The CDK for Terraform entry point (`db-backup-constructs/cdktf`): never loads aws-cdk-lib.
// The cloud-neutral model and the shared value classes sit at the top; each cloud's constructs
// are in their own namespace, because both clouds have a `BackupVault`, a `DatabaseBackup`, …:
//   import { aws, google, BackupSchedule, Retention } from 'db-backup-constructs/cdktf';
export * from '../core';
export * from './common';
export * as aws from './aws';
export * as google from './google';

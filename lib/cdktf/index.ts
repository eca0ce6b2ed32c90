// The cloud-neutral part of the CDK for Terraform flavour (`db-backup-constructs/cdktf`): the
// model and the value classes (BackupSchedule, Duration, Retention, …). Each cloud's constructs
// have their own entry, which loads only its own provider and re-exports everything here:
//   import { DatabaseBackup, BackupSchedule, Retention } from 'db-backup-constructs/cdktf/aws';
//   import { DatabaseBackup, BackupSchedule, Retention } from 'db-backup-constructs/cdktf/google';
// The `aws` and `google` namespaces below are kept for existing code; the build turns them into
// getters (scripts/gen-cdktn.mjs), so a cloud's provider is loaded only when its namespace is
// used and an AWS-only install can import this entry.
export * from '../core';
export * from './common';
/** @deprecated import from `db-backup-constructs/cdktf/aws` */
export import aws = require('./aws');
/** @deprecated import from `db-backup-constructs/cdktf/google` */
export import google = require('./google');

// The CDK for Terraform entry for Google Cloud (`db-backup-constructs/cdktf/google`): loads
// cdktf and @cdktf/provider-google only. The cloud-neutral model and value classes are
// re-exported, so one import is enough; the rest of lib/core is internal.
export * from '../common/model';
export * from '../common';
export * from './refs';
export * from './vault';
export * from './source';
export * from './image';
export * from './network';
export * from './runner-job';
export * from './drill-job';
export * from './schedule';
export * from './verifier';
export * from './monitoring';
export * from './database-backup';
export * from './log-shipper';

// The CDK for Terraform entry for AWS (`db-backup-constructs/cdktf/aws`): loads cdktf and
// @cdktf/provider-aws only. The cloud-neutral model and value classes are re-exported, so one
// import is enough; the rest of lib/core is internal.
export * from '../common/model';
export * from '../common';
export * from './refs';
export * from './vault';
export * from './replication';
export * from './source';
export * from './image';
export * from './runner-task';
export * from './drill-task';
export * from './schedule';
export * from './verifier';
export * from './monitoring';
export * from './database-backup';
export * from './log-shipper';

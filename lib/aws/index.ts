// The aws-cdk-lib constructs of db-backup-constructs.
export * from './vault';
export * from './source';
export * from './schedule';
export * from './runner-task';
export * from './drill-task';
export * from './verifier';
export * from './monitoring';
export * from './database-backup';
export * from './binlog-shipper';
export * from './fleet';
export * from './fleet-member';
export * from './shared-task-parts';
export * from './restore-task';

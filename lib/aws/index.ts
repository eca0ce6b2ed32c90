// The aws-cdk-lib constructs of db-backup-constructs.
export * from './vault';
export * from './replication';
export * from './source';
export * from './schedule';
export * from './runner-task';
export * from './drill-task';
export * from './verifier';
export * from './monitoring';
export * from './database-backup';
export * from './log-shipper';
export * from './native-backup';
export * from './fleet';
export * from './fleet-member';
export * from './shared-task-parts';
export * from './restore-task';

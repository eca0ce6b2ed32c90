// The AWS CDK entry point: the aws-cdk-lib constructs and the part of the cloud-neutral model
// their API uses. Only the public API is exported here (it is also what jsii publishes to
// Python and the other languages); the runner, the Lambda and the CDKTF constructs read the
// rest of lib/core directly.
export { BackupMethod, BackupType, Compression, Engine, RetentionTier } from './core/model';
export { EncryptionScheme } from './core/urls';
export { RunnerCommand } from './core/contract';
export { Retention } from './core/retention';
export type { GfsRetentionProps, TierLifetime } from './core/retention';
export type { CronOptions, CronSpec } from './core/schedule';
export { ServerFamily, ServerVersions } from './core/versions';
export type { ServerVersionRange } from './core/versions';
export * from './aws';

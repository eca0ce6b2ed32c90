// The part of the cloud-neutral model (lib/core) that the CDKTF entries' public API uses: the
// same names as the AWS CDK entry (lib/index.ts) exports. The rest of lib/core is internal.
export { BackupMethod, BackupType, Compression, Engine, RetentionTier } from '../../core/model';
export { EncryptionScheme } from '../../core/urls';
export { Retention } from '../../core/retention';
export type { GfsRetentionProps, TierLifetime } from '../../core/retention';
export type { CronOptions, CronSpec } from '../../core/schedule';
export { ServerFamily, ServerVersions } from '../../core/versions';
export type { ServerVersionRange } from '../../core/versions';

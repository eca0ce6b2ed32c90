import type { Duration, Stack } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';

/**
 * A second failure domain for a vault: S3 replication of every backup object (SSE-KMS
 * encrypted, with its tier tag) to a bucket in another region and/or account.
 *
 * Give either `replicaStack` (same account, another region: a replica vault with the same
 * retention tiers, Object Lock and cold storage is made there) or `destinationBucket` and
 * `destinationKey` (a bucket someone else owns, e.g. in a backup account).
 */
export interface VaultReplicationOptions {
  /**
   * A stack in another region of this account, where a replica vault is made with the vault's
   * own retention tiers, Object Lock and cold storage settings. Its bucket gets a generated
   * physical name and its key an alias, so the vault's stack needs no cross-region references.
   * @default - no replica is made here; give `destinationBucket` and `destinationKey`
   */
  readonly replicaStack?: Stack;
  /**
   * An existing destination bucket, in another region and/or account. Import it with its
   * owner's account: `Bucket.fromBucketAttributes(this, 'Replica', { bucketArn, account, region })`.
   * Its owner sets versioning, the tier lifecycle rules, Object Lock (when the vault has it) and
   * the bucket and key policies shown in docs/aws-cdk.md.
   * @default - the replica vault made in `replicaStack`
   */
  readonly destinationBucket?: s3.IBucket;
  /**
   * The KMS key in the destination's region that S3 encrypts the replicas with (SSE-KMS);
   * required with `destinationBucket`. Import it with `Key.fromKeyArn`.
   * @default - the replica vault's key
   */
  readonly destinationKey?: kms.IKey;
  /**
   * S3 Replication Time Control: 99.99% of objects replicated within 15 minutes, replication
   * metrics with a 15-minute event threshold. Without it, replication metrics are still on.
   * @default true
   */
  readonly replicationTimeControl?: boolean;
  /**
   * Replicate delete markers. Lifecycle expiry is never replicated (the destination expires
   * by its own tier rules); this only carries delete markers made by a person or a process,
   * which would then hide the replica's current version too.
   * @default false
   */
  readonly deleteMarkerReplication?: boolean;
  /**
   * The storage class of the replicas.
   * @default - the storage class of the source object
   */
  readonly storageClass?: s3.StorageClass;
  /**
   * The topic the replication alarms notify.
   * @default - the alarms have no actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * The replication latency above which the latency alarm fires.
   * @default Duration.minutes(30)
   */
  readonly latencyAlarmThreshold?: Duration;
}

import { Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { S3BucketReplicationConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-replication-configuration';
import type { ITerraformDependable } from 'cdktf';
import {
  ConfigError,
  KMS_REPLICATION_DESTINATION_ACTIONS,
  KMS_REPLICATION_SOURCE_ACTIONS,
  REPLICATION_RULE_ID,
  S3_REPLICATION_DELETE_MARKER_ACTIONS,
  S3_REPLICATION_DESTINATION_ACTIONS,
  S3_REPLICATION_OWNER_OVERRIDE_ACTIONS,
  S3_REPLICATION_SOURCE_BUCKET_ACTIONS,
  S3_REPLICATION_SOURCE_OBJECT_ACTIONS,
} from '../../core';
import { Duration } from '../common/duration';
import { awsContext } from './private/context';
import { assumeRolePolicy, policyDocument, type Statement } from './private/policy';
import type { ITopicRef } from './refs';

/** Where a vault's replicas go: a bucket and the key that encrypts them (a `BackupVault` is one). */
export interface IReplicaDestination {
  readonly bucketName: string;
  readonly bucketArn: string;
  /** The KMS key, in the destination's region, that S3 encrypts the replicas with. */
  readonly keyArn: string;
}

/**
 * A second failure domain for a vault: S3 replication of every backup object (SSE-KMS, with
 * its tier tag) to a bucket in another region and/or account.
 */
export interface VaultReplicationOptions {
  /**
   * Where the replicas go: a `BackupVault` made with the same `retention` and `objectLock` in
   * a stack (or provider) of another region, or `BackupVault.fromExisting` for another
   * account's bucket and key. A `BackupVault` of this app with other tiers or no Object Lock
   * (when this one has it) is refused.
   */
  readonly destination: IReplicaDestination;
  /**
   * The account that owns the destination, when it is not this one: the replicas become its
   * objects (owner override), and its bucket and key policies must let this vault's
   * replication role in (docs/cdktf.md shows them).
   * @default - this account
   */
  readonly destinationAccountId?: string;
  /**
   * The destination's region: the replica key is then used only through S3 there.
   * @default - not restricted to a region
   */
  readonly destinationRegion?: string;
  /**
   * S3 Replication Time Control (15 minutes) with its metrics; without it, metrics stay on.
   * @default true
   */
  readonly replicationTimeControl?: boolean;
  /**
   * Replicate delete markers made by a person or a process (never lifecycle expiry).
   * @default false
   */
  readonly deleteMarkerReplication?: boolean;
  /** @default - the source object's storage class */
  readonly storageClass?: string;
  /** @default - the alarms have no actions */
  readonly alarmTopic?: ITopicRef;
  /** @default Duration.minutes(30) */
  readonly latencyAlarmThreshold?: Duration;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/** Properties of a `VaultReplication`. */
export interface VaultReplicationProps extends VaultReplicationOptions {
  /** The vault's bucket. */
  readonly sourceBucketName: string;
  readonly sourceBucketArn: string;
  /** The vault's key. */
  readonly sourceKeyArn: string;
  /** Resources the replication configuration must wait for (the bucket's versioning). */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * The replication of a vault's bucket: a role S3 assumes (least privilege, from the one
 * permission table in lib/core), the `aws_s3_bucket_replication_configuration`, and alarms on
 * failed operations and replication latency.
 */
export class VaultReplication extends Construct {
  public readonly role: IamRole;
  public readonly configuration: S3BucketReplicationConfigurationA;
  public readonly failedAlarm: CloudwatchMetricAlarm;
  public readonly latencyAlarm: CloudwatchMetricAlarm;

  constructor(scope: Construct, id: string, props: VaultReplicationProps) {
    super(scope, id);
    const ctx = awsContext(this);
    const dest = props.destination;
    const crossAccount = props.destinationAccountId !== undefined;
    if (
      crossAccount &&
      !Token.isUnresolved(props.destinationAccountId) &&
      !/^\d{12}$/.test(props.destinationAccountId!)
    ) {
      throw new ConfigError(
        `replication.destinationAccountId '${props.destinationAccountId}` +
          `' is not an AWS account id; give the 12 digits.`,
      );
    }
    const threshold = (props.latencyAlarmThreshold ?? Duration.minutes(30)).toSeconds();
    if (threshold < 60) {
      throw new ConfigError(
        `replication.latencyAlarmThreshold is ${threshold} seconds; S3 reports replication latency each minute, ` +
          'so use at least Duration.minutes(1).',
      );
    }
    const rtc = props.replicationTimeControl ?? true;
    const s3Arn = (arn: string) => [arn, `${arn}/*`];
    const statements: Statement[] = [
      {
        Sid: 'ReadReplicationConfiguration',
        Effect: 'Allow',
        Action: [...S3_REPLICATION_SOURCE_BUCKET_ACTIONS],
        Resource: props.sourceBucketArn,
      },
      {
        Sid: 'ReadVersionsToReplicate',
        Effect: 'Allow',
        Action: [...S3_REPLICATION_SOURCE_OBJECT_ACTIONS],
        Resource: `${props.sourceBucketArn}/*`,
      },
      {
        Sid: 'WriteReplicas',
        Effect: 'Allow',
        Action: [
          ...S3_REPLICATION_DESTINATION_ACTIONS,
          ...(props.deleteMarkerReplication === true ? S3_REPLICATION_DELETE_MARKER_ACTIONS : []),
          ...(crossAccount ? S3_REPLICATION_OWNER_OVERRIDE_ACTIONS : []),
        ],
        Resource: `${dest.bucketArn}/*`,
      },
      {
        Sid: 'DecryptSourceThroughS3',
        Effect: 'Allow',
        Action: [...KMS_REPLICATION_SOURCE_ACTIONS],
        Resource: props.sourceKeyArn,
        Condition: {
          StringEquals: { 'kms:ViaService': `s3.${ctx.region}.amazonaws.com` },
          StringLike: { 'kms:EncryptionContext:aws:s3:arn': s3Arn(props.sourceBucketArn) },
        },
      },
      {
        Sid: 'EncryptReplicasThroughS3',
        Effect: 'Allow',
        Action: [...KMS_REPLICATION_DESTINATION_ACTIONS],
        Resource: dest.keyArn,
        Condition: {
          ...(props.destinationRegion === undefined
            ? {}
            : { StringEquals: { 'kms:ViaService': `s3.${props.destinationRegion}.amazonaws.com` } }),
          StringLike: { 'kms:EncryptionContext:aws:s3:arn': s3Arn(dest.bucketArn) },
        },
      },
    ];
    const role = new IamRole(this, 'Role', {
      namePrefix: 'dbbackup-replication-',
      description: 'db-backup-constructs: S3 replication of the backup vault to its second failure domain',
      assumeRolePolicy: assumeRolePolicy('s3.amazonaws.com', ctx.accountId),
      tags: props.tags,
    });
    new IamRolePolicy(this, 'RolePolicy', { name: 'dbbackup', role: role.id, policy: policyDocument(statements) });
    this.role = role;

    this.configuration = new S3BucketReplicationConfigurationA(this, 'Resource', {
      bucket: props.sourceBucketName,
      role: role.arn,
      dependsOn: props.dependsOn,
      rule: [
        {
          id: REPLICATION_RULE_ID,
          status: 'Enabled',
          priority: 0,
          filter: { prefix: '' },
          deleteMarkerReplication: { status: props.deleteMarkerReplication === true ? 'Enabled' : 'Disabled' },
          sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
          destination: {
            bucket: dest.bucketArn,
            account: props.destinationAccountId,
            accessControlTranslation: crossAccount ? { owner: 'Destination' } : undefined,
            encryptionConfiguration: { replicaKmsKeyId: dest.keyArn },
            storageClass: props.storageClass,
            metrics: { status: 'Enabled', eventThreshold: rtc ? { minutes: 15 } : undefined },
            replicationTime: rtc ? { status: 'Enabled', time: { minutes: 15 } } : undefined,
          },
        },
      ],
    });

    const dimensions = {
      SourceBucket: props.sourceBucketName,
      DestinationBucket: dest.bucketName,
      RuleId: REPLICATION_RULE_ID,
    };
    const actions =
      props.alarmTopic === undefined ? {} : { alarmActions: [props.alarmTopic.arn], okActions: [props.alarmTopic.arn] };
    this.failedAlarm = new CloudwatchMetricAlarm(this, 'OperationsFailed', {
      alarmName: `${props.sourceBucketName}-replication-failed`,
      alarmDescription: 'Backup objects failed to replicate to the second failure domain (S3 replication).',
      namespace: 'AWS/S3',
      metricName: 'OperationsFailedReplication',
      dimensions,
      statistic: 'Sum',
      period: 300,
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
      ...actions,
      tags: props.tags,
    });
    this.latencyAlarm = new CloudwatchMetricAlarm(this, 'Latency', {
      alarmName: `${props.sourceBucketName}-replication-latency`,
      alarmDescription: `Backup objects take longer than ${threshold} seconds to reach the second failure domain.`,
      namespace: 'AWS/S3',
      metricName: 'ReplicationLatency',
      dimensions,
      statistic: 'Maximum',
      period: 300,
      evaluationPeriods: 3,
      threshold,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
      ...actions,
      tags: props.tags,
    });
  }
}

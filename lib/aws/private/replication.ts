import { Annotations, ArnFormat, Duration, Names, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
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
import { acknowledge, acknowledgeInlinePolicies, wildcardResourceFinding } from './nag';
import type { VaultReplicationOptions } from '../replication';

/** What a vault tells the replication about itself (kept structural so this file needs no vault). */
export interface ReplicationSource {
  readonly bucket: s3.IBucket;
  readonly key: kms.IKey;
  readonly objectLock: boolean;
}

/** The parts of a vault's replication, exposed on the vault. */
export interface ReplicationParts {
  readonly role: iam.Role;
  readonly configuration: s3.CfnBucket.ReplicationConfigurationProperty;
  readonly destinationBucket: s3.IBucket;
  readonly destinationKey: kms.IKey;
  readonly alarms: cloudwatch.Alarm[];
}

/**
 * The replication role, rule and alarms of a vault. `makeReplica` makes the replica vault in
 * `replicaStack` (the vault knows its own settings); it is called only with `replicaStack`.
 */
export function vaultReplication(
  scope: Construct,
  source: ReplicationSource,
  options: VaultReplicationOptions,
  makeReplica: (stack: Stack) => { scope: Construct; bucket: s3.IBucket; key: kms.IKey },
): ReplicationParts {
  const here = Stack.of(scope);
  let destinationBucket: s3.IBucket;
  let destinationKey: kms.IKey;
  /** The key's ARN as the replication rule and the role's policy name it. */
  let keyResource: { arn: string; aliasName?: string };
  if (options.replicaStack !== undefined) {
    if (options.destinationBucket !== undefined || options.destinationKey !== undefined) {
      throw new ConfigError(
        'replication has both replicaStack and destinationBucket/destinationKey; give replicaStack to make a ' +
          'replica vault there, or destinationBucket with destinationKey for a bucket that exists.',
      );
    }
    const target = options.replicaStack;
    if (!Token.isUnresolved(target.region) && !Token.isUnresolved(here.region) && target.region === here.region) {
      throw new ConfigError(
        `replication.replicaStack is in ${target.region}, the vault's own region; a second failure domain is ` +
          'another region (or account): give a stack with env.region set to another region.',
      );
    }
    if (Token.isUnresolved(target.region) || Token.isUnresolved(target.account)) {
      throw new ConfigError(
        `replication.replicaStack '${target.stackName}' has no concrete env; give it env: { account, region } ` +
          "(the replica's name and key alias are literals the vault's stack refers to).",
      );
    }
    const replica = makeReplica(target);
    // S3 refuses a replication rule to a bucket that does not exist yet. aws-cdk-lib renamed the
    // method (addDependency is deprecated and warns at synth); older releases have only the old name.
    const order = here as Stack & { addStackDependency?: Stack['addDependency'] };
    (order.addStackDependency ?? order.addDependency).call(
      here,
      target,
      'the replica vault exists before replication to it is configured',
    );
    destinationBucket = replica.bucket;
    destinationKey = replica.key;
    const aliasName = `alias/dbbackup-replica-${Names.uniqueResourceName(scope, { maxLength: 200, separator: '-' })}`
      .toLowerCase()
      .replace(/[^a-z0-9/_-]/g, '-');
    new kms.Alias(replica.scope, 'ReplicaKeyAlias', { aliasName, targetKey: replica.key });
    keyResource = {
      arn: target.formatArn({
        service: 'kms',
        resource: 'alias',
        resourceName: aliasName.replace(/^alias\//, ''),
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
      aliasName,
    };
  } else {
    if (options.destinationBucket === undefined || options.destinationKey === undefined) {
      throw new ConfigError(
        `replication needs a destination: replicaStack (a stack in another region), or destinationBucket ` +
          `with destinationKey (got ${options.destinationBucket === undefined ? 'no bucket' : 'a bucket'} and ` +
          `${options.destinationKey === undefined ? 'no key' : 'a key'}).`,
      );
    }
    destinationBucket = options.destinationBucket;
    destinationKey = options.destinationKey;
    keyResource = { arn: destinationKey.keyArn };
    if (source.objectLock) {
      Annotations.of(scope).addWarningV2(
        'db-backup-constructs:replicaObjectLock',
        'The vault has Object Lock, so S3 replicates only to a destination bucket with Object Lock enabled; ' +
          "make sure the destination's owner enabled it (replicas keep each backup's retain-until date).",
      );
    }
  }

  const destAccount = destinationBucket.env.account;
  const crossAccount =
    !Token.isUnresolved(destAccount) && !Token.isUnresolved(here.account) && destAccount !== here.account;
  const rtc = options.replicationTimeControl ?? true;
  const threshold = options.latencyAlarmThreshold ?? Duration.minutes(30);
  if (!Token.isUnresolved(threshold.toString()) && threshold.toSeconds() < 60) {
    throw new ConfigError(
      `replication.latencyAlarmThreshold is ${threshold.toHumanString()}; S3 reports replication latency each ` +
        'minute, so use at least Duration.minutes(1) (e.g. Duration.minutes(30)).',
    );
  }

  const role = new iam.Role(scope, 'ReplicationRole', {
    assumedBy: new iam.ServicePrincipal('s3.amazonaws.com'),
    description: 'S3 replication of the backup vault to its second failure domain',
  });
  const bucket = source.bucket;
  role.addToPolicy(
    new iam.PolicyStatement({ actions: [...S3_REPLICATION_SOURCE_BUCKET_ACTIONS], resources: [bucket.bucketArn] }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: [...S3_REPLICATION_SOURCE_OBJECT_ACTIONS],
      resources: [bucket.arnForObjects('*')],
    }),
  );
  const destinationActions = [
    ...S3_REPLICATION_DESTINATION_ACTIONS,
    ...(options.deleteMarkerReplication === true ? S3_REPLICATION_DELETE_MARKER_ACTIONS : []),
    ...(crossAccount ? S3_REPLICATION_OWNER_OVERRIDE_ACTIONS : []),
  ];
  role.addToPolicy(
    new iam.PolicyStatement({ actions: destinationActions, resources: [destinationBucket.arnForObjects('*')] }),
  );
  // The vault's key, only through S3 and only for this bucket's objects (the bucket key's
  // encryption context is the bucket ARN; without a bucket key it is the object's).
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: [...KMS_REPLICATION_SOURCE_ACTIONS],
      resources: [source.key.keyArn],
      conditions: {
        StringEquals: { 'kms:ViaService': `s3.${here.region}.amazonaws.com` },
        StringLike: { 'kms:EncryptionContext:aws:s3:arn': [bucket.bucketArn, bucket.arnForObjects('*')] },
      },
    }),
  );
  const destRegion = destinationBucket.env.region;
  const destinationKeyStatement = new iam.PolicyStatement({
    actions: [...KMS_REPLICATION_DESTINATION_ACTIONS],
    resources: [keyResource.arn],
    conditions: {
      StringLike: {
        'kms:EncryptionContext:aws:s3:arn': [destinationBucket.bucketArn, destinationBucket.arnForObjects('*')],
      },
    },
  });
  if (keyResource.aliasName !== undefined) {
    // KMS authorizes against the key's ARN, which the vault's stack cannot name across regions
    // without references: any key of the replica's account and region that carries the alias.
    const replicaStack = options.replicaStack!;
    const keys = replicaStack.formatArn({
      service: 'kms',
      resource: 'key',
      resourceName: '*',
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: destinationKeyStatement.actions,
        resources: [keys],
        conditions: {
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': keyResource.aliasName },
          StringLike: destinationKeyStatement.conditions.StringLike,
        },
      }),
    );
    const policy = role.node.tryFindChild('DefaultPolicy')!;
    acknowledge(policy, {
      id: wildcardResourceFinding('AwsSolutions', policy, keys),
      reason:
        "The replica key is named by its alias (kms:ResourceAliases): the vault's stack cannot name a key ARN " +
        'of another region without cross-region references.',
    });
  } else if (!Token.isUnresolved(destRegion)) {
    destinationKeyStatement.addCondition('StringEquals', { 'kms:ViaService': `s3.${destRegion}.amazonaws.com` });
    role.addToPolicy(destinationKeyStatement);
  } else {
    role.addToPolicy(destinationKeyStatement);
  }
  const policy = role.node.tryFindChild('DefaultPolicy')!;
  acknowledgeInlinePolicies(role);
  acknowledge(
    policy,
    {
      id: wildcardResourceFinding('AwsSolutions', policy, bucket.arnForObjects('*')),
      reason:
        'S3 replication reads every new object version of the vault (all backups of all databases), read-only, ' +
        'with no delete.',
    },
    {
      id: wildcardResourceFinding('AwsSolutions', policy, destinationBucket.arnForObjects('*')),
      reason: 'S3 replication writes the replicas of every backup object into the destination bucket, with no delete.',
    },
  );

  // The L1 property, not s3.Bucket's `replicationRules`: that one makes a role (named
  // 'CDKReplicationRole' without a feature flag) that may also replicate deletes and cannot read
  // Object Lock settings, and takes the replica key only as a key ARN (not an alias ARN).
  const configuration: s3.CfnBucket.ReplicationConfigurationProperty = {
    role: role.roleArn,
    rules: [
      {
        id: REPLICATION_RULE_ID,
        status: 'Enabled',
        priority: 0,
        filter: { prefix: '' },
        deleteMarkerReplication: { status: options.deleteMarkerReplication === true ? 'Enabled' : 'Disabled' },
        sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
        destination: {
          bucket: destinationBucket.bucketArn,
          account: crossAccount ? destAccount : undefined,
          accessControlTranslation: crossAccount ? { owner: 'Destination' } : undefined,
          encryptionConfiguration: { replicaKmsKeyId: keyResource.arn },
          storageClass: options.storageClass?.value,
          metrics: { status: 'Enabled', eventThreshold: rtc ? { minutes: 15 } : undefined },
          replicationTime: rtc ? { status: 'Enabled', time: { minutes: 15 } } : undefined,
        },
      },
    ],
  };

  const dimensionsMap = {
    SourceBucket: bucket.bucketName,
    DestinationBucket: destinationBucket.bucketName,
    RuleId: REPLICATION_RULE_ID,
  };
  const alarms = new Construct(scope, 'ReplicationAlarms');
  const failed = new cloudwatch.Alarm(alarms, 'OperationsFailed', {
    metric: new cloudwatch.Metric({
      namespace: 'AWS/S3',
      metricName: 'OperationsFailedReplication',
      dimensionsMap,
      statistic: 'Sum',
      period: Duration.minutes(5),
    }),
    threshold: 0,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    alarmDescription: 'Backup objects failed to replicate to the second failure domain (S3 replication).',
  });
  const latency = new cloudwatch.Alarm(alarms, 'Latency', {
    metric: new cloudwatch.Metric({
      namespace: 'AWS/S3',
      metricName: 'ReplicationLatency',
      dimensionsMap,
      statistic: 'Maximum',
      period: Duration.minutes(5),
    }),
    threshold: threshold.toSeconds(),
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 3,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    alarmDescription:
      `Backup objects take longer than ${threshold.toHumanString()} to reach the second failure ` + 'domain.',
  });
  if (options.alarmTopic !== undefined) {
    for (const a of [failed, latency]) a.addAlarmAction(new actions.SnsAction(options.alarmTopic));
  }
  return { role, configuration, destinationBucket, destinationKey, alarms: [failed, latency] };
}

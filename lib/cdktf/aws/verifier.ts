import { AssetType, TerraformAsset, Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission';
import { SchedulerSchedule } from '@cdktf/provider-aws/lib/scheduler-schedule';
import {
  ConfigError,
  FreshnessCheckEvent,
  MANIFEST_NAME,
  METRIC_NAMESPACE,
  VERIFIER_ENV,
  bundledAsset,
  validateDatabaseId,
  validateStoragePrefix,
} from '../../core';
import { Duration } from '../common/duration';
import { boundedName } from '../common/names';
import { awsContext } from './private/context';
import { Statement, VERIFIER_BUCKET_ACTIONS, VERIFIER_OBJECT_ACTIONS } from './private/policy';
import { LOG_RETENTION_DAYS, serviceRole } from './private/role';
import { IKeyRef, ITopicRef } from './refs';
import { IBackupVault } from './vault';

/** Properties of a `Verifier`. */
export interface VerifierProps {
  readonly databaseId: string;
  readonly vault: IBackupVault;
  /**
   * The key prefix of the database's backups.
   * @default - the databaseId
   */
  readonly prefix?: string;
  /** The topic that gets a message for each failed verification. */
  readonly alarmTopic: ITopicRef;
  /**
   * The key the topic is encrypted with (the function then may use it to publish).
   * @default - the topic is not encrypted with a customer-managed key
   */
  readonly alarmTopicKey?: IKeyRef;
  /**
   * How often the freshness check publishes `BackupAgeSeconds`.
   * @default Duration.hours(1)
   */
  readonly freshnessInterval?: Duration;
  /**
   * The function's timeout: it reads and hashes every byte of a backup it cannot check by S3's
   * own checksums, so give large databases the maximum.
   * @default Duration.minutes(15)
   */
  readonly timeout?: Duration;
  /** @default 1024 */
  readonly memorySize?: number;
  /** @default Duration.days(365) */
  readonly logRetention?: Duration;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/**
 * The verification function (the package's pre-bundled `lambda/verify`, the same code as the
 * CDK construct's), run by EventBridge for each committed `manifest.json` under the database's
 * prefix and on a schedule for the freshness check that publishes `BackupAgeSeconds`.
 */
export class Verifier extends Construct {
  /** The name of the function made for `databaseId`. */
  public static functionName(databaseId: string): string {
    return boundedName(['dbbackup', databaseId, 'verify'], 64);
  }

  public readonly function: LambdaFunction;
  public readonly role: IamRole;
  public readonly rule: CloudwatchEventRule;
  public readonly freshnessSchedule: SchedulerSchedule;
  public readonly functionName: string;

  constructor(scope: Construct, id: string, props: VerifierProps) {
    super(scope, id);
    const ctx = awsContext(this);
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const prefix = props.prefix ?? props.databaseId;
    if (!Token.isUnresolved(prefix)) validateStoragePrefix(prefix);
    const timeout = (props.timeout ?? Duration.minutes(15)).toSeconds();
    if (timeout < 1 || timeout > 900) throw new ConfigError(`timeout is ${timeout} seconds; Lambda allows 1 to 900 seconds.`);
    const interval = (props.freshnessInterval ?? Duration.hours(1)).toMinutes();
    if (interval < 1) throw new ConfigError(`freshnessInterval is ${interval} minutes; give at least 1 minute.`);
    const retentionDays = (props.logRetention ?? Duration.days(365)).toDays();
    if (!(LOG_RETENTION_DAYS as readonly number[]).includes(retentionDays)) {
      throw new ConfigError(`logRetention is ${retentionDays} days; CloudWatch Logs keeps logs for one of ${LOG_RETENTION_DAYS.join(', ')} days.`);
    }
    const name = (suffix: string, max = 64) => boundedName(['dbbackup', props.databaseId, suffix], max);
    this.functionName = Verifier.functionName(props.databaseId);

    const logGroup = new CloudwatchLogGroup(this, 'Logs', {
      name: `/aws/lambda/${this.functionName}`,
      retentionInDays: retentionDays,
      tags: props.tags,
    });
    const objects = prefix === '' ? `${props.vault.bucketArn}/*` : `${props.vault.bucketArn}/${prefix}/*`;
    const statements: Statement[] = [
      { Sid: 'WriteLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: `${logGroup.arn}:*` },
      { Sid: 'ReadAndTagBackups', Effect: 'Allow', Action: [...VERIFIER_OBJECT_ACTIONS], Resource: objects },
      { Sid: 'ListBackups', Effect: 'Allow', Action: [...VERIFIER_BUCKET_ACTIONS], Resource: props.vault.bucketArn },
      { Sid: 'DecryptBackups', Effect: 'Allow', Action: 'kms:Decrypt', Resource: props.vault.keyArn },
      { Sid: 'ReportFailures', Effect: 'Allow', Action: 'sns:Publish', Resource: props.alarmTopic.arn },
      { Sid: 'Tracing', Effect: 'Allow', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' },
    ];
    if (props.alarmTopicKey !== undefined) {
      statements.push({ Sid: 'PublishEncrypted', Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: props.alarmTopicKey.arn });
    }
    this.role = serviceRole(this, 'Role', {
      name: name('verifier'),
      description: `The dbbackup verification function of ${props.databaseId}: reads backups and tags manifests`,
      service: 'lambda.amazonaws.com',
      sourceAccount: ctx.accountId,
      statements,
      tags: props.tags,
    }).role;

    const asset = new TerraformAsset(this, 'Code', { path: bundledAsset('lambda/verify'), type: AssetType.ARCHIVE });
    this.function = new LambdaFunction(this, 'Resource', {
      functionName: this.functionName,
      description: `dbbackup: verifies each committed backup of ${props.databaseId} and checks freshness`,
      role: this.role.arn,
      runtime: 'nodejs20.x',
      handler: 'index.handler',
      filename: asset.path,
      sourceCodeHash: asset.assetHash,
      architectures: ['arm64'],
      memorySize: props.memorySize ?? 1024,
      timeout,
      tracingConfig: { mode: 'Active' },
      environment: {
        variables: {
          [VERIFIER_ENV.ALARM_TOPIC_ARN]: props.alarmTopic.arn,
          [VERIFIER_ENV.METRIC_NAMESPACE]: METRIC_NAMESPACE,
          [VERIFIER_ENV.DATABASE_ID]: props.databaseId,
        },
      },
      tags: props.tags,
      dependsOn: [logGroup],
    });

    // Each committed backup: S3 "Object Created" for a manifest under the prefix.
    const key = prefix === '' ? { suffix: `/${MANIFEST_NAME}` } : { wildcard: `${prefix}/*/${MANIFEST_NAME}` };
    this.rule = new CloudwatchEventRule(this, 'ManifestCommitted', {
      name: name('manifest-committed'),
      description: `dbbackup: a backup of ${props.databaseId} was committed (its ${MANIFEST_NAME} was written)`,
      eventPattern: JSON.stringify({
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [props.vault.bucketName] }, object: { key: [key] } },
      }),
      tags: props.tags,
    });
    new CloudwatchEventTarget(this, 'ManifestTarget', {
      rule: this.rule.name,
      arn: this.function.arn,
      retryPolicy: { maximumEventAgeInSeconds: 3600, maximumRetryAttempts: 8 },
    });
    new LambdaPermission(this, 'AllowEventBridge', {
      action: 'lambda:InvokeFunction',
      functionName: this.function.functionName,
      principal: 'events.amazonaws.com',
      sourceArn: this.rule.arn,
    });

    // The freshness check: seconds since the newest verified backup, every interval.
    const freshness: FreshnessCheckEvent = { action: 'freshness', bucket: props.vault.bucketName, prefix, databaseId: props.databaseId };
    const schedulerRole = serviceRole(this, 'FreshnessRole', {
      name: name('freshness'),
      description: `Runs the dbbackup freshness check of ${props.databaseId}`,
      service: 'scheduler.amazonaws.com',
      sourceAccount: ctx.accountId,
      statements: [{ Sid: 'InvokeVerifier', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: this.function.arn }],
      tags: props.tags,
    }).role;
    this.freshnessSchedule = new SchedulerSchedule(this, 'Freshness', {
      name: name('freshness'),
      description: `dbbackup: publish the age of the newest verified backup of ${props.databaseId}`,
      scheduleExpression: `rate(${interval} ${interval === 1 ? 'minute' : 'minutes'})`,
      flexibleTimeWindow: { mode: 'OFF' },
      target: {
        arn: this.function.arn,
        roleArn: schedulerRole.arn,
        input: JSON.stringify(freshness),
        retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 600 },
      },
    });
  }
}

import { AssetType, TerraformAsset, TerraformStack, Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission';
import { SchedulerSchedule } from '@cdktf/provider-aws/lib/scheduler-schedule';
import {
  BackupRole,
  ConfigError,
  DEFAULT_FRESHNESS_INTERVAL_MINUTES,
  DEFAULT_LOG_RETENTION_DAYS,
  EncryptionScheme,
  FreshnessCheckEvent,
  LAMBDA_NODE_RUNTIME,
  MANIFEST_NAME,
  METRIC_NAMESPACE,
  VERIFIER_ENV,
  bundledAsset,
  checkVaultPrefix,
  manifestPattern,
  validateDatabaseId,
} from '../../core';
import { Duration } from '../common/duration';
import { boundedName } from '../common/names';
import { awsContext } from './private/context';
import { Statement, vaultStatements } from './private/policy';
import { LOG_RETENTION_DAYS, serviceRole } from './private/role';
import { IKeyRef, ITopicRef } from './refs';
import { IBackupVault } from './vault';

/** Properties of a `BackupVerifier`. */
export interface BackupVerifierProps {
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
   * The encryption scheme every manifest must use (`kms` for kms: backups): a manifest of another
   * scheme, without a digest, or whose HMAC the function cannot check (it needs kms:Decrypt on the
   * backups' key) fails verification, so write access to the bucket alone cannot forge a backup.
   * @default - any scheme
   */
  readonly requireEncryption?: EncryptionScheme;
  /**
   * How often the freshness check publishes `BackupAgeSeconds`.
   * @default Duration.minutes(15)
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
export class BackupVerifier extends Construct {
  /** The name of the function made for `databaseId`. */
  public static functionNameFor(databaseId: string): string {
    return boundedName(['dbbackup', databaseId, 'verify'], 64);
  }

  public readonly function: LambdaFunction;
  public readonly role: IamRole;
  public readonly rule: CloudwatchEventRule;
  public readonly freshnessSchedule: SchedulerSchedule;
  public readonly functionName: string;
  /** How often the freshness check runs. */
  public readonly freshnessInterval: Duration;

  constructor(scope: Construct, id: string, props: BackupVerifierProps) {
    super(scope, id);
    const ctx = awsContext(this);
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const prefix = props.prefix ?? props.databaseId;
    if (!Token.isUnresolved(prefix)) checkVaultPrefix(prefix);
    const timeout = (props.timeout ?? Duration.minutes(15)).toSeconds();
    if (timeout < 1 || timeout > 900)
      throw new ConfigError(`timeout is ${timeout} seconds; Lambda allows 1 to 900 seconds.`);
    this.freshnessInterval = props.freshnessInterval ?? Duration.minutes(DEFAULT_FRESHNESS_INTERVAL_MINUTES);
    const interval = this.freshnessInterval.toMinutes();
    if (interval < 1 || interval > 60)
      throw new ConfigError(
        `freshnessInterval is ${this.freshnessInterval}; use whole ` +
          `minutes from 1 to 60 (the stale alarm's resolution).`,
      );
    const retentionDays = (props.logRetention ?? Duration.days(DEFAULT_LOG_RETENTION_DAYS)).toDays();
    if (!(LOG_RETENTION_DAYS as readonly number[]).includes(retentionDays)) {
      throw new ConfigError(
        `logRetention is ${retentionDays} days; CloudWatch Logs keeps logs ` +
          `for one of ${LOG_RETENTION_DAYS.join(', ')} days.`,
      );
    }
    const name = (suffix: string, max = 64) => boundedName(['dbbackup', props.databaseId, suffix], max);
    this.functionName = BackupVerifier.functionNameFor(props.databaseId);

    const logGroup = new CloudwatchLogGroup(this, 'Logs', {
      name: `/aws/lambda/${this.functionName}`,
      retentionInDays: retentionDays,
      tags: props.tags,
    });
    // The verifier's lists (lib/core/permissions): read under the prefix, tag manifests only.
    const statements: Statement[] = [
      {
        Sid: 'WriteLogs',
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: `${logGroup.arn}:*`,
      },
      ...vaultStatements(BackupRole.VERIFIER, props.vault, prefix),
      { Sid: 'ReportFailures', Effect: 'Allow', Action: 'sns:Publish', Resource: props.alarmTopic.arn },
      { Sid: 'Tracing', Effect: 'Allow', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' },
    ];
    if (props.alarmTopicKey !== undefined) {
      statements.push({
        Sid: 'PublishEncrypted',
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: props.alarmTopicKey.arn,
      });
    }
    this.role = serviceRole(this, 'Role', {
      name: name('verifier'),
      description: `The dbbackup verification function of ${props.databaseId}: reads backups and tags manifests`,
      service: 'lambda.amazonaws.com',
      sourceAccount: ctx.accountId,
      statements,
      tags: props.tags,
    }).role;

    // One archive per stack, however many databases it backs up (the code is the same).
    const stack = TerraformStack.of(this);
    const asset =
      (stack.node.tryFindChild('DbBackupVerifyCode') as TerraformAsset | undefined) ??
      new TerraformAsset(stack, 'DbBackupVerifyCode', { path: bundledAsset('lambda/verify'), type: AssetType.ARCHIVE });
    this.function = new LambdaFunction(this, 'Resource', {
      functionName: this.functionName,
      description: `dbbackup: verifies each committed backup of ${props.databaseId} and checks freshness`,
      role: this.role.arn,
      runtime: LAMBDA_NODE_RUNTIME,
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
          ...(props.requireEncryption !== undefined
            ? { [VERIFIER_ENV.REQUIRE_ENCRYPTION]: props.requireEncryption }
            : {}),
        },
      },
      tags: props.tags,
      dependsOn: [logGroup],
    });

    // Each committed backup: S3 "Object Created" for a manifest under the prefix.
    const key = { wildcard: manifestPattern(prefix) };
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
    const freshness: FreshnessCheckEvent = {
      action: 'freshness',
      bucket: props.vault.bucketName,
      prefix,
      databaseId: props.databaseId,
    };
    const schedulerRole = serviceRole(this, 'FreshnessRole', {
      name: name('freshness'),
      description: `Runs the dbbackup freshness check of ${props.databaseId}`,
      service: 'scheduler.amazonaws.com',
      sourceAccount: ctx.accountId,
      statements: [
        { Sid: 'InvokeVerifier', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: this.function.arn },
      ],
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

/** @deprecated renamed `BackupVerifier`, the AWS CDK flavour's name. */
export class Verifier extends BackupVerifier {}
/** @deprecated renamed `BackupVerifierProps`. */
export interface VerifierProps extends BackupVerifierProps {}

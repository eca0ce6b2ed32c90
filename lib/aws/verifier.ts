import { Annotations, CfnResource, Duration, Lazy, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  bundledAsset,
  ConfigError,
  LAMBDA_NODE_RUNTIME,
  MANIFEST_NAME,
  METRIC_NAMESPACE,
  VERIFIER_ENV,
  type FreshnessCheckEvent,
} from '../core';
import { checkDatabaseId } from './private/settings';
import { KMS_SSE_READ_ACTIONS, S3_VERIFY_READ_ACTIONS, S3_VERIFY_TAG_ACTIONS } from './private/iam';
import type { IBackupVault } from './vault';
import { acknowledge, acknowledgeInlinePolicies, wildcardResourceFinding } from './private/nag';

/** Properties of a `BackupVerifier`. */
export interface BackupVerifierProps {
  /** The vault whose backups it checks. */
  readonly vault: IBackupVault;
  /** Where failed verifications are reported (with the backup id and the reason). */
  readonly alarmTopic: sns.ITopic;
  /**
   * How often the freshness check publishes each database's backup age.
   * @default Duration.minutes(15)
   */
  readonly freshnessInterval?: Duration;
  /** @default 1024 */
  readonly memorySize?: number;
  /**
   * The function's timeout; it streams each artifact through sha256.
   * @default Duration.minutes(15)
   */
  readonly timeout?: Duration;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** @default - CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: kms.IKey;
  /**
   * Fleet mode: one EventBridge rule verifies every manifest committed anywhere in the vault,
   * and each database's freshness check is one EventBridge Scheduler schedule (sharing one
   * role), so a database costs one resource here instead of four.
   * @default false - two rules (and two Lambda permissions) per database
   */
  readonly oneRulePerVault?: boolean;
}

/** A database the verifier watches. */
export interface VerifiedDatabaseOptions {
  /** The database's identifier (the metrics' dimension). */
  readonly databaseId: string;
  /** @default - the database id */
  readonly prefix?: string;
}

/**
 * The verification function (pre-bundled `lambda/verify`): it checks each backup when its
 * manifest is committed (S3 `Object Created` through EventBridge) and, on a schedule, publishes
 * the age of each database's newest verified backup. It can read backups and tag manifests,
 * nothing else in the vault.
 */
export class BackupVerifier extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;
  /** Invocations that failed after their retries (from EventBridge and from Lambda). */
  public readonly deadLetterQueue: sqs.Queue;
  /** How often the freshness check runs. */
  public readonly freshnessInterval: Duration;
  private readonly vault: IBackupVault;
  private readonly target: targets.LambdaFunction;
  private readonly watched = new Set<string>();
  private readonly schedulerRole?: iam.Role;

  constructor(scope: Construct, id: string, props: BackupVerifierProps) {
    super(scope, id);
    this.vault = props.vault;
    this.freshnessInterval = props.freshnessInterval ?? Duration.minutes(15);
    const minutes = this.freshnessInterval.toMinutes({ integral: false });
    if (!Token.isUnresolved(minutes) && (!Number.isInteger(minutes) || minutes < 1 || minutes > 60)) {
      throw new ConfigError(
        `freshnessInterval is ${this.freshnessInterval.toHumanString()}; use whole minutes from 1 to 60 (the stale ` +
          "alarm's resolution).",
      );
    }
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      encryptionKey: props.logEncryptionKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'The backup verification function: reads backups, tags manifests, publishes alarms',
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetterQueue, {
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the verification function and its EventBridge targets.',
    });

    this.function = new lambda.Function(this, 'Resource', {
      // The one Node.js runtime of every flavour (lib/core/runtimes).
      runtime: new lambda.Runtime(LAMBDA_NODE_RUNTIME, lambda.RuntimeFamily.NODEJS, { supportsInlineCode: true }),
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(bundledAsset('lambda/verify')),
      memorySize: props.memorySize ?? 1024,
      timeout: props.timeout ?? Duration.minutes(15),
      role: this.role,
      logGroup: this.logGroup,
      deadLetterQueue: this.deadLetterQueue,
      environment: {
        [VERIFIER_ENV.ALARM_TOPIC_ARN]: props.alarmTopic.topicArn,
        [VERIFIER_ENV.METRIC_NAMESPACE]: METRIC_NAMESPACE,
      },
      description: 'Verifies committed database backups and publishes their freshness',
    });
    // Lambda's L2 makes the function depend on its role and the role's policy; the role is
    // already implied by the Role property (cfn-lint W3005), so keep only the policy.
    const fnResource = this.function.node.defaultChild as CfnResource;
    const rolePolicy = this.role.node.findChild('DefaultPolicy').node.defaultChild as CfnResource;
    fnResource.addOverride('DependsOn', [Lazy.string({ produce: () => Stack.of(this).getLogicalId(rolePolicy) })]);
    props.alarmTopic.grantPublish(this.role);
    acknowledge(this.role, {
      id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      reason:
        "Publishing to a KMS-encrypted SNS topic needs kms:GenerateDataKey* (CDK's grantPublish); the resource is " +
        "the topic's key only.",
    });
    acknowledgeInlinePolicies(this.role);
    this.target = new targets.LambdaFunction(this.function, {
      deadLetterQueue: this.deadLetterQueue,
      retryAttempts: 4,
      maxEventAge: Duration.hours(6),
    });

    if (props.oneRulePerVault === true) {
      this.warnWithoutEventBridge('every database');
      new events.Rule(this, 'Committed', {
        description: 'Verify each backup committed in the vault',
        eventPattern: {
          source: ['aws.s3'],
          detailType: ['Object Created'],
          detail: {
            bucket: { name: [this.vault.bucket.bucketName] },
            object: { key: events.Match.wildcard(`*/${MANIFEST_NAME}`) },
          },
        },
        targets: [this.target],
      });
      this.schedulerRole = new iam.Role(this, 'FreshnessSchedulerRole', {
        assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
        }),
        description: 'Lets EventBridge Scheduler start the freshness checks of the backup verifier',
      });
      this.function.grantInvoke(this.schedulerRole);
      this.grantWholeVault();
      this.deadLetterQueue.grantSendMessages(this.schedulerRole);
      acknowledgeInlinePolicies(this.schedulerRole);
      acknowledge(this.schedulerRole, {
        id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(fnResource)}.Arn>:*]`,
        reason:
          "lambda:InvokeFunction on the verification function and its versions (CDK's grantInvoke); nothing else.",
      });
    }

    acknowledge(
      this.function,
      {
        id: 'AwsSolutions-L1',
        reason:
          "The function is pre-bundled by esbuild (target Node.js 20, the package's engine) and runs on Node.js 22; " +
          'the newest runtime is taken up with the bundle target, after testing.',
      },
      {
        id: 'NIST.800.53.R5-LambdaConcurrency',
        reason:
          'Reserving concurrency would take it from the account pool (new accounts have 10 in all); invocations are ' +
          'one per committed backup plus one per database every few minutes.',
      },
      {
        id: 'NIST.800.53.R5-LambdaInsideVPC',
        reason:
          'The function talks only to the S3, SNS and CloudWatch APIs over TLS and needs no path to the databases; ' +
          'outside a VPC it needs no NAT or endpoints.',
      },
    );
  }

  /**
   * Watch a database: verify its backups when their manifests are committed, and publish its
   * backup age every `freshnessInterval`. Grants reading its prefix and tagging its manifests.
   */
  public addDatabase(options: VerifiedDatabaseOptions): void {
    checkDatabaseId(options.databaseId);
    const prefix = options.prefix ?? options.databaseId;
    if (this.watched.has(options.databaseId)) {
      throw new ConfigError(
        `the verifier already watches database '${options.databaseId}'; give each database its own databaseId.`,
      );
    }
    this.watched.add(options.databaseId);
    const suffix = options.databaseId.replace(/[^A-Za-z0-9]/g, '');
    const check: FreshnessCheckEvent = {
      action: 'freshness',
      bucket: this.vault.bucket.bucketName,
      prefix,
      databaseId: options.databaseId,
    };
    if (this.schedulerRole !== undefined) {
      new scheduler.CfnSchedule(this, `Freshness${suffix}`, {
        description: `Publish the age of the newest verified backup of ${options.databaseId}`,
        scheduleExpression:
          `rate(${this.freshnessInterval.toMinutes()} ` +
          `minute${this.freshnessInterval.toMinutes() === 1 ? '' : 's'})`,
        flexibleTimeWindow: { mode: 'OFF' },
        target: {
          arn: this.function.functionArn,
          roleArn: this.schedulerRole.roleArn,
          input: Stack.of(this).toJsonString(check),
          deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
          retryPolicy: {
            maximumRetryAttempts: 2,
            maximumEventAgeInSeconds: Math.max(60, this.freshnessInterval.toSeconds()),
          },
        },
      });
      return; // the fleet's verifier reads the whole vault (granted once, in the constructor)
    }
    this.warnWithoutEventBridge(options.databaseId);
    new events.Rule(this, `Committed${suffix}`, {
      description: `Verify each committed backup of ${options.databaseId}`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [this.vault.bucket.bucketName] },
          object: { key: events.Match.wildcard(`${prefix}/*/${MANIFEST_NAME}`) },
        },
      },
      targets: [this.target],
    });
    new events.Rule(this, `Freshness${suffix}`, {
      description: `Publish the age of the newest verified backup of ${options.databaseId}`,
      schedule: events.Schedule.rate(this.freshnessInterval),
      targets: [
        new targets.LambdaFunction(this.function, {
          event: events.RuleTargetInput.fromObject(check),
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 2,
          maxEventAge: this.freshnessInterval,
        }),
      ],
    });
    this.grantDatabase(prefix);
  }

  private warnWithoutEventBridge(what: string): void {
    if (this.vault.eventBridgeEnabled) return;
    Annotations.of(this).addWarningV2(
      'db-backup-constructs:vaultWithoutEventBridge',
      `The vault's bucket does not say it sends events to EventBridge, so backups of ${what} are not verified when ` +
        'committed (only the freshness check runs). Turn on EventBridge notifications on the bucket and pass ' +
        'eventBridgeEnabled: true to BackupVault.fromAttributes.',
    );
  }

  /** The vault's own verifier checks every backup in it: one statement each, whatever the number of databases. */
  private grantWholeVault(): void {
    const bucket = this.vault.bucket;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: [...S3_VERIFY_READ_ACTIONS], resources: [bucket.arnForObjects('*')] }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [...S3_VERIFY_TAG_ACTIONS],
        resources: [bucket.arnForObjects(`*/${MANIFEST_NAME}`)],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: [...KMS_SSE_READ_ACTIONS], resources: [this.vault.key.keyArn] }),
    );
    const policy = this.role.node.findChild('DefaultPolicy');
    acknowledge(
      policy,
      {
        id: wildcardResourceFinding('AwsSolutions', policy, bucket.arnForObjects('*')),
        reason:
          "The vault's own verifier reads the artifacts of any backup in the vault, named at run time; read-only.",
      },
      {
        id: wildcardResourceFinding('AwsSolutions', policy, bucket.arnForObjects(`*/${MANIFEST_NAME}`)),
        reason: `The verifier tags only manifests (*/${MANIFEST_NAME}) with its result.`,
      },
    );
  }

  private grantDatabase(prefix: string): void {
    this.vault.grantVerify(this.role, prefix);
    const policy = this.role.node.tryFindChild('DefaultPolicy');
    if (policy !== undefined) {
      acknowledge(
        policy,
        {
          id: wildcardResourceFinding('AwsSolutions', policy, this.vault.bucket.arnForObjects(`${prefix}/*`)),
          reason: `The verifier reads the artifacts of any backup under ${prefix}/, named at run time; read-only.`,
        },
        {
          id: wildcardResourceFinding(
            'AwsSolutions',
            policy,
            this.vault.bucket.arnForObjects(`${prefix}/*/${MANIFEST_NAME}`),
          ),
          reason: `The verifier tags only manifests (${prefix}/*/${MANIFEST_NAME}) with its result.`,
        },
      );
    }
  }
}

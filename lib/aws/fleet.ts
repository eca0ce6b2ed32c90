import { ArnFormat, Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cw_actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ConfigError, METRICS, type Retention } from '../core';
import { AlarmTopic } from './monitoring';
import { BackupVault, type IBackupVault } from './vault';
import { BackupVerifier } from './verifier';
import { allowServicesToUseKey } from './private/keys';
import { backupMetric } from './private/metrics';
import { type CountAlarmOptions, deadLetterAlarms, operationsWidgets } from './private/alarms';
import { acknowledge, acknowledgeInlinePolicies, wildcardResourceFinding } from './private/nag';
import { bundledRunnerImage, RUNNER_CONTAINER_NAME } from './private/task';

/** Properties of a `BackupFleet`. */
export interface BackupFleetProps {
  /** The VPC every database's runner runs in. */
  readonly vpc: ec2.IVpc;
  /** @default - the VPC's private subnets with egress */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** @default - a new `BackupVault` with `retention` */
  readonly vault?: IBackupVault;
  /** @default Retention.gfs() - for a vault the fleet creates */
  readonly retention?: Retention;
  /** @default - a new ECS cluster with Container Insights, in `vpc` */
  readonly cluster?: ecs.ICluster;
  /** @default - a new KMS-encrypted topic */
  readonly alarmTopic?: sns.ITopic;
  /** @default - no email subscription */
  readonly alarmEmails?: string[];
  /**
   * The key of the alarm topic and the log group; its policy must let CloudWatch Logs,
   * CloudWatch alarms and EventBridge use it.
   * @default - a new customer-managed KMS key with rotation
   */
  readonly operationsKey?: kms.IKey;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** @default - the bundled runner image, one asset for the whole stack */
  readonly image?: ecs.ContainerImage;
  /** @default - a name CloudFormation generates */
  readonly dashboardName?: string;
}

/** What a database claims in its fleet's vault. */
export interface FleetClaim {
  readonly databaseId: string;
  readonly prefix: string;
  /** The construct path, named in the error when two members collide. */
  readonly path: string;
}

/** What a database's dashboard row shows. */
export interface FleetMember {
  readonly databaseId: string;
  readonly rpo: Duration;
  /** @default - no drills */
  readonly rto?: Duration;
}

/**
 * What many `DatabaseBackup`s on one vault share, made once: the vault, cluster, alarm topic and
 * key, the verifier (one rule for the vault, one schedule per database), the schedules' role
 * and dead-letter queue, the tasks' execution role and log group, the drills' security group,
 * the runner image, the fleet-wide alarms (task failed, dead-letter queue not empty, verifier
 * errors and throttles) and one dashboard with a row per database. A database then costs at
 * most 12 resources with the default options (see docs/aws-cdk.md).
 *
 * ```ts
 * const fleet = new BackupFleet(this, 'Fleet', { vpc, alarmEmails: ['oncall@example.com'] });
 * new DatabaseBackup(this, 'Orders', { fleet, databaseId: 'orders', source: ordersSource });
 * new DatabaseBackup(this, 'Billing', { fleet, databaseId: 'billing', source: billingSource });
 * ```
 */
export class BackupFleet extends Construct {
  public readonly vpc: ec2.IVpc;
  public readonly subnets: ec2.SelectedSubnets;
  public readonly vault: IBackupVault;
  public readonly cluster: ecs.ICluster;
  public readonly alarmTopic: sns.ITopic;
  public readonly operationsKey: kms.IKey;
  public readonly verifier: BackupVerifier;
  /** Runs that a schedule could not start. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The role every backup and drill schedule of the fleet runs its task with. */
  public readonly schedulerRole: iam.Role;
  /** The one execution role of every task of the fleet (image pull, logs, the sources' secrets). */
  public readonly executionRole: iam.Role;
  public readonly logGroup: logs.LogGroup;
  /** The drills' group: HTTPS out only (the scratch database is inside the task). */
  public readonly drillSecurityGroup: ec2.SecurityGroup;
  public readonly image: ecs.ContainerImage;
  /** Task families start with this (`<familyPrefix>-<database id>-…`). */
  public readonly familyPrefix: string;
  /** Task roles live under this IAM path, which the schedules' role may pass. */
  public readonly rolePath: string;
  public readonly taskFailedRule: events.Rule;
  /** Fleet-wide alarms: task failed, dead-letter queues not empty, verifier errors and throttles. */
  public readonly alarms: cloudwatch.Alarm[];
  public readonly dashboard: cloudwatch.Dashboard;
  private readonly members = new Map<string, FleetClaim>();
  private readonly prefixes: FleetClaim[] = [];

  constructor(scope: Construct, id: string, props: BackupFleetProps) {
    super(scope, id);
    this.vpc = props.vpc;
    this.subnets = props.vpc.selectSubnets(props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS });
    if (props.vault !== undefined && props.retention !== undefined) {
      throw new ConfigError(
        "retention is set, but so is an existing vault: the vault's lifecycle rules keep backups. " +
          'Pass retention to the BackupVault, or leave vault out.',
      );
    }
    this.vault = props.vault ?? new BackupVault(this, 'Vault', { retention: props.retention });
    this.familyPrefix = Names.uniqueResourceName(this, { maxLength: 40, separator: '-' }).toLowerCase();
    this.rolePath = `/dbbackup/${this.familyPrefix}/`;

    if (props.operationsKey !== undefined) {
      this.operationsKey = props.operationsKey;
    } else {
      const key = new kms.Key(this, 'OperationsKey', {
        enableKeyRotation: true,
        description: 'Encrypts the alarm topic and logs of a fleet of database backups',
      });
      allowServicesToUseKey(key);
      this.operationsKey = key;
    }
    this.cluster =
      props.cluster ??
      new ecs.Cluster(this, 'Cluster', { vpc: props.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    const emails = props.alarmEmails ?? [];
    for (const email of emails) {
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
        throw new ConfigError(
          `alarmEmails holds '${email}', which is not an email address; give one like ops@example.com.`,
        );
      }
    }
    if (props.alarmTopic !== undefined) {
      this.alarmTopic = props.alarmTopic;
      for (const e of emails) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(e));
    } else {
      this.alarmTopic = new AlarmTopic(this, 'AlarmTopic', {
        encryptionKey: this.operationsKey,
        email: emails[0],
      }).topic;
      for (const e of emails.slice(1)) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(e));
    }

    this.deadLetterQueue = new sqs.Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetterQueue, {
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the backup and drill schedules of the fleet.',
    });

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      encryptionKey: this.operationsKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: "Pulls the runner image, writes the tasks' logs and reads the sources' secrets for a backup fleet",
    });
    acknowledgeInlinePolicies(this.executionRole);
    acknowledge(this.executionRole, {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken, which the execution role needs to pull the runner image, takes no resource (ECR ' +
        'permissions reference).',
    });
    this.image = props.image ?? bundledRunnerImage(this);

    const stack = Stack.of(this);
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'Lets EventBridge Scheduler run the backup and drill tasks of a fleet',
    });
    const familyArn = stack.formatArn({
      service: 'ecs',
      resource: 'task-definition',
      resourceName: `${this.familyPrefix}-*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const taskRolesArn = stack.formatArn({
      service: 'iam',
      region: '',
      resource: 'role',
      resourceName: `${this.rolePath.slice(1)}*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    this.schedulerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ecs:RunTask'],
        resources: [familyArn],
        conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
      }),
    );
    this.schedulerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [taskRolesArn, this.executionRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
    this.deadLetterQueue.grantSendMessages(this.schedulerRole);
    acknowledgeInlinePolicies(this.schedulerRole);
    acknowledge(
      this.schedulerRole,
      {
        id: wildcardResourceFinding('AwsSolutions', this, familyArn),
        reason:
          "The schedules run only the fleet's task definitions (their families start with the fleet's prefix), in " +
          "the fleet's cluster; one role for every database keeps the stack small.",
      },
      {
        id: wildcardResourceFinding('AwsSolutions', this, taskRolesArn),
        reason: "The schedules pass only the fleet's task roles (under its own IAM path), and only to ECS tasks.",
      },
    );

    this.drillSecurityGroup = new ec2.SecurityGroup(this, 'DrillSecurityGroup', {
      vpc: props.vpc,
      allowAllOutbound: false,
      description: 'dbbackup restore drills of a fleet: HTTPS out to AWS APIs only',
    });
    this.drillSecurityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'HTTPS to AWS APIs (S3, ECR, KMS, CloudWatch Logs)',
    );

    this.verifier = new BackupVerifier(this, 'Verifier', {
      vault: this.vault,
      alarmTopic: this.alarmTopic,
      logRetention: props.logRetention,
      logEncryptionKey: this.operationsKey,
      oneRulePerVault: true,
    });

    // Fleet-wide alarms.
    const action = new cw_actions.SnsAction(this.alarmTopic);
    const five = Duration.minutes(5);
    this.taskFailedRule = new events.Rule(this, 'TaskFailedRule', {
      description: 'A backup or drill task of the fleet stopped with a non-zero exit or failed to start',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          lastStatus: ['STOPPED'],
          taskDefinitionArn: [{ wildcard: `*:task-definition/${this.familyPrefix}-*:*` }],
          $or: [
            { containers: { name: [RUNNER_CONTAINER_NAME], exitCode: [{ 'anything-but': 0 }] } },
            { stopCode: ['TaskFailedToStart'] },
          ],
        } as Record<string, unknown>,
      },
    });
    this.taskFailedRule.addTarget(
      new targets.SnsTopic(this.alarmTopic, {
        message: events.RuleTargetInput.fromText(
          `Database backup task failed: ${events.EventField.fromPath('$.detail.stoppedReason')} ` +
            `(stop code ${events.EventField.fromPath('$.detail.stopCode')}, task ` +
            `${events.EventField.fromPath('$.detail.taskArn')}, ` +
            `definition ${events.EventField.fromPath('$.detail.taskDefinitionArn')}, whose family names the database).`,
        ),
      }),
    );
    const alarm = (alarmId: string, p: CountAlarmOptions): cloudwatch.Alarm => {
      const a = new cloudwatch.Alarm(this, alarmId, {
        evaluationPeriods: 1,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...p,
      });
      a.addAlarmAction(action);
      a.addOkAction(action);
      return a;
    };
    this.alarms = [
      alarm('TaskFailed', {
        metric: new cloudwatch.Metric({
          namespace: 'AWS/Events',
          metricName: 'TriggeredRules',
          dimensionsMap: { RuleName: this.taskFailedRule.ruleName },
          statistic: 'Sum',
          period: five,
        }),
        alarmDescription:
          'A backup or drill task of the fleet stopped with a non-zero exit or failed to start; the topic got the ' +
          'stop reason and the task definition.',
      }),
      ...deadLetterAlarms(alarm, this.deadLetterQueue, this.verifier),
    ];

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.days(14),
    });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          '# Database backups of the fleet\nOne row per database: age of the newest verified backup, last drill, ' +
          'restore time against the RTO, size.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Fleet alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(...operationsWidgets(this.deadLetterQueue, this.verifier));
  }

  /**
   * Register a database: its id and prefix must be new in the fleet's vault (the error names
   * both constructs). `DatabaseBackup` calls this before it makes anything.
   */
  public claim(member: FleetClaim): void {
    const same = this.members.get(member.databaseId);
    if (same !== undefined) {
      throw new ConfigError(
        `databaseId '${member.databaseId}' of ${member.path} is already used by ${same.path} in the same vault; ` +
          'give each DatabaseBackup its own databaseId.',
      );
    }
    for (const other of this.prefixes) {
      const p = member.prefix;
      if (other.prefix === p || other.prefix.startsWith(`${p}/`) || p.startsWith(`${other.prefix}/`)) {
        throw new ConfigError(
          `prefix '${p}' of ${member.path} ${other.prefix === p ? 'is' : 'overlaps'} the prefix '${other.prefix}' of ` +
            `${other.path} ` +
            "in the same vault; give each database a side-by-side prefix such as 'orders' and 'billing'.",
        );
      }
    }
    this.members.set(member.databaseId, member);
    this.prefixes.push(member);
  }

  /** The dashboard row of a database: newest verified backup's age, last drill, restore time, size. */
  public addDashboardRow(member: FleetMember, alarms: cloudwatch.IAlarm[]): void {
    this.dashboard.addWidgets(...fleetRow(member, alarms, this.verifier.freshnessInterval));
  }
}

/** One dashboard row of a database: newest verified backup's age, last drill, restore time, size. */
function fleetRow(m: FleetMember, alarms: cloudwatch.IAlarm[], interval: Duration): cloudwatch.IWidget[] {
  const db = m.databaseId;
  const day = Duration.days(1);
  return [
    new cloudwatch.AlarmStatusWidget({
      title: `${db}: RPO ${m.rpo.toHumanString()}${m.rto ? `, RTO ${m.rto.toHumanString()}` : ''}`,
      alarms,
      width: 6,
      height: 4,
    }),
    new cloudwatch.SingleValueWidget({
      title: 'Newest verified backup (hours old)',
      metrics: [
        new cloudwatch.MathExpression({
          expression: 'age / 3600',
          usingMetrics: { age: backupMetric(db, METRICS.BACKUP_AGE, { statistic: 'Maximum', period: interval }) },
          label: 'age',
          period: interval,
        }),
      ],
      width: 4,
      height: 4,
    }),
    new cloudwatch.SingleValueWidget({
      title: 'Last drill (7 days)',
      metrics: [
        backupMetric(db, METRICS.DRILL_SUCCEEDED, { statistic: 'Sum', period: Duration.days(7), label: 'passed' }),
        backupMetric(db, METRICS.DRILL_FAILED, { statistic: 'Sum', period: Duration.days(7), label: 'failed' }),
      ],
      width: 4,
      height: 4,
    }),
    new cloudwatch.GraphWidget({
      title: 'Restore time (s)',
      left: [backupMetric(db, METRICS.RESTORE_TIME, { statistic: 'Maximum', period: day, label: 'restore' })],
      leftAnnotations: m.rto ? [{ value: m.rto.toSeconds(), label: 'RTO', color: cloudwatch.Color.RED }] : undefined,
      width: 5,
      height: 4,
    }),
    new cloudwatch.GraphWidget({
      title: 'Size (bytes stored)',
      left: [backupMetric(db, METRICS.BACKUP_SIZE, { statistic: 'Maximum', period: day, label: 'size' })],
      width: 5,
      height: 4,
    }),
  ];
}

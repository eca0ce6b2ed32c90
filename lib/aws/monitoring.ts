import { ArnFormat, Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cw_actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { ConfigError, METRICS } from '../core';
import { deadLetterAlarms, operationsWidgets } from './private/alarms';
import { allowServicesToUseKey } from './private/keys';
import { backupMetric } from './private/metrics';
import { RUNNER_CONTAINER_NAME } from './private/task';
import type { BackupVerifier } from './verifier';

/** Properties of an `AlarmTopic`. */
export interface AlarmTopicProps {
  /**
   * The key that encrypts the topic.
   * @default - a new customer-managed KMS key with rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * An address that gets every alarm by email (it must confirm the subscription).
   * @default - no subscription
   */
  readonly email?: string;
}

/**
 * The SNS topic alarms go to: KMS-encrypted, TLS only, publishable by CloudWatch alarms and
 * EventBridge of this account.
 */
export class AlarmTopic extends Construct {
  /**
   * Let the AWS services that this library's resources use encrypt with `key`: CloudWatch Logs
   * (log groups), CloudWatch alarms and EventBridge (publishing to an encrypted topic). A no-op
   * on an imported key, whose policy is its owner's.
   */
  public static allowServicesToUseKey(key: kms.IKey): void {
    allowServicesToUseKey(key);
  }

  public readonly topic: sns.Topic;
  public readonly key: kms.IKey;

  constructor(scope: Construct, id: string, props: AlarmTopicProps = {}) {
    super(scope, id);
    if (
      props.email !== undefined &&
      !Token.isUnresolved(props.email) &&
      !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(props.email)
    ) {
      throw new ConfigError(`alarm email '${props.email}' is not an email address; give one like ops@example.com.`);
    }
    if (props.encryptionKey === undefined) {
      const key = new kms.Key(this, 'Key', {
        enableKeyRotation: true,
        description: 'Encrypts the database backup alarm topic',
      });
      allowServicesToUseKey(key);
      this.key = key;
    } else {
      this.key = props.encryptionKey;
    }
    this.topic = new sns.Topic(this, 'Resource', {
      masterKey: this.key,
      enforceSSL: true,
      displayName: 'Database backup alarms',
    });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarms',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
          ArnLike: {
            'aws:SourceArn': Stack.of(this).formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    if (props.email !== undefined) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
  }
}

/** Properties of `BackupMonitoring`. */
export interface BackupMonitoringProps {
  /** The database's identifier (the metrics' dimension). */
  readonly databaseId: string;
  /** Where alarms go. */
  readonly alarmTopic: sns.ITopic;
  /** The most data you accept to lose: the stale alarm fires when the newest verified backup is older. */
  readonly rpo: Duration;
  /**
   * How often the verifier publishes the backup age; the stale alarm's period.
   * @default Duration.minutes(15)
   */
  readonly freshnessInterval?: Duration;
  /**
   * The longest a restore may take; the drill alarm fires on a slower drill. Leave it out when
   * no drills run.
   * @default - no drill alarms
   */
  readonly rto?: Duration;
  /**
   * Point-in-time recovery is on: alarm when the binary log shipper's lag
   * (`LogShippingLagSeconds`) is above this, or when it publishes none.
   * @default - no log shipping alarm
   */
  readonly logShippingLagThreshold?: Duration;
  /**
   * How often the shipper uploads and publishes its lag; the lag alarm's period is this,
   * rounded up to whole minutes.
   * @default Duration.seconds(60)
   */
  readonly logShippingInterval?: Duration;
  /**
   * The metric the log shipper publishes its lag as (`WalStreamingLagSeconds` for PostgreSQL's wal-receive).
   * @default 'LogShippingLagSeconds'
   */
  readonly logShippingLagMetric?: string;
  /**
   * Task definitions whose failed runs (a container stopping with a non-zero exit, or a task that
   * failed to start) alarm.
   */
  readonly taskDefinitions: ecs.TaskDefinition[];
  /** @default - a name CloudFormation generates */
  readonly dashboardName?: string;
  /**
   * The schedules' dead-letter queue: alarm when it holds a message (a schedule could not start
   * its task, so no backup ran).
   * @default - no dead-letter alarm
   */
  readonly scheduleDeadLetterQueue?: sqs.IQueue;
  /**
   * The verifier: alarm on its errors, its throttles and its dead-letter queue.
   * @default - no verifier alarms
   */
  readonly verifier?: BackupVerifier;
}

/**
 * Alarms and a dashboard for one database: task failed, backup failed, backup stale (the
 * dead-man's switch: missing data breaches), verification failed, drill failed, drill slower
 * than the RTO, and binary log shipping lagging when point-in-time recovery is on. Every alarm
 * notifies the topic when it fires and when it clears.
 */
export class BackupMonitoring extends Construct {
  /** A backup or drill task stopped with a non-zero exit or failed to start. */
  public readonly taskFailedAlarm: cloudwatch.Alarm;
  /** The runner reported a failed backup. */
  public readonly backupFailedAlarm: cloudwatch.Alarm;
  /** The newest verified backup is older than the RPO, or no age was published at all. */
  public readonly staleAlarm: cloudwatch.Alarm;
  /** A committed backup failed verification. */
  public readonly verificationFailedAlarm: cloudwatch.Alarm;
  /** A restore drill failed. */
  public readonly drillFailedAlarm?: cloudwatch.Alarm;
  /** A restore drill took longer than the RTO. */
  public readonly drillTooSlowAlarm?: cloudwatch.Alarm;
  /** The binary log shipper lags behind the server by more than the threshold, or publishes nothing. */
  public readonly logShippingLagAlarm?: cloudwatch.Alarm;
  /** Dead-letter queues not empty (schedules', verifier's), verifier errors and throttles. */
  public readonly operationsAlarms: cloudwatch.Alarm[];
  /** Every alarm above. */
  public readonly alarms: cloudwatch.Alarm[];
  /** The EventBridge rule that catches failed tasks and tells the topic why. */
  public readonly taskFailedRule: events.Rule;
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: BackupMonitoringProps) {
    super(scope, id);
    const db = props.databaseId;
    const interval = props.freshnessInterval ?? Duration.minutes(15);
    const rpoSeconds = props.rpo.toSeconds();
    const action = new cw_actions.SnsAction(props.alarmTopic);
    const five = Duration.minutes(5);

    // ECS reports every stopped task; keep those of our task definitions that did not end well.
    const families = props.taskDefinitions.map((td) => ({ wildcard: `*:task-definition/${td.family}:*` }));
    this.taskFailedRule = new events.Rule(this, 'TaskFailedRule', {
      description: `Backup or drill task of ${db} stopped with a non-zero exit or failed to start`,
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          lastStatus: ['STOPPED'],
          taskDefinitionArn: families,
          $or: [
            { containers: { name: [RUNNER_CONTAINER_NAME], exitCode: [{ 'anything-but': 0 }] } },
            { stopCode: ['TaskFailedToStart'] },
          ],
        } as Record<string, unknown>,
      },
    });
    this.taskFailedRule.addTarget(
      new targets.SnsTopic(props.alarmTopic, {
        message: events.RuleTargetInput.fromText(
          `Database backup task for ${db} failed: ${events.EventField.fromPath('$.detail.stoppedReason')} ` +
            `(stop code ${events.EventField.fromPath('$.detail.stopCode')}, task ` +
            `${events.EventField.fromPath('$.detail.taskArn')}, ` +
            `definition ${events.EventField.fromPath('$.detail.taskDefinitionArn')}). The runner's log is in ` +
            "CloudWatch Logs under the task's log group.",
        ),
      }),
    );

    const alarm = (
      alarmId: string,
      p: cloudwatch.CreateAlarmOptions & { metric: cloudwatch.IMetric },
    ): cloudwatch.Alarm => {
      const a = new cloudwatch.Alarm(this, alarmId, p);
      a.addAlarmAction(action);
      a.addOkAction(action);
      return a;
    };

    this.taskFailedAlarm = alarm('TaskFailed', {
      metric: new cloudwatch.Metric({
        namespace: 'AWS/Events',
        metricName: 'TriggeredRules',
        dimensionsMap: { RuleName: this.taskFailedRule.ruleName },
        statistic: 'Sum',
        period: five,
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription:
        `A backup or drill task of ${db} stopped with a non-zero exit code or failed to start. The ` +
        "topic also got the task's stop reason.",
    });
    this.backupFailedAlarm = alarm('BackupFailed', {
      metric: backupMetric(db, METRICS.BACKUP_FAILED, { statistic: 'Sum', period: five }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `The runner reported a failed backup of ${db}; its log says why.`,
    });
    this.staleAlarm = alarm('Stale', {
      metric: backupMetric(db, METRICS.BACKUP_AGE, { statistic: 'Maximum', period: interval }),
      threshold: rpoSeconds,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription:
        `The newest verified backup of ${db} is older than the RPO (${props.rpo.toHumanString()}), or the freshness ` +
        'check published nothing: ' +
        'a schedule that stopped, a task that never started and a runner that crashed early all land here.',
    });
    this.verificationFailedAlarm = alarm('VerificationFailed', {
      metric: backupMetric(db, METRICS.VERIFICATION_FAILED, { statistic: 'Sum', period: five }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription:
        `A committed backup of ${db} failed verification (missing artifact, size or sha256 ` +
        'mismatch); the topic got the backup id and reason.',
    });
    const alarms = [this.taskFailedAlarm, this.backupFailedAlarm, this.staleAlarm, this.verificationFailedAlarm];
    if (props.rto !== undefined) {
      this.drillFailedAlarm = alarm('DrillFailed', {
        metric: backupMetric(db, METRICS.DRILL_FAILED, { statistic: 'Sum', period: five }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription:
          `A restore drill of ${db} failed: the newest backup did not restore, or the restored data ` +
          'did not match what was recorded at backup time.',
      });
      this.drillTooSlowAlarm = alarm('DrillTooSlow', {
        metric: backupMetric(db, METRICS.RESTORE_TIME, { statistic: 'Maximum', period: five }),
        threshold: props.rto.toSeconds(),
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `A restore drill of ${db} took longer than the RTO (${props.rto.toHumanString()}).`,
      });
      alarms.push(this.drillFailedAlarm, this.drillTooSlowAlarm);
    }
    const lagThreshold = props.logShippingLagThreshold;
    const lagPeriod = Duration.minutes(
      Math.max(1, Math.ceil((props.logShippingInterval ?? Duration.seconds(60)).toSeconds() / 60)),
    );
    if (lagThreshold !== undefined) {
      this.logShippingLagAlarm = alarm('LogShippingLag', {
        metric: backupMetric(db, props.logShippingLagMetric ?? METRICS.LOG_LAG, {
          statistic: 'Maximum',
          period: lagPeriod,
        }),
        threshold: lagThreshold.toSeconds(),
        // Five periods in a row: a deploy's restart of the shipper (stop, then start) stays quiet.
        evaluationPeriods: 5,
        datapointsToAlarm: 5,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        alarmDescription:
          `The ${props.logShippingLagMetric === METRICS.WAL_STREAMING_LAG ? 'WAL' : 'binary log'} shipper of ${db} ` +
          `is more than ${lagThreshold.toHumanString()} behind the server, or published no lag: ` +
          'a stopped or crash-looping shipper, a server it cannot reach, or uploads that fail. Point-in-time ' +
          "recovery cannot reach past the last shipped log; the shipper's log says why.",
      });
      alarms.push(this.logShippingLagAlarm);
    }
    if (props.scheduleDeadLetterQueue !== undefined && props.verifier !== undefined) {
      this.operationsAlarms = deadLetterAlarms(
        (alarmId, p) =>
          alarm(alarmId, {
            threshold: 1,
            evaluationPeriods: 1,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
            ...p,
          }),
        props.scheduleDeadLetterQueue,
        props.verifier,
      );
      alarms.push(...this.operationsAlarms);
    } else {
      this.operationsAlarms = [];
    }
    this.alarms = alarms;

    const hour = Duration.hours(1);
    const day = Duration.days(1);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.days(14),
    });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          `# Backups of ${db}\nRPO ` +
          `${props.rpo.toHumanString()}${props.rto ? `, RTO ${props.rto.toHumanString()}` : ''}`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Age of the newest verified backup (hours)',
        left: [
          new cloudwatch.MathExpression({
            expression: 'age / 3600',
            usingMetrics: { age: backupMetric(db, METRICS.BACKUP_AGE, { statistic: 'Maximum', period: interval }) },
            label: 'age',
            period: interval,
          }),
        ],
        leftAnnotations: [{ value: rpoSeconds / 3600, label: 'RPO', color: cloudwatch.Color.RED }],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Backups',
        left: [
          backupMetric(db, METRICS.BACKUP_SUCCEEDED, { statistic: 'Sum', period: day, label: 'succeeded' }),
          backupMetric(db, METRICS.BACKUP_FAILED, {
            statistic: 'Sum',
            period: day,
            label: 'failed',
            color: cloudwatch.Color.RED,
          }),
        ],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Backup size (bytes stored)',
        left: [backupMetric(db, METRICS.BACKUP_SIZE, { statistic: 'Maximum', period: hour, label: 'size' })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Backup duration (seconds)',
        left: [backupMetric(db, METRICS.BACKUP_DURATION, { statistic: 'Maximum', period: hour, label: 'duration' })],
        width: 12,
      }),
    );
    const drillWidgets: cloudwatch.IWidget[] = [
      new cloudwatch.GraphWidget({
        title: 'Verification',
        left: [
          backupMetric(db, METRICS.VERIFICATION_SUCCEEDED, { statistic: 'Sum', period: day, label: 'passed' }),
          backupMetric(db, METRICS.VERIFICATION_FAILED, {
            statistic: 'Sum',
            period: day,
            label: 'failed',
            color: cloudwatch.Color.RED,
          }),
        ],
        width: 8,
      }),
    ];
    if (props.rto !== undefined) {
      drillWidgets.push(
        new cloudwatch.GraphWidget({
          title: 'Restore drills',
          left: [
            backupMetric(db, METRICS.DRILL_SUCCEEDED, { statistic: 'Sum', period: day, label: 'passed' }),
            backupMetric(db, METRICS.DRILL_FAILED, {
              statistic: 'Sum',
              period: day,
              label: 'failed',
              color: cloudwatch.Color.RED,
            }),
          ],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: 'Restore time (seconds)',
          left: [backupMetric(db, METRICS.RESTORE_TIME, { statistic: 'Maximum', period: day, label: 'restore time' })],
          leftAnnotations: [{ value: props.rto.toSeconds(), label: 'RTO', color: cloudwatch.Color.RED }],
          width: 8,
        }),
      );
    }
    this.dashboard.addWidgets(...drillWidgets);
    if (props.scheduleDeadLetterQueue !== undefined && props.verifier !== undefined) {
      this.dashboard.addWidgets(...operationsWidgets(props.scheduleDeadLetterQueue, props.verifier));
    }
    if (lagThreshold !== undefined) {
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title:
            `${props.logShippingLagMetric === METRICS.WAL_STREAMING_LAG ? 'WAL streaming' : 'Binary log shipping'} ` +
            'lag (seconds)',
          left: [
            backupMetric(db, props.logShippingLagMetric ?? METRICS.LOG_LAG, {
              statistic: 'Maximum',
              period: lagPeriod,
              label: 'lag',
            }),
          ],
          leftAnnotations: [{ value: lagThreshold.toSeconds(), label: 'alarm', color: cloudwatch.Color.RED }],
          width: 24,
        }),
      );
    }
  }
}

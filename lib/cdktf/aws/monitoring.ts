import { Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudwatchDashboard } from '@cdktf/provider-aws/lib/cloudwatch-dashboard';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic';
import { SnsTopicPolicy } from '@cdktf/provider-aws/lib/sns-topic-policy';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription';
import {
  ConfigError,
  DEFAULT_FRESHNESS_INTERVAL_MINUTES,
  METRICS,
  METRIC_DIMENSION,
  METRIC_NAMESPACE,
  validateDatabaseId,
} from '../../core';
import { Duration } from '../common/duration';
import { boundedName } from '../common/names';
import { awsContext } from './private/context';
import { policyDocument } from './private/policy';
import { dashboardBody } from './private/dashboard';
import { IFunctionRef, IKeyRef, IQueueRef, ITopicRef } from './refs';

/** Properties of `BackupMonitoring`. */
export interface BackupMonitoringProps {
  readonly databaseId: string;
  /**
   * The recovery point objective: the backup-age alarm fires when the newest verified backup
   * is older than this.
   */
  readonly rpo: Duration;
  /**
   * Send the alarms to this topic.
   * @default - a new topic encrypted with a new customer-managed KMS key
   */
  readonly topic?: ITopicRef;
  /**
   * The key of `topic`, when it is given and encrypted with a customer-managed key.
   * @default - none
   */
  readonly topicKey?: IKeyRef;
  /**
   * E-mail addresses subscribed to the topic (each confirms by mail).
   * @default - none
   */
  readonly alarmEmails?: string[];
  /**
   * How often the freshness check publishes `BackupAgeSeconds` (the alarm's period).
   * @default Duration.minutes(15)
   */
  readonly freshnessInterval?: Duration;
  /**
   * The recovery time objective: with it, alarms on failed drills and on drills slower than it.
   * Leave it out when no drills run.
   * @default - no drill alarms
   */
  readonly rto?: Duration;
  /**
   * The CloudWatch dashboard's name.
   * @default 'dbbackup-<databaseId>'
   */
  readonly dashboardName?: string;
  /**
   * The scheduler's dead-letter queue: an alarm fires when a run could not be started.
   * @default - no such alarm
   */
  readonly deadLetterQueue?: IQueueRef;
  /**
   * The verification function: an alarm fires when it errors (rather than reports a failure).
   * @default - no such alarm
   */
  readonly verifierFunction?: IFunctionRef;
  /**
   * With point-in-time recovery: the log-shipping-lag alarm fires when the shipper is this far
   * behind, or publishes no lag.
   * @default - no lag alarm
   */
  readonly logShippingLagThreshold?: Duration;
  /**
   * How often the shipper publishes its lag; the alarm's period is this, rounded up to whole minutes.
   * @default Duration.seconds(60)
   */
  readonly logShippingInterval?: Duration;
  /**
   * The metric the shipper publishes its lag as (lib/core/engines.ts `logStreaming`).
   * @default 'LogShippingLagSeconds'
   */
  readonly logShippingLagMetric?: string;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/**
 * CloudWatch alarms on the runner's and the verifier's metrics (`lib/core` `METRICS`), sent to
 * an SNS topic encrypted with a customer-managed key that CloudWatch may use.
 */
export class BackupMonitoring extends Construct {
  public readonly topicArn: string;
  public readonly topic?: SnsTopic;
  /** The topic's key (new or given). */
  public readonly topicKeyArn?: string;
  public readonly backupAge: CloudwatchMetricAlarm;
  public readonly backupFailed: CloudwatchMetricAlarm;
  public readonly verificationFailed: CloudwatchMetricAlarm;
  /** A restore drill failed (with `rto`). */
  public readonly drillFailed?: CloudwatchMetricAlarm;
  /** A restore drill took longer than the RTO (with `rto`). */
  public readonly drillTooSlow?: CloudwatchMetricAlarm;
  /** The log shipper is behind or silent (with `logShippingLagThreshold`). */
  public readonly logShippingLag?: CloudwatchMetricAlarm;
  public readonly alarms: CloudwatchMetricAlarm[];
  /** Backup age, results, sizes, durations, verification and drills of the database. */
  public readonly dashboard: CloudwatchDashboard;

  constructor(scope: Construct, id: string, props: BackupMonitoringProps) {
    super(scope, id);
    const ctx = awsContext(this);
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const name = (suffix: string, max = 255) => boundedName(['dbbackup', props.databaseId, suffix], max);
    const rpo = props.rpo.toSeconds();
    const period = (props.freshnessInterval ?? Duration.minutes(DEFAULT_FRESHNESS_INTERVAL_MINUTES)).toSeconds();
    if (rpo < period) {
      throw new ConfigError(
        `rpo is ${props.rpo}, shorter than the freshness check interval (${period} seconds); ` +
          `the age alarm cannot resolve it. Raise rpo or shorten freshnessInterval.`,
      );
    }

    if (props.topic !== undefined) {
      this.topicArn = props.topic.arn;
      this.topicKeyArn = props.topicKey?.arn;
    } else {
      const key = new KmsKey(this, 'TopicKey', {
        description: `db-backup-constructs: encrypts the alarm topic of ${props.databaseId}`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: policyDocument([
          {
            Sid: 'AccountAdministers',
            Effect: 'Allow',
            Principal: { AWS: `arn:${ctx.partition}:iam::${ctx.accountId}:root` },
            Action: 'kms:*',
            Resource: '*',
          },
          {
            Sid: 'CloudWatchPublishes',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Resource: '*',
            Condition: { StringEquals: { 'aws:SourceAccount': ctx.accountId } },
          },
        ]),
        tags: props.tags,
      });
      this.topic = new SnsTopic(this, 'Topic', {
        name: name('alarms', 256),
        displayName: `dbbackup ${props.databaseId}`,
        kmsMasterKeyId: key.arn,
        tags: props.tags,
      });
      new SnsTopicPolicy(this, 'TopicPolicy', {
        arn: this.topic.arn,
        policy: policyDocument([
          {
            Sid: 'CloudWatchAlarmsPublish',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Resource: this.topic.arn,
            Condition: { StringEquals: { 'aws:SourceAccount': ctx.accountId } },
          },
          {
            Sid: 'DenyInsecureTransport',
            Effect: 'Deny',
            Principal: '*',
            Action: 'sns:Publish',
            Resource: this.topic.arn,
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ]),
      });
      this.topicArn = this.topic.arn;
      this.topicKeyArn = key.arn;
    }
    (props.alarmEmails ?? []).forEach((email, i) => {
      new SnsTopicSubscription(this, `Email${i + 1}`, { topicArn: this.topicArn, protocol: 'email', endpoint: email });
    });

    const dims = { [METRIC_DIMENSION]: props.databaseId };
    const actions = { alarmActions: [this.topicArn], okActions: [this.topicArn] };
    this.backupAge = new CloudwatchMetricAlarm(this, 'BackupAge', {
      alarmName: name('backup-age'),
      alarmDescription:
        `The newest verified backup of ${props.databaseId} is older than the RPO (${props.rpo}` +
        `), or the freshness check stopped reporting, for two checks in a row.`,
      namespace: METRIC_NAMESPACE,
      metricName: METRICS.BACKUP_AGE,
      dimensions: dims,
      statistic: 'Maximum',
      period,
      // Two periods: one late freshness check (an empty period, missing = breaching) must not page.
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      threshold: rpo,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'breaching',
      ...actions,
      tags: props.tags,
    });
    const failure = (cid: string, metric: string, what: string) =>
      new CloudwatchMetricAlarm(this, cid, {
        alarmName: name(cid.replace(/[A-Z]/g, (c, i) => (i === 0 ? '' : '-') + c.toLowerCase())),
        alarmDescription: what,
        namespace: METRIC_NAMESPACE,
        metricName: metric,
        dimensions: dims,
        statistic: 'Sum',
        period: 300,
        evaluationPeriods: 1,
        threshold: 1,
        comparisonOperator: 'GreaterThanOrEqualToThreshold',
        treatMissingData: 'notBreaching',
        ...actions,
        tags: props.tags,
      });
    this.backupFailed = failure(
      'BackupFailed',
      METRICS.BACKUP_FAILED,
      `A backup of ${props.databaseId} failed (see the runner's log group).`,
    );
    this.verificationFailed = failure(
      'VerificationFailed',
      METRICS.VERIFICATION_FAILED,
      `A committed backup of ${props.databaseId} failed verification: ` +
        `an artifact is missing, of another size or damaged.`,
    );
    this.alarms = [this.backupAge, this.backupFailed, this.verificationFailed];
    if (props.rto !== undefined) {
      this.drillFailed = failure(
        'DrillFailed',
        METRICS.DRILL_FAILED,
        `A restore drill of ${props.databaseId} failed: the newest backup did not restore, ` +
          `or the restored data did not match what was recorded at backup time.`,
      );
      this.drillTooSlow = new CloudwatchMetricAlarm(this, 'DrillTooSlow', {
        alarmName: name('drill-too-slow'),
        alarmDescription: `A restore drill of ${props.databaseId} took longer than the RTO (${props.rto}).`,
        namespace: METRIC_NAMESPACE,
        metricName: METRICS.RESTORE_TIME,
        dimensions: dims,
        statistic: 'Maximum',
        period: 300,
        evaluationPeriods: 1,
        threshold: props.rto.toSeconds(),
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
        ...actions,
        tags: props.tags,
      });
      this.alarms.push(this.drillFailed, this.drillTooSlow);
    }

    if (props.logShippingLagThreshold !== undefined) {
      const metric = props.logShippingLagMetric ?? METRICS.LOG_LAG;
      const lagPeriod = 60 * Math.max(1, Math.ceil((props.logShippingInterval?.toSeconds() ?? 60) / 60));
      this.logShippingLag = new CloudwatchMetricAlarm(this, 'LogShippingLag', {
        alarmName: name('log-shipping-lag'),
        alarmDescription:
          `The ${metric === METRICS.WAL_STREAMING_LAG ? 'WAL' : 'binary log'} shipper of ${props.databaseId} is more ` +
          `than ${props.logShippingLagThreshold} behind the server, or published no lag: a stopped or crash-looping ` +
          'shipper, a server it cannot reach, or uploads that fail. Point-in-time recovery ' +
          "cannot reach past the last shipped log; the shipper's log says why.",
        namespace: METRIC_NAMESPACE,
        metricName: metric,
        dimensions: dims,
        statistic: 'Maximum',
        period: lagPeriod,
        // Five periods in a row: a deploy's restart of the shipper (stop, then start) stays quiet.
        evaluationPeriods: 5,
        datapointsToAlarm: 5,
        threshold: props.logShippingLagThreshold.toSeconds(),
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'breaching',
        ...actions,
        tags: props.tags,
      });
      this.alarms.push(this.logShippingLag);
    }
    if (props.deadLetterQueue !== undefined) {
      this.alarms.push(
        new CloudwatchMetricAlarm(this, 'RunNotStarted', {
          alarmName: name('run-not-started'),
          alarmDescription:
            `A scheduled backup of ${props.databaseId} could not be started ` +
            `(RunTask failed after retries); see the dead-letter queue.`,
          namespace: 'AWS/SQS',
          metricName: 'ApproximateNumberOfMessagesVisible',
          dimensions: { QueueName: props.deadLetterQueue.name },
          statistic: 'Maximum',
          period: 300,
          evaluationPeriods: 1,
          threshold: 0,
          comparisonOperator: 'GreaterThanThreshold',
          treatMissingData: 'notBreaching',
          ...actions,
          tags: props.tags,
        }),
      );
    }
    if (props.verifierFunction !== undefined) {
      this.alarms.push(
        new CloudwatchMetricAlarm(this, 'VerifierErrors', {
          alarmName: name('verifier-errors'),
          alarmDescription:
            `The verification function of ${props.databaseId} errored ` +
            `(crashed or timed out) instead of reporting a result.`,
          namespace: 'AWS/Lambda',
          metricName: 'Errors',
          dimensions: { FunctionName: props.verifierFunction.functionName },
          statistic: 'Sum',
          period: 300,
          evaluationPeriods: 1,
          threshold: 0,
          comparisonOperator: 'GreaterThanThreshold',
          treatMissingData: 'notBreaching',
          ...actions,
          tags: props.tags,
        }),
      );
    }
    this.dashboard = new CloudwatchDashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName ?? name('dashboard', 255),
      dashboardBody: JSON.stringify(
        dashboardBody(
          props.databaseId,
          ctx.region,
          rpo,
          period,
          props.rto?.toSeconds(),
          this.alarms.map((a) => a.arn),
        ),
      ),
    });
  }
}

import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cw_actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { METRICS } from '../core';
import { backupMetric } from './private/metrics';

/** Properties of `FleetMemberAlarms`. */
export interface FleetMemberAlarmsProps {
  readonly databaseId: string;
  readonly alarmTopic: sns.ITopic;
  /** The stale alarm fires when the newest verified backup is older. */
  readonly rpo: Duration;
  /** @default Duration.minutes(15) */
  readonly freshnessInterval?: Duration;
  /** @default - no drills, so no drill terms in the failure alarm */
  readonly rto?: Duration;
  /** @default - no log shipping alarm */
  readonly logShippingLagThreshold?: Duration;
  /** @default Duration.seconds(60) */
  readonly logShippingInterval?: Duration;
  /** @default 'LogShippingLagSeconds' */
  readonly logShippingLagMetric?: string;
}

/**
 * The alarms of one database in a fleet, kept to two: `Stale` (the dead-man's switch, as
 * outside a fleet) and `Failed`, one metric-math alarm over the runner's failed backups, failed
 * verifications, failed drills and drills slower than the RTO. The fleet watches failed tasks,
 * dead-letter queues and the verifier for every database at once.
 */
export class FleetMemberAlarms extends Construct {
  public readonly staleAlarm: cloudwatch.Alarm;
  /** A backup, verification or drill failed, or a drill took longer than the RTO. */
  public readonly failedAlarm: cloudwatch.Alarm;
  public readonly logShippingLagAlarm?: cloudwatch.Alarm;
  public readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: FleetMemberAlarmsProps) {
    super(scope, id);
    const db = props.databaseId;
    const interval = props.freshnessInterval ?? Duration.minutes(15);
    const five = Duration.minutes(5);
    const action = new cw_actions.SnsAction(props.alarmTopic);
    const notify = (a: cloudwatch.Alarm): cloudwatch.Alarm => {
      a.addAlarmAction(action);
      a.addOkAction(action);
      return a;
    };
    this.staleAlarm = notify(
      new cloudwatch.Alarm(this, 'Stale', {
        metric: backupMetric(db, METRICS.BACKUP_AGE, { statistic: 'Maximum', period: interval }),
        threshold: props.rpo.toSeconds(),
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        alarmDescription:
          `The newest verified backup of ${db} is older than the RPO (${props.rpo.toHumanString()}), or the ` +
          'freshness check ' +
          'published nothing: a schedule that stopped, a task that never started and a runner that crashed early all ' +
          'land here.',
      }),
    );
    const usingMetrics: Record<string, cloudwatch.IMetric> = {
      backupFailed: backupMetric(db, METRICS.BACKUP_FAILED, { statistic: 'Sum', period: five }),
      verificationFailed: backupMetric(db, METRICS.VERIFICATION_FAILED, { statistic: 'Sum', period: five }),
    };
    const terms = ['FILL(backupFailed, 0)', 'FILL(verificationFailed, 0)'];
    if (props.rto !== undefined) {
      usingMetrics.drillFailed = backupMetric(db, METRICS.DRILL_FAILED, { statistic: 'Sum', period: five });
      usingMetrics.restoreTime = backupMetric(db, METRICS.RESTORE_TIME, { statistic: 'Maximum', period: five });
      terms.push('FILL(drillFailed, 0)', `IF(FILL(restoreTime, 0) > ${props.rto.toSeconds()}, 1, 0)`);
    }
    this.failedAlarm = notify(
      new cloudwatch.Alarm(this, 'Failed', {
        metric: new cloudwatch.MathExpression({
          expression: terms.join(' + '),
          usingMetrics,
          period: five,
          label: 'failures',
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription:
          `A backup of ${db} failed, a committed backup failed verification` +
          (props.rto !== undefined
            ? `, a restore drill failed or took longer than the RTO (${props.rto.toHumanString()})`
            : '') +
          ". The topic got the details; the fleet dashboard's row of this database shows which.",
      }),
    );
    this.alarms = [this.staleAlarm, this.failedAlarm];
    if (props.logShippingLagThreshold !== undefined) {
      const seconds = (props.logShippingInterval ?? Duration.seconds(60)).toSeconds();
      this.logShippingLagAlarm = notify(
        new cloudwatch.Alarm(this, 'LogShippingLag', {
          metric: backupMetric(db, props.logShippingLagMetric ?? METRICS.LOG_LAG, {
            statistic: 'Maximum',
            period: Duration.minutes(Math.max(1, Math.ceil(seconds / 60))),
          }),
          threshold: props.logShippingLagThreshold.toSeconds(),
          evaluationPeriods: 5,
          datapointsToAlarm: 5,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
          alarmDescription:
            `The ${props.logShippingLagMetric === METRICS.WAL_STREAMING_LAG ? 'WAL' : 'binary log'} ` +
            `shipper of ${db} is more than ${props.logShippingLagThreshold.toHumanString()} behind, or published no ` +
            'lag.',
        }),
      );
      this.alarms.push(this.logShippingLagAlarm);
    }
  }
}

import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { BackupVerifier } from '../verifier';

/** An alarm's options where the threshold of 1, one period and missing data as OK are the default. */
export type CountAlarmOptions = Partial<cloudwatch.CreateAlarmOptions> & { readonly metric: cloudwatch.IMetric };

/** The alarms on the dead-letter queues and on the verifier's errors and throttles. */
export function deadLetterAlarms(
  alarm: (id: string, p: CountAlarmOptions) => cloudwatch.Alarm,
  scheduleQueue: sqs.IQueue,
  verifier: BackupVerifier,
): cloudwatch.Alarm[] {
  const five = Duration.minutes(5);
  return [
    alarm('ScheduleDeadLetters', {
      metric: scheduleQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: five }),
      alarmDescription:
        "A schedule could not start its backup or drill task (the messages in the schedules' dead-letter queue say " +
        'which and why): ' +
        'no backup ran. Read the queue, fix the cause (role, subnets, task definition), then purge it.',
    }),
    alarm('VerifierDeadLetters', {
      metric: verifier.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: five }),
      alarmDescription:
        "A verification or freshness check failed after its retries; the verifier's dead-letter queue holds the event.",
    }),
    alarm('VerifierErrors', {
      metric: verifier.function.metricErrors({ statistic: 'Sum', period: five }),
      alarmDescription:
        'The verification function failed (see its log): committed backups may go unverified and backup ages ' +
        'unpublished.',
    }),
    alarm('VerifierThrottles', {
      metric: verifier.function.metricThrottles({ statistic: 'Sum', period: five }),
      alarmDescription: 'The verification function was throttled (account concurrency): checks are delayed or lost.',
    }),
  ];
}

/** The dashboard row of the same: dead letters, verifier errors and throttles. */
export function operationsWidgets(scheduleQueue: sqs.IQueue, verifier: BackupVerifier): cloudwatch.IWidget[] {
  const five = Duration.minutes(5);
  return [
    new cloudwatch.GraphWidget({
      title: 'Dead letters (runs not started, checks lost)',
      left: [
        scheduleQueue.metricApproximateNumberOfMessagesVisible({
          statistic: 'Maximum',
          period: five,
          label: 'schedules',
        }),
        verifier.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          statistic: 'Maximum',
          period: five,
          label: 'verifier',
        }),
      ],
      width: 12,
    }),
    new cloudwatch.GraphWidget({
      title: 'Verifier errors and throttles',
      left: [
        verifier.function.metricErrors({ statistic: 'Sum', period: five, label: 'errors' }),
        verifier.function.metricThrottles({ statistic: 'Sum', period: five, label: 'throttles' }),
      ],
      width: 12,
    }),
  ];
}

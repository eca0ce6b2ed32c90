// Internal: the CloudWatch dashboard of a CDKTF BackupMonitoring.
import { METRICS, METRIC_DIMENSION, METRIC_NAMESPACE, humanMinutes } from '../../../core';

/** The dashboard's widgets: the same panels as the AWS CDK flavour's dashboard. */
export function dashboardBody(
  databaseId: string,
  region: string,
  rpoSeconds: number,
  agePeriod: number,
  rtoSeconds: number | undefined,
  alarmArns: string[],
): object {
  const m = (metric: string, stat: string, label: string, p: number) => [
    METRIC_NAMESPACE,
    metric,
    METRIC_DIMENSION,
    databaseId,
    { stat, label, period: p },
  ];
  const graph = (
    title: string,
    x: number,
    y: number,
    w: number,
    metrics: unknown[],
    annotation?: { value: number; label: string },
  ) => ({
    type: 'metric',
    x,
    y,
    width: w,
    height: 6,
    properties: {
      title,
      region,
      view: 'timeSeries',
      metrics,
      ...(annotation ? { annotations: { horizontal: [{ ...annotation, color: '#d62728' }] } } : {}),
    },
  });
  const widgets: unknown[] = [
    {
      type: 'text',
      x: 0,
      y: 0,
      width: 24,
      height: 2,
      properties: {
        markdown:
          `# Backups of ${databaseId}\nRPO ${humanMinutes(Math.round(rpoSeconds / 60))}` +
          `${rtoSeconds ? `, RTO ${humanMinutes(Math.round(rtoSeconds / 60))}` : ''}`,
      },
    },
    { type: 'alarm', x: 0, y: 2, width: 24, height: 3, properties: { title: 'Alarms', alarms: alarmArns } },
    graph(
      'Age of the newest verified backup (seconds)',
      0,
      5,
      12,
      [m(METRICS.BACKUP_AGE, 'Maximum', 'age', agePeriod)],
      { value: rpoSeconds, label: 'RPO' },
    ),
    graph('Backups', 12, 5, 12, [
      m(METRICS.BACKUP_SUCCEEDED, 'Sum', 'succeeded', 86400),
      m(METRICS.BACKUP_FAILED, 'Sum', 'failed', 86400),
    ]),
    graph('Backup size (bytes stored)', 0, 11, 12, [m(METRICS.BACKUP_SIZE, 'Maximum', 'size', 3600)]),
    graph('Backup duration (seconds)', 12, 11, 12, [m(METRICS.BACKUP_DURATION, 'Maximum', 'duration', 3600)]),
    graph('Verification', 0, 17, 8, [
      m(METRICS.VERIFICATION_SUCCEEDED, 'Sum', 'passed', 86400),
      m(METRICS.VERIFICATION_FAILED, 'Sum', 'failed', 86400),
    ]),
  ];
  if (rtoSeconds !== undefined) {
    widgets.push(
      graph('Restore drills', 8, 17, 8, [
        m(METRICS.DRILL_SUCCEEDED, 'Sum', 'passed', 86400),
        m(METRICS.DRILL_FAILED, 'Sum', 'failed', 86400),
      ]),
      graph('Restore time (seconds)', 16, 17, 8, [m(METRICS.RESTORE_TIME, 'Maximum', 'restore time', 86400)], {
        value: rtoSeconds,
        label: 'RTO',
      }),
    );
  }
  return { start: '-P14D', widgets };
}

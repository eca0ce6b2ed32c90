import { METRIC_DIMENSION, METRIC_NAMESPACE } from '../../lib/core/metrics';

/**
 * Publish metrics as one CloudWatch embedded-metric-format line on stderr (the task's log
 * stream turns it into metrics; no PutMetricData permission needed). Skipped on a terminal.
 */
export function emitMetrics(
  databaseId: string,
  values: Readonly<Record<string, number>>,
  units: Readonly<Record<string, string>> = {},
): void {
  if (process.stderr.isTTY && process.env.DBBACKUP_LOG_FORMAT !== 'json') return;
  const line = {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: METRIC_NAMESPACE,
          Dimensions: [[METRIC_DIMENSION]],
          Metrics: Object.keys(values).map((Name) => ({ Name, Unit: units[Name] ?? 'Count' })),
        },
      ],
    },
    [METRIC_DIMENSION]: databaseId,
    ...values,
  };
  process.stderr.write(JSON.stringify(line) + '\n');
}

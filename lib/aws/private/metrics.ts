import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { METRIC_DIMENSION, METRIC_NAMESPACE } from '../../core';

/** A metric of one database, in the namespace and dimension the runner and verifier publish. */
export function backupMetric(
  databaseId: string,
  metricName: string,
  props: cloudwatch.MetricOptions = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRIC_NAMESPACE,
    metricName,
    dimensionsMap: { [METRIC_DIMENSION]: databaseId },
    ...props,
  });
}

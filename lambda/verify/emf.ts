/**
 * CloudWatch embedded metric format (EMF): one JSON document per line on stdout, which
 * CloudWatch Logs turns into metrics without a PutMetricData call.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
import { METRIC_DIMENSION, METRIC_NAMESPACE, VERIFIER_ENV } from '../../lib/core/metrics';

/** The units this function publishes in. */
export enum MetricUnit {
  COUNT = 'Count',
  SECONDS = 'Seconds',
  BYTES = 'Bytes',
}

/** One metric value. */
export interface MetricDatum {
  readonly name: string;
  readonly value: number;
  readonly unit: MetricUnit;
}

/** Receives one finished EMF line (without its newline). */
export type EmfEmitter = (line: string) => void;

/**
 * Writes straight to stdout. Lambda's patched `console.log` prefixes each line with a
 * timestamp, request id and level (and wraps it in JSON under the JSON log format); a raw write
 * keeps the line a bare JSON document, which is what the EMF specification describes.
 */
export const stdoutEmitter: EmfEmitter = (line) => {
  process.stdout.write(line + '\n');
};

/** The namespace from `DBBACKUP_METRIC_NAMESPACE`, else `DbBackup`. */
export function metricNamespace(env: NodeJS.ProcessEnv = process.env): string {
  const ns = env[VERIFIER_ENV.METRIC_NAMESPACE]?.trim();
  return ns ? ns : METRIC_NAMESPACE;
}

/** CloudWatch refuses a log event above 256 KiB; stay well below it. */
const MAX_LINE = 200 * 1024;

/**
 * One EMF document: the metrics under `namespace` with the single dimension `DatabaseId`, plus
 * `properties` that land in the log event only (searchable in Logs Insights, not metrics).
 */
export function emfLine(
  namespace: string,
  databaseId: string,
  metrics: readonly MetricDatum[],
  properties: Readonly<Record<string, unknown>>,
  timestamp: Date,
): string {
  const reserved = new Set<string>(['_aws', METRIC_DIMENSION, ...metrics.map((m) => m.name)]);
  const doc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(properties)) {
    if (!reserved.has(k) && v !== undefined) doc[k] = v;
  }
  doc._aws = {
    Timestamp: timestamp.getTime(),
    CloudWatchMetrics: [
      {
        Namespace: namespace,
        Dimensions: [[METRIC_DIMENSION]],
        Metrics: metrics.map((m) => ({ Name: m.name, Unit: m.unit })),
      },
    ],
  };
  doc[METRIC_DIMENSION] = databaseId;
  for (const m of metrics) doc[m.name] = m.value;
  let line = JSON.stringify(doc);
  if (line.length > MAX_LINE) {
    // Drop the log-only properties rather than lose the metrics.
    const slim: Record<string, unknown> = { _aws: doc._aws, [METRIC_DIMENSION]: databaseId, PropertiesDropped: true };
    for (const m of metrics) slim[m.name] = m.value;
    line = JSON.stringify(slim);
  }
  return line;
}

/** A structured log line on stderr (CloudWatch Logs keeps both streams). */
export function log(
  level: 'info' | 'warn' | 'error',
  message: string,
  fields: Readonly<Record<string, unknown>> = {},
): void {
  process.stderr.write(JSON.stringify({ level, message, ...fields }) + '\n');
}

/**
 * Make a verification result visible: EMF metrics per database, a `dbbackup-verified` tag on
 * the manifest (which the freshness check reads), and a message on the alarm topic when a
 * backup failed.
 */
import { GetObjectTaggingCommand, PutObjectTaggingCommand, S3Client, Tag } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { METRICS, VERIFIED_TAG_KEY, VerificationStatus } from '../../lib/core/metrics';
import { EmfEmitter, emfLine, log, MetricUnit, stdoutEmitter } from './emf';
import { isNamed, VerificationResult } from './verify';

export interface ReportOptions {
  /** Where EMF lines go. @default - stdout */
  readonly emit?: EmfEmitter;
  /** The CloudWatch namespace. */
  readonly namespace: string;
  /** The SNS topic for failures. @default - none: a failure is only logged, tagged and counted */
  readonly topicArn?: string;
  /** The metric timestamp. @default - now */
  readonly now?: Date;
}

/** What `reportVerification` did. */
export interface ReportOutcome {
  /** The manifest now carries `dbbackup-verified`. False when the manifest is gone. */
  readonly tagged: boolean;
  /** A failure message went to the topic. */
  readonly notified: boolean;
}

/** At most this many reasons go into a log line or a message; the count says how many there were. */
const MAX_REASONS = 50;

/** The EMF document for one verification. */
export function verificationMetricLine(result: VerificationResult, namespace: string, now: Date): string {
  return emfLine(
    namespace,
    result.databaseId,
    [
      { name: METRICS.VERIFICATION_SUCCEEDED, value: result.ok ? 1 : 0, unit: MetricUnit.COUNT },
      { name: METRICS.VERIFICATION_FAILED, value: result.ok ? 0 : 1, unit: MetricUnit.COUNT },
      { name: METRICS.VERIFICATION_DURATION, value: result.durationMs / 1000, unit: MetricUnit.SECONDS },
    ],
    {
      BackupId: result.backupId,
      Bucket: result.bucket,
      ManifestKey: result.manifestKey,
      Verified: result.ok ? VerificationStatus.PASSED : VerificationStatus.FAILED,
      StoredBytes: result.storedBytes,
      BytesRead: result.bytesRead,
      FailureCount: result.failures.length,
      Failures: result.failures.slice(0, MAX_REASONS),
    },
    now,
  );
}

/**
 * Set `dbbackup-verified=<status>` on the manifest, keeping its other tags (the retention tier
 * that lifecycle rules match on above all): PutObjectTagging replaces the whole set.
 * Returns false when the manifest no longer exists.
 */
export async function tagManifest(
  s3: S3Client,
  bucket: string,
  key: string,
  status: VerificationStatus,
): Promise<boolean> {
  let current: Tag[];
  try {
    current = (await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))).TagSet ?? [];
  } catch (e) {
    if (isNamed(e, 'NoSuchKey', 'NotFound')) return false;
    throw e;
  }
  const next = [...current.filter((t) => t.Key !== VERIFIED_TAG_KEY), { Key: VERIFIED_TAG_KEY, Value: status }];
  try {
    await s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: key, Tagging: { TagSet: next } }));
  } catch (e) {
    if (isNamed(e, 'NoSuchKey', 'NotFound')) return false;
    throw e;
  }
  return true;
}

/** The alarm topic's subject and text for a failed verification. */
export function failureMessage(result: VerificationResult): { subject: string; message: string } {
  // SNS subjects: ASCII, no line breaks, at most 100 characters.
  const subject = `dbbackup: backup ${result.backupId} of ${result.databaseId} failed verification`
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 100);
  const where = `s3://${result.bucket}/${result.manifestKey}`;
  const lines = [
    `The backup ${result.backupId} of the database ${result.databaseId} failed verification.`,
    '',
    `Backup id:   ${result.backupId}`,
    `Database id: ${result.databaseId}`,
    `Manifest:    ${where}`,
    '',
    `Reasons (${result.failures.length}):`,
    ...result.failures.slice(0, MAX_REASONS).map((f) => `- ${f.artifact}: ${f.reason}`),
    ...(result.failures.length > MAX_REASONS
      ? [`- … and ${result.failures.length - MAX_REASONS} more (see the function's log)`]
      : []),
    '',
    `The manifest is tagged ${VERIFIED_TAG_KEY}=${VerificationStatus.FAILED}; this backup does not count as the ` +
      'newest verified one.',
    `Check it again with: dbbackup verify --from s3://${result.bucket}/${prefixOf(result.manifestKey)} --id ` +
      `${result.backupId}`,
  ];
  return { subject, message: lines.join('\n') };
}

function prefixOf(manifestKey: string): string {
  const parts = manifestKey.split('/');
  return parts.slice(0, Math.max(0, parts.length - 2)).join('/');
}

/**
 * Publish the metrics, tag the manifest and, on failure, message the topic. The metrics go out
 * first and always; a tagging or publishing error is thrown after both have been attempted, so
 * the invocation fails visibly (and Lambda retries it).
 */
export async function reportVerification(
  s3: S3Client,
  sns: SNSClient,
  result: VerificationResult,
  options: ReportOptions,
): Promise<ReportOutcome> {
  const emit = options.emit ?? stdoutEmitter;
  emit(verificationMetricLine(result, options.namespace, options.now ?? new Date()));
  log(result.ok ? 'info' : 'error', result.ok ? 'backup verified' : 'backup failed verification', {
    backupId: result.backupId,
    databaseId: result.databaseId,
    manifest: `s3://${result.bucket}/${result.manifestKey}`,
    failures: result.failures.slice(0, MAX_REASONS),
    passed: result.passed,
    bytesRead: result.bytesRead,
    durationMs: result.durationMs,
  });

  const status = result.ok ? VerificationStatus.PASSED : VerificationStatus.FAILED;
  const notify = async (): Promise<boolean> => {
    if (result.ok) return false;
    if (!options.topicArn) {
      log('warn', 'no alarm topic configured: the failure is only logged, counted and tagged', {
        backupId: result.backupId,
      });
      return false;
    }
    const { subject, message } = failureMessage(result);
    await sns.send(
      new PublishCommand({
        TopicArn: options.topicArn,
        Subject: subject,
        Message: message,
        MessageAttributes: Object.fromEntries(
          Object.entries({ databaseId: result.databaseId, backupId: result.backupId })
            .filter(([, v]) => v !== '')
            .map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
        ),
      }),
    );
    return true;
  };
  const [tagged, notified] = await Promise.allSettled([
    tagManifest(s3, result.bucket, result.manifestKey, status),
    notify(),
  ]);
  const errors = [tagged, notified].flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  if (errors.length > 0) {
    throw new AggregateError(
      errors,
      `reporting the verification of ${result.backupId} failed: ` +
        `${errors.map((e) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e))).join('; ')}`,
    );
  }
  const t = (tagged as PromiseFulfilledResult<boolean>).value;
  if (!t)
    log('warn', 'the manifest is gone, so it was not tagged', {
      manifest: `s3://${result.bucket}/${result.manifestKey}`,
    });
  return { tagged: t, notified: (notified as PromiseFulfilledResult<boolean>).value };
}

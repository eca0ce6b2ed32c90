/**
 * Metric and event contract between the runner, the verification function and the alarms.
 * The runner and the function write CloudWatch embedded-metric-format lines; the constructs
 * build alarms and dashboards on the same names.
 */

/** The CloudWatch namespace of every metric. */
export const METRIC_NAMESPACE = 'DbBackup';

/** The one dimension of every metric: the database's identifier (`DBBACKUP_DATABASE_ID`). */
export const METRIC_DIMENSION = 'DatabaseId';

/** Metric names. */
export const METRICS = {
  /** Runner: 1 per successful backup. */
  BACKUP_SUCCEEDED: 'BackupSucceeded',
  /** Runner: 1 per failed backup. */
  BACKUP_FAILED: 'BackupFailed',
  /** Runner: stored bytes of a backup. */
  BACKUP_SIZE: 'BackupSizeBytes',
  /** Runner: seconds a backup took. */
  BACKUP_DURATION: 'BackupDurationSeconds',
  /** Verifier: 1 per manifest whose artifacts all check out. */
  VERIFICATION_SUCCEEDED: 'VerificationSucceeded',
  /** Verifier: 1 per manifest that failed a check. */
  VERIFICATION_FAILED: 'VerificationFailed',
  /** Verifier (scheduled): seconds since the newest verified backup ended. */
  BACKUP_AGE: 'BackupAgeSeconds',
  /** Verifier: seconds one verification took (watch it against the function's timeout). */
  VERIFICATION_DURATION: 'VerificationDurationSeconds',
  /** Drill: 1 per successful restore drill / 1 per failed one. */
  DRILL_SUCCEEDED: 'DrillSucceeded',
  DRILL_FAILED: 'DrillFailed',
  /** Drill: seconds the restore took. */
  RESTORE_TIME: 'RestoreTimeSeconds',
  /** Drill: seconds the restore of the random moment took (stores with a log archive). */
  PITR_RESTORE_TIME: 'PointInTimeRestoreTimeSeconds',
  /** Log shipper: seconds since the last shipped log data. */
  LOG_LAG: 'LogShippingLagSeconds',
  /** WAL streamer (wal-receive): seconds since the archive last held everything received from the server. */
  WAL_STREAMING_LAG: 'WalStreamingLagSeconds',
} as const;

/** Environment variables of the verification function. */
export const VERIFIER_ENV = {
  /** The SNS topic that receives a message for each failed verification. */
  ALARM_TOPIC_ARN: 'DBBACKUP_ALARM_TOPIC_ARN',
  /** The CloudWatch namespace (default `DbBackup`). */
  METRIC_NAMESPACE: 'DBBACKUP_METRIC_NAMESPACE',
  /**
   * Optional: the database id to publish under when a manifest is too damaged to name its own
   * `databaseId`. Set it when the function serves one database; without it such a failure is
   * published under `unknown` (the SNS message and the `failed` tag still name the object).
   */
  DATABASE_ID: 'DBBACKUP_DATABASE_ID',
  /**
   * Optional: the encryption scheme every manifest must use (`kms` when the vault's backups are
   * kms: encrypted). A manifest with another scheme, without a digest (version 1), or a kms:
   * manifest whose HMAC is missing or cannot be checked then fails verification.
   */
  REQUIRE_ENCRYPTION: 'DBBACKUP_REQUIRE_ENCRYPTION',
} as const;

/**
 * The input of the verification function's scheduled freshness check (an EventBridge
 * Scheduler or rule target with this JSON as its input). Committed manifests arrive as the
 * standard EventBridge S3 `Object Created` events instead.
 */
export interface FreshnessCheckEvent {
  readonly action: 'freshness';
  readonly bucket: string;
  /** The storage prefix the database's backups are under (`--to s3://bucket/PREFIX`). */
  readonly prefix: string;
  readonly databaseId: string;
}

/** The object tag the verifier sets on a manifest it has verified: `passed` or `failed`. */
export const VERIFIED_TAG_KEY = 'dbbackup-verified';

/** The values of the `VERIFIED_TAG_KEY` tag. */
export enum VerificationStatus {
  /** Every artifact exists with the recorded size and sha256. */
  PASSED = 'passed',
  /** The manifest is unreadable or an artifact is missing, of another size or damaged. */
  FAILED = 'failed',
}

import { Token } from 'cdktf';
import { Construct } from 'constructs';
import { MonitoringAlertPolicy, MonitoringAlertPolicyConditions } from '@cdktf/provider-google/lib/monitoring-alert-policy';
import { MonitoringNotificationChannel } from '@cdktf/provider-google/lib/monitoring-notification-channel';
import { ConfigError, humanMinutes, validateDatabaseId } from '../../core';
import { Duration } from '../common/duration';
import { INotificationChannelRef } from './refs';

/** The Cloud Run metric counting finished job executions, labelled `result` = `succeeded` | `failed`. */
export const COMPLETED_EXECUTIONS = 'run.googleapis.com/job/completed_execution_count';

/**
 * Cloud Monitoring looks back at most 25 hours in an alert condition (alignment period plus
 * duration), so a staleness alert cannot hold backups to a longer RPO.
 */
export const MAX_GOOGLE_RPO = Duration.hours(25);

/** The `result` label of `COMPLETED_EXECUTIONS`. */
export enum ExecutionResult {
  SUCCEEDED = 'succeeded',
  FAILED = 'failed',
}

/** The Monitoring filter for one job's finished executions with `result`. */
export function executionFilter(jobName: string, result: ExecutionResult): string {
  return [
    'resource.type = "cloud_run_job"',
    `resource.labels.job_name = "${jobName}"`,
    `metric.type = "${COMPLETED_EXECUTIONS}"`,
    `metric.labels.result = "${result}"`,
  ].join(' AND ');
}

/** Properties of `BackupMonitoring`. */
export interface BackupMonitoringProps {
  readonly databaseId: string;
  readonly project: string;
  /** The backup job's name. */
  readonly runnerJobName: string;
  /** The verifier job's name. */
  readonly verifierJobName: string;
  /**
   * The recovery point objective: the stale-backup alert fires when no backup succeeded for
   * this long, the unverified-backup alert when none was verified for this long. At most 25 hours.
   */
  readonly rpo: Duration;
  /**
   * E-mail addresses that get an e-mail notification channel each.
   * @default - none
   */
  readonly alertEmails?: string[];
  /**
   * Existing notification channels (PagerDuty, Slack, Pub/Sub, …).
   * @default - none
   */
  readonly notificationChannels?: INotificationChannelRef[];
  /** @default - none */
  readonly labels?: Record<string, string>;
}

/**
 * Cloud Monitoring alert policies on the jobs' execution results: a failed backup, no
 * successful backup within the RPO (stale), and a failed or missing verification (unverified).
 * These use Cloud Run's own metrics, so they also catch a runner that crashed, ran out of
 * memory or timed out before it could report anything.
 */
export class BackupMonitoring extends Construct {
  public readonly channels: string[];
  public readonly backupFailed: MonitoringAlertPolicy;
  public readonly backupStale: MonitoringAlertPolicy;
  public readonly backupUnverified: MonitoringAlertPolicy;
  public readonly policies: MonitoringAlertPolicy[];

  constructor(scope: Construct, id: string, props: BackupMonitoringProps) {
    super(scope, id);
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const rpo = props.rpo.toSeconds();
    if (rpo > MAX_GOOGLE_RPO.toSeconds()) {
      throw new ConfigError(
        `rpo is ${props.rpo} (${humanMinutes(props.rpo.toMinutes())}); Cloud Monitoring alert conditions look back at most 25 hours, so the stale-backup alert cannot wait longer. Schedule backups at least daily and set rpo to at most Duration.hours(25).`,
      );
    }
    if (rpo < 300) throw new ConfigError(`rpo is ${props.rpo}; give at least 5 minutes.`);
    // Absence of a succeeded execution: the aligned series keeps a point while a success lies
    // within the alignment period; the condition fires once there has been none for `duration`
    // more. Both are whole minutes and add up to the RPO.
    const duration = Math.max(120, Math.round(rpo / 4 / 60) * 60);
    const alignment = Math.max(60, Math.floor((rpo - duration) / 60) * 60);

    this.channels = (props.notificationChannels ?? []).map((c) => c.id);
    (props.alertEmails ?? []).forEach((email, i) => {
      this.channels.push(
        new MonitoringNotificationChannel(this, `Email${i + 1}`, {
          project: props.project,
          displayName: `dbbackup ${props.databaseId}: ${email}`,
          type: 'email',
          labels: { email_address: email },
        }).id,
      );
    });
    if (this.channels.length === 0) {
      throw new ConfigError('no notification channel: give alertEmails or notificationChannels, or nobody hears about a failed backup.');
    }

    const failed = (jobName: string, what: string): MonitoringAlertPolicyConditions => ({
      displayName: `${what} failed`,
      conditionThreshold: {
        filter: executionFilter(jobName, ExecutionResult.FAILED),
        comparison: 'COMPARISON_GT',
        thresholdValue: 0,
        duration: '0s',
        aggregations: [{ alignmentPeriod: '300s', perSeriesAligner: 'ALIGN_SUM' }],
        trigger: { count: 1 },
      },
    });
    const absent = (jobName: string, what: string): MonitoringAlertPolicyConditions => ({
      displayName: `no ${what} succeeded within ${props.rpo}`,
      conditionAbsent: {
        filter: executionFilter(jobName, ExecutionResult.SUCCEEDED),
        duration: `${duration}s`,
        aggregations: [{ alignmentPeriod: `${alignment}s`, perSeriesAligner: 'ALIGN_MAX', crossSeriesReducer: 'REDUCE_NONE' }],
        trigger: { count: 1 },
      },
    });
    const policy = (cid: string, displayName: string, severity: string, conditions: MonitoringAlertPolicyConditions[], doc: string) =>
      new MonitoringAlertPolicy(this, cid, {
        project: props.project,
        displayName,
        combiner: 'OR',
        severity,
        conditions,
        notificationChannels: this.channels,
        alertStrategy: { autoClose: `${7 * 86400}s` },
        documentation: { mimeType: 'text/markdown', subject: displayName, content: doc },
        userLabels: props.labels,
      });

    this.backupFailed = policy(
      'BackupFailed',
      `dbbackup ${props.databaseId}: backup failed`,
      'CRITICAL',
      [failed(props.runnerJobName, 'backup execution')],
      `An execution of the Cloud Run job \`${props.runnerJobName}\` failed after its retries. Its logs (JSON lines on stderr) name the stage that failed; the runner exits 2 for a configuration error, 1 for a failed operation.`,
    );
    this.backupStale = policy(
      'BackupStale',
      `dbbackup ${props.databaseId}: no recent backup`,
      'CRITICAL',
      [absent(props.runnerJobName, 'backup')],
      `No execution of \`${props.runnerJobName}\` succeeded within the RPO (${props.rpo}). Check the Cloud Scheduler job and the job's executions.`,
    );
    this.backupUnverified = policy(
      'BackupUnverified',
      `dbbackup ${props.databaseId}: backup not verified`,
      'ERROR',
      [failed(props.verifierJobName, 'verification'), absent(props.verifierJobName, 'verification')],
      `A verification of a committed backup failed (an artifact is missing, of another size or damaged: the runner exits 3), or none succeeded within the RPO (${props.rpo}). See the executions of \`${props.verifierJobName}\` and the verify workflow.`,
    );
    this.policies = [this.backupFailed, this.backupStale, this.backupUnverified];
  }
}

import { Token } from 'cdktf';
import { Construct } from 'constructs';
import {
  MonitoringAlertPolicy,
  MonitoringAlertPolicyConditions,
} from '@cdktf/provider-google/lib/monitoring-alert-policy';
import { MonitoringDashboard } from '@cdktf/provider-google/lib/monitoring-dashboard';
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
   * The drill job's name: with it, an alert on failed drills.
   * @default - no drill alert
   */
  readonly drillJobName?: string;
  /**
   * E-mail addresses that get an e-mail notification channel each (the same prop as the AWS flavours').
   * @default - none
   */
  readonly alarmEmails?: string[];
  /**
   * @deprecated renamed `alarmEmails`
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
  /** A restore drill failed (with `drillJobName`). */
  public readonly drillFailed?: MonitoringAlertPolicy;
  public readonly policies: MonitoringAlertPolicy[];
  /** Executions of the backup, verify and drill jobs, in one Cloud Monitoring dashboard. */
  public readonly dashboard: MonitoringDashboard;

  constructor(scope: Construct, id: string, props: BackupMonitoringProps) {
    super(scope, id);
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const rpo = props.rpo.toSeconds();
    if (rpo > MAX_GOOGLE_RPO.toSeconds()) {
      throw new ConfigError(
        `rpo is ${props.rpo} (${humanMinutes(props.rpo.toMinutes())}); Cloud Monitoring alert ` +
          `conditions look back at most 25 hours, so the stale-backup alert cannot wait longer. ` +
          `Schedule backups at least daily and set rpo to at most Duration.hours(25).`,
      );
    }
    if (rpo < 300) throw new ConfigError(`rpo is ${props.rpo}; give at least 5 minutes.`);
    // Absence of a succeeded execution: the aligned series keeps a point while a success lies
    // within the alignment period; the condition fires once there has been none for `duration`
    // more. Both are whole minutes and add up to the RPO.
    const duration = Math.max(120, Math.round(rpo / 4 / 60) * 60);
    const alignment = Math.max(60, Math.floor((rpo - duration) / 60) * 60);

    this.channels = (props.notificationChannels ?? []).map((c) => c.id);
    [...(props.alarmEmails ?? []), ...(props.alertEmails ?? [])].forEach((email, i) => {
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
      throw new ConfigError(
        'no notification channel: give alarmEmails or notificationChannels, or nobody hears about a failed backup.',
      );
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
        aggregations: [
          { alignmentPeriod: `${alignment}s`, perSeriesAligner: 'ALIGN_MAX', crossSeriesReducer: 'REDUCE_NONE' },
        ],
        trigger: { count: 1 },
      },
    });
    const policy = (
      cid: string,
      displayName: string,
      severity: string,
      conditions: MonitoringAlertPolicyConditions[],
      doc: string,
    ) =>
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
      `An execution of the Cloud Run job \`${props.runnerJobName}\` failed after its ` +
        `retries. Its logs (JSON lines on stderr) name the stage that failed; the runner ` +
        `exits 2 for a configuration error, 1 for a failed operation.`,
    );
    this.backupStale = policy(
      'BackupStale',
      `dbbackup ${props.databaseId}: no recent backup`,
      'CRITICAL',
      [absent(props.runnerJobName, 'backup')],
      `No execution of \`${props.runnerJobName}\` succeeded within the RPO (` +
        `${props.rpo}). Check the Cloud Scheduler job and the job's executions.`,
    );
    this.backupUnverified = policy(
      'BackupUnverified',
      `dbbackup ${props.databaseId}: backup not verified`,
      'ERROR',
      [failed(props.verifierJobName, 'verification'), absent(props.verifierJobName, 'verification')],
      `A verification of a committed backup failed (an artifact is missing, of another size or ` +
        `damaged: the runner exits 3), or none succeeded within the RPO (${props.rpo}). See the ` +
        `executions of \`${props.verifierJobName}\` and the verify workflow.`,
    );
    this.policies = [this.backupFailed, this.backupStale, this.backupUnverified];
    if (props.drillJobName !== undefined) {
      this.drillFailed = policy(
        'DrillFailed',
        `dbbackup ${props.databaseId}: restore drill failed`,
        'ERROR',
        [failed(props.drillJobName, 'restore drill')],
        `An execution of the drill job \`${props.drillJobName}\` failed: the newest ` +
          `backup did not restore into the scratch database, the smoke checks failed, ` +
          `or it ran past its timeout (the RTO plus two hours).`,
      );
      this.policies.push(this.drillFailed);
    }
    const jobs: [string, string][] = [
      ['Backups', props.runnerJobName],
      ['Verifications', props.verifierJobName],
      ...(props.drillJobName !== undefined ? ([['Restore drills', props.drillJobName]] as [string, string][]) : []),
    ];
    this.dashboard = new MonitoringDashboard(this, 'Dashboard', {
      project: props.project,
      dashboardJson: JSON.stringify(dashboardJson(props.databaseId, props.rpo.toString(), jobs)),
    });
  }
}

/** The dashboard: succeeded and failed executions of each job, per day, as the AWS dashboards show them. */
export function dashboardJson(databaseId: string, rpo: string, jobs: readonly (readonly [string, string])[]): object {
  const chart = (title: string, jobName: string) => ({
    title,
    xyChart: {
      dataSets: [ExecutionResult.SUCCEEDED, ExecutionResult.FAILED].map((result) => ({
        legendTemplate: result,
        plotType: 'STACKED_BAR',
        timeSeriesQuery: {
          timeSeriesFilter: {
            filter: executionFilter(jobName, result),
            aggregation: { alignmentPeriod: '86400s', perSeriesAligner: 'ALIGN_SUM' },
          },
        },
      })),
    },
  });
  return {
    displayName: `dbbackup ${databaseId}`,
    mosaicLayout: {
      columns: 12,
      tiles: [
        {
          xPos: 0,
          yPos: 0,
          width: 12,
          height: 2,
          widget: { title: `Backups of ${databaseId}`, text: { content: `RPO ${rpo}`, format: 'MARKDOWN' } },
        },
        ...jobs.map(([title, job], i) => ({
          xPos: (i % 2) * 6,
          yPos: 2 + Math.floor(i / 2) * 4,
          width: 6,
          height: 4,
          widget: chart(title, job),
        })),
      ],
    },
  };
}

import { Construct } from 'constructs';
import { CloudRunV2JobIamMember } from '@cdktf/provider-google/lib/cloud-run-v2-job-iam-member';
import { CloudSchedulerJob } from '@cdktf/provider-google/lib/cloud-scheduler-job';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account';
import { ConfigError } from '../../core';
import { Duration } from '../common/duration';
import { BackupSchedule } from '../common/schedule';
import { resourceName, serviceAccountId } from './private/names';
import { CloudRunV2Job } from '@cdktf/provider-google/lib/cloud-run-v2-job';

/** The OAuth scope Cloud Scheduler asks for when it calls the Cloud Run Admin API. */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

/** The Cloud Run Admin API v2 URL that starts an execution of a job. */
export function jobRunUri(project: string, region: string, jobName: string): string {
  return `https://run.googleapis.com/v2/projects/${project}/locations/${region}/jobs/${jobName}:run`;
}

/** What a schedule starts: a Cloud Run job (a `BackupRunnerJob` or a `RestoreDrillJob`). */
export interface IScheduledJob {
  readonly databaseId: string;
  readonly project: string;
  readonly region: string;
  readonly job: CloudRunV2Job;
}

/** Properties of a `JobSchedule`. */
export interface JobScheduleProps {
  readonly job: IScheduledJob;
  /** When to run the job; each becomes one Cloud Scheduler job. */
  readonly schedules: BackupSchedule[];
  /**
   * How often Cloud Scheduler retries a `:run` call that failed (the API call, not the backup:
   * a failed execution raises the failed-backup alert).
   * @default 3
   */
  readonly retryCount?: number;
  /**
   * Create the schedules paused.
   * @default false
   */
  readonly paused?: boolean;
  /**
   * What the runs are, in names and descriptions (`backup`, `incremental`, `drill`).
   * @default 'backup'
   */
  readonly purpose?: string;
}

/**
 * Cloud Scheduler jobs that start the runner job through the Cloud Run Admin API, with an
 * OAuth token of a dedicated service account that may run this one job and nothing else.
 */
export class JobSchedule extends Construct {
  public readonly schedules: CloudSchedulerJob[];
  public readonly serviceAccount: ServiceAccount;

  constructor(scope: Construct, id: string, props: JobScheduleProps) {
    super(scope, id);
    const job = props.job;
    if (props.schedules.length === 0) throw new ConfigError('schedules is empty; give at least one, e.g. BackupSchedule.daily(3).');
    const purpose = props.purpose ?? 'backup';
    const retries = props.retryCount ?? 3;
    if (!Number.isInteger(retries) || retries < 0 || retries > 5) throw new ConfigError(`retryCount is ${retries}; Cloud Scheduler takes 0 to 5.`);

    this.serviceAccount = new ServiceAccount(this, 'ServiceAccount', {
      accountId: serviceAccountId(job.databaseId, purpose === 'backup' ? 'sched' : `${purpose.slice(0, 4)}-sched`),
      displayName: `dbbackup scheduler of ${job.databaseId}`,
      description: `Starts the ${purpose} job on its schedule`,
      project: job.project,
    });
    const invoker = new CloudRunV2JobIamMember(this, 'RunsJob', {
      project: job.project,
      location: job.region,
      name: job.job.name,
      role: 'roles/run.invoker',
      member: this.serviceAccount.member,
    });

    this.schedules = props.schedules.map(
      (s, i) =>
        new CloudSchedulerJob(this, props.schedules.length === 1 ? 'Resource' : `Schedule${i + 1}`, {
          name: resourceName(job.databaseId, props.schedules.length === 1 ? purpose : `${purpose}-${i + 1}`, 500),
          description: `dbbackup: ${purpose} of ${job.databaseId} (${s.unixExpression} ${s.timeZone})`,
          project: job.project,
          region: job.region,
          schedule: s.unixExpression,
          timeZone: s.timeZone,
          paused: props.paused ?? false,
          attemptDeadline: `${Duration.minutes(3).toSeconds()}s`,
          retryConfig: { retryCount: retries, minBackoffDuration: '30s', maxBackoffDuration: '600s', maxDoublings: 3 },
          httpTarget: {
            httpMethod: 'POST',
            uri: jobRunUri(job.project, job.region, job.job.name),
            oauthToken: { serviceAccountEmail: this.serviceAccount.email, scope: CLOUD_PLATFORM_SCOPE },
          },
          dependsOn: [invoker],
        }),
    );
  }
}

/** @deprecated renamed `JobSchedule` (the AWS flavours' `TaskSchedule`). */
export class RunnerSchedule extends JobSchedule {}
/** @deprecated renamed `JobScheduleProps`. */
export interface RunnerScheduleProps extends JobScheduleProps {}

import { Construct } from 'constructs';
import { MonitoringAlertPolicy } from '@cdktf/provider-google/lib/monitoring-alert-policy';
import { MonitoringDashboard } from '@cdktf/provider-google/lib/monitoring-dashboard';
import { BackupType, Compression, ConfigError, DEFAULT_BACKUP_TIMEOUT_MINUTES, DEFAULT_DRILL_CRON, DEFAULT_RTO_MINUTES, DRILL_TIMEOUT_BEYOND_RTO_MINUTES, Retention, claimVaultPrefix, LifecycleTiming } from '../../core';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { TYPE_IDS, applyChainRetention, applyRpoPolicy, resolveSchedules } from '../common/policy';
import { BackupSchedule } from '../common/schedule';
import { ScheduledBackup } from '../common/scheduled';
import { RestoreDrillJob } from './drill-job';
import { RunnerImage } from './image';
import { BackupMonitoring, MAX_GOOGLE_RPO } from './monitoring';
import { VpcEgress } from './network';
import { INotificationChannelRef } from './refs';
import { BackupRunnerJob } from './runner-job';
import { JobSchedule } from './schedule';
import { BackupSource } from './source';
import { BackupVault, IBackupVault, RetentionLockOptions } from './vault';
import { BackupVerifier } from './verifier';

/** How restore drills run (the same options as the AWS flavours', in Cloud Run terms). */
export interface RestoreDrillOptions {
  /** @default true */
  readonly enabled?: boolean;
  /** @default BackupSchedule.cron({ weekDay: 'SUN', hour: '5' }) - weekly, Sunday 05:00 UTC */
  readonly schedule?: BackupSchedule;
  /** @default - PostgreSQL 17, MariaDB 11.4 or MongoDB 8.0 */
  readonly databaseImage?: string;
  /** @default '2' */
  readonly cpu?: string;
  /** @default 4096 */
  readonly memoryLimitMiB?: number;
  /** @default - the RTO plus two hours */
  readonly timeout?: Duration;
}

/** Properties of a `DatabaseBackup` on Google Cloud. */
export interface DatabaseBackupProps {
  /** The database's identifier: the default prefix and part of resource names. */
  readonly databaseId: string;
  readonly project: string;
  /** The region of the jobs, schedules and workflow, e.g. `europe-west1`. */
  readonly region: string;
  readonly source: BackupSource;
  readonly image: RunnerImage;
  /** @default - no VPC access */
  readonly vpcEgress?: VpcEgress;
  /** @default - none */
  readonly cloudSqlInstances?: string[];
  /**
   * When backups run, one entry per schedule; each backup type gets its own job.
   * @default - a full backup every night at 03:00 UTC
   */
  readonly schedules?: ScheduledBackup[];
  /**
   * @deprecated use `schedules`, as the AWS flavours do
   * @default - see `schedules`
   */
  readonly schedule?: BackupSchedule;
  /** @default Retention.gfs() */
  readonly retention?: Retention;
  /**
   * Store backups in this vault (shared by several databases, or `BackupVault.fromExisting`).
   * @default - a new `BackupVault`
   */
  readonly vault?: IBackupVault;
  /** @default - `<project>-<databaseId>-backups` (shortened to 63 characters) */
  readonly bucketName?: string;
  /** @default - the region */
  readonly bucketLocation?: string;
  /** @default - none */
  readonly retentionLock?: RetentionLockOptions;
  /** @default - the databaseId */
  readonly prefix?: string;
  /** @default BackupEncryption.none() (CMEK at rest) */
  readonly encryption?: BackupEncryption;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /**
   * @deprecated give each schedule's type in `schedules`
   * @default BackupType.FULL
   */
  readonly backupType?: BackupType;
  /**
   * Recovery point objective of the stale and unverified alerts.
   * @default - the longest gap between scheduled backups plus the backup timeout (lib/core), at most 25 hours (Cloud Monitoring)
   */
  readonly rpo?: Duration;
  /** @default Duration.hours(4) */
  readonly rto?: Duration;
  /** @default - weekly drills into a scratch database */
  readonly drill?: RestoreDrillOptions;
  /** @default - none */
  readonly alarmEmails?: string[];
  /**
   * @deprecated renamed `alarmEmails`
   * @default - none
   */
  readonly alertEmails?: string[];
  /** @default - none */
  readonly notificationChannels?: INotificationChannelRef[];
  /** @default '1' */
  readonly cpu?: string;
  /** @default 2048 */
  readonly memoryLimitMiB?: number;
  /** @default Duration.hours(4) */
  readonly timeout?: Duration;
  /** @default true */
  readonly deletionProtection?: boolean;
  /** @default - none */
  readonly labels?: Record<string, string>;
}

/**
 * The whole backup system of one database on Google Cloud: vault, runner jobs and Cloud
 * Scheduler, verifier, restore drills, alert policies and a dashboard, with the names and rules
 * of the AWS flavours.
 */
export class DatabaseBackup extends Construct {
  public readonly vault: IBackupVault;
  public readonly newVault?: BackupVault;
  /** The backup job of each backup type scheduled. */
  public readonly backupJobs: BackupRunnerJob[];
  /** The job of the first scheduled backup type (full by default). */
  public readonly job: BackupRunnerJob;
  /** The backup schedules, then the drill's. */
  public readonly schedules: JobSchedule[];
  /** The first backup schedule. */
  public readonly schedule: JobSchedule;
  public readonly verifier: BackupVerifier;
  public readonly drillJob?: RestoreDrillJob;
  public readonly monitoring: BackupMonitoring;
  /** Every alert policy (the AWS flavours' `alarms`). */
  public readonly alarms: MonitoringAlertPolicy[];
  /** The Cloud Monitoring dashboard. */
  public readonly dashboard: MonitoringDashboard;
  public readonly rpo: Duration;
  public readonly rto: Duration;

  constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const prefix = props.prefix ?? props.databaseId;
    const timeout = props.timeout ?? Duration.minutes(DEFAULT_BACKUP_TIMEOUT_MINUTES);
    this.rto = props.rto ?? Duration.minutes(DEFAULT_RTO_MINUTES);
    const single = props.schedule !== undefined ? [{ type: props.backupType ?? BackupType.FULL, schedule: props.schedule }] : undefined;
    const scheduled = resolveSchedules(props.schedules, undefined, timeout, single);
    this.rpo = applyRpoPolicy(this, props.rpo, scheduled, timeout, {
      minutes: MAX_GOOGLE_RPO.toMinutes(),
      reason: 'Cloud Monitoring alert conditions look back at most 25 hours',
    });

    if (props.vault !== undefined) {
      this.vault = props.vault;
    } else {
      this.newVault = new BackupVault(this, 'Vault', {
        bucketName: props.bucketName ?? defaultBucketName(props.project, props.databaseId),
        location: props.bucketLocation ?? props.region,
        project: props.project,
        retention: props.retention,
        retentionLock: props.retentionLock,
        labels: props.labels,
      });
      this.vault = this.newVault;
    }
    claimVaultPrefix(this.vault, this, props.databaseId, prefix);
    // Two years of schedules, tiers and lifecycle simulated (lib/core/simulate.ts), as in the CDK flavour.
    const chainRetention = props.retention ?? (this.vault instanceof BackupVault ? this.vault.retention : undefined);
    if (chainRetention !== undefined) applyChainRetention(this, scheduled, chainRetention, LifecycleTiming.GCS);
    const byType = new Map<BackupType, BackupSchedule[]>();
    for (const entry of scheduled) {
      const type = entry.type ?? BackupType.FULL;
      byType.set(type, [...(byType.get(type) ?? []), entry.schedule]);
    }
    this.backupJobs = [];
    this.schedules = [];
    for (const [type, schedules] of byType) {
      const job = new BackupRunnerJob(this, `${TYPE_IDS[type]}BackupJob`, {
        databaseId: props.databaseId,
        project: props.project,
        region: props.region,
        source: props.source,
        vault: this.vault,
        image: props.image,
        vpcEgress: props.vpcEgress,
        cloudSqlInstances: props.cloudSqlInstances,
        prefix,
        // Lifecycle rules are per prefix: added once, by the first job.
        retention: props.retention,
        encryption: props.encryption,
        compression: props.compression,
        backupType: type,
        cpu: props.cpu,
        memoryLimitMiB: props.memoryLimitMiB,
        timeout,
        deletionProtection: props.deletionProtection,
        labels: props.labels,
      });
      this.backupJobs.push(job);
      this.schedules.push(new JobSchedule(this, `${TYPE_IDS[type]}Schedule`, { job, schedules, purpose: type === BackupType.FULL ? 'backup' : type }));
    }
    this.job = this.backupJobs[0];
    this.schedule = this.schedules[0];
    this.verifier = new BackupVerifier(this, 'Verifier', {
      databaseId: props.databaseId,
      project: props.project,
      region: props.region,
      vault: this.vault,
      image: props.image,
      prefix,
      deletionProtection: props.deletionProtection,
      labels: props.labels,
    });
    const drill = props.drill ?? {};
    if (drill.enabled !== false) {
      const drillTimeout = drill.timeout ?? Duration.minutes(this.rto.toMinutes() + DRILL_TIMEOUT_BEYOND_RTO_MINUTES);
      const drillSchedule = drill.schedule ?? BackupSchedule.cron(DEFAULT_DRILL_CRON);
      if (drillSchedule.spec.minIntervalMinutes * 60 < drillTimeout.toSeconds()) {
        throw new ConfigError(
          `the drill schedule '${drillSchedule.unixExpression}' runs every ` +
            `${drillSchedule.spec.minIntervalMinutes} minutes, but a drill may run ${drillTimeout} ` +
              `(drill.timeout, or the RTO plus two hours); drills would overlap. Drill less often or lower ` +
                `drill.timeout.`,
        );
      }
      this.drillJob = new RestoreDrillJob(this, 'DrillJob', {
        databaseId: props.databaseId,
        project: props.project,
        region: props.region,
        engine: props.source.engine,
        vault: this.vault,
        image: props.image,
        prefix,
        encryption: props.encryption,
        databaseImage: drill.databaseImage,
        cpu: drill.cpu,
        memoryLimitMiB: drill.memoryLimitMiB,
        timeout: drillTimeout,
        deletionProtection: props.deletionProtection,
        labels: props.labels,
      });
      this.schedules.push(new JobSchedule(this, 'DrillSchedule', { job: this.drillJob, schedules: [drillSchedule], purpose: 'drill' }));
    }
    this.monitoring = new BackupMonitoring(this, 'Monitoring', {
      databaseId: props.databaseId,
      project: props.project,
      runnerJobName: this.job.jobName,
      verifierJobName: this.verifier.jobName,
      drillJobName: this.drillJob?.jobName,
      rpo: this.rpo,
      alarmEmails: [...(props.alarmEmails ?? []), ...(props.alertEmails ?? [])],
      notificationChannels: props.notificationChannels,
      labels: props.labels,
    });
    this.alarms = this.monitoring.policies;
    this.dashboard = this.monitoring.dashboard;
  }
}

function defaultBucketName(project: string, databaseId: string): string {
  const name = `${project}-${databaseId}-backups`;
  return name.length <= 63 ? name : `${name.slice(0, 55).replace(/[-.]+$/, '')}-backups`;
}

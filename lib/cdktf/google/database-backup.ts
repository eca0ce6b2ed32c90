import { Construct } from 'constructs';
import { MonitoringAlertPolicy } from '@cdktf/provider-google/lib/monitoring-alert-policy';
import { MonitoringDashboard } from '@cdktf/provider-google/lib/monitoring-dashboard';
import {
  BackupType,
  Compression,
  ConfigError,
  DEFAULT_BACKUP_TIMEOUT_MINUTES,
  DEFAULT_DRILL_CRON,
  DEFAULT_RTO_MINUTES,
  DRILL_TIMEOUT_BEYOND_RTO_MINUTES,
  Retention,
  claimVaultPrefix,
  Engine,
  LOG_ARCHIVE_FOLDERS,
  LifecycleTiming,
  logArchivePrefix,
} from '../../core';
import { Annotations } from 'cdktf';
import { logStreamingFor } from '../../core/pitr';
import { PointInTimeRecovery } from '../common/pitr';
import { LogShipper } from './log-shipper';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import {
  TYPE_IDS,
  applyChainRetention,
  applyRpoPolicy,
  logArchiveDays,
  resolveDatabaseId,
  resolveSchedules,
} from '../common/policy';
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
import { checkScheduledTypes, GOOGLE_MANAGED_SERVICE } from '../../core/engines';

/** How restore drills run (the same options as the AWS flavours', in Cloud Run terms). */
export interface RestoreDrillOptions {
  /** @default true */
  readonly enabled?: boolean;
  /** @default BackupSchedule.cron({ weekDay: 'SUN', hour: '5' }) - weekly, Sunday 05:00 UTC */
  readonly schedule?: BackupSchedule;
  /** @default - the source's server on its major version */
  readonly databaseImage?: string;
  /**
   * The server version `databaseImage` runs: a drill on another major version than the source's
   * `engineVersion` is refused at synth.
   * @default - the default image's version
   */
  readonly databaseImageVersion?: string;
  /** @default '2' */
  readonly cpu?: string;
  /** @default 4096 */
  readonly memoryLimitMiB?: number;
  /** @default - the RTO plus two hours */
  readonly timeout?: Duration;
}

/** Properties of a `DatabaseBackup` on Google Cloud. */
export interface DatabaseBackupProps {
  /**
   * The database's identifier: the default prefix and part of resource names. Never derived
   * from the construct id (the rule of the AWS flavours).
   * @default - the source URL's database name in kebab case (`orders_prod` → `orders-prod`)
   */
  readonly databaseId?: string;
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
   * @default - the longest gap between scheduled backups plus the backup timeout (lib/core), at most 25 hours (Cloud
   * Monitoring)
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
  /**
   * When the source is a replica, the most it may lag behind its primary (`--max-replica-lag`).
   * @default - no lag check
   */
  readonly maxReplicaLag?: Duration;
  /**
   * Point-in-time recovery: a log shipper as one always-on Cloud Run worker pool instance, with a
   * lag alert and a lifecycle rule on the log archive (`LogShipper`). A Cloud SQL PostgreSQL
   * source and MongoDB are refused with what to do instead.
   * @default - no point-in-time recovery
   */
  readonly pointInTimeRecovery?: PointInTimeRecovery;
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
  /** The log shipper, when point-in-time recovery is on. */
  public readonly logShipper?: LogShipper;
  /** The days of the log archive's lifecycle rule, when one was added. */
  public readonly logArchiveDays?: number;
  public readonly databaseId: string;
  public readonly monitoring: BackupMonitoring;
  /** Every alert policy (the AWS flavours' `alarms`). */
  public readonly alarms: MonitoringAlertPolicy[];
  /** The Cloud Monitoring dashboard. */
  public readonly dashboard: MonitoringDashboard;
  public readonly rpo: Duration;
  public readonly rto: Duration;

  constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const databaseId = resolveDatabaseId(this, props.databaseId, props.source.databaseName);
    this.databaseId = databaseId;
    const prefix = props.prefix ?? databaseId;
    const timeout = props.timeout ?? Duration.minutes(DEFAULT_BACKUP_TIMEOUT_MINUTES);
    this.rto = props.rto ?? Duration.minutes(DEFAULT_RTO_MINUTES);
    const single =
      props.schedule !== undefined
        ? [{ type: props.backupType ?? BackupType.FULL, schedule: props.schedule }]
        : undefined;
    const scheduled = resolveSchedules(props.schedules, undefined, timeout, single);
    this.rpo = applyRpoPolicy(this, props.rpo, scheduled, timeout, {
      minutes: MAX_GOOGLE_RPO.toMinutes(),
      reason: 'Cloud Monitoring alert conditions look back at most 25 hours',
    });
    checkScheduledTypes(
      {
        engine: props.source.engine,
        managed: props.source.managed,
        method: props.source.method,
        service: GOOGLE_MANAGED_SERVICE,
      },
      scheduled.map((s) => s.type ?? BackupType.FULL),
    );

    if (props.vault !== undefined) {
      this.vault = props.vault;
    } else {
      this.newVault = new BackupVault(this, 'Vault', {
        bucketName: props.bucketName ?? defaultBucketName(props.project, databaseId),
        location: props.bucketLocation ?? props.region,
        project: props.project,
        retention: props.retention,
        retentionLock: props.retentionLock,
        labels: props.labels,
      });
      this.vault = this.newVault;
    }
    claimVaultPrefix(this.vault, this, databaseId, prefix);
    // Two years of schedules, tiers and lifecycle simulated (lib/core/simulate.ts), as in the CDK flavour.
    const chainRetention = props.retention ?? (this.vault instanceof BackupVault ? this.vault.retention : undefined);
    const pitr = props.pointInTimeRecovery;
    if (pitr !== undefined) {
      const streaming = logStreamingFor(props.source.engine, props.source.managed, GOOGLE_MANAGED_SERVICE.name);
      const days = logArchiveDays(scheduled, chainRetention, pitr);
      const logPrefix = logArchivePrefix(prefix, LOG_ARCHIVE_FOLDERS[streaming.folder]);
      if (days !== undefined) {
        if (this.vault.addLogArchiveExpiry(logPrefix, days)) this.logArchiveDays = days;
        else
          Annotations.of(this).addWarning(
            `the vault's bucket is not this stack's, so no lifecycle rule expires the log archive: add ` +
              `one deleting ${logPrefix} objects after ${days} days, or the logs are kept for ever.`,
          );
      }
    }
    // Tiers are folders on Cloud Storage: the runner cannot raise a base, so no --tier-days.
    if (chainRetention !== undefined) {
      applyChainRetention(
        this,
        scheduled,
        chainRetention,
        LifecycleTiming.GCS,
        { raiseBaseTiers: false, pointInTimeDays: pitr?.windowDays, logArchiveDays: this.logArchiveDays },
        pitr,
      );
    }
    const byType = new Map<BackupType, BackupSchedule[]>();
    for (const entry of scheduled) {
      const type = entry.type ?? BackupType.FULL;
      byType.set(type, [...(byType.get(type) ?? []), entry.schedule]);
    }
    this.backupJobs = [];
    this.schedules = [];
    for (const [type, schedules] of byType) {
      const job = new BackupRunnerJob(this, `${TYPE_IDS[type]}BackupJob`, {
        databaseId: databaseId,
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
        maxReplicaLag: props.maxReplicaLag,
        deletionProtection: props.deletionProtection,
        labels: props.labels,
      });
      this.backupJobs.push(job);
      this.schedules.push(
        new JobSchedule(this, `${TYPE_IDS[type]}Schedule`, {
          job,
          schedules,
          purpose: type === BackupType.FULL ? 'backup' : type,
        }),
      );
    }
    this.job = this.backupJobs[0];
    this.schedule = this.schedules[0];
    this.verifier = new BackupVerifier(this, 'Verifier', {
      databaseId: databaseId,
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
        databaseId: databaseId,
        project: props.project,
        region: props.region,
        engine: props.source.engine,
        vault: this.vault,
        image: props.image,
        prefix,
        encryption: props.encryption,
        databaseImage: drill.databaseImage,
        databaseImageVersion: drill.databaseImageVersion,
        serverFamily: props.source.serverFamily,
        sourceVersion: props.source.engineVersion,
        cpu: drill.cpu,
        memoryLimitMiB: drill.memoryLimitMiB,
        timeout: drillTimeout,
        deletionProtection: props.deletionProtection,
        labels: props.labels,
      });
      this.schedules.push(
        new JobSchedule(this, 'DrillSchedule', { job: this.drillJob, schedules: [drillSchedule], purpose: 'drill' }),
      );
    }
    this.monitoring = new BackupMonitoring(this, 'Monitoring', {
      databaseId: databaseId,
      project: props.project,
      runnerJobName: this.job.jobName,
      verifierJobName: this.verifier.jobName,
      drillJobName: this.drillJob?.jobName,
      rpo: this.rpo,
      alarmEmails: [...(props.alarmEmails ?? []), ...(props.alertEmails ?? [])],
      notificationChannels: props.notificationChannels,
      labels: props.labels,
    });
    if (pitr !== undefined) {
      this.logShipper = new LogShipper(this, props.source.engine === Engine.MYSQL ? 'BinlogShipper' : 'WalShipper', {
        databaseId,
        project: props.project,
        region: props.region,
        source: props.source,
        vault: this.vault,
        image: props.image,
        notificationChannels: this.monitoring.channels,
        vpcEgress: props.vpcEgress,
        cloudSqlInstances: props.cloudSqlInstances,
        prefix,
        encryption: props.encryption,
        compression: props.compression,
        pointInTimeRecovery: pitr,
        deletionProtection: props.deletionProtection,
        labels: props.labels,
      });
    }
    this.alarms = [...this.monitoring.policies, ...(this.logShipper ? [this.logShipper.lagAlert] : [])];
    this.dashboard = this.monitoring.dashboard;
  }
}

function defaultBucketName(project: string, databaseId: string): string {
  const name = `${project}-${databaseId}-backups`;
  return name.length <= 63 ? name : `${name.slice(0, 55).replace(/[-.]+$/, '')}-backups`;
}

import { Construct } from 'constructs';
import { BackupType, Compression, ConfigError, Retention, defaultRpoMinutes, validateRpo } from '../../core';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { BackupSchedule } from '../common/schedule';
import { RunnerImage } from './image';
import { BackupMonitoring, MAX_GOOGLE_RPO } from './monitoring';
import { VpcEgress } from './network';
import { INotificationChannelRef } from './refs';
import { RunnerJob } from './runner-job';
import { RunnerSchedule } from './schedule';
import { BackupSource } from './source';
import { BackupVault, IBackupVault, RetentionLockOptions } from './vault';
import { Verifier } from './verifier';

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
  /** @default BackupSchedule.daily(2) (02:00 UTC) */
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
  /** @default BackupType.FULL */
  readonly backupType?: BackupType;
  /**
   * The recovery point objective of the stale and unverified alerts (at most 25 hours).
   * @default - the longest gap between two scheduled runs plus one hour, at most 25 hours
   */
  readonly rpo?: Duration;
  /** @default - none */
  readonly alertEmails?: string[];
  /** @default - none */
  readonly notificationChannels?: INotificationChannelRef[];
  /** @default '1' */
  readonly cpu?: string;
  /** @default 2048 */
  readonly memoryLimitMiB?: number;
  /** @default Duration.hours(6) */
  readonly timeout?: Duration;
  /** @default true */
  readonly deletionProtection?: boolean;
  /** @default - none */
  readonly labels?: Record<string, string>;
}

/**
 * The whole backup system of one database on Google Cloud: vault, runner job, Cloud Scheduler,
 * verifier and alert policies.
 */
export class DatabaseBackup extends Construct {
  public readonly vault: IBackupVault;
  public readonly newVault?: BackupVault;
  public readonly job: RunnerJob;
  public readonly schedule: RunnerSchedule;
  public readonly verifier: Verifier;
  public readonly monitoring: BackupMonitoring;
  public readonly rpo: Duration;

  constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const schedule = props.schedule ?? BackupSchedule.daily(2);
    if (props.rpo !== undefined) {
      validateRpo(props.rpo.toMinutes(), [schedule.spec]);
      this.rpo = props.rpo;
    } else {
      const minutes = defaultRpoMinutes([schedule.spec]);
      if (minutes === undefined || minutes - 60 >= MAX_GOOGLE_RPO.toMinutes()) {
        throw new ConfigError(
          `the schedule ${schedule.unixExpression} leaves ${minutes === undefined ? 'gaps that cannot be worked out' : 'more than 25 hours between backups'}; Cloud Monitoring can hold backups to an RPO of at most 25 hours. Schedule backups at least daily, or give rpo.`,
        );
      }
      this.rpo = Duration.minutes(Math.min(minutes, MAX_GOOGLE_RPO.toMinutes()));
    }

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
    this.job = new RunnerJob(this, 'Job', {
      databaseId: props.databaseId,
      project: props.project,
      region: props.region,
      source: props.source,
      vault: this.vault,
      image: props.image,
      vpcEgress: props.vpcEgress,
      cloudSqlInstances: props.cloudSqlInstances,
      prefix: props.prefix,
      retention: props.retention,
      encryption: props.encryption,
      compression: props.compression,
      backupType: props.backupType,
      cpu: props.cpu,
      memoryLimitMiB: props.memoryLimitMiB,
      timeout: props.timeout,
      deletionProtection: props.deletionProtection,
      labels: props.labels,
    });
    this.schedule = new RunnerSchedule(this, 'Schedule', { job: this.job, schedules: [schedule] });
    this.verifier = new Verifier(this, 'Verifier', {
      databaseId: props.databaseId,
      project: props.project,
      region: props.region,
      vault: this.vault,
      image: props.image,
      prefix: this.job.prefix,
      deletionProtection: props.deletionProtection,
      labels: props.labels,
    });
    this.monitoring = new BackupMonitoring(this, 'Monitoring', {
      databaseId: props.databaseId,
      project: props.project,
      runnerJobName: this.job.jobName,
      verifierJobName: this.verifier.jobName,
      rpo: this.rpo,
      alertEmails: props.alertEmails,
      notificationChannels: props.notificationChannels,
      labels: props.labels,
    });
  }
}

function defaultBucketName(project: string, databaseId: string): string {
  const name = `${project}-${databaseId}-backups`;
  return name.length <= 63 ? name : `${name.slice(0, 55).replace(/[-.]+$/, '')}-backups`;
}

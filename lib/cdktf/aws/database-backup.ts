import { Construct } from 'constructs';
import { CloudwatchDashboard } from '@cdktf/provider-aws/lib/cloudwatch-dashboard';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm';
import { EcsCluster } from '@cdktf/provider-aws/lib/ecs-cluster';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue';
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
  EncryptionScheme,
  requiredEncryptionFor,
} from '../../core';
import { logStreamingFor } from '../../core/pitr';
import { Annotations } from 'cdktf';
import { PointInTimeRecovery } from '../common/pitr';
import { LogShipper } from './log-shipper';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { boundedName } from '../common/names';
import { BackupSchedule } from '../common/schedule';
import { ScheduledBackup } from '../common/scheduled';
import {
  TYPE_IDS,
  applyChainRetention,
  applyRpoPolicy,
  logArchiveDays,
  resolveDatabaseId,
  resolveSchedules,
} from '../common/policy';
import { RestoreDrillTask } from './drill-task';
import { RunnerImage } from './image';
import { BackupMonitoring } from './monitoring';
import { IClusterRef, IKeyRef, ITopicRef } from './refs';
import { BackupRunnerTask, CpuArchitecture, RunnerNetwork } from './runner-task';
import { TaskSchedule } from './schedule';
import { BackupSource } from './source';
import { BackupVerifier } from './verifier';
import { BackupVault, IBackupVault, ObjectLockOptions } from './vault';
import { AWS_MANAGED_SERVICE, checkScheduledTypes } from '../../core/engines';

/** How restore drills run (the same options as the AWS CDK flavour's). */
export interface RestoreDrillOptions {
  /**
   * Whether drills run at all. Leave them on: a backup nobody restored is not a backup.
   * @default true
   */
  readonly enabled?: boolean;
  /** @default BackupSchedule.cron({ weekDay: 'SUN', hour: '5' }) - weekly, Sunday 05:00 UTC */
  readonly schedule?: BackupSchedule;
  /** @default - the source's server on its major version (see `RestoreDrillTask`) */
  readonly databaseImage?: string;
  /**
   * The server version `databaseImage` runs (`16`, `8.0`): a drill on another major version than
   * the source's `engineVersion` is refused at synth.
   * @default - the default image's version
   */
  readonly databaseImageVersion?: string;
  /** @default 1024 */
  readonly cpu?: number;
  /** @default 4096 */
  readonly memoryLimitMiB?: number;
  /** @default 50 */
  readonly ephemeralStorageGiB?: number;
  /** @default - the RTO plus two hours */
  readonly timeout?: Duration;
}

/** Properties of a `DatabaseBackup`. */
export interface DatabaseBackupProps {
  /**
   * The database's identifier: the metric dimension, the default prefix and part of resource
   * names; unique per vault. Never derived from the construct id, so that renaming or moving the
   * construct never moves the backups (the rule of the AWS CDK flavour, lib/core `databaseIdFromName`).
   * @default - the source URL's database name in kebab case (`orders_prod` → `orders-prod`)
   */
  readonly databaseId?: string;
  readonly source: BackupSource;
  readonly image: RunnerImage;
  readonly network: RunnerNetwork;
  /**
   * When backups run, one entry per schedule; each backup type gets its own task definition.
   * @default - a full backup every night at 03:00 UTC
   */
  readonly schedules?: ScheduledBackup[];
  /**
   * One full-backup schedule.
   * @deprecated use `schedules`, as the AWS CDK flavour does
   * @default - see `schedules`
   */
  readonly schedule?: BackupSchedule;
  /**
   * Retention of a new vault (ignored with `vault`: an existing bucket's lifecycle is its owner's).
   * @default Retention.gfs()
   */
  readonly retention?: Retention;
  /**
   * Store backups in this vault (e.g. `BackupVault.fromExisting(...)` or one vault shared by several databases).
   * @default - a new `BackupVault`
   */
  readonly vault?: IBackupVault;
  /**
   * Object Lock for a new vault.
   * @default - none
   */
  readonly objectLock?: ObjectLockOptions;
  /** @default - the databaseId */
  readonly prefix?: string;
  /** @default BackupEncryption.kms(vault key) */
  readonly encryption?: BackupEncryption;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /**
   * The type of a single deprecated `schedule`.
   * @deprecated give each schedule's type in `schedules`
   * @default BackupType.FULL
   */
  readonly backupType?: BackupType;
  /** The longest a backup may run. @default Duration.hours(4) */
  readonly timeout?: Duration;
  /**
   * Recovery point objective: the stale alarm fires when the newest verified backup is older.
   * @default - the longest gap between scheduled backups plus the backup timeout (lib/core, as in the AWS CDK flavour)
   */
  readonly rpo?: Duration;
  /**
   * Recovery time objective: the drill alarm fires on a slower drill.
   * @default Duration.hours(4)
   */
  readonly rto?: Duration;
  /** @default - weekly drills into a scratch database */
  readonly drill?: RestoreDrillOptions;
  /** @default - none */
  readonly alarmEmails?: string[];
  /**
   * An existing topic for the alarms.
   * @default - a new encrypted topic
   */
  readonly alarmTopic?: ITopicRef;
  /** @default - none */
  readonly alarmTopicKey?: IKeyRef;
  /** @default - a new cluster */
  readonly cluster?: IClusterRef;
  /** @default 1024 */
  readonly cpu?: number;
  /** @default 2048 */
  readonly memoryLimitMiB?: number;
  /** @default CpuArchitecture.X86_64 */
  readonly cpuArchitecture?: CpuArchitecture;
  /**
   * When the source is a replica, the most it may lag behind its primary before and after the
   * dump (`--max-replica-lag`): above it the backup fails and commits nothing. A primary ignores it.
   * @default - no lag check
   */
  readonly maxReplicaLag?: Duration;
  /**
   * Point-in-time recovery: a log shipper as a one-task ECS service beside the scheduled
   * backups, with a lag alarm and a lifecycle rule on the log archive: `dbbackup binlog-stream`
   * for MySQL/MariaDB, `dbbackup wal-receive` for a self-managed PostgreSQL server. RDS/Aurora
   * PostgreSQL and MongoDB are refused with what to do instead.
   * @default - no point-in-time recovery; restores go to the scheduled backups
   */
  readonly pointInTimeRecovery?: PointInTimeRecovery;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/**
 * The whole backup system of one database on AWS, in Terraform: vault, runner tasks and their
 * schedules, verifier, restore drills, alarms and a dashboard, with the construct names, ids
 * and rules of the AWS CDK flavour's `DatabaseBackup`.
 */
export class DatabaseBackup extends Construct {
  public readonly vault: IBackupVault;
  /** The new vault, when none was given. */
  public readonly newVault?: BackupVault;
  public readonly clusterArn: string;
  /** The backup task of each backup type scheduled. */
  public readonly backupTasks: BackupRunnerTask[];
  /** The task of the first scheduled backup type (full by default). */
  public readonly task: BackupRunnerTask;
  /** The backup schedules, then the drill's. */
  public readonly schedules: TaskSchedule[];
  /** The first backup schedule. */
  public readonly schedule: TaskSchedule;
  public readonly verifier: BackupVerifier;
  public readonly drillTask?: RestoreDrillTask;
  /** The log shipper's service, when point-in-time recovery is on. */
  public readonly logShipper?: LogShipper;
  /** The log-shipping-lag alarm, when point-in-time recovery is on. */
  public readonly logShippingLagAlarm?: CloudwatchMetricAlarm;
  /** The days of the log archive's lifecycle rule, when one was added. */
  public readonly logArchiveDays?: number;
  public readonly monitoring: BackupMonitoring;
  /** Every alarm (as the AWS CDK flavour's `alarms`). */
  public readonly alarms: CloudwatchMetricAlarm[];
  /** The CloudWatch dashboard. */
  public readonly dashboard: CloudwatchDashboard;
  public readonly databaseId: string;
  public readonly prefix: string;
  /** The recovery point objective in force. */
  public readonly rpo: Duration;
  public readonly rto: Duration;

  constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    this.databaseId = resolveDatabaseId(this, props.databaseId, props.source.databaseName);
    const databaseId = this.databaseId;
    this.prefix = props.prefix ?? databaseId;
    const timeout = props.timeout ?? Duration.minutes(DEFAULT_BACKUP_TIMEOUT_MINUTES);
    this.rto = props.rto ?? Duration.minutes(DEFAULT_RTO_MINUTES);
    const single =
      props.schedule !== undefined
        ? [{ type: props.backupType ?? BackupType.FULL, schedule: props.schedule }]
        : undefined;
    const scheduled = resolveSchedules(props.schedules, undefined, timeout, single);
    this.rpo = applyRpoPolicy(this, props.rpo, scheduled, timeout);
    checkScheduledTypes(
      {
        engine: props.source.engine,
        managed: props.source.managed,
        method: props.source.method,
        service: AWS_MANAGED_SERVICE,
      },
      scheduled.map((s) => s.type ?? BackupType.FULL),
    );

    if (props.vault !== undefined && props.retention !== undefined) {
      throw new ConfigError(
        "retention is set, but so is an existing vault: retention is carried out by the vault's lifecycle " +
          'rules. Pass retention to the BackupVault you created, or leave vault out to get a new one.',
      );
    }
    if (props.vault !== undefined) {
      this.vault = props.vault;
    } else {
      this.newVault = new BackupVault(this, 'Vault', {
        bucketPrefix: `${databaseId.slice(0, 26)}-backups-`,
        retention: props.retention,
        objectLock: props.objectLock,
        tags: props.tags,
      });
      this.vault = this.newVault;
    }
    claimVaultPrefix(this.vault, this, this.databaseId, this.prefix);
    // Two years of schedules, tiers and lifecycle simulated (lib/core/simulate.ts), as in the CDK flavour.
    const chainRetention =
      this.newVault?.retention ?? (props.vault instanceof BackupVault ? props.vault.retention : undefined);
    const pitr = props.pointInTimeRecovery;
    const streaming = pitr === undefined ? undefined : logStreamingFor(props.source.engine, props.source.managed);
    if (pitr !== undefined && streaming !== undefined) {
      // The log archive's lifecycle rule (lib/core logArchiveExpiry, as in the CDK flavour).
      const days = logArchiveDays(scheduled, chainRetention, pitr);
      const logPrefix = logArchivePrefix(this.prefix, LOG_ARCHIVE_FOLDERS[streaming.folder]);
      if (days !== undefined) {
        if (this.vault instanceof BackupVault) {
          this.vault.addLogArchiveExpiry(logPrefix, days);
          this.logArchiveDays = days;
        } else {
          Annotations.of(this).addWarning(
            `the vault's bucket is not this stack's, so no lifecycle rule expires the log archive: add ` +
              `one expiring ${logPrefix} after ${days} days, or the logs are kept for ever.`,
          );
        }
      }
    }
    // The runners get --tier-days (as in the CDK flavour), so a base about to expire is raised.
    const tierDays = chainRetention?.tierDaysSetting;
    if (chainRetention !== undefined) {
      applyChainRetention(
        this,
        scheduled,
        chainRetention,
        LifecycleTiming.S3,
        { raiseBaseTiers: true, pointInTimeDays: pitr?.windowDays, logArchiveDays: this.logArchiveDays },
        pitr,
      );
    }
    this.clusterArn =
      props.cluster?.arn ??
      new EcsCluster(this, 'Cluster', {
        name: boundedName(['dbbackup', databaseId, 'cluster'], 255),
        setting: [{ name: 'containerInsights', value: 'enabled' }],
        tags: props.tags,
      }).arn;

    const deadLetterQueue = new SqsQueue(this, 'ScheduleDeadLetterQueue', {
      name: boundedName(['dbbackup', databaseId, 'schedule-dlq'], 80),
      messageRetentionSeconds: 14 * 86400,
      sqsManagedSseEnabled: true,
    });
    const tasks = new Map<BackupType, BackupRunnerTask>();
    const byType = new Map<BackupType, BackupSchedule[]>();
    for (const entry of scheduled) {
      const type = entry.type ?? BackupType.FULL;
      byType.set(type, [...(byType.get(type) ?? []), entry.schedule]);
    }
    this.schedules = [];
    for (const [type, schedules] of byType) {
      const task = new BackupRunnerTask(this, `${TYPE_IDS[type]}BackupTask`, {
        databaseId: databaseId,
        source: props.source,
        vault: this.vault,
        image: props.image,
        network: props.network,
        prefix: this.prefix,
        encryption: props.encryption,
        compression: props.compression,
        backupType: type,
        cluster: { arn: this.clusterArn },
        cpu: props.cpu,
        memoryLimitMiB: props.memoryLimitMiB,
        cpuArchitecture: props.cpuArchitecture,
        timeout,
        tierDays,
        maxReplicaLag: props.maxReplicaLag,
        tags: props.tags,
      });
      tasks.set(type, task);
      this.schedules.push(
        new TaskSchedule(this, `${TYPE_IDS[type]}Schedule`, {
          task,
          schedules,
          purpose: type === BackupType.FULL ? 'backup' : type,
          deadLetterQueue,
        }),
      );
    }
    this.backupTasks = [...tasks.values()];
    this.task = this.backupTasks[0];
    this.schedule = this.schedules[0];

    const drill = props.drill ?? {};
    if (drill.enabled !== false) {
      const drillTimeout = drill.timeout ?? Duration.minutes(this.rto.toMinutes() + DRILL_TIMEOUT_BEYOND_RTO_MINUTES);
      const drillSchedule = drill.schedule ?? BackupSchedule.cron(DEFAULT_DRILL_CRON);
      if (drillSchedule.spec.minIntervalMinutes * 60 < drillTimeout.toSeconds()) {
        throw new ConfigError(
          `the drill schedule '${drillSchedule.awsExpression}' runs every ` +
            `${drillSchedule.spec.minIntervalMinutes} minutes, but a drill may run ${drillTimeout} ` +
            `(drill.timeout, or the RTO plus two hours); drills would overlap. Drill less often or lower ` +
            `drill.timeout.`,
        );
      }
      this.drillTask = new RestoreDrillTask(this, 'DrillTask', {
        databaseId: databaseId,
        engine: props.source.engine,
        vault: this.vault,
        image: props.image,
        network: props.network,
        clusterArn: this.clusterArn,
        prefix: this.prefix,
        encryption: props.encryption,
        databaseImage: drill.databaseImage,
        databaseImageVersion: drill.databaseImageVersion,
        serverFamily: props.source.serverFamily,
        sourceVersion: props.source.engineVersion,
        cpu: drill.cpu,
        memoryLimitMiB: drill.memoryLimitMiB,
        ephemeralStorageGiB: drill.ephemeralStorageGiB,
        timeout: drillTimeout,
        cpuArchitecture: props.cpuArchitecture,
        tags: props.tags,
      });
      this.schedules.push(
        new TaskSchedule(this, 'DrillSchedule', {
          task: this.drillTask,
          schedules: [drillSchedule],
          purpose: 'drill',
          deadLetterQueue,
        }),
      );
    }

    if (pitr !== undefined) {
      // Construct ids are API: the MySQL shipper has the id of the CDK flavour's.
      this.logShipper = new LogShipper(this, props.source.engine === Engine.MYSQL ? 'BinlogShipper' : 'WalShipper', {
        databaseId,
        source: props.source,
        vault: this.vault,
        image: props.image,
        clusterArn: this.clusterArn,
        subnetIds: this.task.subnetIds,
        securityGroupIds: this.task.securityGroupIds,
        assignPublicIp: this.task.assignPublicIp,
        prefix: this.prefix,
        encryption: props.encryption,
        compression: props.compression,
        pointInTimeRecovery: pitr,
        cpuArchitecture: props.cpuArchitecture,
        tags: props.tags,
      });
    }

    this.monitoring = new BackupMonitoring(this, 'Monitoring', {
      databaseId: databaseId,
      rpo: this.rpo,
      rto: this.drillTask !== undefined ? this.rto : undefined,
      topic: props.alarmTopic,
      topicKey: props.alarmTopicKey,
      alarmEmails: props.alarmEmails,
      deadLetterQueue,
      verifierFunction: { functionName: BackupVerifier.functionNameFor(databaseId) },
      logShippingLagThreshold: pitr?.logShippingLagThreshold,
      logShippingInterval: pitr?.intervalFor(props.source.engine),
      logShippingLagMetric: this.logShipper?.lagMetricName,
      tags: props.tags,
    });
    this.alarms = this.monitoring.alarms;
    this.logShippingLagAlarm = this.monitoring.logShippingLag;
    this.dashboard = this.monitoring.dashboard;
    this.verifier = new BackupVerifier(this, 'Verifier', {
      databaseId: databaseId,
      vault: this.vault,
      prefix: this.prefix,
      alarmTopic: { arn: this.monitoring.topicArn },
      alarmTopicKey: this.monitoring.topicKeyArn === undefined ? undefined : { arn: this.monitoring.topicKeyArn },
      requireEncryption: requiredEncryptionFor(
        (props.encryption ?? BackupEncryption.kms(this.vault.keyArn)).value.split(':')[0] as EncryptionScheme,
      ),
      tags: props.tags,
    });
  }
}

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
  Engine,
  LOG_ARCHIVE_FOLDERS,
  METRICS,
  METRIC_DIMENSION,
  METRIC_NAMESPACE,
  Retention,
  claimVaultPrefix,
  LifecycleTiming,
  logArchiveExpiry,
  logArchivePrefix,
  EncryptionScheme,
  requiredEncryptionFor,
} from '../../core';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { boundedName } from '../common/names';
import { BackupSchedule } from '../common/schedule';
import { ScheduledBackup } from '../common/scheduled';
import { TYPE_IDS, applyChainRetention, applyRpoPolicy, resolveSchedules } from '../common/policy';
import { RestoreDrillTask } from './drill-task';
import { RunnerImage } from './image';
import { BackupMonitoring } from './monitoring';
import { IClusterRef, IKeyRef, ITopicRef } from './refs';
import { BinlogShipper, PointInTimeRecoveryOptions } from './binlog-shipper';
import { BackupRunnerTask, CpuArchitecture, RunnerNetwork } from './runner-task';
import { TaskSchedule } from './schedule';
import { BackupSource } from './source';
import { BackupVerifier } from './verifier';
import { BackupVault, IBackupVault, ObjectLockOptions } from './vault';
import { checkBackupTypes, ENGINE_CAPABILITIES, LogShipping } from '../../core/engines';
import { Annotations } from 'cdktf';

/** How restore drills run (the same options as the AWS CDK flavour's). */
export interface RestoreDrillOptions {
  /**
   * Whether drills run at all. Leave them on: a backup nobody restored is not a backup.
   * @default true
   */
  readonly enabled?: boolean;
  /** @default BackupSchedule.cron({ weekDay: 'SUN', hour: '5' }) - weekly, Sunday 05:00 UTC */
  readonly schedule?: BackupSchedule;
  /** @default - PostgreSQL 17, MariaDB 11.4 or MongoDB 8.0 */
  readonly databaseImage?: string;
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
  /** The database's identifier: the metric dimension, the default prefix and part of resource names. */
  readonly databaseId: string;
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
  /**
   * Continuous point-in-time recovery of a MySQL/MariaDB source: a binary log shipper
   * (`dbbackup binlog-stream`) as a one-task ECS service beside the scheduled backups, and on a
   * new vault a lifecycle rule that expires `<prefix>/binlog/` once no kept full backup or the
   * window needs it (as in the AWS CDK flavour). PostgreSQL archives its WAL from the server
   * (`archive_command`); MongoDB ships no log: both are refused.
   * @default - none
   */
  readonly pointInTimeRecovery?: PointInTimeRecoveryOptions;
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
  /** The binary log shipper, with `pointInTimeRecovery`. */
  public readonly binlogShipper?: BinlogShipper;
  /** The log-shipping-lag alarm (also in `alarms`), with `pointInTimeRecovery`. */
  public readonly logShippingLagAlarm?: CloudwatchMetricAlarm;
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
    this.databaseId = props.databaseId;
    this.prefix = props.prefix ?? props.databaseId;
    const timeout = props.timeout ?? Duration.minutes(DEFAULT_BACKUP_TIMEOUT_MINUTES);
    this.rto = props.rto ?? Duration.minutes(DEFAULT_RTO_MINUTES);
    const single =
      props.schedule !== undefined
        ? [{ type: props.backupType ?? BackupType.FULL, schedule: props.schedule }]
        : undefined;
    const scheduled = resolveSchedules(props.schedules, undefined, timeout, single);
    this.rpo = applyRpoPolicy(this, props.rpo, scheduled, timeout);

    if (props.vault !== undefined && props.retention !== undefined) {
      throw new ConfigError(
        "retention is set, but so is an existing vault: retention is carried out by the vault's lifecycle rules. Pass retention to the BackupVault you created, or leave vault out to get a new one.",
      );
    }
    if (props.vault !== undefined) {
      this.vault = props.vault;
    } else {
      this.newVault = new BackupVault(this, 'Vault', {
        bucketPrefix: `${props.databaseId.slice(0, 26)}-backups-`,
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
    if (chainRetention !== undefined) applyChainRetention(this, scheduled, chainRetention, LifecycleTiming.S3);
    this.clusterArn =
      props.cluster?.arn ??
      new EcsCluster(this, 'Cluster', {
        name: boundedName(['dbbackup', props.databaseId, 'cluster'], 255),
        setting: [{ name: 'containerInsights', value: 'enabled' }],
        tags: props.tags,
      }).arn;

    const deadLetterQueue = new SqsQueue(this, 'ScheduleDeadLetterQueue', {
      name: boundedName(['dbbackup', props.databaseId, 'schedule-dlq'], 80),
      messageRetentionSeconds: 14 * 86400,
      sqsManagedSseEnabled: true,
    });
    const tasks = new Map<BackupType, BackupRunnerTask>();
    checkBackupTypes(
      props.source.engine,
      scheduled.map((s) => s.type ?? BackupType.FULL),
    );
    if (props.pointInTimeRecovery !== undefined) checkPointInTimeRecovery(props.source.engine);
    const byType = new Map<BackupType, BackupSchedule[]>();
    for (const entry of scheduled) {
      const type = entry.type ?? BackupType.FULL;
      byType.set(type, [...(byType.get(type) ?? []), entry.schedule]);
    }
    this.schedules = [];
    for (const [type, schedules] of byType) {
      const task = new BackupRunnerTask(this, `${TYPE_IDS[type]}BackupTask`, {
        databaseId: props.databaseId,
        source: props.source,
        vault: this.vault,
        image: props.image,
        network: props.network,
        prefix: this.prefix,
        encryption: props.encryption,
        compression: props.compression,
        backupType: type,
        tierDays: chainRetention?.tierDaysSetting,
        cluster: { arn: this.clusterArn },
        cpu: props.cpu,
        memoryLimitMiB: props.memoryLimitMiB,
        cpuArchitecture: props.cpuArchitecture,
        timeout,
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

    const pitr = props.pointInTimeRecovery;
    if (pitr !== undefined) {
      this.binlogShipper = new BinlogShipper(this, 'BinlogShipper', {
        databaseId: props.databaseId,
        source: props.source,
        vault: this.vault,
        image: props.image,
        network: props.network,
        clusterArn: this.clusterArn,
        securityGroupIds: this.task.securityGroupIds,
        prefix: this.prefix,
        encryption: props.encryption,
        compression: props.compression,
        uploadInterval: pitr.uploadInterval,
        cpu: pitr.cpu,
        memoryLimitMiB: pitr.memoryLimitMiB,
        cpuArchitecture: props.cpuArchitecture,
        tags: props.tags,
      });
      expireBinlogArchive(this, scheduled, chainRetention, pitr, this.newVault ?? this.vault, this.prefix);
    }

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
        databaseId: props.databaseId,
        engine: props.source.engine,
        vault: this.vault,
        image: props.image,
        network: props.network,
        clusterArn: this.clusterArn,
        prefix: this.prefix,
        encryption: props.encryption,
        databaseImage: drill.databaseImage,
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

    this.monitoring = new BackupMonitoring(this, 'Monitoring', {
      databaseId: props.databaseId,
      rpo: this.rpo,
      rto: this.drillTask !== undefined ? this.rto : undefined,
      topic: props.alarmTopic,
      topicKey: props.alarmTopicKey,
      alarmEmails: props.alarmEmails,
      deadLetterQueue,
      verifierFunction: { functionName: BackupVerifier.functionNameFor(props.databaseId) },
      tags: props.tags,
    });
    this.alarms = this.monitoring.alarms;
    this.dashboard = this.monitoring.dashboard;
    if (pitr !== undefined) {
      this.logShippingLagAlarm = lagAlarm(this, props.databaseId, this.monitoring.topicArn, pitr, props.tags);
      this.alarms.push(this.logShippingLagAlarm);
    }
    this.verifier = new BackupVerifier(this, 'Verifier', {
      databaseId: props.databaseId,
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

/** Point-in-time recovery with a shipper fits an engine whose record ships a binary log (MySQL/MariaDB). */
function checkPointInTimeRecovery(engine: Engine): void {
  const shipping = ENGINE_CAPABILITIES[engine].logShipping;
  if (shipping === LogShipping.WAL) {
    throw new ConfigError(
      "pointInTimeRecovery is set for a PostgreSQL source, but PostgreSQL's WAL is archived by the server itself, " +
        "not by a task: on a self-managed server set archive_command = 'dbbackup wal-push %p --to " +
        "s3://BUCKET/PREFIX' (see docs/pitr.md) and leave pointInTimeRecovery out.",
    );
  }
  if (shipping !== LogShipping.BINLOG) {
    throw new ConfigError(
      `pointInTimeRecovery is set for a ${ENGINE_CAPABILITIES[engine].label} source, which ships no log ` +
        '(no point-in-time restore); leave pointInTimeRecovery out and rely on the scheduled backups.',
    );
  }
}

/**
 * Expire the binary log archive (`<prefix>/binlog/`) once no kept full backup or the window needs
 * it (lib/core's logArchiveExpiry, as in the AWS CDK flavour): a rule on a vault this app makes,
 * a warning naming the prefix and the days on any other.
 */
function expireBinlogArchive(
  scope: Construct,
  scheduled: readonly ScheduledBackup[],
  retention: Retention | undefined,
  pitr: PointInTimeRecoveryOptions,
  vault: IBackupVault,
  prefix: string,
): void {
  const full = scheduled.filter((s) => (s.type ?? BackupType.FULL) === BackupType.FULL).map((s) => s.schedule.spec);
  const windowDays = pitr.window !== undefined ? pitr.window.toMinutes() / (24 * 60) : 0;
  const expiry = logArchiveExpiry({
    retention: retention ?? Retention.gfs(),
    fullSchedules: full,
    pointInTimeDays: windowDays,
    timeZone: scheduled.find((s) => s.schedule.timeZone !== 'UTC')?.schedule.timeZone,
  });
  // Without a window or a retention of this app's, nothing says how long the logs are needed.
  if (expiry === undefined || (windowDays === 0 && retention === undefined)) return;
  const logPrefix = logArchivePrefix(prefix, LOG_ARCHIVE_FOLDERS.binlog);
  if (vault instanceof BackupVault) {
    vault.addLogArchiveExpiry(logPrefix, expiry.days);
    return;
  }
  Annotations.of(scope).addWarning(
    `the vault's bucket is not this app's, so no lifecycle rule expires the binary log archive: add one expiring ` +
      `${logPrefix} after ${expiry.days} days, or the logs are kept for ever.`,
  );
}

/**
 * The log-shipping-lag alarm, as the AWS CDK flavour's: `LogShippingLagSeconds` (Maximum) above
 * the threshold for five periods of the upload interval in a row (a deploy's restart of the
 * shipper stays quiet), missing data breaching (a shipper that publishes nothing has stopped).
 */
function lagAlarm(
  scope: Construct,
  databaseId: string,
  topicArn: string,
  pitr: PointInTimeRecoveryOptions,
  tags: Record<string, string> | undefined,
): CloudwatchMetricAlarm {
  const interval = (pitr.uploadInterval ?? Duration.seconds(60)).toSeconds();
  const threshold = (pitr.logShippingLagThreshold ?? Duration.minutes(5)).toSeconds();
  if (threshold < 2 * interval) {
    throw new ConfigError(
      `pointInTimeRecovery logShippingLagThreshold is ${threshold} seconds, but the shipper uploads every ` +
        `${interval} seconds (uploadInterval), so the lag alarm would fire in normal work. Set the threshold to ` +
        'at least twice the upload interval (e.g. Duration.minutes(5)) or upload more often.',
    );
  }
  const lagThreshold = Duration.seconds(threshold);
  return new CloudwatchMetricAlarm(scope, 'LogShippingLag', {
    alarmName: boundedName(['dbbackup', databaseId, 'log-shipping-lag'], 255),
    alarmDescription:
      `The binary log shipper of ${databaseId} is more than ${lagThreshold} behind the server, or published no ` +
      'lag: a stopped or crash-looping shipper, a server it cannot reach, or uploads that fail. Point-in-time ' +
      "recovery cannot reach past the last shipped log; the shipper's log says why.",
    namespace: METRIC_NAMESPACE,
    metricName: METRICS.LOG_LAG,
    dimensions: { [METRIC_DIMENSION]: databaseId },
    statistic: 'Maximum',
    period: 60 * Math.max(1, Math.ceil(interval / 60)),
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    threshold,
    comparisonOperator: 'GreaterThanThreshold',
    treatMissingData: 'breaching',
    alarmActions: [topicArn],
    okActions: [topicArn],
    tags,
  });
}

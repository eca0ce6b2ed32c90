import { Annotations, CfnOutput, Duration, Stack, Token } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  AWS_MANAGED_SERVICE,
  BackupMethod,
  BackupType,
  checkChainRetention,
  claimVaultPrefix,
  Compression,
  ConfigError,
  DEFAULT_BACKUP_CRON,
  DEFAULT_DRILL_CRON,
  EncryptionScheme,
  Engine,
  LOG_ARCHIVE_FOLDERS,
  logArchiveExpiry,
  logArchivePrefix,
  METRICS,
  requiredEncryptionFor,
  resolveRpo,
  Retention,
  RUNNER_ENV,
  VERIFIER_ENV,
  type CronSpec,
  type RunbookInput,
  runbookCommands,
} from '../core';
import { LogShipper, type PointInTimeRecovery } from './log-shipper';
import { NativeBackup, type NativeBackupOptions } from './native-backup';
import { RestoreDrillTask } from './drill-task';
import { AlarmTopic, BackupMonitoring } from './monitoring';
import { BackupRunnerTask } from './runner-task';
import { BackupSchedule, TaskSchedule } from './schedule';
import { BackupEncryption, type BackupSource } from './source';
import { BackupVault, type IBackupVault } from './vault';
import { BackupVerifier } from './verifier';
import { RestoreTask, type RestoreTaskOptions } from './restore-task';
import { StackRunbook } from './private/runbook';
import type { BackupFleet } from './fleet';
import { FleetMemberAlarms } from './fleet-member';
import { KMS_UNWRAP_ACTIONS } from './private/iam';
import { acknowledge, acknowledgeInlinePolicies } from './private/nag';
import { allowDatabasePort, taskConnections } from './private/task';
import { allowServicesToUseKey } from './private/keys';
import { backupMetric } from './private/metrics';
import { checkScheduledTypes, ENGINE_CAPABILITIES } from '../core/engines';
import { DEFAULT_COMPRESSION } from '../core/codecs';
import { databaseIdFromName, kebabCase } from '../core/ids';
import { logStreamingFor } from '../core/pitr';

/** One schedule of backups of one type. */
export interface ScheduledBackup {
  /** @default BackupType.FULL */
  readonly type?: BackupType;
  /** When backups of this type run. */
  readonly schedule: BackupSchedule;
}

/** How restore drills run. */
export interface RestoreDrillOptions {
  /**
   * Whether drills run at all. Leave them on: a backup nobody restored is not a backup.
   * @default true
   */
  readonly enabled?: boolean;
  /** @default BackupSchedule.cron({ weekDay: 'SUN', hour: '5' }) - weekly, Sunday 05:00 UTC */
  readonly schedule?: BackupSchedule;
  /** @default - the source's server on its major version (see `RestoreDrillTask`) */
  readonly databaseImage?: ecs.ContainerImage;
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
  /** The database to back up. */
  readonly source: BackupSource;
  /**
   * The VPC the runner runs in; it must reach the database and the AWS APIs (NAT or VPC endpoints).
   * @default - the fleet's VPC (required without `fleet`)
   */
  readonly vpc?: ec2.IVpc;
  /**
   * A fleet to join: the vault, cluster, alarm topic, verifier, schedules' role and dead-letter
   * queue, execution role, log group and dashboard are the fleet's, so this database costs at
   * most 12 resources. Leave out vault, cluster, alarmTopic, alarmEmails, operationsKey and
   * logRetention (they are the fleet's).
   * @default - everything of this database's own
   */
  readonly fleet?: BackupFleet;
  /** @default - the VPC's private subnets with egress */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * The runner's security groups.
   * @default - a new group that allows out HTTPS (AWS APIs) and the database's port only
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * When backups run, one entry per schedule; each backup type gets its own task definition.
   * @default - a full backup every night at 03:00 UTC
   */
  readonly schedules?: ScheduledBackup[];
  /**
   * How long backups are kept, for a vault this construct creates (an existing vault's own
   * lifecycle rules decide there).
   * @default Retention.gfs() - 7 daily, 4 weekly, 12 monthly
   */
  readonly retention?: Retention;
  /** @default BackupEncryption.kms() - age to a per-backup key wrapped by the vault's key */
  readonly encryption?: BackupEncryption;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default - a new `BackupVault` */
  readonly vault?: IBackupVault;
  /** @default - a new ECS cluster with Container Insights, in `vpc` */
  readonly cluster?: ecs.ICluster;
  /**
   * The database's identifier in metrics, alarms and the vault's key prefix; unique per vault.
   * Required in a fleet. Never derived from the construct id, so that renaming or moving the
   * construct never moves the backups (docs/aws-cdk.md says how to move an existing prefix).
   * @default - the source's database name in kebab case (`orders_prod` → `orders-prod`)
   */
  readonly databaseId?: string;
  /** @default - the database id */
  readonly prefix?: string;
  /**
   * Recovery point objective: the most data you accept to lose. The stale alarm fires when the
   * newest verified backup is older.
   * @default - the longest gap between scheduled backups plus the backup timeout
   */
  readonly rpo?: Duration;
  /**
   * Recovery time objective: the longest a restore may take. The drill alarm fires on a slower drill.
   * @default Duration.hours(4)
   */
  readonly rto?: Duration;
  /** @default - weekly drills into a scratch database */
  readonly drill?: RestoreDrillOptions;
  /** The longest a backup may run. @default Duration.hours(4) */
  readonly timeout?: Duration;
  /**
   * When the source is a replica, the most it may lag behind its primary before and after the
   * dump (`--max-replica-lag`): above it the backup fails and commits nothing. A primary ignores it.
   * @default - no lag check
   */
  readonly maxReplicaLag?: Duration;
  /** @default - the bundled runner image, built at deploy time (needs Docker there) */
  readonly image?: ecs.ContainerImage;
  /** @default 1024 */
  readonly cpu?: number;
  /** @default 2048 */
  readonly memoryLimitMiB?: number;
  /** @default - start at the scheduled time */
  readonly flexibleWindow?: Duration;
  /** @default - a new KMS-encrypted topic */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Addresses that get every alarm by email (each confirms its subscription). The same prop
   * as the CDKTF flavours'.
   * @default - no email subscription
   */
  readonly alarmEmails?: string[];
  /**
   * One address that gets every alarm by email.
   * @deprecated use `alarmEmails`
   * @default - no email subscription
   */
  readonly alarmEmail?: string;
  /**
   * The key that encrypts the alarm topic and the log groups. Its key policy must let
   * CloudWatch Logs, CloudWatch alarms and EventBridge use it.
   * @default - a new customer-managed KMS key with rotation
   */
  readonly operationsKey?: kms.IKey;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Point-in-time recovery: a log shipper as a one-task ECS service beside the scheduled
   * backups, with a lag alarm: `dbbackup binlog-stream` for MySQL/MariaDB, `dbbackup wal-receive`
   * for a self-managed PostgreSQL server that allows replication connections. RDS/Aurora
   * PostgreSQL and MongoDB are refused with what to do instead.
   * @default - no point-in-time recovery; restores go to the scheduled backups
   */
  readonly pointInTimeRecovery?: PointInTimeRecovery;
  /**
   * Native backups beside the portable ones, for an RDS or Aurora source: the instance or
   * cluster goes into an AWS Backup plan with daily snapshots and continuous backup (native
   * point-in-time restore, at most 35 days, in this account and region). Refused for a
   * self-managed source.
   * @default - no AWS Backup plan
   */
  readonly nativeBackup?: NativeBackupOptions;
  /**
   * The restore task: `dbbackup restore` on Fargate inside the VPC with the reader's rights
   * only, started on the day of the restore with the commands in the stack outputs.
   * @default - a restore task into the source database outside a fleet; none in a fleet
   */
  readonly restore?: RestoreTaskOptions;
  /**
   * Stack outputs with the exact commands of an on-demand backup and of a restore (the newest,
   * by id, to a moment), and `<stack>.runbook.md` beside the template in the cloud assembly.
   * @default - true outside a fleet; false in a fleet (CloudFormation allows 200 outputs a stack)
   */
  readonly outputs?: boolean;
}

const DEFAULT_SCHEDULE = (): ScheduledBackup => ({
  type: BackupType.FULL,
  schedule: BackupSchedule.cron(DEFAULT_BACKUP_CRON),
});
const TYPE_IDS: Record<BackupType, string> = {
  [BackupType.FULL]: 'Full',
  [BackupType.INCREMENTAL]: 'Incremental',
  [BackupType.DIFFERENTIAL]: 'Differential',
};

/**
 * The whole backup system for one database: scheduled backups on Fargate into an encrypted
 * vault with retention tiers, verification of each committed backup, a freshness dead-man's
 * switch, scheduled restore drills, alarms to an encrypted topic and a dashboard.
 *
 * ```ts
 * const backup = new DatabaseBackup(this, 'Orders', {
 *   source: BackupSource.postgres({
 *     endpoint: 'orders.db.internal',
 *     databaseName: 'orders',
 *     username: 'backup',
 *     secret,
 *   }),
 *   vpc,
 *   retention: Retention.gfs({ daily: 7, weekly: 4, monthly: 12 }),
 *   alarmEmails: ['oncall@example.com'],
 * });
 * database.connections.allowDefaultPortFrom(backup);
 * ```
 */
export class DatabaseBackup extends Construct implements ec2.IConnectable {
  /** The runner's network side: allow it into the database with `db.connections.allowDefaultPortFrom(backup)`. */
  public readonly connections: ec2.Connections;
  public readonly vault: IBackupVault;
  /** The vault's bucket. */
  public readonly bucket: s3.IBucket;
  /** The vault's key. */
  public readonly key: kms.IKey;
  public readonly cluster: ecs.ICluster;
  /** The runner's security group when this construct made it. */
  public readonly securityGroup?: ec2.SecurityGroup;
  /** The backup task of each backup type scheduled. */
  public readonly backupTasks: BackupRunnerTask[];
  /** The task definition of the first scheduled backup type (full by default). */
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  /** The backup schedules, then the drill's. */
  public readonly schedules: TaskSchedule[];
  public readonly verifier: BackupVerifier;
  public readonly verifyFunction: lambda.IFunction;
  public readonly drillTask?: RestoreDrillTask;
  /** The on-demand restore task (reader's rights only), when there is one. */
  public readonly restoreTask?: RestoreTask;
  /** The log shipper's service, when point-in-time recovery is on. */
  public readonly logShipper?: LogShipper;
  /**
   * The binary log shipper's service (MySQL/MariaDB with point-in-time recovery).
   * @deprecated use `logShipper`
   */
  public readonly binlogShipper?: LogShipper;
  /** The log-shipping-lag alarm, when point-in-time recovery is on. */
  public readonly logShippingLagAlarm?: cloudwatch.IAlarm;
  /** The per-database alarms and dashboard (outside a fleet; a fleet member has `fleetAlarms`). */
  public readonly monitoring?: BackupMonitoring;
  /** The fleet this database belongs to. */
  public readonly fleet?: BackupFleet;
  public readonly alarms: cloudwatch.IAlarm[];
  public readonly alarmTopic: sns.ITopic;
  /** This database's dashboard, or the fleet's (with a row for this database). */
  public readonly dashboard: cloudwatch.Dashboard;
  /** The key of the alarm topic and log groups. */
  public readonly operationsKey: kms.IKey;
  public readonly databaseId: string;
  public readonly prefix: string;
  /** Where runs that a schedule could not start end up (the fleet's, in a fleet). */
  public readonly scheduleDeadLetterQueue: sqs.IQueue;
  public readonly rpo: Duration;
  public readonly rto: Duration;
  /** The AWS Backup plan of the RDS instance or Aurora cluster, when `nativeBackup` is set. */
  public readonly nativeBackup?: NativeBackup;
  private readonly encryption: BackupEncryption;
  private readonly tierDays?: string;
  private readonly runSubnets: string[];

  constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const fleet = props.fleet;
    this.fleet = fleet;
    if (fleet !== undefined) refuseFleetOwned(props);
    const vpc = props.vpc ?? fleet?.vpc;
    if (vpc === undefined)
      throw new ConfigError('vpc is missing; give the VPC the runner runs in, or a fleet (whose VPC it takes).');
    this.databaseId = databaseIdOf(this, id, props);
    this.prefix = props.prefix ?? this.databaseId;
    this.encryption = props.encryption ?? BackupEncryption.kms();
    const timeout = props.timeout ?? Duration.hours(4);
    this.rto = props.rto ?? Duration.hours(4);
    const scheduled = props.schedules ?? [DEFAULT_SCHEDULE()];
    validateSchedules(scheduled, timeout);
    // The source's method (logical unless a self-managed source says physical; see BackupSource).
    const method = props.source.method;
    checkScheduledTypes(
      { engine: props.source.engine, managed: props.source.managed, method, service: AWS_MANAGED_SERVICE },
      scheduled.map((s) => s.type ?? BackupType.FULL),
    );
    if (method === BackupMethod.PHYSICAL && props.source.engine === Engine.MYSQL) {
      Annotations.of(this).addWarningV2(
        'dbbackup:physical-needs-datadir',
        "method physical: mariadb-backup (XtraBackup for MySQL) copies the server's data files, so the backup " +
          'task must run where the data directory is readable at the path the server reports (e.g. an ECS task ' +
          'on the database host with the directory mounted); elsewhere each backup fails, saying so.',
      );
    }
    const pitr = props.pointInTimeRecovery;
    // Point-in-time recovery needs a log shipper the engine's record names, over a connection the source allows.
    if (pitr !== undefined) logStreamingFor(props.source.engine, props.source.managed);
    if (props.nativeBackup !== undefined) {
      this.nativeBackup = new NativeBackup(this, 'NativeBackup', {
        ...props.nativeBackup,
        source: props.source,
        databaseId: this.databaseId,
      });
    }

    if (props.vault !== undefined && props.retention !== undefined) {
      throw new ConfigError(
        "retention is set, but so is an existing vault: retention is carried out by the vault's lifecycle rules. " +
          'Pass retention to the BackupVault you created, or leave vault out to get a new one.',
      );
    }
    this.vault = fleet?.vault ?? props.vault ?? new BackupVault(this, 'Vault', { retention: props.retention });
    this.bucket = this.vault.bucket;
    this.key = this.vault.key;
    // Database ids and prefixes are unique within a vault (lib/core/layout, as in CDKTF); the
    // fleet checks first, so that its message names both constructs.
    fleet?.claim({ databaseId: this.databaseId, prefix: this.prefix, path: this.node.path });
    claimVaultPrefix(this.vault, this, this.databaseId, this.prefix);
    // Retention proved by simulation (lib/core/simulate.ts), and the log archive's expiry rule.
    const retention =
      props.vault === undefined
        ? (props.retention ?? Retention.gfs())
        : props.vault instanceof BackupVault
          ? props.vault.retention
          : undefined;
    this.tierDays = retention?.tierDaysSetting;
    keepChainsWhole(this, scheduled, retention, pitr, this.vault, this.prefix, props.source.engine);

    if (fleet !== undefined) {
      this.operationsKey = fleet.operationsKey;
    } else if (props.operationsKey !== undefined) {
      this.operationsKey = props.operationsKey;
    } else {
      const key = new kms.Key(this, 'OperationsKey', {
        enableKeyRotation: true,
        description: `Encrypts the alarm topic and logs of the backups of ${this.databaseId}`,
      });
      allowServicesToUseKey(key);
      this.operationsKey = key;
    }

    this.cluster =
      fleet?.cluster ??
      props.cluster ??
      new ecs.Cluster(this, 'Cluster', { vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    const subnets =
      props.vpcSubnets === undefined && fleet !== undefined
        ? fleet.subnets
        : vpc.selectSubnets(props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS });
    const net = taskConnections(this, {
      vpc,
      securityGroups: props.securityGroups,
      description: `dbbackup runner of ${this.databaseId}: HTTPS out to AWS APIs, the database port out`,
    });
    this.connections = net.connections;
    this.securityGroup = net.securityGroup;
    allowDatabasePort(this.connections, props.source.connectable, props.source.port, {
      database: `dbbackup runner of ${this.databaseId}`,
      anyAddress: `the database of ${this.databaseId}`,
    });

    const emails = [...(props.alarmEmail !== undefined ? [props.alarmEmail] : []), ...(props.alarmEmails ?? [])];
    if (fleet !== undefined) {
      this.alarmTopic = fleet.alarmTopic;
    } else if (props.alarmTopic !== undefined) {
      this.alarmTopic = props.alarmTopic;
    } else {
      this.alarmTopic = new AlarmTopic(this, 'AlarmTopic', {
        encryptionKey: this.operationsKey,
        email: emails[0],
      }).topic;
    }
    // The same check as a new topic's, then the subscription (the first on a new topic is its own).
    emails.forEach((email, i) => {
      if (props.alarmTopic === undefined && i === 0) return;
      new AlarmTopicEmail(this, i === 0 ? 'AlarmEmail' : `AlarmEmail${i + 1}`, this.alarmTopic, email);
    });

    const deadLetterQueue =
      fleet?.deadLetterQueue ??
      new sqs.Queue(this, 'ScheduleDeadLetterQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
    if (fleet === undefined) {
      acknowledge(deadLetterQueue, {
        id: 'AwsSolutions-SQS3',
        reason: 'This queue is itself the dead-letter queue of the backup and drill schedules.',
      });
    }
    this.scheduleDeadLetterQueue = deadLetterQueue;
    // In a fleet: one backup role for every backup type of this database, under the fleet's path.
    const backupRole =
      fleet === undefined ? undefined : fleetTaskRole(this, 'BackupTaskRole', fleet, `backups of ${this.databaseId}`);
    const image = fleet?.image ?? props.image;

    const tasks = new Map<BackupType, BackupRunnerTask>();
    this.schedules = [];
    const perType = new Map<BackupType, number>();
    for (const entry of scheduled) {
      const type = entry.type ?? BackupType.FULL;
      let task = tasks.get(type);
      if (task === undefined) {
        task = new BackupRunnerTask(this, `${TYPE_IDS[type]}BackupTask`, {
          source: props.source,
          vault: this.vault,
          databaseId: this.databaseId,
          prefix: this.prefix,
          backupType: type,
          tierDays: this.tierDays,
          maxReplicaLag: props.maxReplicaLag,
          compression: props.compression,
          encryption: this.encryption,
          image,
          cpu: props.cpu,
          memoryLimitMiB: props.memoryLimitMiB,
          timeout,
          logRetention: props.logRetention,
          logEncryptionKey: this.operationsKey,
          shared:
            fleet === undefined
              ? undefined
              : {
                  taskRole: backupRole!,
                  executionRole: fleet.executionRole,
                  logGroup: fleet.logGroup,
                  family: `${fleet.familyPrefix}-${this.databaseId}-${type}`,
                },
        });
        tasks.set(type, task);
      }
      const n = (perType.get(type) ?? 0) + 1;
      perType.set(type, n);
      this.schedules.push(
        new TaskSchedule(this, `${TYPE_IDS[type]}Schedule${n === 1 ? '' : n}`, {
          schedule: entry.schedule,
          cluster: this.cluster,
          taskDefinition: task.taskDefinition,
          subnets,
          securityGroups: this.connections.securityGroups,
          flexibleWindow: props.flexibleWindow,
          deadLetterQueue,
          role: fleet?.schedulerRole,
          description: `${type} backup of ${this.databaseId}`,
        }),
      );
    }
    this.backupTasks = [...tasks.values()];
    this.taskDefinition = this.backupTasks[0].taskDefinition;

    this.rpo = applyRpoPolicy(this, props.rpo, scheduled, timeout, props.flexibleWindow);

    this.verifier =
      fleet?.verifier ??
      new BackupVerifier(this, 'Verifier', {
        vault: this.vault,
        alarmTopic: this.alarmTopic,
        logRetention: props.logRetention,
        logEncryptionKey: this.operationsKey,
      });
    this.verifier.addDatabase({ databaseId: this.databaseId, prefix: this.prefix });
    // A kms: manifest's MAC is keyed by the backup's data key: the verifier checks it only when
    // it may unwrap that key (otherwise it reports the MAC as 'unchecked').
    if (this.encryption.scheme === EncryptionScheme.KMS) {
      (this.encryption.key ?? this.vault.key).grant(this.verifier.role, 'kms:Decrypt');
    }
    // The dimension for a manifest too damaged to name its own database (a fleet's has none).
    if (fleet === undefined) this.verifier.function.addEnvironment(RUNNER_ENV.DATABASE_ID, this.databaseId);
    // A kms: vault's verifier fails any manifest that is not kms: and authenticated (its own verifier only:
    // a fleet's serves databases that may be encrypted otherwise).
    const required = requiredEncryptionFor(this.encryption.scheme);
    if (fleet === undefined && required !== undefined)
      this.verifier.function.addEnvironment(VERIFIER_ENV.REQUIRE_ENCRYPTION, required);
    this.verifyFunction = this.verifier.function;

    const drill = props.drill ?? {};
    const taskDefinitions: ecs.TaskDefinition[] = this.backupTasks.map((t) => t.taskDefinition);
    if (drill.enabled !== false) {
      const drillTimeout = drill.timeout ?? this.rto.plus(Duration.hours(2));
      if (drill.timeout !== undefined && drill.timeout.toSeconds() <= this.rto.toSeconds()) {
        Annotations.of(this).addWarningV2(
          'db-backup-constructs:drillTimeoutBelowRto',
          `drill.timeout (${drill.timeout.toHumanString()}) is not longer than the RTO ` +
            `(${this.rto.toHumanString()}): a slow drill is stopped before it can report its restore time. Make the ` +
            'timeout longer than the RTO.',
        );
      }
      const drillSchedule = drill.schedule ?? BackupSchedule.cron(DEFAULT_DRILL_CRON);
      if (drillSchedule.minInterval !== undefined && drillSchedule.minInterval.toSeconds() < drillTimeout.toSeconds()) {
        throw new ConfigError(
          `the drill schedule '${drillSchedule.expressionString}' runs every ` +
            `${drillSchedule.minInterval.toHumanString()}, but a drill may run ${drillTimeout.toHumanString()} ` +
            '(drill.timeout, or the RTO plus two hours); drills would overlap. Drill less often or lower ' +
            'drill.timeout.',
        );
      }
      this.drillTask = new RestoreDrillTask(this, 'DrillTask', {
        engine: props.source.engine,
        vault: this.vault,
        databaseId: this.databaseId,
        prefix: this.prefix,
        encryption: this.encryption,
        image,
        databaseImage: drill.databaseImage,
        databaseImageVersion: drill.databaseImageVersion,
        serverFamily: props.source.serverFamily,
        sourceVersion: props.source.engineVersion,
        cpu: drill.cpu,
        memoryLimitMiB: drill.memoryLimitMiB,
        ephemeralStorageGiB: drill.ephemeralStorageGiB,
        timeout: drillTimeout,
        logRetention: props.logRetention,
        logEncryptionKey: this.operationsKey,
        shared:
          fleet === undefined
            ? undefined
            : {
                taskRole: fleetTaskRole(this, 'DrillTaskRole', fleet, `restore drills of ${this.databaseId}`),
                executionRole: fleet.executionRole,
                logGroup: fleet.logGroup,
                family: `${fleet.familyPrefix}-${this.databaseId}-drill`,
              },
      });
      const drillGroup = fleet?.drillSecurityGroup ?? drillSecurityGroup(this, vpc, this.databaseId);
      this.schedules.push(
        new TaskSchedule(this, 'DrillSchedule', {
          schedule: drillSchedule,
          cluster: this.cluster,
          taskDefinition: this.drillTask.taskDefinition,
          subnets,
          securityGroups: [drillGroup],
          deadLetterQueue,
          role: fleet?.schedulerRole,
          description: `restore drill of ${this.databaseId}`,
        }),
      );
      taskDefinitions.push(this.drillTask.taskDefinition);
    }

    if (pitr !== undefined) {
      // Construct ids are API: the MySQL shipper keeps the id it always had.
      const mysql = props.source.engine === Engine.MYSQL;
      this.logShipper = new LogShipper(this, mysql ? 'BinlogShipper' : 'WalShipper', {
        source: props.source,
        vault: this.vault,
        databaseId: this.databaseId,
        prefix: this.prefix,
        cluster: this.cluster,
        vpcSubnets: { subnets: subnets.subnets },
        securityGroups: this.connections.securityGroups,
        compression: props.compression,
        encryption: this.encryption,
        image,
        cpu: pitr.cpu,
        memoryLimitMiB: pitr.memoryLimitMiB,
        uploadInterval: pitr.intervalFor(props.source.engine),
        replicationSlot: mysql ? undefined : pitr.replicationSlot,
        logRetention: props.logRetention,
        logEncryptionKey: this.operationsKey,
      });
      if (mysql) this.binlogShipper = this.logShipper;
      taskDefinitions.push(this.logShipper.taskDefinition);
    }

    this.runSubnets = subnets.subnetIds;
    this.restoreTask = this.makeRestoreTask(props, vpc, image);
    if (props.outputs ?? fleet === undefined) this.addRunbook(props, pitr !== undefined);

    if (fleet !== undefined) {
      const member = new FleetMemberAlarms(this, 'Monitoring', {
        databaseId: this.databaseId,
        alarmTopic: this.alarmTopic,
        rpo: this.rpo,
        rto: this.drillTask !== undefined ? this.rto : undefined,
        freshnessInterval: this.verifier.freshnessInterval,
        logShippingLagThreshold: pitr?.logShippingLagThreshold,
        logShippingInterval: pitr?.intervalFor(props.source.engine),
        logShippingLagMetric: this.logShipper?.lagMetricName,
      });
      this.alarms = member.alarms;
      this.logShippingLagAlarm = member.logShippingLagAlarm;
      this.dashboard = fleet.dashboard;
      fleet.addDashboardRow(
        { databaseId: this.databaseId, rpo: this.rpo, rto: this.drillTask !== undefined ? this.rto : undefined },
        this.alarms,
      );
      return;
    }
    const monitoring = new BackupMonitoring(this, 'Monitoring', {
      scheduleDeadLetterQueue: deadLetterQueue,
      verifier: this.verifier,
      databaseId: this.databaseId,
      alarmTopic: this.alarmTopic,
      rpo: this.rpo,
      rto: this.drillTask !== undefined ? this.rto : undefined,
      freshnessInterval: this.verifier.freshnessInterval,
      taskDefinitions,
      logShippingLagThreshold: pitr?.logShippingLagThreshold,
      logShippingInterval: pitr?.intervalFor(props.source.engine),
      logShippingLagMetric: this.logShipper?.lagMetricName,
    });
    this.monitoring = monitoring;
    this.logShippingLagAlarm = monitoring.logShippingLagAlarm;
    this.alarms = monitoring.alarms;
    this.dashboard = monitoring.dashboard;
  }

  /**
   * Let `grantee` restore this database's backups: read them and unwrap their keys (a restore
   * from a machine of theirs), and start the restore task (`ecs:RunTask` on it, `iam:PassRole`
   * on its task and execution roles, `ecs:DescribeTasks` to watch it).
   */
  public grantRestore(grantee: iam.IGrantable): iam.Grant {
    let grant = this.vault.grantRestore(grantee, this.prefix);
    if (this.encryption.scheme === EncryptionScheme.KMS) {
      grant = grant.combine((this.encryption.key ?? this.vault.key).grant(grantee, ...KMS_UNWRAP_ACTIONS));
    }
    if (this.restoreTask !== undefined) {
      grant = grant.combine(this.restoreTask.taskDefinition.grantRun(grantee)).combine(this.grantWatchTasks(grantee));
    }
    return grant;
  }

  /**
   * Let `grantee` start an on-demand backup: `ecs:RunTask` on each backup task definition,
   * `iam:PassRole` on their task and execution roles, and `ecs:DescribeTasks` to watch the run.
   * It gives no access to the backups themselves.
   */
  public grantRunBackup(grantee: iam.IGrantable): iam.Grant {
    let grant = this.grantWatchTasks(grantee);
    for (const task of this.backupTasks) grant = grant.combine(task.taskDefinition.grantRun(grantee));
    return grant;
  }

  /** `ecs:DescribeTasks` on the tasks of this database's cluster. */
  private grantWatchTasks(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:DescribeTasks'],
      resourceArns: [
        Stack.of(this).formatArn({
          service: 'ecs',
          resource: 'task',
          resourceName: `${this.cluster.clusterName}/*`,
        }),
      ],
    });
  }

  /** The restore task, unless turned off (or in a fleet, unless turned on). */
  private makeRestoreTask(
    props: DatabaseBackupProps,
    vpc: ec2.IVpc,
    image: ecs.ContainerImage | undefined,
  ): RestoreTask | undefined {
    const options = props.restore ?? {};
    const fleet = props.fleet;
    const age = this.encryption.scheme === EncryptionScheme.AGE;
    if (!(options.enabled ?? (fleet === undefined && !age))) return undefined;
    const source = props.source;
    const ownTarget = options.target === undefined;
    return new RestoreTask(this, 'RestoreTask', {
      engine: source.engine,
      vault: this.vault,
      databaseId: this.databaseId,
      prefix: this.prefix,
      vpc,
      target: options.target ?? source.url,
      targetSecret: options.targetSecret ?? source.secret,
      targetPasswordField:
        options.targetPasswordField ?? (options.targetSecret === undefined ? source.passwordField : undefined),
      targetPort: options.targetPort ?? (ownTarget ? source.port : undefined),
      targetConnectable: options.targetConnectable ?? (ownTarget ? source.connectable : undefined),
      securityGroups: options.securityGroups,
      encryption: this.encryption,
      image,
      cpu: options.cpu,
      memoryLimitMiB: options.memoryLimitMiB,
      ephemeralStorageGiB: options.ephemeralStorageGiB,
      timeout: options.timeout ?? this.rto.plus(Duration.hours(2)),
      logRetention: props.logRetention,
      logEncryptionKey: this.operationsKey,
      shared:
        fleet === undefined
          ? undefined
          : {
              taskRole: fleetTaskRole(this, 'RestoreTaskRole', fleet, `restores of ${this.databaseId}`),
              executionRole: fleet.executionRole,
              logGroup: fleet.logGroup,
              family: `${fleet.familyPrefix}-${this.databaseId}-restore`,
            },
    });
  }

  /** What this database's commands and runbook are rendered from (lib/core/runbook). */
  private runbookInput(props: DatabaseBackupProps, pointInTime: boolean): RunbookInput {
    const region = Stack.of(this).region;
    const task = (definition: ecs.TaskDefinition, groups: ec2.ISecurityGroup[], logGroup: string) => ({
      cluster: this.cluster.clusterName,
      taskDefinition: definition.taskDefinitionArn,
      subnets: this.runSubnets,
      securityGroups: groups.map((g) => g.securityGroupId),
      logGroup,
    });
    const backup = this.backupTasks.find((t) => t.backupType === BackupType.FULL) ?? this.backupTasks[0];
    const restore = this.restoreTask;
    return {
      databaseId: this.databaseId,
      engine: props.source.engine,
      storageUrl: this.vault.storageUrl(this.prefix),
      encryption: this.encryption.scheme,
      keyId:
        this.encryption.scheme === EncryptionScheme.KMS ? (this.encryption.key ?? this.vault.key).keyArn : undefined,
      compression: props.compression ?? DEFAULT_COMPRESSION,
      pointInTime,
      region: Token.isUnresolved(region) ? undefined : region,
      backupTask: task(backup.taskDefinition, this.connections.securityGroups, backup.logGroup.logGroupName),
      restoreTask:
        restore === undefined
          ? undefined
          : task(restore.taskDefinition, restore.connections.securityGroups, restore.logGroup.logGroupName),
      restoreTarget: restore?.target,
    };
  }

  /** The stack outputs and this database's part of the stack's runbook, from one function. */
  private addRunbook(props: DatabaseBackupProps, pointInTime: boolean): void {
    const input = this.runbookInput(props, pointInTime);
    const commands = runbookCommands(input);
    const outputs: [string, string | undefined, string][] = [
      ['BackupNowCommand', commands.backupNow, `Start an on-demand ${BackupType.FULL} backup of ${this.databaseId}`],
      ['RestoreLatestCommand', commands.restoreLatest, `Restore the newest backup of ${this.databaseId}`],
      [
        'RestoreByIdCommand',
        commands.restoreById,
        `Restore one backup of ${this.databaseId} (put its id for BACKUP_ID)`,
      ],
      ['RestoreToTimeCommand', commands.restoreToTime, `Restore ${this.databaseId} to a moment (replace the moment)`],
    ];
    for (const [id, value, description] of outputs) {
      if (value !== undefined) new CfnOutput(this, id, { value, description });
    }
    StackRunbook.of(this).add(input);
  }

  /** Seconds since the newest verified backup ended (published by the freshness check). */
  public metricBackupAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return backupMetric(this.databaseId, METRICS.BACKUP_AGE, { statistic: 'Maximum', ...props });
  }

  /** Bytes stored per backup. */
  public metricBackupSize(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return backupMetric(this.databaseId, METRICS.BACKUP_SIZE, { statistic: 'Maximum', ...props });
  }

  /** Seconds per backup. */
  public metricBackupDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return backupMetric(this.databaseId, METRICS.BACKUP_DURATION, { statistic: 'Maximum', ...props });
  }

  /** Failed backups reported by the runner. */
  public metricBackupFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return backupMetric(this.databaseId, METRICS.BACKUP_FAILED, { statistic: 'Sum', ...props });
  }

  /** Backups that failed verification. */
  public metricVerificationFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return backupMetric(this.databaseId, METRICS.VERIFICATION_FAILED, { statistic: 'Sum', ...props });
  }

  /** Seconds since the log shipper last had the archive complete (published while point-in-time recovery is on). */
  public metricLogShippingLag(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const metric = this.logShipper?.lagMetricName ?? METRICS.LOG_LAG;
    return backupMetric(this.databaseId, metric, { statistic: 'Maximum', ...props });
  }

  /** Seconds a restore drill took. */
  public metricRestoreTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return backupMetric(this.databaseId, METRICS.RESTORE_TIME, { statistic: 'Maximum', ...props });
  }
}

/** In a fleet, what the fleet owns is refused here, naming the prop. */
function refuseFleetOwned(props: DatabaseBackupProps): void {
  const owned = {
    vault: props.vault,
    retention: props.retention,
    cluster: props.cluster,
    alarmTopic: props.alarmTopic,
    alarmEmails: props.alarmEmails,
    alarmEmail: props.alarmEmail,
    operationsKey: props.operationsKey,
    logRetention: props.logRetention,
    image: props.image,
  };
  for (const [name, value] of Object.entries(owned)) {
    if (value !== undefined) {
      throw new ConfigError(
        `${name} is set on a DatabaseBackup that joins a fleet, which owns it; set ${name} on the BackupFleet ` +
          'instead, or leave fleet out.',
      );
    }
  }
}

/** A fleet member's task role: assumed by ECS tasks, under the fleet's path (which its schedules may pass). */
function fleetTaskRole(scope: Construct, id: string, fleet: BackupFleet, what: string): iam.Role {
  const role = new iam.Role(scope, id, {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    path: fleet.rolePath,
    description: `The runner's role for the ${what}`,
  });
  // Made here, not under its task definition: the task definition's acknowledgement misses it.
  acknowledgeInlinePolicies(role);
  return role;
}

function drillSecurityGroup(scope: Construct, vpc: ec2.IVpc, databaseId: string): ec2.SecurityGroup {
  const group = new ec2.SecurityGroup(scope, 'DrillSecurityGroup', {
    vpc,
    allowAllOutbound: false,
    description: `dbbackup restore drill of ${databaseId}: HTTPS out to AWS APIs only`,
  });
  group.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs (S3, ECR, KMS, CloudWatch Logs)');
  return group;
}

/**
 * The database id: explicit, or (outside a fleet) derived from the source's identity, its
 * database name (`orders_prod` → `orders-prod`), never from the construct's id or path: renaming
 * or moving the construct must not move the backups to a new prefix and new metrics. A name
 * that is a token, or that makes no valid id, is refused with the value to give.
 */
function databaseIdOf(scope: Construct, id: string, props: DatabaseBackupProps): string {
  if (props.databaseId !== undefined) return props.databaseId;
  const suggestion = kebabCase(id) || 'orders';
  if (props.fleet !== undefined) {
    throw new ConfigError(
      `databaseId is missing on ${scope.node.path}, which joins a fleet; give it explicitly ` +
        `(e.g. databaseId: '${suggestion}'), ` +
        'so that renaming or moving the construct never moves its backups to a new prefix.',
    );
  }
  const name = props.source.databaseName;
  const derived = Token.isUnresolved(name) ? undefined : databaseIdFromName(name);
  if (derived === undefined) {
    throw new ConfigError(
      `databaseId is missing on ${scope.node.path}, and the source's database name ` +
        `${Token.isUnresolved(name) ? 'is a token' : `'${name}' makes no valid id`}; give databaseId explicitly ` +
        `(e.g. databaseId: '${suggestion}'). It names the vault prefix and the metrics, ` +
        'so it must not change with the construct.',
    );
  }
  if (derived !== kebabCase(id)) {
    // Earlier releases took the construct id: a stack deployed then keeps its prefix only if told.
    Annotations.of(scope).addWarningV2(
      'db-backup-constructs:databaseIdFromSource',
      `databaseId is derived from the source's database name ('${name}' → '${derived}'), ` +
        'no longer from the construct id ' +
        `('${id}' → '${kebabCase(id)}'): if this stack was deployed by a release that took the construct id, set ` +
        `databaseId: '${kebabCase(id)}' to keep the backups under their prefix, or move them (docs/aws-cdk.md). ` +
        `Set databaseId: '${derived}' to silence this.`,
    );
  }
  return derived;
}

/** An email subscription on a given topic, with the address checked. */
class AlarmTopicEmail extends Construct {
  constructor(scope: Construct, id: string, topic: sns.ITopic, email: string) {
    super(scope, id);
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
      throw new ConfigError(`alarmEmail '${email}' is not an email address; give one like ops@example.com.`);
    }
    topic.addSubscription(new subscriptions.EmailSubscription(email));
  }
}

/**
 * With point-in-time recovery, expire the log archive (`<prefix>/binlog/` or `<prefix>/wal/`) once no kept
 * full or window needs it; then simulate two years of the schedules, tiers and lifecycle rules
 * (lib/core/simulate.ts) and fail naming the first day and backup that would break. Rate
 * schedules have no calendar to lay out and are not simulated.
 */
function keepChainsWhole(
  scope: Construct,
  scheduled: ScheduledBackup[],
  retention: Retention | undefined,
  pitr: PointInTimeRecovery | undefined,
  vault: IBackupVault,
  prefix: string,
  engine: Engine,
): void {
  const crons = (type: BackupType) =>
    scheduled.filter((s) => (s.type ?? BackupType.FULL) === type).map((s) => s.schedule.cronSpec);
  const full = crons(BackupType.FULL);
  const incremental = crons(BackupType.INCREMENTAL);
  const differential = crons(BackupType.DIFFERENTIAL);
  if ([...full, ...incremental, ...differential].some((c) => c === undefined)) return;
  const timeZone = scheduled.find((s) => s.schedule.timeZone !== undefined)?.schedule.timeZone?.timezoneName;
  const windowDays = pitr?.window !== undefined ? pitr.window.toHours({ integral: false }) / 24 : 0;
  let logArchiveDays: number | undefined;
  if (pitr !== undefined) {
    const expiry = logArchiveExpiry({
      retention: retention ?? Retention.gfs(),
      fullSchedules: full as CronSpec[],
      pointInTimeDays: windowDays,
      timeZone,
    });
    const folder = ENGINE_CAPABILITIES[engine].logStreaming!.folder;
    const logPrefix = logArchivePrefix(prefix, LOG_ARCHIVE_FOLDERS[folder]);
    if (expiry !== undefined && (windowDays > 0 || retention !== undefined)) {
      logArchiveDays = expiry.days;
      if (!vault.addLogArchiveExpiry(logPrefix, expiry.days)) {
        Annotations.of(scope).addWarningV2(
          'db-backup-constructs:logArchiveExpiry',
          "the vault's bucket is not this app's, so no lifecycle rule expires the " +
            `${folder === 'wal' ? 'WAL' : 'binary log'} archive: add one expiring ${logPrefix} after ${expiry.days} ` +
            'days, or the logs are kept for ever.',
        );
      }
    }
  }
  if (retention === undefined) return;
  try {
    const r = checkChainRetention({
      retention,
      fullSchedules: full as CronSpec[],
      incrementalSchedules: incremental as CronSpec[],
      differentialSchedules: differential as CronSpec[],
      pointInTimeDays: windowDays,
      logArchiveDays,
      timeZone,
      what: 'retention',
    });
    for (const w of r.warnings) Annotations.of(scope).addWarningV2('db-backup-constructs:chainTiersRaised', w);
  } catch (e) {
    if (!(e instanceof ConfigError) || pitr?.window === undefined) throw e;
    throw new ConfigError(
      `pointInTimeRecovery window is ${pitr.window.toHumanString()}, which the retention does not keep: ${e.message} ` +
        'Or shorten the window.',
    );
  }
}

function validateSchedules(scheduled: ScheduledBackup[], timeout: Duration): void {
  if (scheduled.length === 0) {
    throw new ConfigError(
      'schedules is empty; give at least one, e.g. [{ type: BackupType.FULL, schedule: BackupSchedule.cron({ hour: ' +
        "'3' }) }].",
    );
  }
  const types = new Set(scheduled.map((s) => s.type ?? BackupType.FULL));
  if (!types.has(BackupType.FULL)) {
    throw new ConfigError(
      `schedules has only ${[...types].join(' and ')} backups, which need a full backup to start from; add { type: ` +
        'BackupType.FULL, schedule: … }.',
    );
  }
  for (const s of scheduled) {
    const min = s.schedule.minInterval;
    if (min !== undefined && min.toSeconds() < timeout.toSeconds()) {
      throw new ConfigError(
        `the ${s.type ?? BackupType.FULL} schedule '${s.schedule.expressionString}' runs every ` +
          `${min.toHumanString()}, but a backup may run for ${timeout.toHumanString()} (timeout), so two backups of ` +
          'the same database could overlap. Schedule it less often, or lower timeout.',
      );
    }
  }
}

/** The RPO policy of every flavour (lib/core/rpo): default gap + timeout + window, refused below the gap. */
function applyRpoPolicy(
  scope: Construct,
  rpo: Duration | undefined,
  scheduled: ScheduledBackup[],
  timeout: Duration,
  flexibleWindow: Duration | undefined,
): Duration {
  const decision = resolveRpo({
    schedules: scheduled.map((s) => ({
      cron: s.schedule.cronSpec,
      timeZone: s.schedule.timeZone?.timezoneName,
      maxIntervalMinutes: s.schedule.maxInterval?.toMinutes(),
    })),
    timeoutMinutes: timeout.toMinutes(),
    flexibleWindowMinutes: flexibleWindow?.toMinutes(),
    rpoMinutes: rpo?.toMinutes({ integral: false }),
  });
  for (const w of decision.warnings) Annotations.of(scope).addWarningV2('db-backup-constructs:rpoTight', w);
  return rpo ?? Duration.minutes(decision.rpoMinutes);
}

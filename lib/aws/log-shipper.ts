import { Duration, Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { Compression, ConfigError, Engine, RUNNER_ENV, RunnerCommand, SECRET_ENV } from '../core';
import { BackupEncryption, type BackupSource } from './source';
import type { IBackupVault } from './vault';
import { checkDatabaseId, encryptValue } from './private/settings';
import {
  addRunnerContainer,
  backupKey,
  checkFargateSize,
  grantWriter,
  RUNNER_SCRIPT,
  runnerEnvironment,
  runnerTaskDefinition,
  taskLogGroup,
} from './private/task';
import { DEFAULT_COMPRESSION } from '../core/codecs';
import { checkPointInTimeSettings, logStreamingFor, PITR_DEFAULTS } from '../core/pitr';

/** Options of point-in-time recovery (`PointInTimeRecovery.enabled`). */
export interface PointInTimeRecoveryOptions {
  /**
   * The log-shipping-lag alarm fires when the newest shipped binary log data is older than
   * this, or when the shipper publishes no lag at all (it stopped, or never started).
   * @default Duration.minutes(5)
   */
  readonly logShippingLagThreshold?: Duration;
  /**
   * MySQL/MariaDB: how often the shipper uploads the open binary log
   * (`DBBACKUP_BINLOG_UPLOAD_INTERVAL`): the most data a lost shipper task can cost beyond the lag.
   * @default Duration.seconds(60)
   */
  readonly uploadInterval?: Duration;
  /**
   * PostgreSQL: how often `wal-receive` uploads the WAL segment it is receiving
   * (`--partial-interval`): the most a crash of the server and the shipper together can cost.
   * Completed segments are uploaded at once.
   * @default Duration.seconds(5)
   */
  readonly partialSegmentInterval?: Duration;
  /**
   * PostgreSQL: the physical replication slot `wal-receive` streams from; it is made when
   * missing. The server keeps the WAL the shipper has not received, also while it is down:
   * set `max_slot_wal_keep_size` on the server to bound that.
   * @default 'dbbackup'
   */
  readonly replicationSlot?: string;
  /**
   * The recovery window you promise: every moment this far back stays restorable. When set,
   * and the vault is one this construct creates, the retention tiers are checked at synth time
   * to keep each full backup as long as the window needs it.
   * @default - no window is checked
   */
  readonly window?: Duration;
  /** @default 256 (0.25 vCPU) */
  readonly cpu?: number;
  /** @default 512 */
  readonly memoryLimitMiB?: number;
}

/**
 * Continuous point-in-time recovery beside the scheduled backups: a log shipper runs as a
 * one-task ECS service with a lag alarm: `dbbackup binlog-stream` for MySQL/MariaDB,
 * `dbbackup wal-receive` (pg_receivewal from a replication slot) for a self-managed PostgreSQL
 * server. RDS/Aurora PostgreSQL (no replication connection) and MongoDB are not supported:
 * `DatabaseBackup` refuses them with the way to go.
 *
 * ```ts
 * pointInTimeRecovery: PointInTimeRecovery.enabled({ logShippingLagThreshold: Duration.minutes(10) })
 * ```
 */
export class PointInTimeRecovery {
  /** Ship the database's logs continuously. */
  public static enabled(options: PointInTimeRecoveryOptions = {}): PointInTimeRecovery {
    return new PointInTimeRecovery(options);
  }

  /** The lag above which the alarm fires. */
  public readonly logShippingLagThreshold: Duration;
  /** How often the open binary log is uploaded (MySQL/MariaDB). */
  public readonly uploadInterval: Duration;
  /** How often the WAL segment being received is uploaded (PostgreSQL). */
  public readonly partialSegmentInterval: Duration;
  /** The replication slot of the WAL shipper (PostgreSQL). */
  public readonly replicationSlot: string;
  /** The recovery window to check retention against, when given. */
  public readonly window?: Duration;
  /** The shipper's Fargate CPU units. */
  public readonly cpu: number;
  /** The shipper's Fargate memory. */
  public readonly memoryLimitMiB: number;

  private constructor(options: PointInTimeRecoveryOptions) {
    this.logShippingLagThreshold =
      options.logShippingLagThreshold ?? Duration.seconds(PITR_DEFAULTS.lagThresholdSeconds);
    this.uploadInterval = options.uploadInterval ?? Duration.seconds(PITR_DEFAULTS.uploadIntervalSeconds);
    this.partialSegmentInterval =
      options.partialSegmentInterval ?? Duration.seconds(PITR_DEFAULTS.partialSegmentIntervalSeconds);
    this.replicationSlot = options.replicationSlot ?? PITR_DEFAULTS.replicationSlot;
    this.window = options.window;
    this.cpu = options.cpu ?? 256;
    this.memoryLimitMiB = options.memoryLimitMiB ?? 512;
    // A token is not known at synth: it is left out of the checks.
    const seconds = (d: Duration) => (Token.isUnresolved(d.toString()) ? undefined : d.toSeconds({ integral: false }));
    checkPointInTimeSettings({
      lagThresholdSeconds: seconds(this.logShippingLagThreshold),
      uploadIntervalSeconds: seconds(this.uploadInterval),
      partialSegmentIntervalSeconds: seconds(this.partialSegmentInterval),
      replicationSlot: Token.isUnresolved(this.replicationSlot) ? undefined : this.replicationSlot,
      windowMinutes:
        this.window === undefined || Token.isUnresolved(this.window.toString())
          ? undefined
          : this.window.toMinutes({ integral: false }),
    });
  }

  /** How often the shipper of `engine` uploads what it has not uploaded yet (and publishes its lag). */
  public intervalFor(engine: Engine): Duration {
    return engine === Engine.POSTGRES ? this.partialSegmentInterval : this.uploadInterval;
  }
}

/** Properties of a `LogShipper`. */
export interface LogShipperProps {
  /**
   * The database whose log is shipped: MySQL/MariaDB (binary logs) or a self-managed PostgreSQL
   * server that allows replication connections (WAL).
   */
  readonly source: BackupSource;
  /** Where the logs go (under `PREFIX/binlog/` or `PREFIX/wal/`). */
  readonly vault: IBackupVault;
  /** The database's identifier in metrics (`DBBACKUP_DATABASE_ID`). */
  readonly databaseId: string;
  /** @default - the database id */
  readonly prefix?: string;
  readonly cluster: ecs.ICluster;
  /** The subnets the shipper runs in. */
  readonly vpcSubnets: ec2.SubnetSelection;
  /** The shipper's security groups (those of the backup runner, so the database lets both in). */
  readonly securityGroups: ec2.ISecurityGroup[];
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default BackupEncryption.kms() - age to a per-archive key wrapped by the vault's key */
  readonly encryption?: BackupEncryption;
  /** @default - the bundled runner image */
  readonly image?: ecs.ContainerImage;
  /** @default 256 */
  readonly cpu?: number;
  /** @default 512 */
  readonly memoryLimitMiB?: number;
  /**
   * How often the open binary log (MySQL/MariaDB) or the WAL segment being received
   * (PostgreSQL) is uploaded.
   * @default - Duration.seconds(60) for MySQL/MariaDB, Duration.seconds(5) for PostgreSQL
   */
  readonly uploadInterval?: Duration;
  /**
   * PostgreSQL: the physical replication slot to stream from (made when missing).
   * @default 'dbbackup'
   */
  readonly replicationSlot?: string;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** @default - CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: kms.IKey;
}

/**
 * A database's log shipper as a one-task Fargate service: `dbbackup binlog-stream`
 * (MySQL/MariaDB) or `dbbackup wal-receive` (PostgreSQL), as the engine's record in
 * lib/core/engines.ts says. Never two shippers at once (a deploy stops the old task, which
 * uploads what it has on SIGTERM, before the new one starts), restarted by ECS when it stops,
 * with the backup task's no-delete grants.
 */
export class LogShipper extends Construct {
  public readonly service: ecs.FargateService;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly logGroup: logs.LogGroup;
  public readonly taskRole: iam.IRole;
  /** The runner settings rendered into the container's environment. */
  public readonly environment: Readonly<Record<string, string>>;

  /** The runner command the service runs. */
  public readonly command: RunnerCommand;
  /** The metric the shipper publishes its lag as. */
  public readonly lagMetricName: string;

  constructor(scope: Construct, id: string, props: LogShipperProps) {
    super(scope, id);
    const streaming = logStreamingFor(props.source.engine, props.source.managed);
    this.command = streaming.command;
    this.lagMetricName = streaming.lagMetric;
    checkDatabaseId(props.databaseId);
    const prefix = props.prefix ?? props.databaseId;
    const cpu = props.cpu ?? 256;
    const memoryLimitMiB = props.memoryLimitMiB ?? 512;
    checkFargateSize(cpu, memoryLimitMiB);
    const encryption = props.encryption ?? BackupEncryption.kms();
    const encryptionKey = backupKey(encryption, props.vault);

    this.taskDefinition = runnerTaskDefinition(this, 'TaskDefinition', {
      databaseId: props.databaseId,
      cpu,
      memoryLimitMiB,
    });
    this.taskRole = this.taskDefinition.taskRole;
    this.logGroup = taskLogGroup(
      this,
      'Logs',
      props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      props.logEncryptionKey,
    );

    const common = {
      source: props.source.url,
      to: props.vault.storageUrl(prefix),
      compression: props.compression ?? DEFAULT_COMPRESSION,
      encrypt: encryptValue(encryption, encryptionKey),
    };
    this.environment =
      this.command === RunnerCommand.WAL_RECEIVE
        ? runnerEnvironment(
            this.command,
            {
              ...common,
              slot: props.replicationSlot,
              'create-slot': true,
              'partial-interval': `${(props.uploadInterval ?? Duration.seconds(5)).toSeconds()}s`,
            },
            props.databaseId,
          )
        : {
            ...runnerEnvironment(this.command, { engine: props.source.engine, ...common }, props.databaseId),
            [RUNNER_ENV.BINLOG_UPLOAD_INTERVAL]: String((props.uploadInterval ?? Duration.seconds(60)).toSeconds()),
          };

    // A long-running process: no `timeout` wrapper as the scheduled tasks have. On SIGTERM the
    // shipper uploads what it has and exits 0 (the container's stop timeout is the most Fargate allows).
    this.container = addRunnerContainer(this.taskDefinition, {
      image: props.image,
      entryPoint: ['node', RUNNER_SCRIPT],
      command: [this.command],
      environment: this.environment,
      secrets: {
        [SECRET_ENV.SOURCE_PASSWORD]: ecs.Secret.fromSecretsManager(props.source.secret, props.source.passwordField),
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: this.command }),
    });

    this.service = new ecs.FargateService(this, 'Resource', {
      cluster: props.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: 1,
      // Never two shippers of one server at once: stop the old task before starting the new one.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { enable: true, rollback: true },
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      assignPublicIp: false,
      enableECSManagedTags: true,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });

    grantWriter(
      this.taskDefinition,
      props.vault,
      prefix,
      encryptionKey,
      `Log files are new objects under ${prefix}/${streaming.folder}/, named at run time; ` +
        "the grant is limited to the database's prefix and holds no delete.",
    );
  }
}

/** Properties of a `BinlogShipper`. */
export interface BinlogShipperProps extends LogShipperProps {}

/**
 * The MySQL/MariaDB binary log shipper: a `LogShipper` that takes MySQL/MariaDB sources only.
 * @deprecated use `LogShipper`, which ships PostgreSQL WAL too
 */
export class BinlogShipper extends LogShipper {
  constructor(scope: Construct, id: string, props: BinlogShipperProps) {
    if (props.source.engine !== Engine.MYSQL) {
      throw new ConfigError(
        `BinlogShipper ships MySQL/MariaDB binary logs; the source's engine is '${props.source.engine}'. Use ` +
          'BackupSource.mysql(…) or an RDS MySQL/MariaDB source, or LogShipper for PostgreSQL.',
      );
    }
    super(scope, id, props);
  }
}

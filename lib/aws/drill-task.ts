import { Duration, Token } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  ConfigError,
  DEFAULT_DRILL_FARGATE,
  EncryptionScheme,
  Engine,
  RunnerCommand,
  drillScratchOf,
  ServerFamily,
  requiredEncryptionFor,
} from '../core';
import { checkDatabaseId } from './private/settings';
import { BackupEncryption } from './source';
import type { IBackupVault } from './vault';
import {
  addRunnerContainer,
  backupKey,
  checkFargateSize,
  checkTimeout,
  DRILL_DATABASE_CONTAINER_NAME,
  grantReader,
  runnerEnvironment,
  runnerTaskDefinition,
  type SharedTaskParts,
  taskLogs,
  timeoutEntryPoint,
} from './private/task';

/** Properties of a `RestoreDrillTask`. */
export interface RestoreDrillTaskProps {
  /** The engine of the backups (picks the scratch database). */
  readonly engine: Engine;
  /** Where the backups are. */
  readonly vault: IBackupVault;
  /** The database's identifier (metrics). */
  readonly databaseId: string;
  /** @default - the database id */
  readonly prefix?: string;
  /**
   * How the backups are encrypted, for the decrypt grant. `age` backups cannot be drilled:
   * their identity stays with you.
   * @default BackupEncryption.kms() - the vault's key
   */
  readonly encryption?: BackupEncryption;
  /** @default - the bundled runner image */
  readonly image?: ecs.ContainerImage;
  /**
   * The scratch database server the backup is restored into, beside the runner in the same task
   * and reachable only on 127.0.0.1. It must accept the runner's login without a password; the
   * runner creates the `drill` database itself (and refuses one that already exists).
   * @default - PostgreSQL 17, MariaDB 11.4 or MongoDB 8.0 from the ECR Public mirror of Docker Official Images
   */
  readonly databaseImage?: ecs.ContainerImage;
  /**
   * The version of the server `databaseImage` runs (`16`, `8.0`, `10.11`; `11.4-MariaDB` or
   * `8.0-mysql` also name the server): a drill on another server or major version than the
   * source's is refused at synth.
   * @default - the default image's version (the source's major, when `sourceVersion` is given)
   */
  readonly databaseImageVersion?: string;
  /**
   * The source's server family: the scratch server is the same (a MySQL source drills on MySQL,
   * MariaDB on MariaDB).
   * @default - the engine's default family, lib/core `defaultServerFamily`: PostgreSQL, MySQL or MongoDB
   * (`DatabaseBackup` passes the source's)
   */
  readonly serverFamily?: ServerFamily;
  /**
   * The source's server version: the default scratch image runs the same major version.
   * @default - not known: the default image of the family (PostgreSQL 17, MySQL 8.4, MariaDB 11.4, MongoDB 8.0)
   */
  readonly sourceVersion?: string;
  /** @default 1024 */
  readonly cpu?: number;
  /** @default 4096 */
  readonly memoryLimitMiB?: number;
  /**
   * Room for the restored database.
   * @default 50
   */
  readonly ephemeralStorageGiB?: number;
  /**
   * The longest a drill may run before it is stopped (and reported as a failed task).
   * @default Duration.hours(6)
   */
  readonly timeout?: Duration;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** @default - CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: kms.IKey;
  /**
   * Roles, log group and family shared with other databases (a `BackupFleet` passes them).
   * @default - a task role, an execution role and a log group of this task's own
   */
  readonly shared?: SharedTaskParts;
}

/**
 * A Fargate task that proves backups restore: `dbbackup drill` restores the newest backup into
 * a throwaway database running beside it in the same task (only on 127.0.0.1), runs its smoke
 * checks against the figures recorded at backup time, and publishes success and the restore
 * time as metrics. Its role can read backups, never write or delete them.
 */
export class RestoreDrillTask extends Construct {
  /** The name of the scratch database's container in a drill task. */
  public static readonly DATABASE_CONTAINER_NAME = DRILL_DATABASE_CONTAINER_NAME;

  public readonly taskDefinition: ecs.FargateTaskDefinition;
  /** The runner's container. */
  public readonly container: ecs.ContainerDefinition;
  /** The scratch database's container. */
  public readonly databaseContainer: ecs.ContainerDefinition;
  public readonly logGroup: logs.ILogGroup;
  public readonly taskRole: iam.IRole;
  /** The longest a drill may run. */
  public readonly timeout: Duration;
  /** The runner settings rendered into the container's environment. */
  public readonly environment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: RestoreDrillTaskProps) {
    super(scope, id);
    checkDatabaseId(props.databaseId);
    const prefix = props.prefix ?? props.databaseId;
    this.timeout = props.timeout ?? Duration.hours(6);
    checkTimeout('drill timeout', this.timeout);
    const cpu = props.cpu ?? DEFAULT_DRILL_FARGATE.cpu;
    const memoryLimitMiB = props.memoryLimitMiB ?? DEFAULT_DRILL_FARGATE.memoryMiB;
    checkFargateSize(cpu, memoryLimitMiB);
    const encryption = props.encryption ?? BackupEncryption.kms();
    if (encryption.scheme === EncryptionScheme.AGE) {
      throw new ConfigError(
        'a restore drill cannot decrypt age-encrypted backups: their identity (private key) stays with you. Use ' +
          'BackupEncryption.kms() for scheduled drills, or turn drills off (drill: { enabled: false }) and ' +
          'restore-test by hand.',
      );
    }
    const scratch = drillScratchOf({
      engine: props.engine,
      family: props.serverFamily,
      sourceVersion:
        props.sourceVersion !== undefined && !Token.isUnresolved(props.sourceVersion) ? props.sourceVersion : undefined,
      customImage: props.databaseImage !== undefined,
      databaseImageVersion: props.databaseImageVersion,
      versionProp: 'drill.databaseImageVersion',
    });

    this.taskDefinition = runnerTaskDefinition(this, 'Resource', {
      databaseId: props.databaseId,
      cpu,
      memoryLimitMiB,
      ephemeralStorageGiB: props.ephemeralStorageGiB ?? DEFAULT_DRILL_FARGATE.ephemeralStorageGiB,
      shared: props.shared,
    });
    this.taskRole = this.taskDefinition.taskRole;
    const taskLog = taskLogs(this, props);
    this.logGroup = taskLog.logGroup;

    this.databaseContainer = this.taskDefinition.addContainer(DRILL_DATABASE_CONTAINER_NAME, {
      image: props.databaseImage ?? ecs.ContainerImage.fromRegistry(scratch.image),
      essential: false,
      environment: scratch.environment,
      command: props.databaseImage === undefined ? [...scratch.command] : undefined,
      healthCheck: {
        command: ['CMD-SHELL', scratch.healthCheck],
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        retries: 10,
        startPeriod: Duration.seconds(60),
      },
      logging: taskLog.logging('scratch-db'),
    });

    this.environment = runnerEnvironment(
      RunnerCommand.DRILL,
      {
        from: props.vault.storageUrl(prefix),
        target: scratch.target,
        'require-encryption': requiredEncryptionFor(encryption.scheme),
        json: true,
      },
      props.databaseId,
    );
    this.container = addRunnerContainer(this.taskDefinition, {
      image: props.image,
      entryPoint: timeoutEntryPoint(this.timeout),
      command: [RunnerCommand.DRILL],
      environment: this.environment,
      logging: taskLog.logging('drill'),
    });
    this.container.addContainerDependencies({
      container: this.databaseContainer,
      condition: ecs.ContainerDependencyCondition.HEALTHY,
    });

    grantReader(
      this.taskDefinition,
      props.vault,
      prefix,
      backupKey(encryption, props.vault),
      `The drill reads whichever backup is newest under ${prefix}/, named at run time; ` +
        'the grant is read-only and limited to that prefix.',
    );
  }
}

import { Duration } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { BackupMethod, BackupType, Compression, RunnerCommand, SECRET_ENV, requiredEncryptionFor } from '../core';
import { BackupEncryption, type BackupSource } from './source';
import type { IBackupVault } from './vault';
import { checkDatabaseId, encryptValue } from './private/settings';
import {
  addRunnerContainer,
  backupKey,
  checkFargateSize,
  checkTimeout,
  grantWriter,
  RUNNER_CONTAINER_NAME,
  runnerEnvironment,
  runnerTaskDefinition,
  type SharedTaskParts,
  taskLogs,
  timeoutEntryPoint,
} from './private/task';
import { DEFAULT_COMPRESSION } from '../core/codecs';
import { formatDurationSeconds } from '../core/duration';

/** Properties of a `BackupRunnerTask`. */
export interface BackupRunnerTaskProps {
  /** The database to back up. */
  readonly source: BackupSource;
  /** Where backups go. */
  readonly vault: IBackupVault;
  /**
   * The database's identifier in metrics, alarms and lock names (`DBBACKUP_DATABASE_ID`):
   * letters, digits, `.`, `_`, `-`; unique within a vault.
   */
  readonly databaseId: string;
  /**
   * The key prefix of this database's backups in the vault.
   * @default - the database id
   */
  readonly prefix?: string;
  /** @default BackupType.FULL */
  readonly backupType?: BackupType;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default BackupEncryption.kms() - age to a per-backup key wrapped by the vault's key */
  readonly encryption?: BackupEncryption;
  /**
   * The runner image. It must run the runner as `node /opt/dbbackup/dbbackup.js` and carry
   * coreutils `timeout`, as the bundled image does (build yours `FROM` it to add tools).
   * @default - the bundled runner image, built from `runner/Dockerfile` at deploy time (needs Docker there)
   */
  readonly image?: ecs.ContainerImage;
  /**
   * The days each tier's lifecycle rule keeps a backup (`Retention.tierDaysSetting`), so an
   * incremental or differential backup raises a base that would expire before it.
   * @default - not given: the runner warns in the manifest when a base is daily
   */
  readonly tierDays?: string;
  /**
   * When the source is a replica, the most it may lag behind its primary before and after the
   * dump (`--max-replica-lag`): above it the backup fails and commits nothing. A primary ignores it.
   * @default - no lag check
   */
  readonly maxReplicaLag?: Duration;
  /** @default 1024 (1 vCPU) */
  readonly cpu?: number;
  /** @default 2048 */
  readonly memoryLimitMiB?: number;
  /**
   * Fargate ephemeral storage; the runner streams, so this is only for the tools' scratch files.
   * @default 20 (the Fargate default)
   */
  readonly ephemeralStorageGiB?: number;
  /**
   * The longest a backup may run; the runner is stopped (exit 124) when it is up.
   * @default Duration.hours(4)
   */
  readonly timeout?: Duration;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The key that encrypts the task's log group (its key policy must let CloudWatch Logs use it).
   * @default - CloudWatch Logs' own encryption
   */
  readonly logEncryptionKey?: kms.IKey;
  /**
   * Roles, log group and family shared with other databases (a `BackupFleet` passes them).
   * @default - a task role, an execution role and a log group of this task's own
   */
  readonly shared?: SharedTaskParts;
}

/**
 * A Fargate task definition that runs `dbbackup backup` for one database: the runner image,
 * its log group, an execution role that reads the database password from Secrets Manager
 * into the container (ECS `secrets`), and a task role that can write backups under the
 * database's prefix and read them back, but never delete them.
 */
export class BackupRunnerTask extends Construct {
  /** The name of the runner's container in every task definition of this library. */
  public static readonly CONTAINER_NAME = RUNNER_CONTAINER_NAME;

  public readonly taskDefinition: ecs.FargateTaskDefinition;
  /** The runner's container. */
  public readonly container: ecs.ContainerDefinition;
  public readonly logGroup: logs.ILogGroup;
  /** The role the runner works with. */
  public readonly taskRole: iam.IRole;
  /** The database's identifier. */
  public readonly databaseId: string;
  /** The database's key prefix in the vault. */
  public readonly prefix: string;
  /** The longest a backup may run. */
  public readonly timeout: Duration;
  /** The backup type this task makes. */
  public readonly backupType: BackupType;
  /** The runner settings rendered into the container's environment. */
  public readonly environment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: BackupRunnerTaskProps) {
    super(scope, id);
    checkDatabaseId(props.databaseId);
    this.databaseId = props.databaseId;
    this.prefix = props.prefix ?? props.databaseId;
    this.timeout = props.timeout ?? Duration.hours(4);
    this.backupType = props.backupType ?? BackupType.FULL;
    checkTimeout('timeout', this.timeout);
    const cpu = props.cpu ?? 1024;
    const memoryLimitMiB = props.memoryLimitMiB ?? 2048;
    checkFargateSize(cpu, memoryLimitMiB);
    const encryption = props.encryption ?? BackupEncryption.kms();
    const encryptionKey = backupKey(encryption, props.vault);

    this.taskDefinition = runnerTaskDefinition(this, 'Resource', {
      databaseId: this.databaseId,
      cpu,
      memoryLimitMiB,
      ephemeralStorageGiB: props.ephemeralStorageGiB,
      shared: props.shared,
    });
    this.taskRole = this.taskDefinition.taskRole;
    const taskLog = taskLogs(this, props);
    this.logGroup = taskLog.logGroup;

    this.environment = runnerEnvironment(
      RunnerCommand.BACKUP,
      {
        engine: props.source.engine,
        source: props.source.url,
        to: props.vault.storageUrl(this.prefix),
        type: this.backupType,
        // Rendered only when physical: a logical source's environment stays as it was.
        method: props.source.method === BackupMethod.PHYSICAL ? props.source.method : undefined,
        'tier-days': this.backupType === BackupType.FULL ? undefined : props.tierDays,
        'max-replica-lag':
          props.maxReplicaLag === undefined ? undefined : formatDurationSeconds(props.maxReplicaLag.toSeconds()),
        compression: props.compression ?? DEFAULT_COMPRESSION,
        encrypt: encryptValue(encryption, encryptionKey),
        'require-encryption': requiredEncryptionFor(encryption.scheme),
        json: true,
      },
      this.databaseId,
    );

    this.container = addRunnerContainer(this.taskDefinition, {
      image: props.image,
      entryPoint: timeoutEntryPoint(this.timeout),
      command: [RunnerCommand.BACKUP],
      environment: this.environment,
      secrets: {
        [SECRET_ENV.SOURCE_PASSWORD]: ecs.Secret.fromSecretsManager(props.source.secret, props.source.passwordField),
      },
      logging: taskLog.logging('backup'),
    });

    grantWriter(
      this.taskDefinition,
      props.vault,
      this.prefix,
      encryptionKey,
      `A backup is a set of new objects in its own folder under ${this.prefix}/, named at run time; ` +
        'the grant is limited to that prefix and holds no delete.',
    );
  }
}

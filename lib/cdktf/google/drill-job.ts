import { Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudRunV2Job } from '@cdktf/provider-google/lib/cloud-run-v2-job';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account';
import { StorageBucketIamMember } from '@cdktf/provider-google/lib/storage-bucket-iam-member';
import {
  BackupRole,
  ConfigError,
  DEFAULT_DRILL_CLOUD_RUN,
  DRILL_DATABASE_CONTAINER_NAME,
  Engine,
  GCS_BUCKET_ROLES,
  RUNNER_ENV,
  RunnerCommand,
  ServerFamily,
  drillScratchOf,
  checkVaultPrefix,
  renderRunnerEnvironment,
  validateDatabaseId,
  vaultStorageUrl,
} from '../../core';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { RunnerImage } from './image';
import { runnerJob } from './private/job';
import { resourceName, serviceAccountId } from './private/names';
import { IScheduledJob } from './schedule';
import { IBackupVault } from './vault';

/** Properties of a `RestoreDrillJob`. */
export interface RestoreDrillJobProps {
  readonly databaseId: string;
  readonly project: string;
  readonly region: string;
  /** The engine of the backups (picks the scratch database). */
  readonly engine: Engine;
  readonly vault: IBackupVault;
  readonly image: RunnerImage;
  /** @default - the databaseId */
  readonly prefix?: string;
  /** How the backups are encrypted; `age` backups cannot be drilled. @default BackupEncryption.none() */
  readonly encryption?: BackupEncryption;
  /** @default - the source's server on its major version (lib/core `drillScratchOf`) */
  readonly databaseImage?: string;
  /**
   * The version of the server `databaseImage` runs (`16`, `8.0`, `11.4-MariaDB`): a drill on
   * another server or major version than the source's is refused at synth.
   * @default - the default image's version
   */
  readonly databaseImageVersion?: string;
  /**
   * The source's server family (a MySQL source drills on MySQL, MariaDB on MariaDB).
   * @default - the engine's default family, lib/core `defaultServerFamily`: PostgreSQL, MySQL or MongoDB
   * (`DatabaseBackup` passes the source's)
   */
  readonly serverFamily?: ServerFamily;
  /**
   * The source's server version: the default scratch image runs the same major version.
   * @default - not known: the family's default image
   */
  readonly sourceVersion?: string;
  /** vCPUs of the runner container (the scratch database gets as many). @default '2' */
  readonly cpu?: string;
  /** Memory of each of the two containers. @default 4096 */
  readonly memoryLimitMiB?: number;
  /** @default Duration.hours(6) */
  readonly timeout?: Duration;
  /** @default true */
  readonly deletionProtection?: boolean;
  /** @default - none */
  readonly labels?: Record<string, string>;
}

/**
 * A Cloud Run job that proves backups restore (the Google form of `RestoreDrillTask`):
 * `dbbackup drill` restores the newest backup into a scratch database that runs as a sidecar of
 * the same execution (only on 127.0.0.1, started first and probed), runs its smoke checks and
 * exits non-zero when the restore or the checks fail. Its service account may only read.
 */
export class RestoreDrillJob extends Construct implements IScheduledJob {
  public readonly job: CloudRunV2Job;
  public readonly serviceAccount: ServiceAccount;
  public readonly jobName: string;
  public readonly databaseId: string;
  public readonly project: string;
  public readonly region: string;
  /** The runner container's plain environment (the contract). */
  public readonly environment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: RestoreDrillJobProps) {
    super(scope, id);
    validateDatabaseId(props.databaseId);
    this.databaseId = props.databaseId;
    this.project = props.project;
    this.region = props.region;
    const prefix = props.prefix ?? props.databaseId;
    checkVaultPrefix(prefix);
    if (props.encryption?.value.startsWith('age:')) {
      throw new ConfigError(
        'a restore drill cannot decrypt age-encrypted backups: their identity (private key) ' +
          'stays with you. Turn drills off (drill: { enabled: false }) and restore-test by hand, ' +
          'or use BackupEncryption.none() (the bucket is CMEK-encrypted).',
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
    this.jobName = resourceName(props.databaseId, 'drill');
    this.environment = {
      ...renderRunnerEnvironment(RunnerCommand.DRILL, {
        from: vaultStorageUrl('gs', props.vault.bucketName, prefix),
        target: scratch.target,
        json: true,
      }),
      [RUNNER_ENV.DATABASE_ID]: props.databaseId,
      [RUNNER_ENV.LOG_FORMAT]: 'json',
    };
    this.serviceAccount = new ServiceAccount(this, 'ServiceAccount', {
      accountId: serviceAccountId(props.databaseId, 'drill'),
      displayName: `dbbackup restore drill of ${props.databaseId}`,
      description: 'Reads backups to restore them into a scratch database',
      project: props.project,
    });
    const grants = GCS_BUCKET_ROLES[BackupRole.DRILL].map(
      (role, i) =>
        new StorageBucketIamMember(this, i === 0 ? 'ReadsObjects' : `Reads${i + 1}`, {
          bucket: props.vault.bucketName,
          role,
          member: this.serviceAccount.member,
        }),
    );
    const cpu = props.cpu ?? String(DEFAULT_DRILL_CLOUD_RUN.cpu);
    const memory = props.memoryLimitMiB ?? DEFAULT_DRILL_CLOUD_RUN.memoryMiB;
    this.job = runnerJob(this, 'Resource', {
      name: this.jobName,
      project: props.project,
      region: props.region,
      image: props.image.imageUri,
      args: [RunnerCommand.DRILL],
      environment: this.environment,
      serviceAccountEmail: this.serviceAccount.email,
      cpu,
      memoryLimitMiB: memory,
      timeout: props.timeout ?? Duration.hours(6),
      maxRetries: 0,
      deletionProtection: props.deletionProtection ?? true,
      labels: props.labels,
      dependsOn: grants,
      sidecar: {
        name: DRILL_DATABASE_CONTAINER_NAME,
        image: props.databaseImage ?? scratch.image,
        args: props.databaseImage === undefined ? scratch.command : undefined,
        environment: scratch.environment,
        port: scratch.port,
        cpu,
        memoryLimitMiB: memory,
      },
    });
  }
}

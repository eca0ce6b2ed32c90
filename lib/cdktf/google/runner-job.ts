import { ITerraformDependable, Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudRunV2Job } from '@cdktf/provider-google/lib/cloud-run-v2-job';
import { ProjectIamMember } from '@cdktf/provider-google/lib/project-iam-member';
import { SecretManagerSecretIamMember } from '@cdktf/provider-google/lib/secret-manager-secret-iam-member';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account';
import { StorageBucketIamMember } from '@cdktf/provider-google/lib/storage-bucket-iam-member';
import {
  BackupMethod,
  BackupRole,
  BackupType,
  Compression,
  ConfigError,
  DEFAULT_BACKUP_CLOUD_RUN,
  DEFAULT_BACKUP_TIMEOUT_MINUTES,
  GCS_BUCKET_ROLES,
  RUNNER_ENV,
  Retention,
  RunnerCommand,
  SECRET_ENV,
  checkVaultPrefix,
  parseStorageUrl,
  renderRunnerEnvironment,
  validateDatabaseId,
  vaultStorageUrl,
} from '../../core';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { RunnerImage } from './image';
import { VpcEgress } from './network';
import { runnerJob } from './private/job';
import { resourceName, serviceAccountId } from './private/names';
import { BackupSource } from './source';
import { IBackupVault } from './vault';
import { DEFAULT_COMPRESSION } from '../../core/codecs';
import { formatDurationSeconds } from '../../core/duration';

/** The roles the runner holds on the bucket: create and read objects, never delete or overwrite (lib/core). */
export const RUNNER_BUCKET_ROLES = GCS_BUCKET_ROLES[BackupRole.WRITER];

/** Properties of a `BackupRunnerJob`. */
export interface BackupRunnerJobProps {
  /** The database's identifier: the metric dimension and part of resource names. */
  readonly databaseId: string;
  readonly project: string;
  /** The Cloud Run region, e.g. `europe-west1`. */
  readonly region: string;
  readonly source: BackupSource;
  readonly vault: IBackupVault;
  readonly image: RunnerImage;
  /**
   * How the job reaches a private database.
   * @default - no VPC access (public IPs only, or Cloud SQL through `cloudSqlInstances`)
   */
  readonly vpcEgress?: VpcEgress;
  /**
   * Cloud SQL instances (`PROJECT:REGION:INSTANCE`) mounted as Unix sockets under `/cloudsql`
   * (the job's service account is granted `roles/cloudsql.client` on the project).
   * @default - none
   */
  readonly cloudSqlInstances?: string[];
  /**
   * The object-name prefix of this database's backups (`--to gs://bucket/PREFIX`).
   * @default - the databaseId
   */
  readonly prefix?: string;
  /**
   * Client-side encryption (the bucket is CMEK-encrypted at rest either way).
   * @default BackupEncryption.none()
   */
  readonly encryption?: BackupEncryption;
  /**
   * How long this database's backups are kept; the vault gets lifecycle rules for `<prefix>/<tier>/`.
   * @default - the vault's retention
   */
  readonly retention?: Retention;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default BackupType.FULL */
  readonly backupType?: BackupType;
  /** @default '1' */
  readonly cpu?: string;
  /** @default 2048 */
  readonly memoryLimitMiB?: number;
  /** @default Duration.hours(4) */
  readonly timeout?: Duration;
  /**
   * When the source is a replica, the most it may lag behind its primary before and after the
   * dump (`--max-replica-lag`): above it the backup fails and commits nothing. A primary ignores it.
   * @default - no lag check
   */
  readonly maxReplicaLag?: Duration;
  /**
   * How often a failed task is retried within one execution.
   * @default 1
   */
  readonly maxRetries?: number;
  /**
   * Block `terraform destroy` of the job.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /** @default - none */
  readonly labels?: Record<string, string>;
}

/**
 * The runner as a Cloud Run job: its environment is rendered from the runner contract
 * (`renderRunnerEnvironment`), its password comes from Secret Manager, and it runs as a
 * dedicated service account that may create and read objects in the bucket, nothing else there.
 */
export class BackupRunnerJob extends Construct {
  public readonly job: CloudRunV2Job;
  public readonly serviceAccount: ServiceAccount;
  public readonly jobName: string;
  public readonly project: string;
  public readonly region: string;
  public readonly prefix: string;
  public readonly storageUrl: string;
  public readonly databaseId: string;
  /** The container's plain environment (the contract). */
  public readonly environment: Record<string, string>;
  /** The container's arguments. */
  public readonly args: string[];
  /** The backup type this job makes. */
  public readonly backupType: BackupType;

  constructor(scope: Construct, id: string, props: BackupRunnerJobProps) {
    super(scope, id);
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    this.databaseId = props.databaseId;
    this.project = props.project;
    this.region = props.region;
    this.prefix = props.prefix ?? props.databaseId;
    if (!Token.isUnresolved(this.prefix)) checkVaultPrefix(this.prefix);
    this.backupType = props.backupType ?? BackupType.FULL;
    const kind = this.backupType === BackupType.FULL ? '' : this.backupType;
    const encryption = props.encryption ?? BackupEncryption.none();
    if (encryption.isKms) {
      throw new ConfigError(
        `encryption '${encryption.value}' uses AWS KMS, which a Cloud Run job has no identity for; use ` +
          `BackupEncryption.age(recipient) or BackupEncryption.none() (the bucket is CMEK-encrypted).`,
      );
    }
    this.storageUrl = vaultStorageUrl('gs', props.vault.bucketName, this.prefix);
    if (!Token.isUnresolved(this.storageUrl)) parseStorageUrl(this.storageUrl, 'vault bucket');
    this.jobName = resourceName(props.databaseId, kind === '' ? 'backup' : kind);

    this.environment = {
      ...renderRunnerEnvironment(RunnerCommand.BACKUP, {
        engine: props.source.engine,
        source: props.source.url,
        to: this.storageUrl,
        type: this.backupType,
        // Rendered only when physical: a logical source's environment stays as it was.
        method: props.source.method === BackupMethod.PHYSICAL ? props.source.method : undefined,
        compression: props.compression ?? DEFAULT_COMPRESSION,
        encrypt: encryption.value,
        'max-replica-lag':
          props.maxReplicaLag === undefined ? undefined : formatDurationSeconds(props.maxReplicaLag.toSeconds()),
        json: true,
      }),
      [RUNNER_ENV.DATABASE_ID]: props.databaseId,
      [RUNNER_ENV.LOG_FORMAT]: 'json',
    };
    this.args = [RunnerCommand.BACKUP];

    this.serviceAccount = new ServiceAccount(this, 'ServiceAccount', {
      accountId: serviceAccountId(props.databaseId, kind === '' ? 'runner' : kind.slice(0, 4)),
      displayName: `dbbackup runner of ${props.databaseId}`,
      description: 'Writes and reads backups; cannot delete or overwrite them',
      project: props.project,
    });
    RUNNER_BUCKET_ROLES.forEach((role) => {
      new StorageBucketIamMember(this, role === 'roles/storage.objectCreator' ? 'CreatesObjects' : 'ReadsObjects', {
        bucket: props.vault.bucketName,
        role,
        member: this.serviceAccount.member,
      });
    });
    const secretAccess = new SecretManagerSecretIamMember(this, 'ReadsPassword', {
      secretId: props.source.options.passwordSecret.id,
      role: 'roles/secretmanager.secretAccessor',
      member: this.serviceAccount.member,
    });
    const dependsOn: ITerraformDependable[] = [secretAccess];
    if ((props.cloudSqlInstances ?? []).length > 0) {
      dependsOn.push(
        new ProjectIamMember(this, 'ConnectsToCloudSql', {
          project: props.project,
          role: 'roles/cloudsql.client',
          member: this.serviceAccount.member,
        }),
      );
    }

    this.job = runnerJob(this, 'Resource', {
      name: this.jobName,
      project: props.project,
      region: props.region,
      image: props.image.imageUri,
      args: this.args,
      environment: this.environment,
      secretEnvironment: {
        [SECRET_ENV.SOURCE_PASSWORD]: {
          secret: props.source.options.passwordSecret.id,
          version: props.source.options.passwordSecretVersion ?? 'latest',
        },
      },
      serviceAccountEmail: this.serviceAccount.email,
      vpcEgress: props.vpcEgress,
      cloudSqlInstances: props.cloudSqlInstances,
      cpu: props.cpu ?? String(DEFAULT_BACKUP_CLOUD_RUN.cpu),
      memoryLimitMiB: props.memoryLimitMiB ?? DEFAULT_BACKUP_CLOUD_RUN.memoryMiB,
      timeout: props.timeout ?? Duration.minutes(DEFAULT_BACKUP_TIMEOUT_MINUTES),
      maxRetries: props.maxRetries ?? 1,
      deletionProtection: props.deletionProtection ?? true,
      labels: props.labels,
      dependsOn,
    });
    props.vault.addBackupPrefix(this.prefix, props.retention);
  }
}

/** @deprecated renamed `BackupRunnerJob` (the AWS flavours' `BackupRunnerTask`). */
export class RunnerJob extends BackupRunnerJob {}
/** @deprecated renamed `BackupRunnerJobProps`. */
export interface RunnerJobProps extends BackupRunnerJobProps {}

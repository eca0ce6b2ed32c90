import { Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { DataAwsVpc } from '@cdktf/provider-aws/lib/data-aws-vpc';
import { EcsCluster } from '@cdktf/provider-aws/lib/ecs-cluster';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import {
  BackupRole,
  BackupMethod,
  BackupType,
  Compression,
  ConfigError,
  DEFAULT_BACKUP_FARGATE,
  DEFAULT_BACKUP_TIMEOUT_MINUTES,
  DEFAULT_LOG_RETENTION_DAYS,
  KMS_RANDOM_ACTIONS,
  KMS_WRAP_ACTIONS,
  RUNNER_CONTAINER,
  RUNNER_ENV,
  RunnerCommand,
  SECRET_ENV,
  checkVaultPrefix,
  parseStorageUrl,
  renderRunnerEnvironment,
  timeoutEntryPoint,
  validateDatabaseId,
  validateFargateSize,
  vaultStorageUrl,
  EncryptionScheme,
  requiredEncryptionFor,
} from '../../core';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { boundedName } from '../common/names';
import { RunnerImage } from './image';
import { awsContext } from './private/context';
import { checkTaskTimeout, executionStatements } from './private/task';
import { Statement, vaultStatements } from './private/policy';
import { LOG_RETENTION_DAYS, serviceRole } from './private/role';
import { IClusterRef } from './refs';
import { BackupSource } from './source';
import { IBackupVault } from './vault';
import { DEFAULT_COMPRESSION } from '../../core/codecs';
import { formatDurationSeconds } from '../../core/duration';

/** Where the runner's task runs. */
export interface RunnerNetwork {
  readonly vpcId: string;
  /** Private subnets with a route to S3, ECR, Secrets Manager, KMS and CloudWatch (NAT or VPC endpoints). */
  readonly subnetIds: string[];
  /**
   * Security groups of the task.
   * @default - a new group allowing HTTPS anywhere and the database port inside the VPC
   */
  readonly securityGroupIds?: string[];
  /**
   * Give the task a public IP (only for public subnets without NAT).
   * @default false
   */
  readonly assignPublicIp?: boolean;
}

/** The processor architecture of the runner image. */
export enum CpuArchitecture {
  X86_64 = 'X86_64',
  ARM64 = 'ARM64',
}

/** Properties of a `BackupRunnerTask`. */
export interface BackupRunnerTaskProps {
  /** The database's identifier: the metric dimension and part of resource names. */
  readonly databaseId: string;
  readonly source: BackupSource;
  readonly vault: IBackupVault;
  readonly image: RunnerImage;
  readonly network: RunnerNetwork;
  /**
   * The key prefix of this database's backups in the vault (`--to s3://bucket/PREFIX`).
   * @default - the databaseId
   */
  readonly prefix?: string;
  /**
   * Client-side encryption of the artifacts.
   * @default BackupEncryption.kms(vault.keyArn)
   */
  readonly encryption?: BackupEncryption;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default BackupType.FULL */
  readonly backupType?: BackupType;
  /**
   * The ECS cluster the task runs in.
   * @default - a new cluster with Container Insights
   */
  readonly cluster?: IClusterRef;
  /**
   * Fargate CPU units (256, 512, 1024, 2048, 4096, 8192 or 16384).
   * @default 1024
   */
  readonly cpu?: number;
  /** @default 2048 */
  readonly memoryLimitMiB?: number;
  /** @default CpuArchitecture.X86_64 */
  readonly cpuArchitecture?: CpuArchitecture;
  /**
   * The longest a backup may run; the runner is stopped (exit 124) when it is up. The image
   * must carry coreutils `timeout`, as the bundled one does.
   * @default Duration.hours(4)
   */
  readonly timeout?: Duration;
  /**
   * How long the runner's logs are kept (a CloudWatch Logs retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, …
   * days).
   * @default Duration.days(365)
   */
  readonly logRetention?: Duration;
  /**
   * When the source is a replica, the most it may lag behind its primary before and after the
   * dump (`--max-replica-lag`): above it the backup fails and commits nothing. A primary ignores it.
   * @default - no lag check
   */
  readonly maxReplicaLag?: Duration;
  /**
   * The days each tier's lifecycle rule keeps a backup (`Retention.tierDaysSetting`), rendered
   * as `--tier-days` on incremental and differential tasks so the runner raises a base that
   * would expire before them (as in the AWS CDK flavour).
   * @default - not given: the runner warns in the manifest when a base is daily
   */
  readonly tierDays?: string;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/**
 * The runner as an ECS Fargate task definition: its environment is rendered from the runner
 * contract (`renderRunnerEnvironment`), its password comes from Secrets Manager, its task role
 * can write and read backups under its prefix but never delete, its execution role can pull
 * the image, write logs and read the one secret.
 */
export class BackupRunnerTask extends Construct {
  public static readonly CONTAINER_NAME = RUNNER_CONTAINER;

  public readonly taskDefinition: EcsTaskDefinition;
  public readonly taskRole: IamRole;
  public readonly executionRole: IamRole;
  public readonly logGroup: CloudwatchLogGroup;
  public readonly clusterArn: string;
  public readonly subnetIds: string[];
  public readonly securityGroupIds: string[];
  public readonly assignPublicIp: boolean;
  /** The storage URL backups go to. */
  public readonly storageUrl: string;
  /** The key prefix backups go under. */
  public readonly prefix: string;
  /** The container's plain environment (the contract), for tests and documentation. */
  public readonly environment: Record<string, string>;
  /** The container's command. */
  public readonly command: string[];
  public readonly databaseId: string;
  /** The backup type this task makes. */
  public readonly backupType: BackupType;
  /** The longest a backup may run. */
  public readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: BackupRunnerTaskProps) {
    super(scope, id);
    const ctx = awsContext(this);
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    this.databaseId = props.databaseId;
    this.prefix = props.prefix ?? props.databaseId;
    if (!Token.isUnresolved(this.prefix)) checkVaultPrefix(this.prefix);
    this.backupType = props.backupType ?? BackupType.FULL;
    this.timeout = props.timeout ?? Duration.minutes(DEFAULT_BACKUP_TIMEOUT_MINUTES);
    checkTaskTimeout('timeout', this.timeout);
    const cpu = props.cpu ?? DEFAULT_BACKUP_FARGATE.cpu;
    const memory = props.memoryLimitMiB ?? DEFAULT_BACKUP_FARGATE.memoryMiB;
    validateFargateSize(cpu, memory);
    const retentionDays = (props.logRetention ?? Duration.days(DEFAULT_LOG_RETENTION_DAYS)).toDays();
    if (!(LOG_RETENTION_DAYS as readonly number[]).includes(retentionDays)) {
      throw new ConfigError(
        `logRetention is ${retentionDays} days; CloudWatch Logs keeps logs ` +
          `for one of ${LOG_RETENTION_DAYS.join(', ')} days.`,
      );
    }

    const kind = this.backupType === BackupType.FULL ? '' : this.backupType;
    const name = (suffix: string, max = 64) => boundedName(['dbbackup', props.databaseId, kind, suffix], max);
    this.storageUrl = vaultStorageUrl('s3', props.vault.bucketName, this.prefix);
    if (!Token.isUnresolved(this.storageUrl)) parseStorageUrl(this.storageUrl, 'vault bucket');
    const encryption = props.encryption ?? BackupEncryption.kms(props.vault.keyArn);
    if (encryption.isKms && !Token.isUnresolved(encryption.key!) && !encryption.key!.startsWith('arn:')) {
      throw new ConfigError(
        `encryption key '${encryption.key}' is not a key ARN; the task role is granted ` +
          `kms:Encrypt on the key, which takes its ARN. Use BackupEncryption.kms(key.arn).`,
      );
    }

    this.environment = {
      ...renderRunnerEnvironment(RunnerCommand.BACKUP, {
        engine: props.source.engine,
        source: props.source.url,
        to: this.storageUrl,
        type: this.backupType,
        // Rendered only when physical: a logical source's environment stays as it was.
        method: props.source.method === BackupMethod.PHYSICAL ? props.source.method : undefined,
        'tier-days': this.backupType === BackupType.FULL ? undefined : props.tierDays,
        compression: props.compression ?? DEFAULT_COMPRESSION,
        encrypt: encryption.value,
        'max-replica-lag':
          props.maxReplicaLag === undefined ? undefined : formatDurationSeconds(props.maxReplicaLag.toSeconds()),
        'require-encryption': requiredEncryptionFor(encryption.value.split(':')[0] as EncryptionScheme),
        json: true,
      }),
      [RUNNER_ENV.DATABASE_ID]: props.databaseId,
      [RUNNER_ENV.LOG_FORMAT]: 'json',
    };
    this.command = [RunnerCommand.BACKUP];

    this.logGroup = new CloudwatchLogGroup(this, 'Logs', {
      name: `/dbbackup/${props.databaseId}/runner`,
      retentionInDays: retentionDays,
      tags: props.tags,
    });

    this.executionRole = serviceRole(this, 'ExecutionRole', {
      name: name('task-execution'),
      description: `Starts the dbbackup runner task of ${props.databaseId}`,
      service: 'ecs-tasks.amazonaws.com',
      sourceAccount: ctx.accountId,
      tags: props.tags,
      statements: executionStatements({
        imageRepositoryArn: props.image.repositoryArn,
        logGroupArn: this.logGroup.arn,
        passwordSecret: props.source.options.passwordSecret,
        passwordSecretKey: props.source.options.passwordSecretKey,
        region: ctx.region,
      }),
    }).role;

    // The task role: what the runner itself may do (the writer's lists, lib/core/permissions). No delete, anywhere.
    const taskStatements: Statement[] = vaultStatements(BackupRole.WRITER, props.vault, this.prefix);
    if (encryption.isKms) {
      taskStatements.push(
        { Sid: 'WrapBackupKeys', Effect: 'Allow', Action: [...KMS_WRAP_ACTIONS], Resource: encryption.key! },
        // GenerateRandom acts on no key, so it cannot be scoped to one.
        { Sid: 'MakeBackupKeys', Effect: 'Allow', Action: [...KMS_RANDOM_ACTIONS], Resource: '*' },
      );
    }
    this.taskRole = serviceRole(this, 'TaskRole', {
      name: name('runner'),
      description: `The dbbackup runner of ${props.databaseId}: writes and reads backups, never deletes`,
      service: 'ecs-tasks.amazonaws.com',
      sourceAccount: ctx.accountId,
      tags: props.tags,
      statements: taskStatements,
    }).role;

    const environment = Object.entries(this.environment)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([n, value]) => ({ name: n, value }));
    const containerDefinitions = [
      {
        name: RUNNER_CONTAINER,
        image: props.image.imageUri,
        essential: true,
        entryPoint: timeoutEntryPoint(this.timeout.toSeconds()),
        command: this.command,
        environment,
        secrets: [{ name: SECRET_ENV.SOURCE_PASSWORD, valueFrom: props.source.passwordValueFrom }],
        readonlyRootFilesystem: true,
        mountPoints: [{ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false }],
        linuxParameters: { initProcessEnabled: true },
        stopTimeout: 120,
        logConfiguration: {
          logDriver: 'awslogs',
          options: {
            'awslogs-group': this.logGroup.name,
            'awslogs-region': ctx.region,
            'awslogs-stream-prefix': 'backup',
          },
        },
      },
    ];
    this.taskDefinition = new EcsTaskDefinition(this, 'Resource', {
      family: name('runner', 255),
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: String(cpu),
      memory: String(memory),
      runtimePlatform: {
        operatingSystemFamily: 'LINUX',
        cpuArchitecture: props.cpuArchitecture ?? CpuArchitecture.X86_64,
      },
      executionRoleArn: this.executionRole.arn,
      taskRoleArn: this.taskRole.arn,
      containerDefinitions: JSON.stringify(containerDefinitions),
      volume: [{ name: 'tmp' }],
      tags: props.tags,
    });

    this.clusterArn =
      props.cluster?.arn ??
      new EcsCluster(this, 'Cluster', {
        name: name('cluster', 255),
        setting: [{ name: 'containerInsights', value: 'enabled' }],
        tags: props.tags,
      }).arn;

    this.subnetIds = props.network.subnetIds;
    this.assignPublicIp = props.network.assignPublicIp ?? false;
    if (props.network.securityGroupIds !== undefined) {
      this.securityGroupIds = props.network.securityGroupIds;
    } else {
      const vpc = new DataAwsVpc(this, 'Vpc', { id: props.network.vpcId });
      const sg = new SecurityGroup(this, 'SecurityGroup', {
        name: name('runner', 255),
        description: `dbbackup runner of ${props.databaseId}: egress to AWS APIs (HTTPS) and to the database`,
        vpcId: props.network.vpcId,
        tags: props.tags,
      });
      new VpcSecurityGroupEgressRule(this, 'EgressHttps', {
        securityGroupId: sg.id,
        description: 'AWS APIs (S3, KMS, ECR, Secrets Manager, CloudWatch)',
        ipProtocol: 'tcp',
        fromPort: 443,
        toPort: 443,
        cidrIpv4: '0.0.0.0/0',
      });
      new VpcSecurityGroupEgressRule(this, 'EgressDatabase', {
        securityGroupId: sg.id,
        description: `the ${props.source.engine} database`,
        ipProtocol: 'tcp',
        fromPort: props.source.port,
        toPort: props.source.port,
        cidrIpv4: vpc.cidrBlock,
      });
      this.securityGroupIds = [sg.id];
    }
  }
}

/** @deprecated renamed `BackupRunnerTask`, the AWS CDK flavour's name. */
export class RunnerTask extends BackupRunnerTask {}
/** @deprecated renamed `BackupRunnerTaskProps`. */
export interface RunnerTaskProps extends BackupRunnerTaskProps {}

import { Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { EcsService } from '@cdktf/provider-aws/lib/ecs-service';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import {
  BackupRole,
  Compression,
  ConfigError,
  DEFAULT_LOG_RETENTION_DAYS,
  KMS_RANDOM_ACTIONS,
  KMS_WRAP_ACTIONS,
  RUNNER_CONTAINER,
  RUNNER_ENV,
  RUNNER_SCRIPT,
  RunnerCommand,
  SECRET_ENV,
  renderRunnerEnvironment,
  validateDatabaseId,
  validateFargateSize,
  vaultStorageUrl,
} from '../../core';
import { DEFAULT_COMPRESSION } from '../../core/codecs';
import { ENGINE_CAPABILITIES, LogShipping } from '../../core/engines';
import { Duration } from '../common/duration';
import { BackupEncryption } from '../common/encryption';
import { boundedName } from '../common/names';
import { RunnerImage } from './image';
import { awsContext } from './private/context';
import { Statement, vaultStatements } from './private/policy';
import { LOG_RETENTION_DAYS, serviceRole } from './private/role';
import { CpuArchitecture, RunnerNetwork } from './runner-task';
import { BackupSource } from './source';
import { IBackupVault } from './vault';

/** Point-in-time recovery of a MySQL/MariaDB source (the same options as the AWS CDK flavour's). */
export interface PointInTimeRecoveryOptions {
  /**
   * How often the shipper uploads the open binary log (`DBBACKUP_BINLOG_UPLOAD_INTERVAL`):
   * the most data a lost shipper task can cost beyond the lag. Whole seconds, 10 s to 1 hour.
   * @default Duration.seconds(60)
   */
  readonly uploadInterval?: Duration;
  /**
   * The log-shipping-lag alarm fires when the newest shipped binary log data is older than
   * this, or when the shipper publishes no lag at all (it stopped, or never started). At least
   * twice the upload interval.
   * @default Duration.minutes(5)
   */
  readonly logShippingLagThreshold?: Duration;
  /**
   * The recovery window you promise: every moment this far back stays restorable. With a new
   * vault, the binary log archive is kept as long as the window and the full backups need.
   * @default - no window: the logs are kept as long as the kept full backups need them
   */
  readonly window?: Duration;
  /** @default 256 (0.25 vCPU) */
  readonly cpu?: number;
  /** @default 512 */
  readonly memoryLimitMiB?: number;
}

/** Properties of a `BinlogShipper`. */
export interface BinlogShipperProps {
  /** The database's identifier in metrics (`DBBACKUP_DATABASE_ID`) and resource names. */
  readonly databaseId: string;
  /** The MySQL/MariaDB database whose binary logs are shipped. */
  readonly source: BackupSource;
  /** Where the logs go (under `PREFIX/binlog/`). */
  readonly vault: IBackupVault;
  readonly image: RunnerImage;
  readonly network: RunnerNetwork;
  /** The ECS cluster the service runs in. */
  readonly clusterArn: string;
  /** The shipper's security groups (those of the backup runner, so the database lets both in). */
  readonly securityGroupIds: string[];
  /** @default - the databaseId */
  readonly prefix?: string;
  /** @default BackupEncryption.kms(vault.keyArn) */
  readonly encryption?: BackupEncryption;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default Duration.seconds(60) */
  readonly uploadInterval?: Duration;
  /** @default 256 */
  readonly cpu?: number;
  /** @default 512 */
  readonly memoryLimitMiB?: number;
  /** @default CpuArchitecture.X86_64 */
  readonly cpuArchitecture?: CpuArchitecture;
  /** @default Duration.days(365) */
  readonly logRetention?: Duration;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/** The upload interval in whole seconds, refused outside 10 s to 1 hour (as in the AWS CDK flavour). */
function binlogUploadSeconds(interval: Duration | undefined): number {
  const seconds = (interval ?? Duration.seconds(60)).toSeconds();
  if (!Number.isInteger(seconds) || seconds < 10 || seconds > 3600) {
    throw new ConfigError(
      `pointInTimeRecovery uploadInterval is ${seconds} seconds; use whole seconds from 10 seconds to 1 hour, ` +
        'e.g. Duration.seconds(60).',
    );
  }
  return seconds;
}

/**
 * `dbbackup binlog-stream` as a one-task Fargate service, as in the AWS CDK flavour's
 * `BinlogShipper`: never two shippers at once (a deploy stops the old task, which uploads what
 * is complete on SIGTERM, before the new one starts), restarted by ECS when it stops, with the
 * backup task's no-delete grants under the database's prefix.
 */
export class BinlogShipper extends Construct {
  public readonly service: EcsService;
  public readonly taskDefinition: EcsTaskDefinition;
  public readonly logGroup: CloudwatchLogGroup;
  public readonly taskRole: IamRole;
  public readonly executionRole: IamRole;
  /** The runner settings rendered into the container's environment. */
  public readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: BinlogShipperProps) {
    super(scope, id);
    if (ENGINE_CAPABILITIES[props.source.engine].logShipping !== LogShipping.BINLOG) {
      throw new ConfigError(
        `BinlogShipper ships MySQL/MariaDB binary logs; the source's engine is '${props.source.engine}'. ` +
          'Use BackupSource.mysql(…).',
      );
    }
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const ctx = awsContext(this);
    const prefix = props.prefix ?? props.databaseId;
    const cpu = props.cpu ?? 256;
    const memory = props.memoryLimitMiB ?? 512;
    validateFargateSize(cpu, memory);
    const retentionDays = (props.logRetention ?? Duration.days(DEFAULT_LOG_RETENTION_DAYS)).toDays();
    if (!(LOG_RETENTION_DAYS as readonly number[]).includes(retentionDays)) {
      throw new ConfigError(
        `logRetention is ${retentionDays} days; CloudWatch Logs keeps logs for one of ` +
          `${LOG_RETENTION_DAYS.join(', ')} days.`,
      );
    }
    const name = (suffix: string, max = 64) => boundedName(['dbbackup', props.databaseId, 'binlog', suffix], max);
    const encryption = props.encryption ?? BackupEncryption.kms(props.vault.keyArn);

    this.environment = {
      ...renderRunnerEnvironment(RunnerCommand.BINLOG_STREAM, {
        engine: props.source.engine,
        source: props.source.url,
        to: vaultStorageUrl('s3', props.vault.bucketName, prefix),
        compression: props.compression ?? DEFAULT_COMPRESSION,
        encrypt: encryption.value,
      }),
      [RUNNER_ENV.DATABASE_ID]: props.databaseId,
      [RUNNER_ENV.LOG_FORMAT]: 'json',
      [RUNNER_ENV.BINLOG_UPLOAD_INTERVAL]: String(binlogUploadSeconds(props.uploadInterval)),
    };

    this.logGroup = new CloudwatchLogGroup(this, 'Logs', {
      name: `/dbbackup/${props.databaseId}/binlog-stream`,
      retentionInDays: retentionDays,
      tags: props.tags,
    });
    const secretStatements: Statement[] = [
      {
        Sid: 'ReadSourcePassword',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: props.source.options.passwordSecret.arn,
      },
    ];
    if (props.source.options.passwordSecretKey !== undefined) {
      secretStatements.push({
        Sid: 'DecryptSourcePassword',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: props.source.options.passwordSecretKey.arn,
        Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${ctx.region}.amazonaws.com` } },
      });
    }
    this.executionRole = serviceRole(this, 'ExecutionRole', {
      name: name('execution'),
      description: `Starts the dbbackup binary log shipper of ${props.databaseId}`,
      service: 'ecs-tasks.amazonaws.com',
      sourceAccount: ctx.accountId,
      tags: props.tags,
      statements: [
        // GetAuthorizationToken has no resource to scope to.
        { Sid: 'EcrLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
        {
          Sid: 'PullRunnerImage',
          Effect: 'Allow',
          Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
          Resource: props.image.repositoryArn,
        },
        {
          Sid: 'WriteLogs',
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: `${this.logGroup.arn}:*`,
        },
        ...secretStatements,
      ],
    }).role;
    // The writer's grants of the backup task (lib/core/permissions): no delete, anywhere.
    const taskStatements: Statement[] = vaultStatements(BackupRole.WRITER, props.vault, prefix);
    if (encryption.isKms) {
      taskStatements.push(
        { Sid: 'WrapArchiveKeys', Effect: 'Allow', Action: [...KMS_WRAP_ACTIONS], Resource: encryption.key! },
        // GenerateRandom acts on no key, so it cannot be scoped to one.
        { Sid: 'MakeArchiveKeys', Effect: 'Allow', Action: [...KMS_RANDOM_ACTIONS], Resource: '*' },
      );
    }
    this.taskRole = serviceRole(this, 'TaskRole', {
      name: name('shipper'),
      description: `The dbbackup binary log shipper of ${props.databaseId}: writes logs, never deletes`,
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
        // A long-running process: no `timeout` wrapper as the scheduled tasks have.
        entryPoint: ['node', RUNNER_SCRIPT],
        command: [RunnerCommand.BINLOG_STREAM],
        environment,
        secrets: [{ name: SECRET_ENV.SOURCE_PASSWORD, valueFrom: props.source.passwordValueFrom }],
        readonlyRootFilesystem: true,
        mountPoints: [{ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false }],
        linuxParameters: { initProcessEnabled: true },
        // SIGTERM: the shipper uploads what is complete and exits 0; give it the most Fargate allows.
        stopTimeout: 120,
        logConfiguration: {
          logDriver: 'awslogs',
          options: {
            'awslogs-group': this.logGroup.name,
            'awslogs-region': ctx.region,
            'awslogs-stream-prefix': 'binlog-stream',
          },
        },
      },
    ];
    this.taskDefinition = new EcsTaskDefinition(this, 'TaskDefinition', {
      family: name('shipper', 255),
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
    this.service = new EcsService(this, 'Resource', {
      name: name('shipper', 255),
      cluster: props.clusterArn,
      taskDefinition: this.taskDefinition.arn,
      launchType: 'FARGATE',
      desiredCount: 1,
      // Never two shippers of one server at once: stop the old task before starting the new one.
      deploymentMinimumHealthyPercent: 0,
      deploymentMaximumPercent: 100,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      networkConfiguration: {
        subnets: props.network.subnetIds,
        securityGroups: props.securityGroupIds,
        assignPublicIp: props.network.assignPublicIp ?? false,
      },
      enableEcsManagedTags: true,
      propagateTags: 'SERVICE',
      tags: props.tags,
    });
  }
}

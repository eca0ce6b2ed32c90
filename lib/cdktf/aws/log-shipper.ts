import { Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { EcsService } from '@cdktf/provider-aws/lib/ecs-service';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import {
  BackupRole,
  Compression,
  DEFAULT_LOG_RETENTION_DAYS,
  KMS_RANDOM_ACTIONS,
  KMS_WRAP_ACTIONS,
  RUNNER_CONTAINER,
  RUNNER_SCRIPT,
  SECRET_ENV,
  validateDatabaseId,
  validateFargateSize,
  vaultStorageUrl,
} from '../../core';
import { DEFAULT_COMPRESSION } from '../../core/codecs';
import { logStreamingFor } from '../../core/pitr';
import { BackupEncryption } from '../common/encryption';
import { boundedName } from '../common/names';
import { PointInTimeRecovery } from '../common/pitr';
import { shipperEnvironment } from '../common/shipper-env';
import { RunnerImage } from './image';
import { awsContext } from './private/context';
import { Statement, vaultStatements } from './private/policy';
import { executionStatements } from './private/task';
import { serviceRole } from './private/role';
import { CpuArchitecture } from './runner-task';
import { BackupSource } from './source';
import { IBackupVault } from './vault';

/** Properties of a `LogShipper`. */
export interface LogShipperProps {
  readonly databaseId: string;
  /** MySQL/MariaDB (binary logs), or a self-managed PostgreSQL server that allows replication connections (WAL). */
  readonly source: BackupSource;
  readonly vault: IBackupVault;
  readonly image: RunnerImage;
  /** The cluster the service runs in. */
  readonly clusterArn: string;
  /** The subnets the shipper runs in. */
  readonly subnetIds: string[];
  /** The shipper's security groups (those of the backup runner, so the database lets both in). */
  readonly securityGroupIds: string[];
  /** @default false */
  readonly assignPublicIp?: boolean;
  /** @default - the databaseId */
  readonly prefix?: string;
  /** @default BackupEncryption.kms(vault.keyArn) */
  readonly encryption?: BackupEncryption;
  /** @default Compression.ZSTD */
  readonly compression?: Compression;
  /** @default PointInTimeRecovery.enabled() */
  readonly pointInTimeRecovery?: PointInTimeRecovery;
  /** @default CpuArchitecture.X86_64 */
  readonly cpuArchitecture?: CpuArchitecture;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/**
 * A database's log shipper as a one-task ECS Fargate service (the AWS CDK flavour's
 * `LogShipper`): `dbbackup binlog-stream` (MySQL/MariaDB) or `dbbackup wal-receive` (PostgreSQL),
 * as the engine's record in lib/core/engines.ts says. Never two shippers at once (a deploy
 * stops the old task, which uploads what it has on SIGTERM, before the new one starts);
 * restarted by ECS when it stops; with the backup task's no-delete rights.
 */
export class LogShipper extends Construct {
  public readonly service: EcsService;
  public readonly taskDefinition: EcsTaskDefinition;
  public readonly taskRole: IamRole;
  public readonly executionRole: IamRole;
  public readonly logGroup: CloudwatchLogGroup;
  /** The runner command the shipper runs (`binlog-stream` or `wal-receive`). */
  public readonly command: string;
  /** The metric the shipper publishes its lag as. */
  public readonly lagMetricName: string;
  /** The log archive folder under the prefix (`binlog` or `wal`). */
  public readonly folder: string;
  /** The container's plain environment (the contract). */
  public readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: LogShipperProps) {
    super(scope, id);
    const ctx = awsContext(this);
    const streaming = logStreamingFor(props.source.engine, props.source.managed);
    const command = streaming.command;
    this.command = command;
    this.lagMetricName = streaming.lagMetric;
    this.folder = streaming.folder;
    if (!Token.isUnresolved(props.databaseId)) validateDatabaseId(props.databaseId);
    const pitr = props.pointInTimeRecovery ?? PointInTimeRecovery.enabled();
    const prefix = props.prefix ?? props.databaseId;
    const cpu = pitr.cpu ?? 256;
    const memory = pitr.memoryLimitMiB;
    validateFargateSize(cpu, memory);
    const name = (suffix: string, max = 64) => boundedName(['dbbackup', props.databaseId, suffix], max);
    const encryption = props.encryption ?? BackupEncryption.kms(props.vault.keyArn);

    const common = {
      source: props.source.url,
      to: vaultStorageUrl('s3', props.vault.bucketName, prefix),
      compression: props.compression ?? DEFAULT_COMPRESSION,
      encrypt: encryption.value,
    };
    this.environment = shipperEnvironment(command, props.source.engine, common, pitr, props.databaseId);

    this.logGroup = new CloudwatchLogGroup(this, 'Logs', {
      name: `/dbbackup/${props.databaseId}/${this.command}`,
      retentionInDays: DEFAULT_LOG_RETENTION_DAYS,
      tags: props.tags,
    });
    this.executionRole = serviceRole(this, 'ExecutionRole', {
      name: name('shipper-execution'),
      description: `Starts the dbbackup log shipper of ${props.databaseId}`,
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
    // The backup writer's rights (lib/core/permissions): new log objects under the prefix, no delete.
    const taskStatements: Statement[] = vaultStatements(BackupRole.WRITER, props.vault, prefix);
    if (encryption.isKms) {
      taskStatements.push(
        { Sid: 'WrapBackupKeys', Effect: 'Allow', Action: [...KMS_WRAP_ACTIONS], Resource: encryption.key! },
        { Sid: 'MakeBackupKeys', Effect: 'Allow', Action: [...KMS_RANDOM_ACTIONS], Resource: '*' },
      );
    }
    this.taskRole = serviceRole(this, 'TaskRole', {
      name: name('shipper'),
      description: `The dbbackup log shipper of ${props.databaseId}: writes logs, never deletes`,
      service: 'ecs-tasks.amazonaws.com',
      sourceAccount: ctx.accountId,
      tags: props.tags,
      statements: taskStatements,
    }).role;

    const containerDefinitions = [
      {
        name: RUNNER_CONTAINER,
        image: props.image.imageUri,
        essential: true,
        // A long-running process: no `timeout` wrapper as the scheduled tasks have.
        entryPoint: ['node', RUNNER_SCRIPT],
        command: [this.command],
        environment: Object.entries(this.environment)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([n, value]) => ({ name: n, value })),
        secrets: [{ name: SECRET_ENV.SOURCE_PASSWORD, valueFrom: props.source.passwordValueFrom }],
        linuxParameters: { initProcessEnabled: true },
        // SIGTERM: the shipper uploads what it has and exits 0; give it the most Fargate allows.
        stopTimeout: 120,
        logConfiguration: {
          logDriver: 'awslogs',
          options: {
            'awslogs-group': this.logGroup.name,
            'awslogs-region': ctx.region,
            'awslogs-stream-prefix': this.command,
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
        subnets: props.subnetIds,
        securityGroups: props.securityGroupIds,
        assignPublicIp: props.assignPublicIp ?? false,
      },
      enableEcsManagedTags: true,
      propagateTags: 'SERVICE',
      tags: props.tags,
    });
  }
}

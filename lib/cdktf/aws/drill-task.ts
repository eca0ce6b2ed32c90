import { Token } from 'cdktf';
import { Construct } from 'constructs';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import {
  BackupRole,
  ConfigError,
  DEFAULT_DRILL_FARGATE,
  DEFAULT_LOG_RETENTION_DAYS,
  DRILL_DATABASE_CONTAINER_NAME,
  Engine,
  KMS_UNWRAP_ACTIONS,
  RUNNER_CONTAINER,
  RUNNER_ENV,
  RunnerCommand,
  ServerFamily,
  drillScratchOf,
  checkVaultPrefix,
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
import { Statement, vaultStatements } from './private/policy';
import { LOG_RETENTION_DAYS, serviceRole } from './private/role';
import { checkTaskTimeout, executionStatements } from './private/task';
import { CpuArchitecture, RunnerNetwork } from './runner-task';
import { IBackupVault } from './vault';

/** Properties of a `RestoreDrillTask`. */
export interface RestoreDrillTaskProps {
  readonly databaseId: string;
  /** The engine of the backups (picks the scratch database). */
  readonly engine: Engine;
  readonly vault: IBackupVault;
  readonly image: RunnerImage;
  /** The subnets the drill runs in (it needs only HTTPS out, to S3, ECR, KMS and CloudWatch). */
  readonly network: RunnerNetwork;
  /** The cluster the drill runs in. */
  readonly clusterArn: string;
  /** @default - the databaseId */
  readonly prefix?: string;
  /**
   * How the backups are encrypted, for the decrypt grant. `age` backups cannot be drilled.
   * @default BackupEncryption.kms(vault.keyArn)
   */
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
  /** @default 1024 */
  readonly cpu?: number;
  /** @default 4096 */
  readonly memoryLimitMiB?: number;
  /** @default 50 */
  readonly ephemeralStorageGiB?: number;
  /** @default Duration.hours(6) */
  readonly timeout?: Duration;
  /** @default CpuArchitecture.X86_64 */
  readonly cpuArchitecture?: CpuArchitecture;
  /** @default Duration.days(365) */
  readonly logRetention?: Duration;
  /** @default - none */
  readonly tags?: Record<string, string>;
}

/**
 * A Fargate task that proves backups restore (the same task as the AWS CDK flavour's):
 * `dbbackup drill` restores the newest backup into a throwaway database beside it in the task
 * (only on 127.0.0.1), runs its smoke checks and publishes success and the restore time. Its
 * role can read backups, never write or delete them. It is an `IScheduledTask` (as a
 * `BackupRunnerTask` is) by its shape: declaring it would narrow the interface's property types,
 * which jsii does not allow.
 */
export class RestoreDrillTask extends Construct {
  public readonly taskDefinition: EcsTaskDefinition;
  public readonly taskRole: IamRole;
  public readonly executionRole: IamRole;
  public readonly logGroup: CloudwatchLogGroup;
  public readonly databaseId: string;
  public readonly clusterArn: string;
  public readonly subnetIds: string[];
  public readonly securityGroupIds: string[];
  public readonly assignPublicIp: boolean;
  public readonly timeout: Duration;
  /** The runner container's plain environment (the contract). */
  public readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: RestoreDrillTaskProps) {
    super(scope, id);
    const ctx = awsContext(this);
    validateDatabaseId(props.databaseId);
    this.databaseId = props.databaseId;
    const prefix = props.prefix ?? props.databaseId;
    checkVaultPrefix(prefix);
    this.timeout = props.timeout ?? Duration.hours(6);
    checkTaskTimeout('drill timeout', this.timeout);
    const cpu = props.cpu ?? DEFAULT_DRILL_FARGATE.cpu;
    const memory = props.memoryLimitMiB ?? DEFAULT_DRILL_FARGATE.memoryMiB;
    validateFargateSize(cpu, memory);
    const encryption = props.encryption ?? BackupEncryption.kms(props.vault.keyArn);
    if (encryption.value.startsWith('age:')) {
      throw new ConfigError(
        'a restore drill cannot decrypt age-encrypted backups: their identity (private key) ' +
          'stays with you. Use BackupEncryption.kms(key.arn) for scheduled drills, or turn ' +
          'drills off (drill: { enabled: false }) and restore-test by hand.',
      );
    }
    const retentionDays = (props.logRetention ?? Duration.days(DEFAULT_LOG_RETENTION_DAYS)).toDays();
    if (!(LOG_RETENTION_DAYS as readonly number[]).includes(retentionDays)) {
      throw new ConfigError(
        `logRetention is ${retentionDays} days; CloudWatch Logs keeps logs for one of ` +
          `${LOG_RETENTION_DAYS.join(', ')} days.`,
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
    const name = (suffix: string, max = 64) => boundedName(['dbbackup', props.databaseId, suffix], max);

    this.logGroup = new CloudwatchLogGroup(this, 'Logs', {
      name: `/dbbackup/${props.databaseId}/drill`,
      retentionInDays: retentionDays,
      tags: props.tags,
    });
    this.environment = {
      ...renderRunnerEnvironment(RunnerCommand.DRILL, {
        from: vaultStorageUrl('s3', props.vault.bucketName, prefix),
        target: scratch.target,
        'require-encryption': requiredEncryptionFor(encryption.value.split(':')[0] as EncryptionScheme),
        json: true,
      }),
      [RUNNER_ENV.DATABASE_ID]: props.databaseId,
      [RUNNER_ENV.LOG_FORMAT]: 'json',
    };

    this.executionRole = serviceRole(this, 'ExecutionRole', {
      name: name('drill-execution'),
      description: `Starts the dbbackup restore drill of ${props.databaseId}`,
      service: 'ecs-tasks.amazonaws.com',
      sourceAccount: ctx.accountId,
      tags: props.tags,
      statements: executionStatements({
        imageRepositoryArn: props.image.repositoryArn,
        logGroupArn: this.logGroup.arn,
        region: ctx.region,
      }),
    }).role;
    const statements: Statement[] = vaultStatements(BackupRole.DRILL, props.vault, prefix);
    if (encryption.isKms)
      statements.push({
        Sid: 'UnwrapBackupKeys',
        Effect: 'Allow',
        Action: [...KMS_UNWRAP_ACTIONS],
        Resource: encryption.key!,
      });
    this.taskRole = serviceRole(this, 'TaskRole', {
      name: name('drill'),
      description: `The dbbackup restore drill of ${props.databaseId}: reads backups, never writes or deletes`,
      service: 'ecs-tasks.amazonaws.com',
      sourceAccount: ctx.accountId,
      tags: props.tags,
      statements,
    }).role;

    const logs = (prefixName: string) => ({
      logDriver: 'awslogs',
      options: {
        'awslogs-group': this.logGroup.name,
        'awslogs-region': ctx.region,
        'awslogs-stream-prefix': prefixName,
      },
    });
    const containerDefinitions = [
      {
        name: DRILL_DATABASE_CONTAINER_NAME,
        image: props.databaseImage ?? scratch.image,
        essential: false,
        environment: Object.entries(scratch.environment).map(([n, value]) => ({ name: n, value })),
        command: props.databaseImage === undefined ? [...scratch.command] : undefined,
        healthCheck: {
          command: ['CMD-SHELL', scratch.healthCheck],
          interval: 10,
          timeout: 5,
          retries: 10,
          startPeriod: 60,
        },
        logConfiguration: logs('scratch-db'),
      },
      {
        name: RUNNER_CONTAINER,
        image: props.image.imageUri,
        essential: true,
        entryPoint: timeoutEntryPoint(this.timeout.toSeconds()),
        command: [RunnerCommand.DRILL],
        environment: Object.entries(this.environment)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([n, value]) => ({ name: n, value })),
        dependsOn: [{ containerName: DRILL_DATABASE_CONTAINER_NAME, condition: 'HEALTHY' }],
        stopTimeout: 120,
        logConfiguration: logs('drill'),
      },
    ];
    this.taskDefinition = new EcsTaskDefinition(this, 'Resource', {
      family: name('drill', 255),
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: String(cpu),
      memory: String(memory),
      ephemeralStorage: { sizeInGib: props.ephemeralStorageGiB ?? DEFAULT_DRILL_FARGATE.ephemeralStorageGiB },
      runtimePlatform: {
        operatingSystemFamily: 'LINUX',
        cpuArchitecture: props.cpuArchitecture ?? CpuArchitecture.X86_64,
      },
      executionRoleArn: this.executionRole.arn,
      taskRoleArn: this.taskRole.arn,
      containerDefinitions: JSON.stringify(containerDefinitions),
      tags: props.tags,
    });

    this.clusterArn = props.clusterArn;
    this.subnetIds = props.network.subnetIds;
    this.assignPublicIp = props.network.assignPublicIp ?? false;
    // The drill talks only to AWS APIs: its own group, HTTPS out and nothing else.
    const sg = new SecurityGroup(this, 'SecurityGroup', {
      name: name('drill', 255),
      description: `dbbackup restore drill of ${props.databaseId}: HTTPS out to AWS APIs only`,
      vpcId: props.network.vpcId,
      tags: props.tags,
    });
    new VpcSecurityGroupEgressRule(this, 'EgressHttps', {
      securityGroupId: sg.id,
      description: 'AWS APIs (S3, KMS, ECR, CloudWatch)',
      ipProtocol: 'tcp',
      fromPort: 443,
      toPort: 443,
      cidrIpv4: '0.0.0.0/0',
    });
    this.securityGroupIds = [sg.id];
  }
}

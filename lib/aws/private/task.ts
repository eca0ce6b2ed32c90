import { Duration, RemovalPolicy, Stack, Tags, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type { Construct } from 'constructs';
import {
  bundledAsset,
  ConfigError,
  EncryptionScheme,
  RUNNER_CONTAINER,
  RUNNER_ENV,
  type RunnerCommand,
  renderRunnerEnvironment,
  type RunnerSettings,
  timeoutEntryPoint as coreTimeoutEntryPoint,
  validateFargateSize,
} from '../../core';
import type { BackupEncryption } from '../source';
import type { SharedTaskParts } from '../shared-task-parts';
import type { IBackupVault } from '../vault';
import { KMS_UNWRAP_ACTIONS, KMS_WRAP_ACTIONS } from './iam';
import { acknowledge, acknowledgeInlinePolicies, acknowledgeRunnerIngress, wildcardResourceFinding } from './nag';

/** Container names and the runner's path live once in lib/core (the CDKTF tasks use them too). */
export { DRILL_DATABASE_CONTAINER_NAME, RUNNER_CONTAINER as RUNNER_CONTAINER_NAME, RUNNER_SCRIPT } from '../../core';

const RUNNER_IMAGE_ID = 'DbBackupRunnerImage';

/**
 * The runner image built from `runner/Dockerfile` at deploy time (synth only stages it): one
 * image asset per stack, however many tasks run it.
 */
export function bundledRunnerImage(scope: Construct): ecs.ContainerImage {
  const stack = Stack.of(scope);
  const asset =
    (stack.node.tryFindChild(RUNNER_IMAGE_ID) as DockerImageAsset | undefined) ??
    new DockerImageAsset(stack, RUNNER_IMAGE_ID, {
      directory: bundledAsset('runner'),
      platform: Platform.LINUX_AMD64,
      exclude: ['demo.js'],
    });
  return ecs.ContainerImage.fromDockerImageAsset(asset);
}

/** The container's entry point: the runner under coreutils `timeout` (lib/core, as in CDKTF). */
export type { SharedTaskParts } from '../shared-task-parts';

export function timeoutEntryPoint(timeout: Duration): string[] {
  return coreTimeoutEntryPoint(timeout.toSeconds());
}

/** Check a timeout: whole minutes, 5 minutes to 7 days. */
export function checkTimeout(name: string, timeout: Duration): void {
  if (Token.isUnresolved(timeout.toString())) {
    throw new ConfigError(`${name} is an unresolved token; give a literal Duration such as Duration.hours(4).`);
  }
  const minutes = timeout.toMinutes({ integral: false });
  if (!Number.isInteger(minutes) || minutes < 5 || minutes > 7 * 24 * 60) {
    throw new ConfigError(
      `${name} is ${timeout.toHumanString()}; use whole minutes from 5 minutes to 7 days, e.g. Duration.hours(4).`,
    );
  }
}

/** Check Fargate cpu/memory against the one size table (lib/core/sizing); tokens are skipped. */
export function checkFargateSize(cpu: number, memoryLimitMiB: number): void {
  if (Token.isUnresolved(cpu) || Token.isUnresolved(memoryLimitMiB)) return;
  validateFargateSize(cpu, memoryLimitMiB);
}

/** A log group for a task, with retention and, when given, a KMS key. */
export function taskLogGroup(
  scope: Construct,
  id: string,
  retention: logs.RetentionDays,
  key: kms.IKey | undefined,
): logs.LogGroup {
  const group = new logs.LogGroup(scope, id, {
    retention,
    encryptionKey: key,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  return group;
}

/** The acknowledgements every runner task definition carries. */
export function acknowledgeTaskDefinition(taskDefinition: ecs.TaskDefinition): void {
  acknowledgeInlinePolicies(taskDefinition);
  if (taskDefinition.executionRole !== undefined) {
    acknowledge(taskDefinition.executionRole, {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken, which the execution role needs to pull the runner image, takes no resource (ECR ' +
        'permissions reference).',
    });
  }
  acknowledge(taskDefinition, {
    id: 'AwsSolutions-ECS2',
    reason:
      "The environment holds only the runner's non-secret settings (engine, source URL without password, storage " +
      'URL, options), rendered from the runner contract; the password comes through ECS secrets from Secrets ' +
      'Manager.',
  });
}

/** What every runner task definition is made of, as `runnerTaskDefinition` takes it. */
export interface RunnerTaskDefinitionProps {
  /** Tagged as `dbbackup:database-id`. */
  readonly databaseId: string;
  readonly cpu: number;
  readonly memoryLimitMiB: number;
  readonly ephemeralStorageGiB?: number;
  /** A fleet's roles and family; without it the task definition makes its own roles. */
  readonly shared?: SharedTaskParts;
}

/** A Fargate task definition (x86-64 Linux) for the runner, tagged with its database id. */
export function runnerTaskDefinition(
  scope: Construct,
  id: string,
  props: RunnerTaskDefinitionProps,
): ecs.FargateTaskDefinition {
  const taskDefinition = new ecs.FargateTaskDefinition(scope, id, {
    family: props.shared?.family,
    taskRole: props.shared?.taskRole,
    executionRole: props.shared?.executionRole,
    cpu: props.cpu,
    memoryLimitMiB: props.memoryLimitMiB,
    ephemeralStorageGiB: props.ephemeralStorageGiB,
    runtimePlatform: {
      cpuArchitecture: ecs.CpuArchitecture.X86_64,
      operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
    },
  });
  Tags.of(taskDefinition).add('dbbackup:database-id', props.databaseId);
  return taskDefinition;
}

/** Where a task's containers log, as `taskLogs` makes it. */
export interface TaskLogs {
  readonly logGroup: logs.ILogGroup;
  /** The log driver of one container: its streams are `NAME/…` (`DATABASEID-NAME/…` in a fleet's group). */
  logging(name: string): ecs.LogDriver;
}

/** A task's log group (`Logs`, or the fleet's shared one) and its containers' log drivers. */
export function taskLogs(
  scope: Construct,
  props: {
    readonly databaseId: string;
    readonly shared?: SharedTaskParts;
    readonly logRetention?: logs.RetentionDays;
    readonly logEncryptionKey?: kms.IKey;
  },
): TaskLogs {
  const logGroup =
    props.shared?.logGroup ??
    taskLogGroup(scope, 'Logs', props.logRetention ?? logs.RetentionDays.ONE_YEAR, props.logEncryptionKey);
  const streams = props.shared === undefined ? '' : `${props.databaseId}-`;
  return {
    logGroup,
    logging: (name) => ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: `${streams}${name}` }),
  };
}

/** The runner's environment: the command's rendered settings, the database id and JSON logs. */
export function runnerEnvironment(
  command: RunnerCommand,
  settings: RunnerSettings,
  databaseId: string,
): Record<string, string> {
  return {
    ...renderRunnerEnvironment(command, settings),
    [RUNNER_ENV.DATABASE_ID]: databaseId,
    [RUNNER_ENV.LOG_FORMAT]: 'json',
  };
}

/** What of the runner's container differs between tasks, as `addRunnerContainer` takes it. */
export interface RunnerContainerProps {
  /** @default - the bundled runner image */
  readonly image?: ecs.ContainerImage;
  readonly entryPoint: string[];
  readonly command: string[];
  readonly environment: Record<string, string>;
  readonly secrets?: Record<string, ecs.Secret>;
  readonly logging: ecs.LogDriver;
}

/**
 * The runner's essential container. Fargate's longest stop timeout: on SIGTERM the runner
 * finishes what it can (a shipper uploads what it has) before it exits.
 */
export function addRunnerContainer(
  taskDefinition: ecs.TaskDefinition,
  props: RunnerContainerProps,
): ecs.ContainerDefinition {
  return taskDefinition.addContainer(RUNNER_CONTAINER, {
    image: props.image ?? bundledRunnerImage(taskDefinition),
    essential: true,
    entryPoint: props.entryPoint,
    command: props.command,
    environment: props.environment,
    secrets: props.secrets,
    logging: props.logging,
    stopTimeout: Duration.seconds(120),
  });
}

/** The KMS key that wraps (or unwraps) the backups' data keys; none unless the scheme is KMS. */
export function backupKey(encryption: BackupEncryption, vault: IBackupVault): kms.IKey | undefined {
  return encryption.scheme === EncryptionScheme.KMS ? (encryption.key ?? vault.key) : undefined;
}

/**
 * The writer's grants on the task role (new objects under the prefix, never a delete; wrap with
 * `key` and `kms:GenerateRandom` when given) and the acknowledgements of the task and its policy.
 * `reason` says why the object grant is a wildcard under the prefix.
 */
export function grantWriter(
  taskDefinition: ecs.TaskDefinition,
  vault: IBackupVault,
  prefix: string,
  key: kms.IKey | undefined,
  reason: string,
): void {
  const role = taskDefinition.taskRole;
  vault.grantBackup(role, prefix);
  if (key !== undefined) {
    key.grant(role, ...KMS_WRAP_ACTIONS);
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:GenerateRandom'], resources: ['*'] }));
  }
  acknowledgeTaskDefinition(taskDefinition);
  const policy = acknowledgePrefixGrant(role, vault, prefix, reason);
  if (policy === undefined || key === undefined) return;
  acknowledge(policy, {
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'kms:GenerateRandom is not an operation on a key and takes no resource (KMS permissions reference).',
  });
}

/**
 * The reader's grants on the task role (read and list under the prefix, unwrap with `key` when
 * given; no write, no delete) and the acknowledgements of the task and its policy.
 */
export function grantReader(
  taskDefinition: ecs.TaskDefinition,
  vault: IBackupVault,
  prefix: string,
  key: kms.IKey | undefined,
  reason: string,
): void {
  const role = taskDefinition.taskRole;
  vault.grantRestore(role, prefix);
  key?.grant(role, ...KMS_UNWRAP_ACTIONS);
  acknowledgeTaskDefinition(taskDefinition);
  acknowledgePrefixGrant(role, vault, prefix, reason);
}

function acknowledgePrefixGrant(
  role: iam.IRole,
  vault: IBackupVault,
  prefix: string,
  reason: string,
): Construct | undefined {
  const policy = role.node.tryFindChild('DefaultPolicy');
  if (policy === undefined) return undefined;
  acknowledge(policy, {
    id: wildcardResourceFinding('AwsSolutions', policy, vault.bucket.arnForObjects(`${prefix}/*`)),
    reason,
  });
  return policy;
}

/** A task's network side, as `taskConnections` makes it. */
export interface TaskConnections {
  readonly connections: ec2.Connections;
  /** The group made when none was given. */
  readonly securityGroup?: ec2.SecurityGroup;
}

/**
 * The given security groups, or a new `SecurityGroup` that lets out HTTPS (the AWS APIs) and,
 * once `allowDatabasePort` adds it, the database's port: nothing else.
 */
export function taskConnections(
  scope: Construct,
  props: { readonly vpc: ec2.IVpc; readonly securityGroups?: ec2.ISecurityGroup[]; readonly description: string },
): TaskConnections {
  if (props.securityGroups !== undefined && props.securityGroups.length > 0) {
    return { connections: new ec2.Connections({ securityGroups: props.securityGroups }) };
  }
  const securityGroup = new ec2.SecurityGroup(scope, 'SecurityGroup', {
    vpc: props.vpc,
    allowAllOutbound: false,
    description: props.description,
  });
  securityGroup.addEgressRule(
    ec2.Peer.anyIpv4(),
    ec2.Port.tcp(443),
    'HTTPS to AWS APIs (S3, ECR, Secrets Manager, KMS, CloudWatch Logs)',
  );
  return { connections: new ec2.Connections({ securityGroups: [securityGroup] }), securityGroup };
}

/**
 * Let the task out to the database's port: into the database's own side when it is known (with
 * the acknowledgement of a token port), else to any IPv4 address on that port.
 */
export function allowDatabasePort(
  connections: ec2.Connections,
  database: ec2.IConnectable | undefined,
  port: number,
  descriptions: { readonly database: string; readonly anyAddress: string },
): void {
  const dbPort = ec2.Port.tcp(port);
  if (database !== undefined) {
    connections.allowTo(database, dbPort, descriptions.database);
    acknowledgeRunnerIngress(connections, database, port);
  } else {
    connections.allowTo(ec2.Peer.anyIpv4(), dbPort, descriptions.anyAddress);
  }
}

import { Duration, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  ConfigError,
  EncryptionScheme,
  Engine,
  parseSourceUrl,
  RunnerCommand,
  SECRET_ENV,
  requiredEncryptionFor,
} from '../core';
import { BackupEncryption } from './source';
import type { IBackupVault } from './vault';
import { checkDatabaseId } from './private/settings';
import {
  addRunnerContainer,
  allowDatabasePort,
  backupKey,
  checkFargateSize,
  checkTimeout,
  grantReader,
  runnerEnvironment,
  runnerTaskDefinition,
  type SharedTaskParts,
  taskConnections,
  taskLogs,
  timeoutEntryPoint,
} from './private/task';

/** Properties of a `RestoreTask`. */
export interface RestoreTaskProps {
  /** The engine of the backups. */
  readonly engine: Engine;
  /** Where the backups are. */
  readonly vault: IBackupVault;
  /** The database's identifier (metrics, the task's tag). */
  readonly databaseId: string;
  /** @default - the database id */
  readonly prefix?: string;
  /** The VPC the task runs in; it must reach the target and the AWS APIs. */
  readonly vpc: ec2.IVpc;
  /**
   * The database to restore into, as the runner's `--target` URL without a password
   * (`postgres://restorer@orders-restore.internal:5432/orders`). The runner refuses a target
   * that already has tables unless the run says `--clean`.
   */
  readonly target: string;
  /** The Secrets Manager secret with the target user's password (ECS reads it into the task at start). */
  readonly targetSecret: secretsmanager.ISecret;
  /** @default 'password' */
  readonly targetPasswordField?: string;
  /**
   * The target's port, where `target` holds it as a token (an RDS endpoint's port).
   * @default - the port of `target`
   */
  readonly targetPort?: number;
  /**
   * The target's network side: the task is let in on the target's port.
   * @default - the task's group may reach any address on the target's port; let it in on the target's side
   */
  readonly targetConnectable?: ec2.IConnectable;
  /**
   * The task's security groups.
   * @default - a new group that allows out HTTPS (AWS APIs) and the target's port only
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * How the backups are encrypted, for the decrypt grant. `age` backups are refused: their
   * identity stays with you (restore them with `dbbackup restore --identity FILE`).
   * @default BackupEncryption.kms() - the vault's key
   */
  readonly encryption?: BackupEncryption;
  /** @default - the bundled runner image */
  readonly image?: ecs.ContainerImage;
  /** @default 1024 */
  readonly cpu?: number;
  /** @default 4096 */
  readonly memoryLimitMiB?: number;
  /** @default 50 */
  readonly ephemeralStorageGiB?: number;
  /**
   * The longest a restore may run before it is stopped.
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
 * A Fargate task definition that runs `dbbackup restore` on demand, inside the VPC, into a
 * target database: one per database (its read grant is limited to that database's prefix, and
 * the target and its secret are that database's), sharing a fleet's execution role and log group
 * in a fleet. Its role has the reader's rights only: read and list the backups, `kms:Decrypt`;
 * no write, no delete. Started by hand (`aws ecs run-task`, the commands are the stack's
 * outputs), with the command overridden to `restore --latest`, `--id ID` or `--to-time T`.
 */
export class RestoreTask extends Construct implements ec2.IConnectable {
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  /** The runner's container. */
  public readonly container: ecs.ContainerDefinition;
  public readonly logGroup: logs.ILogGroup;
  public readonly taskRole: iam.IRole;
  /** The task's network side: let it into the target (`target.connections.allowDefaultPortFrom(restoreTask)`). */
  public readonly connections: ec2.Connections;
  /** The task's security group when this construct made it. */
  public readonly securityGroup?: ec2.SecurityGroup;
  /** The longest a restore may run. */
  public readonly timeout: Duration;
  /** The target URL (no password). */
  public readonly target: string;
  /** The runner settings rendered into the container's environment. */
  public readonly environment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: RestoreTaskProps) {
    super(scope, id);
    checkDatabaseId(props.databaseId);
    const prefix = props.prefix ?? props.databaseId;
    this.timeout = props.timeout ?? Duration.hours(6);
    checkTimeout('restore timeout', this.timeout);
    const cpu = props.cpu ?? 1024;
    const memoryLimitMiB = props.memoryLimitMiB ?? 4096;
    checkFargateSize(cpu, memoryLimitMiB);
    const encryption = props.encryption ?? BackupEncryption.kms();
    if (encryption.scheme === EncryptionScheme.AGE) {
      throw new ConfigError(
        'a restore task cannot decrypt age-encrypted backups: their identity (private key) stays with you. ' +
          'Restore them with `dbbackup restore --identity FILE` on a machine that holds it, or use ' +
          'BackupEncryption.kms().',
      );
    }
    this.target = props.target;
    const port = props.targetPort ?? targetPort(props.engine, props.target);

    const net = taskConnections(this, {
      vpc: props.vpc,
      securityGroups: props.securityGroups,
      description: `dbbackup restore of ${props.databaseId}: HTTPS out to AWS APIs, the target port out`,
    });
    this.connections = net.connections;
    this.securityGroup = net.securityGroup;
    allowDatabasePort(this.connections, props.targetConnectable, port, {
      database: `dbbackup restore of ${props.databaseId}`,
      anyAddress: `the restore target of ${props.databaseId}`,
    });

    this.taskDefinition = runnerTaskDefinition(this, 'Resource', {
      databaseId: props.databaseId,
      cpu,
      memoryLimitMiB,
      ephemeralStorageGiB: props.ephemeralStorageGiB ?? 50,
      shared: props.shared,
    });
    this.taskRole = this.taskDefinition.taskRole;
    const taskLog = taskLogs(this, props);
    this.logGroup = taskLog.logGroup;

    this.environment = runnerEnvironment(
      RunnerCommand.RESTORE,
      {
        from: props.vault.storageUrl(prefix),
        target: props.target,
        // A kms: database restores only kms: manifests that authenticate (no forged plain backup).
        'require-encryption': requiredEncryptionFor(encryption.scheme),
        json: true,
      },
      props.databaseId,
    );
    this.container = addRunnerContainer(this.taskDefinition, {
      image: props.image,
      entryPoint: timeoutEntryPoint(this.timeout),
      // What a run without overrides does; the runbook's commands override it.
      command: [RunnerCommand.RESTORE, '--latest'],
      environment: this.environment,
      secrets: {
        [SECRET_ENV.TARGET_PASSWORD]: ecs.Secret.fromSecretsManager(
          props.targetSecret,
          props.targetPasswordField ?? 'password',
        ),
      },
      logging: taskLog.logging('restore'),
    });

    // The reader's rights (lib/core/permissions: BackupRole.READER), and nothing else.
    grantReader(
      this.taskDefinition,
      props.vault,
      prefix,
      backupKey(encryption, props.vault),
      `A restore reads the backup it is given under ${prefix}/, named at run time; ` +
        'the grant is read-only and limited to that prefix.',
    );
  }
}

/** The target's port, from its URL (the engine's default when it names none); tokens are not parsed. */
function targetPort(engine: Engine, target: string): number {
  if (Token.isUnresolved(target)) {
    const m = /:(\d+)\//.exec(target);
    if (m !== null) return Number(m[1]);
    throw new ConfigError(`the restore target '${target}' holds a token and no literal port; give targetPort.`);
  }
  const url = parseSourceUrl(target, 'restore target', engine);
  if (url.host === undefined) {
    throw new ConfigError(
      `the restore target '${url.display}' is a socket; a restore task reaches its target over TCP: give host and ` +
        'port.',
    );
  }
  return url.port;
}

/** How a `DatabaseBackup` makes its restore task. */
export interface RestoreTaskOptions {
  /**
   * Whether the database gets a restore task (and its run commands as stack outputs).
   * @default - true outside a fleet (unless the backups are age-encrypted); false in a fleet, to keep its size down
   */
  readonly enabled?: boolean;
  /**
   * The database to restore into, without a password. Give a user that may create what the
   * backup holds: the backup user usually may not.
   * @default - the source database, as the source's user
   */
  readonly target?: string;
  /** @default - the source's secret */
  readonly targetSecret?: secretsmanager.ISecret;
  /** @default 'password' */
  readonly targetPasswordField?: string;
  /** @default - the port in `target` (the source's port when `target` is left out) */
  readonly targetPort?: number;
  /** @default - the source's network side, when known (RDS) and `target` is left out */
  readonly targetConnectable?: ec2.IConnectable;
  /** @default - a new group: HTTPS out and the target's port */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /** @default 1024 */
  readonly cpu?: number;
  /** @default 4096 */
  readonly memoryLimitMiB?: number;
  /** @default 50 */
  readonly ephemeralStorageGiB?: number;
  /** @default - the RTO plus two hours */
  readonly timeout?: Duration;
}

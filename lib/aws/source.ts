import { Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import {
  BackupMethod,
  AWS_MANAGED_SERVICE,
  checkBackupMethod,
  ConfigError,
  DEFAULT_PORTS,
  defaultServerFamily,
  EncryptionScheme,
  Engine,
  isRdsEndpoint,
  parseEncryption,
  ServerFamily,
  ServerVersions,
} from '../core';

/** Where a database is and how the runner logs in to it. */
export interface DatabaseEndpointOptions {
  /** The host name or address of the database server. */
  readonly endpoint: string;
  /** @default - the engine's port: 5432, 3306 or 27017 */
  readonly port?: number;
  /** The database to back up. */
  readonly databaseName: string;
  /** The user the runner logs in as (it needs read access to everything it dumps). */
  readonly username: string;
  /**
   * The Secrets Manager secret with the user's password, read by ECS into the task's
   * environment at start (never in the template, argv or logs).
   */
  readonly secret: secretsmanager.ISecret;
  /**
   * The JSON field of the secret that holds the password.
   * @default 'password' (the layout of RDS-generated secrets)
   */
  readonly passwordField?: string;
  /**
   * The server's version (`16.4`, `8.4`, `11.4`). A server newer than the runner image's tools
   * can dump (see `ServerVersions`) is refused at synth.
   * @default - not checked here; the runner checks the live server before each backup
   */
  readonly engineVersion?: string;
  /**
   * How the runner backs the server up: `BackupMethod.LOGICAL` (pg_dump, mariadb-dump, mongodump)
   * or `BackupMethod.PHYSICAL` (pg_basebackup; mariadb-backup for MariaDB, Percona XtraBackup for
   * MySQL, with true incrementals by LSN). Physical is for a self-managed server: it is refused
   * on RDS/Aurora (`fromRdsInstance`, `fromDatabaseCluster`, or a literal `….rds.amazonaws.com`
   * endpoint). mariadb-backup reads the server's data files, so the backup task must run
   * where the data directory is readable.
   * @default BackupMethod.LOGICAL
   */
  readonly method?: BackupMethod;
}

/** Options of `BackupSource.fromRdsInstance` and `BackupSource.fromDatabaseCluster`. */
export interface RdsSourceOptions {
  /** The database to back up. */
  readonly databaseName: string;
  /** The user the runner logs in as. */
  readonly username: string;
  /**
   * The secret with the user's password.
   * @default - the instance's or cluster's generated secret, when it has one
   */
  readonly secret?: secretsmanager.ISecret;
  /** @default 'password' */
  readonly passwordField?: string;
  /**
   * The engine, for an imported instance or cluster that does not say.
   * @default - read from the instance's or cluster's engine
   */
  readonly engine?: Engine;
  /**
   * The server's version, for an instance or cluster that does not say.
   * @default - read from the instance's or cluster's engine version, when it has one
   */
  readonly engineVersion?: string;
  /**
   * Only `BackupMethod.LOGICAL` on RDS/Aurora: physical backups need the server's files or a
   * replication connection, which the service does not give (refused at synth, saying so).
   * @default BackupMethod.LOGICAL
   */
  readonly method?: BackupMethod;
}

/**
 * The database to back up. Closed over the three engines; `fromRdsInstance` and
 * `fromDatabaseCluster` also let the runner in through the database's security group.
 *
 * ```ts
 * BackupSource.postgres({ endpoint: 'db.internal', databaseName: 'orders', username: 'backup', secret })
 * BackupSource.fromRdsInstance(instance, { databaseName: 'orders', username: 'backup' })
 * ```
 */
export class BackupSource {
  /** A PostgreSQL database. */
  public static postgres(options: DatabaseEndpointOptions): BackupSource {
    return new BackupSource(Engine.POSTGRES, options);
  }

  /** An Oracle MySQL database (also Aurora MySQL); `mariadb` for MariaDB. */
  public static mysql(options: DatabaseEndpointOptions): BackupSource {
    return new BackupSource(Engine.MYSQL, options);
  }

  /** A MariaDB database (the runner's `mysql` engine with MariaDB's tools). */
  public static mariadb(options: DatabaseEndpointOptions): BackupSource {
    return new BackupSource(Engine.MYSQL, options, undefined, ServerFamily.MARIADB);
  }

  /** A MongoDB database. */
  public static mongodb(options: DatabaseEndpointOptions): BackupSource {
    return new BackupSource(Engine.MONGODB, options);
  }

  /** An RDS instance (PostgreSQL, MySQL or MariaDB). The runner is let in on its port. */
  public static fromRdsInstance(instance: rds.IDatabaseInstance, options: RdsSourceOptions): BackupSource {
    const engine = options.engine ?? engineOf(instance.engine?.engineType, 'fromRdsInstance');
    return new BackupSource(
      engine,
      {
        endpoint: instance.instanceEndpoint.hostname,
        port: instance.instanceEndpoint.port,
        databaseName: options.databaseName,
        username: options.username,
        secret: options.secret ?? secretOf(instance, 'fromRdsInstance'),
        passwordField: options.passwordField,
        engineVersion: options.engineVersion ?? instance.engine?.engineVersion?.fullVersion,
        method: options.method,
      },
      instance,
      familyOf(instance.engine?.engineType),
      true,
      instance.instanceArn,
    );
  }

  /** An Aurora or Multi-AZ DB cluster; the runner reads from the writer endpoint and is let in on its port. */
  public static fromDatabaseCluster(cluster: rds.IDatabaseCluster, options: RdsSourceOptions): BackupSource {
    const engine = options.engine ?? engineOf(cluster.engine?.engineType, 'fromDatabaseCluster');
    return new BackupSource(
      engine,
      {
        endpoint: cluster.clusterEndpoint.hostname,
        port: cluster.clusterEndpoint.port,
        databaseName: options.databaseName,
        username: options.username,
        secret: options.secret ?? secretOf(cluster, 'fromDatabaseCluster'),
        passwordField: options.passwordField,
        engineVersion: options.engineVersion ?? cluster.engine?.engineVersion?.fullVersion,
        method: options.method,
      },
      cluster,
      familyOf(cluster.engine?.engineType),
      true,
      cluster.clusterArn,
    );
  }

  /** The engine. */
  public readonly engine: Engine;
  /** The host name or address. */
  public readonly endpoint: string;
  /** The port (possibly a token). */
  public readonly port: number;
  /** The database name. */
  public readonly databaseName: string;
  /** The user the runner logs in as. */
  public readonly username: string;
  /** The secret with the password. */
  public readonly secret: secretsmanager.ISecret;
  /** The JSON field of the secret that holds the password. */
  public readonly passwordField: string;
  /** The database's network side, when known (RDS): the runner is let in through it. */
  public readonly connectable?: ec2.IConnectable;
  /** The server family, which picks the dump tools (MySQL or MariaDB for the `mysql` engine). */
  public readonly serverFamily: ServerFamily;
  /** The server's version, when declared or known from RDS. */
  public readonly engineVersion?: string;
  /**
   * Amazon RDS or Aurora (`fromRdsInstance`, `fromDatabaseCluster`, or a literal `….rds.amazonaws.com`
   * endpoint): no physical backups, no WAL shipping.
   */
  public readonly managed: boolean;
  /** How the runner backs the server up. */
  public readonly method: BackupMethod;
  /**
   * The ARN of the RDS instance or DB cluster (`fromRdsInstance`, `fromDatabaseCluster`): what
   * `nativeBackup` puts into an AWS Backup plan. Undefined for a self-managed database.
   */
  public readonly databaseArn?: string;

  private constructor(
    engine: Engine,
    options: DatabaseEndpointOptions,
    connectable?: ec2.IConnectable,
    family?: ServerFamily,
    managed = false,
    databaseArn?: string,
  ) {
    this.engine = engine;
    // RDS from fromRdsInstance/fromDatabaseCluster, or a literal RDS endpoint (lib/core, as in CDKTF).
    this.managed = managed || (!Token.isUnresolved(options.endpoint) && isRdsEndpoint(options.endpoint));
    this.method = options.method ?? BackupMethod.LOGICAL;
    checkBackupMethod({ engine, managed: this.managed, method: this.method, service: AWS_MANAGED_SERVICE });
    this.databaseArn = databaseArn;
    const fits = family !== undefined && ServerVersions.of(family).engine === engine;
    this.serverFamily = fits ? family : defaultServerFamily(engine);
    this.engineVersion = options.engineVersion;
    this.endpoint = options.endpoint;
    this.port = options.port ?? DEFAULT_PORTS[engine];
    this.databaseName = options.databaseName;
    this.username = options.username;
    this.secret = options.secret;
    this.passwordField = options.passwordField ?? 'password';
    this.connectable = connectable;

    if (
      !Token.isUnresolved(this.endpoint) &&
      !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9a-fA-F:]+\]$/.test(this.endpoint)
    ) {
      throw new ConfigError(
        `endpoint '${this.endpoint}' is not a host name or address; give only the host (e.g. ` +
          'db.internal.example.com), without scheme, port, user or path.',
      );
    }
    if (!Token.isUnresolved(this.port) && (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535)) {
      throw new ConfigError(
        `port ${this.port} is not a TCP port; use 1-65535 (the ${engine} default is ${DEFAULT_PORTS[engine]}).`,
      );
    }
    if (!Token.isUnresolved(this.databaseName) && !/^[A-Za-z0-9_$-][A-Za-z0-9_$.-]{0,62}$/.test(this.databaseName)) {
      throw new ConfigError(
        `databaseName '${this.databaseName}' is not a database name this construct can put in a URL; use letters, ` +
          'digits, _ $ - and . (up to 63 characters).',
      );
    }
    if (!Token.isUnresolved(this.username) && !/^[A-Za-z0-9_][A-Za-z0-9_.$-]{0,62}$/.test(this.username)) {
      throw new ConfigError(
        `username '${this.username}' is not usable; use letters, digits, _ . $ - (up to 63 characters).`,
      );
    }
    if (!Token.isUnresolved(this.passwordField) && !/^[A-Za-z0-9_.-]+$/.test(this.passwordField)) {
      throw new ConfigError(
        `passwordField '${this.passwordField}' is not a JSON key ECS can read; use e.g. 'password'.`,
      );
    }
    if (this.engineVersion !== undefined && !Token.isUnresolved(this.engineVersion)) {
      ServerVersions.check(this.serverFamily, this.engineVersion, 'engineVersion');
    }
  }

  /** The runner's source URL: `postgres://user@host:port/db` (no password). */
  public get url(): string {
    return `${this.engine}://${this.username}@${this.endpoint}:${Token.asString(this.port)}/${this.databaseName}`;
  }
}

function engineOf(engineType: string | undefined, where: string): Engine {
  switch (engineType) {
    case 'postgres':
    case 'aurora-postgresql':
      return Engine.POSTGRES;
    case 'mysql':
    case 'mariadb':
    case 'aurora-mysql':
    case 'aurora':
      return Engine.MYSQL;
    case undefined:
      throw new ConfigError(
        `BackupSource.${where}: the database does not say its engine (an imported one?); pass engine: ` +
          'Engine.POSTGRES or Engine.MYSQL.',
      );
    default:
      throw new ConfigError(
        `BackupSource.${where}: the engine '${engineType}' is not one the runner backs up; it backs up PostgreSQL, ` +
          'MySQL/MariaDB and MongoDB.',
      );
  }
}

/** The family an RDS engine type names; undefined when it names none (an imported database). */
function familyOf(engineType: string | undefined): ServerFamily | undefined {
  switch (engineType) {
    case 'postgres':
    case 'aurora-postgresql':
      return ServerFamily.POSTGRES;
    case 'mariadb':
      return ServerFamily.MARIADB;
    case 'mysql':
    case 'aurora-mysql':
    case 'aurora':
      return ServerFamily.MYSQL;
    default:
      return undefined;
  }
}

function secretOf(db: object, where: string): secretsmanager.ISecret {
  const secret = (db as { secret?: secretsmanager.ISecret }).secret;
  if (secret === undefined) {
    throw new ConfigError(
      `BackupSource.${where}: the database has no generated secret here; pass secret: the Secrets Manager secret ` +
        "with the backup user's password.",
    );
  }
  return secret;
}

/** How the runner encrypts a backup's artifacts before they leave the task. */
export class BackupEncryption {
  /**
   * With `age` to a per-backup key, whose only stored form is wrapped by a KMS key (in the
   * manifest). Restores need `kms:Decrypt` on the key, no key file.
   * @param key the wrapping key. @default - the vault's key
   */
  public static kms(key?: kms.IKey): BackupEncryption {
    return new BackupEncryption(EncryptionScheme.KMS, key);
  }

  /**
   * With `age` to a recipient (`age1…` or an SSH public key). Restores and drills need the
   * identity (private key), which stays with you: scheduled drills cannot run with it.
   */
  public static age(recipient: string): BackupEncryption {
    if (!Token.isUnresolved(recipient)) parseEncryption(`age:${recipient}`, 'BackupEncryption.age');
    return new BackupEncryption(EncryptionScheme.AGE, undefined, recipient);
  }

  /** No encryption by the runner; the vault's SSE-KMS still encrypts at rest. */
  public static none(): BackupEncryption {
    return new BackupEncryption(EncryptionScheme.NONE);
  }

  private constructor(
    /** The scheme. */
    public readonly scheme: EncryptionScheme,
    /** The KMS key of a `kms` encryption, if given. */
    public readonly key?: kms.IKey,
    /** The age recipient of an `age` encryption. */
    public readonly recipient?: string,
  ) {}
}

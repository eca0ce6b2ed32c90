import { Token } from 'cdktf';
import {
  AWS_MANAGED_SERVICE,
  BackupMethod,
  checkBackupMethod,
  Engine,
  isRdsEndpoint,
  ServerFamily,
  ServerVersions,
} from '../../core';
import { checkSourceUrl, databaseNameOf, managedSource, serverFamilyOf } from '../common/source';
import { IKeyRef, ISecretRef } from './refs';

/** Properties of a database source. */
export interface BackupSourceOptions {
  /**
   * The database URL without a password, e.g. `postgres://backup@orders.internal:5432/orders`.
   * Tokens are fine (`postgres://backup@${db.address}:5432/orders`).
   */
  readonly url: string;
  /** The Secrets Manager secret holding the password; ECS injects it as `DBBACKUP_SOURCE_PASSWORD`. */
  readonly passwordSecret: ISecretRef;
  /**
   * The JSON key of the password inside the secret (RDS-managed secrets: `password`).
   * @default - the whole secret string is the password
   */
  readonly passwordField?: string;
  /**
   * The customer-managed key the secret is encrypted with, if any (the task's execution role
   * then needs `kms:Decrypt` on it).
   * @default - the secret uses the AWS-managed key
   */
  readonly passwordSecretKey?: IKeyRef;
  /**
   * How the runner backs the server up: `BackupMethod.LOGICAL` (pg_dump, mariadb-dump,
   * mongodump) or `BackupMethod.PHYSICAL` (pg_basebackup; mariadb-backup for MariaDB, Percona
   * XtraBackup for MySQL). Physical is for a self-managed server: an RDS or Aurora source
   * (`managed`) is refused at synth.
   * @default BackupMethod.LOGICAL
   */
  readonly method?: BackupMethod;
  /**
   * The server is Amazon RDS or Aurora: physical backups, PostgreSQL incremental/differential
   * schedules and PostgreSQL WAL streaming are then refused at synth, as for the AWS CDK flavour's
   * `fromRdsInstance`. Set it when the URL's host is a token (`${aws_db_instance.address}`, which
   * cannot be read at synth) or a name of your own for an RDS endpoint; `false` against a literal
   * RDS host is refused.
   * @default - true when the URL's literal host is an RDS endpoint (`….rds.amazonaws.com`), else
   * false (a token host is taken as self-managed; the runner then fails what RDS cannot do)
   */
  readonly managed?: boolean;
  /**
   * The server's version (`16.4`, `8.4`, `11.4`): the restore drill runs the same major version,
   * and a server newer than the runner image's tools can dump is refused at synth.
   * @default - not known: the drill runs the family's default image
   */
  readonly engineVersion?: string;
}

/** Whether a URL's host is a literal Amazon RDS/Aurora endpoint (lib/core `isRdsEndpoint`); a token host is not. */
function isRdsHost(url: string): boolean {
  const host = /^[a-z+]+:\/\/(?:[^/@]*@)?([^/:@?]+)/i.exec(url)?.[1];
  return host !== undefined && !Token.isUnresolved(host) && isRdsEndpoint(host);
}

/** The database to back up, and where its password comes from. */
export class BackupSource {
  public static postgres(options: BackupSourceOptions): BackupSource {
    return new BackupSource(Engine.POSTGRES, options);
  }
  /** An Oracle MySQL database (a `mariadb://` URL, or `mariadb`, for MariaDB). */
  public static mysql(options: BackupSourceOptions): BackupSource {
    return new BackupSource(Engine.MYSQL, options);
  }
  /** A MariaDB database (the runner's `mysql` engine with MariaDB's tools). */
  public static mariadb(options: BackupSourceOptions): BackupSource {
    return new BackupSource(Engine.MYSQL, options, true);
  }
  public static mongodb(options: BackupSourceOptions): BackupSource {
    return new BackupSource(Engine.MONGODB, options);
  }

  /** The port the database listens on (from the URL, or the engine's default). */
  public readonly port: number;
  /** How the runner backs the server up. */
  public readonly method: BackupMethod;
  /** Amazon RDS or Aurora (`managed`, or the URL's host is an RDS endpoint): no physical backups, no WAL streaming. */
  public readonly managed: boolean;
  /** The server family (the drill's scratch server is the same). */
  public readonly serverFamily: ServerFamily;
  /** The server's version, when given. */
  public readonly engineVersion?: string;
  /** The database name in the URL (the default database id), when it is not a token. */
  public readonly databaseName?: string;

  private constructor(
    public readonly engine: Engine,
    public readonly options: BackupSourceOptions,
    mariadb = false,
  ) {
    this.port = checkSourceUrl(options.url, engine);
    this.method = options.method ?? BackupMethod.LOGICAL;
    this.managed = managedSource(options.url, isRdsHost(options.url), options.managed, AWS_MANAGED_SERVICE);
    checkBackupMethod({ engine, managed: this.managed, method: this.method, service: AWS_MANAGED_SERVICE });
    this.serverFamily = serverFamilyOf(engine, options.url, mariadb);
    this.engineVersion = options.engineVersion;
    if (this.engineVersion !== undefined && !Token.isUnresolved(this.engineVersion)) {
      ServerVersions.check(this.serverFamily, this.engineVersion, 'engineVersion');
    }
    this.databaseName = databaseNameOf(options.url, engine);
  }

  public get url(): string {
    return this.options.url;
  }

  /** The ECS `secrets[].valueFrom` of the password. */
  public get passwordValueFrom(): string {
    const field = this.options.passwordField;
    return field === undefined ? this.options.passwordSecret.arn : `${this.options.passwordSecret.arn}:${field}::`;
  }
}

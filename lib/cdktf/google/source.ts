import { Token } from 'cdktf';
import {
  BackupMethod,
  ConfigError,
  Engine,
  GOOGLE_MANAGED_SERVICE,
  ServerFamily,
  ServerVersions,
  checkBackupMethod,
} from '../../core';
import { checkSourceUrl, databaseNameOf, managedSource, serverFamilyOf } from '../common/source';
import { ISecretRef } from './refs';

/** Properties of a database source. */
export interface BackupSourceOptions {
  /**
   * The database URL without a password: `postgres://backup@10.20.0.5:5432/orders`, or for a
   * Cloud SQL instance mounted through `cloudSqlInstances`:
   * `postgres://backup@localhost/orders?host=/cloudsql/PROJECT:REGION:INSTANCE`.
   */
  readonly url: string;
  /** The Secret Manager secret holding the password; Cloud Run injects it as `DBBACKUP_SOURCE_PASSWORD`. */
  readonly passwordSecret: ISecretRef;
  /**
   * The secret version.
   * @default 'latest'
   */
  readonly passwordSecretVersion?: string;
  /**
   * How the runner backs the server up: `BackupMethod.LOGICAL` or `BackupMethod.PHYSICAL`
   * (pg_basebackup; mariadb-backup for MariaDB, Percona XtraBackup for MySQL). Physical is for a
   * self-managed server (e.g. on Compute Engine): a Cloud SQL source (`managed`) is refused at
   * synth, as RDS is in the AWS flavours.
   * @default BackupMethod.LOGICAL
   */
  readonly method?: BackupMethod;
  /**
   * The server is a Cloud SQL instance: physical backups, PostgreSQL incremental/differential
   * schedules and PostgreSQL WAL streaming are then refused at synth. Set it for a Cloud SQL
   * instance reached by its IP address (a literal or a token such as
   * `${google_sql_database_instance.private_ip_address}`), which the URL does not show; `false`
   * against a `/cloudsql/` socket URL is refused.
   * @default - true when the URL names a `/cloudsql/` socket (`?host=/cloudsql/…`), else false
   */
  readonly managed?: boolean;
  /**
   * The server's version (`16.4`, `8.4`, `11.4`): the restore drill runs the same major version.
   * @default - not known: the drill runs the family's default image
   */
  readonly engineVersion?: string;
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

  public readonly port: number;
  /** How the runner backs the server up. */
  public readonly method: BackupMethod;
  /** A Cloud SQL instance (`managed`, or its `/cloudsql/` socket in the URL): no physical backups, no WAL streaming. */
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
    const socket = /[?&](host|socket)=\/cloudsql\//.test(options.url);
    this.managed = managedSource(options.url, socket, options.managed, GOOGLE_MANAGED_SERVICE);
    checkBackupMethod({ engine, managed: this.managed, method: this.method, service: GOOGLE_MANAGED_SERVICE });
    this.serverFamily = serverFamilyOf(engine, options.url, mariadb);
    this.engineVersion = options.engineVersion;
    if (this.engineVersion !== undefined && !Token.isUnresolved(this.engineVersion)) {
      ServerVersions.check(this.serverFamily, this.engineVersion, 'engineVersion');
    }
    this.databaseName = databaseNameOf(options.url, engine);
    const v = options.passwordSecretVersion;
    if (v !== undefined && !Token.isUnresolved(v) && !/^(latest|[1-9]\d*)$/.test(v)) {
      throw new ConfigError(
        `passwordSecretVersion '${v}' is not a secret version; use 'latest' or a version number such as '3'.`,
      );
    }
  }

  public get url(): string {
    return this.options.url;
  }
}

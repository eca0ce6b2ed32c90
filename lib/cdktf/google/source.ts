import { Token } from 'cdktf';
import { ConfigError, Engine } from '../../core';
import { checkSourceUrl } from '../common/source';
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
}

/** The database to back up, and where its password comes from. */
export class BackupSource {
  public static postgres(options: BackupSourceOptions): BackupSource {
    return new BackupSource(Engine.POSTGRES, options);
  }
  /** MySQL or MariaDB (`mysql://` or `mariadb://`). */
  public static mysql(options: BackupSourceOptions): BackupSource {
    return new BackupSource(Engine.MYSQL, options);
  }
  public static mongodb(options: BackupSourceOptions): BackupSource {
    return new BackupSource(Engine.MONGODB, options);
  }

  public readonly port: number;

  private constructor(
    public readonly engine: Engine,
    public readonly options: BackupSourceOptions,
  ) {
    this.port = checkSourceUrl(options.url, engine);
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

import { BackupMethod, checkBackupMethod, Engine } from '../../core';
import { checkSourceUrl } from '../common/source';
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
   * XtraBackup for MySQL). Physical is for a self-managed server; a URL whose host is an RDS
   * endpoint (`….rds.amazonaws.com`) is refused at synth (a host given as a token cannot be
   * checked here: the runner's backup then fails, saying why).
   * @default BackupMethod.LOGICAL
   */
  readonly method?: BackupMethod;
}

/** Whether a literal URL's host is an Amazon RDS/Aurora endpoint. */
function isRdsHost(url: string): boolean {
  return /^[a-z+]+:\/\/(?:[^/@]*@)?[^/:@]+\.rds\.amazonaws\.com(?::\d+)?(?:\/|$)/i.test(url);
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

  /** The port the database listens on (from the URL, or the engine's default). */
  public readonly port: number;
  /** How the runner backs the server up. */
  public readonly method: BackupMethod;

  private constructor(
    public readonly engine: Engine,
    public readonly options: BackupSourceOptions,
  ) {
    this.port = checkSourceUrl(options.url, engine);
    this.method = options.method ?? BackupMethod.LOGICAL;
    checkBackupMethod({ engine, managed: isRdsHost(options.url), method: this.method });
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

import { Engine } from '../../core';
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

  private constructor(
    public readonly engine: Engine,
    public readonly options: BackupSourceOptions,
  ) {
    this.port = checkSourceUrl(options.url, engine);
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

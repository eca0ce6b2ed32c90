/**
 * The cloud-neutral model shared by the AWS CDK constructs, the CDKTF constructs and the
 * `dbbackup` runner. Closed sets are string enums; their values are what the runner accepts
 * on its command line and in its environment.
 */

/** A database engine the runner can back up. */
export enum Engine {
  POSTGRES = 'postgres',
  MYSQL = 'mysql',
  MONGODB = 'mongodb',
}

/** What a backup holds relative to the others in its chain. */
export enum BackupType {
  /** A complete, self-contained backup. */
  FULL = 'full',
  /** Only the changes since the previous backup of any type. */
  INCREMENTAL = 'incremental',
  /** Only the changes since the last full backup. */
  DIFFERENTIAL = 'differential',
}

/** How a PostgreSQL full backup is taken. */
export enum BackupMethod {
  /** `pg_dump` / `mariadb-dump` / `mongodump`: portable, per database. */
  LOGICAL = 'logical',
  /** `pg_basebackup`: the whole cluster, the base for point-in-time recovery. */
  PHYSICAL = 'physical',
}

/** Compression applied by the runner; each is decodable by its standard command-line tool. */
export enum Compression {
  ZSTD = 'zstd',
  GZIP = 'gzip',
  LZ4 = 'lz4',
  NONE = 'none',
}

/** The retention tier a backup is assigned to; storage lifecycle rules expire each tier. */
export enum RetentionTier {
  DAILY = 'daily',
  WEEKLY = 'weekly',
  MONTHLY = 'monthly',
}

/** The object tag (S3) or metadata key (GCS) that carries a stored object's retention tier. */
export const TIER_TAG_KEY = 'dbbackup-tier';

/** The name of the file that commits a backup: a folder without it is not a backup. */
export const MANIFEST_NAME = 'manifest.json';

/** The version of the manifest format written by this release. */
export const MANIFEST_VERSION = 2;

/** Exit codes of the runner (fixed contract). */
export enum ExitCode {
  OK = 0,
  FAILED = 1,
  USAGE = 2,
  DAMAGED = 3,
}

/**
 * `wal-fetch` (PostgreSQL's restore_command): PostgreSQL reads any exit code up to 125 as "not in
 * the archive" and ends recovery there (and, without a recovery target, promotes). A runtime
 * failure (storage unreachable, a permission error, a tool that failed) may be transient, so it
 * exits 128 + 1 = 129, and a misconfigured restore_command (no key for an encrypted archive, a
 * %f that is not a WAL name) 128 + 2 = 130: above 125, PostgreSQL's startup process aborts
 * recovery instead, and the data directory resumes once the cause is fixed. (Options wal-fetch
 * cannot parse still exit 2: that is decided before the command runs.) (126 and 127 would read "command not
 * executable" / "command not found" in the server's log.) Damage and gaps keep exit 3: they are
 * permanent, and PostgreSQL 15 reads WAL ahead of replay, so a restore to a moment before a gap
 * asks for the missing segment after its target; with a target not yet reached, 3 still stops
 * recovery with "recovery ended before configured recovery target was reached".
 */
export const WAL_FETCH_ABORT_BASE = 128;

/** Default ports of each engine, used when a URL names none. */
export const DEFAULT_PORTS: Readonly<Record<Engine, number>> = {
  [Engine.POSTGRES]: 5432,
  [Engine.MYSQL]: 3306,
  [Engine.MONGODB]: 27017,
};

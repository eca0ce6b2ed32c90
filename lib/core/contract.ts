/**
 * The runner configuration contract: every option of `dbbackup`, the environment variable
 * that also sets it, and the commands that take it. The constructs render this into a task's
 * environment (`renderRunnerEnvironment`) and the runner parses the same table, so the two
 * cannot drift apart.
 */

import { DEFAULT_COMPRESSION } from './codecs';
import { MAX_DEFAULT_JOBS } from './parallel';
import { BackupMethod, BackupType, Compression, Engine, RetentionTier } from './model';
import { ConfigError } from './errors';
import { EncryptionScheme } from './urls';

/** A command of the runner. */
export enum RunnerCommand {
  BACKUP = 'backup',
  RESTORE = 'restore',
  VERIFY = 'verify',
  LIST = 'list',
  PRUNE = 'prune',
  DRILL = 'drill',
  WAL_PUSH = 'wal-push',
  WAL_FETCH = 'wal-fetch',
  BINLOG_STREAM = 'binlog-stream',
  WAL_RECEIVE = 'wal-receive',
  SCHEDULE = 'schedule',
  RUNBOOK = 'runbook',
}

/** The kind of value an option takes. */
export enum OptionKind {
  STRING = 'string',
  FLAG = 'flag',
  INTEGER = 'integer',
}

/** One option of the runner. */
export interface OptionSpec {
  /** The long flag without dashes, e.g. `source`. */
  readonly name: string;
  /** The environment variable that sets it, e.g. `DBBACKUP_SOURCE`. */
  readonly env: string;
  readonly kind: OptionKind;
  readonly commands: readonly RunnerCommand[];
  readonly help: string;
  /** The allowed values of a string option with a closed set (from the model's enums). */
  readonly choices?: readonly string[];
  /** The value when the option is not given, where it is one value whatever the other options. */
  readonly default?: string;
  /**
   * The engines the option applies to, where it is not every engine the command takes. The
   * runner refuses it for another engine where the command knows the engine (backup's --engine,
   * a restore's or drill's --target); `--help` and docs/cli.md print the list.
   */
  readonly engines?: readonly Engine[];
  /**
   * A value another engine still takes, because it asks for what that engine does anyway
   * (`--jobs 1`: one stream).
   */
  readonly otherEnginesTake?: string;
}

const C = RunnerCommand;
/** The commands whose outcome `--metrics-file` and `--notify` report. */
const REPORTED = [C.BACKUP, C.RESTORE, C.VERIFY, C.DRILL];

function opt(
  name: string,
  kind: OptionKind,
  commands: RunnerCommand[],
  help: string,
  choices?: readonly string[],
  defaultValue?: string,
): OptionSpec {
  const env = 'DBBACKUP_' + name.toUpperCase().replace(/-/g, '_');
  return { name, env, kind, commands, help, choices, ...(defaultValue !== undefined ? { default: defaultValue } : {}) };
}

/** An option that applies to `engines` only (another engine may still be given `otherEnginesTake`). */
function forEngines(engines: Engine[], spec: OptionSpec, otherEnginesTake?: string): OptionSpec {
  return { ...spec, engines, ...(otherEnginesTake !== undefined ? { otherEnginesTake } : {}) };
}

/** The engines that run a dump or restore tool with its own parallel jobs, lock timeout and row counts. */
const SQL_ENGINES = [Engine.POSTGRES, Engine.MYSQL];

/** Seconds without a byte moving through a pipeline before the run fails as stalled. */
export const DEFAULT_STALL_TIMEOUT_SECONDS = 300;

/** The schemes `--require-encryption` takes: every scheme but `none`. */
export const REQUIRABLE_SCHEMES: readonly string[] = Object.values(EncryptionScheme).filter(
  (s) => s !== EncryptionScheme.NONE,
);

/**
 * Hours after which a manifest-less folder or a partial file on file:// storage, whose writer
 * cannot be asked (another host, no marker), counts as left over by a killed run.
 */
export const DEFAULT_LEFTOVER_HOURS = 24;

/**
 * The `--require-encryption` (and the verification function's DBBACKUP_REQUIRE_ENCRYPTION) the
 * constructs set for backups encrypted with `scheme`: kms: backups are the ones whose manifests
 * are authenticated (an HMAC only a holder of kms:Decrypt can make), so their tasks and verifier
 * refuse a manifest of any other scheme. Other schemes set nothing.
 */
export function requiredEncryptionFor(scheme: EncryptionScheme): EncryptionScheme | undefined {
  return scheme === EncryptionScheme.KMS ? EncryptionScheme.KMS : undefined;
}

/** Every option of every command. */
export const RUNNER_OPTIONS: readonly OptionSpec[] = [
  opt('engine', OptionKind.STRING, [C.BACKUP, C.BINLOG_STREAM], 'the database engine', Object.values(Engine)),
  opt(
    'source',
    OptionKind.STRING,
    [C.BACKUP, C.BINLOG_STREAM, C.WAL_RECEIVE],
    'the database URL, without a password (postgres://user@host:port/db)',
  ),
  opt(
    'to',
    OptionKind.STRING,
    [C.BACKUP, C.WAL_PUSH, C.BINLOG_STREAM, C.WAL_RECEIVE],
    'the storage URL (file:///abs/path, s3://bucket/prefix, gs://bucket/prefix, az://account/container/prefix)',
  ),
  opt(
    'type',
    OptionKind.STRING,
    [C.BACKUP],
    'full, incremental or differential',
    Object.values(BackupType),
    BackupType.FULL,
  ),
  opt(
    'method',
    OptionKind.STRING,
    [C.BACKUP],
    'logical (pg_dump, mariadb-dump) or physical (pg_basebackup; mariadb-backup or XtraBackup) (default logical)',
    Object.values(BackupMethod),
  ),
  opt(
    'compression',
    OptionKind.STRING,
    [C.BACKUP, C.WAL_PUSH, C.BINLOG_STREAM, C.WAL_RECEIVE],
    'zstd, gzip, lz4 or none',
    Object.values(Compression),
    DEFAULT_COMPRESSION,
  ),
  opt(
    'encrypt',
    OptionKind.STRING,
    [C.BACKUP, C.WAL_PUSH, C.BINLOG_STREAM, C.WAL_RECEIVE],
    'none, age:RECIPIENT, kms:KEY_ID, gpg:RECIPIENT or openssl:KEYFILE (default none)',
  ),
  opt(
    'tier',
    OptionKind.STRING,
    [C.BACKUP],
    'the retention tier; by default the first backup of a month is monthly, of an ISO week weekly, the rest daily',
    Object.values(RetentionTier),
  ),
  opt(
    'tier-days',
    OptionKind.STRING,
    [C.BACKUP],
    "the days each tier's lifecycle rule keeps a backup (daily=7,weekly=28,monthly=372): an incremental or " +
      "differential backup then keeps its chain whole, raising a base's S3 tier tag where it would expire first",
  ),
  opt(
    'lock-wait',
    OptionKind.INTEGER,
    [C.BACKUP],
    'seconds to wait for an overlapping backup of the same database to the same place to end (default 0: refuse at ' +
      'once)',
  ),
  opt(
    'json',
    OptionKind.FLAG,
    [C.BACKUP, C.LIST, C.VERIFY, C.RESTORE, C.PRUNE, C.DRILL],
    'print one JSON document instead of a summary',
  ),
  opt(
    'from',
    OptionKind.STRING,
    [C.RESTORE, C.VERIFY, C.LIST, C.PRUNE, C.DRILL, C.WAL_FETCH, C.RUNBOOK],
    'the storage URL to read backups from',
  ),
  opt('latest', OptionKind.FLAG, [C.RESTORE, C.VERIFY, C.RUNBOOK], 'use the newest backup'),
  opt('id', OptionKind.STRING, [C.RESTORE, C.VERIFY, C.RUNBOOK], 'use the backup with this id'),
  opt(
    'database',
    OptionKind.STRING,
    [C.RESTORE, C.VERIFY, C.DRILL, C.RUNBOOK],
    'with --latest and drill: which database of a store with several (database id, or name if unambiguous)',
  ),
  opt('all', OptionKind.FLAG, [C.VERIFY], 'verify every backup'),
  opt('deep', OptionKind.FLAG, [C.VERIFY], 'also decrypt, decompress and have the engine tool read each archive'),
  opt(
    'to-time',
    OptionKind.STRING,
    [C.RESTORE],
    'restore to this moment (ISO-8601, point-in-time recovery); PostgreSQL --target-dir also takes latest ' +
      '(the end of the archived WAL, its streamed partial segment included)',
  ),
  opt(
    'target',
    OptionKind.STRING,
    [C.RESTORE, C.DRILL, C.RUNBOOK],
    'the database URL to restore into, without a password (runbook: the URL its commands name)',
  ),
  opt('target-dir', OptionKind.STRING, [C.RESTORE], 'a data directory to lay a physical backup down in'),
  opt(
    'identity',
    OptionKind.STRING,
    [C.RESTORE, C.VERIFY, C.DRILL, C.WAL_FETCH],
    'the file that decrypts: an age identity, a GnuPG secret key or an OpenSSL key file',
  ),
  opt(
    'abort-recovery',
    OptionKind.FLAG,
    [C.WAL_FETCH],
    "as PostgreSQL's restore_command: a runtime failure exits 129 and a misconfiguration 130 (above 125: " +
      'PostgreSQL aborts recovery instead of taking it for the end of the archive); not in the archive stays 1, ' +
      'damage 3. restore --to-time writes it into restore_command',
  ),
  opt(
    'require-encryption',
    OptionKind.STRING,
    [C.BACKUP, C.RESTORE, C.VERIFY, C.LIST, C.DRILL],
    'refuse (exit 3) every manifest that is not encrypted with this scheme, or is version 1 (no digest), or is a ' +
      'kms: manifest whose HMAC is missing or cannot be checked; backup: --encrypt must use it (default: any)',
    REQUIRABLE_SCHEMES,
  ),
  opt('with-globals', OptionKind.FLAG, [C.RESTORE], 'also restore roles and other globals'),
  opt('clean', OptionKind.FLAG, [C.RESTORE], 'replace the objects of a target database that already has tables'),
  opt('keep-daily', OptionKind.INTEGER, [C.PRUNE], 'how many days keep their newest backup'),
  opt('keep-weekly', OptionKind.INTEGER, [C.PRUNE], 'how many ISO weeks keep their newest backup'),
  opt('keep-monthly', OptionKind.INTEGER, [C.PRUNE], 'how many months keep their newest backup'),
  opt('dry-run', OptionKind.FLAG, [C.PRUNE], 'say what would be deleted, delete nothing'),
  opt(
    'stall-timeout',
    OptionKind.INTEGER,
    [C.BACKUP, C.RESTORE, C.VERIFY, C.DRILL, C.WAL_PUSH, C.WAL_FETCH, C.BINLOG_STREAM, C.WAL_RECEIVE],
    'seconds without a byte moving through a pipeline before the run fails as stalled ' +
      `(default ${DEFAULT_STALL_TIMEOUT_SECONDS}; 0: never)`,
  ),
  // MongoDB measures no replication lag: a gate it would not apply is refused, not ignored.
  forEngines(
    SQL_ENGINES,
    opt(
      'max-replica-lag',
      OptionKind.STRING,
      [C.BACKUP],
      'when the source is a replica, fail the backup (exit 1, no manifest) if its replication lag is above ' +
        'this duration (30s, 5m) before or after the dump; the manifest records the lag measured; a primary ' +
        'ignores it',
    ),
  ),
  opt(
    'drill-seed',
    OptionKind.STRING,
    [C.DRILL],
    'seed of the random moment a drill restores where the store holds a log archive (point-in-time recovery); ' +
      'the same seed and window give the same moment (default: a new seed each run, printed)',
  ),
  forEngines(
    SQL_ENGINES,
    opt(
      'jobs',
      OptionKind.INTEGER,
      [C.BACKUP, C.RESTORE, C.DRILL],
      'parallel jobs of the dump or restore tool (PostgreSQL pg_dump/pg_restore -j; MySQL/MariaDB above 1: ' +
        'mydumper/myloader -t); default: the cores, at most ' +
        `${MAX_DEFAULT_JOBS}, for a PostgreSQL database with at least two large tables or a backup dumped in ` +
        'parallel, else 1 (a MySQL/MariaDB backup: 1); MongoDB runs one mongodump/mongorestore stream (only 1 is ' +
        'taken)',
    ),
    '1',
  ),
  forEngines(
    SQL_ENGINES,
    opt(
      'row-counts',
      OptionKind.STRING,
      [C.BACKUP],
      "how the manifest's per-table row counts (for restore drills) are taken: exact (count(*) in the dump's " +
        'snapshot, a second scan of every table) or estimate (the planner statistics, no scan; drills then check ' +
        'tables only)',
      ['exact', 'estimate'],
      'exact',
    ),
  ),
  forEngines(
    SQL_ENGINES,
    opt(
      'lock-timeout',
      OptionKind.INTEGER,
      [C.BACKUP],
      "seconds a backup waits for another session's lock on a table before it gives up (default 60)",
    ),
  ),
  // wal-receive (PostgreSQL's streaming WAL shipper): engines/postgres/wal-receive.ts
  opt(
    'slot',
    OptionKind.STRING,
    [C.WAL_RECEIVE],
    'the physical replication slot pg_receivewal streams from (the server keeps the WAL it has not received)',
    undefined,
    'dbbackup',
  ),
  opt('create-slot', OptionKind.FLAG, [C.WAL_RECEIVE], 'create the --slot if it does not exist yet (if-not-exists)'),
  opt(
    'synchronous',
    OptionKind.FLAG,
    [C.WAL_RECEIVE],
    'flush each received WAL piece at once and report it flushed ' +
      '(pg_receivewal --synchronous; for synchronous_standby_names)',
  ),
  opt(
    'partial-interval',
    OptionKind.STRING,
    [C.WAL_RECEIVE],
    'how often the segment being received (.partial) is uploaded: seconds, or a number with ms, s or m',
    undefined,
    '5s',
  ),
  opt(
    'spool-dir',
    OptionKind.STRING,
    [C.WAL_RECEIVE],
    'the local directory pg_receivewal writes into (default: a private temporary directory, removed at exit)',
  ),
  opt(
    'leftover-hours',
    OptionKind.INTEGER,
    [C.BACKUP, C.PRUNE],
    'file:// storage: hours without change after which a manifest-less folder or partial file of a writer that ' +
      'cannot be asked (another host) is a leftover of a killed run that backup and prune remove (1 or more)',
    undefined,
    String(DEFAULT_LEFTOVER_HOURS),
  ),
  // Reporting outside AWS (runner/src/report): a Prometheus textfile and a webhook.
  opt(
    'metrics-file',
    OptionKind.STRING,
    REPORTED,
    "write the run's metrics, Prometheus text format, to this *.prom file (node_exporter's textfile collector)",
  ),
  opt(
    'notify',
    OptionKind.STRING,
    REPORTED,
    'post a JSON summary of the run to this http(s) webhook URL (on failure; see --notify-on)',
  ),
  opt('notify-on', OptionKind.STRING, REPORTED, 'when --notify posts (default failure)', [
    'failure',
    'success',
    'always',
  ]),
  // schedule systemd|cron [backup|drill|verify] --calendar SPEC [that command's options]: commands/schedule.ts
  opt(
    'calendar',
    OptionKind.STRING,
    [C.SCHEDULE],
    'when to run: a systemd OnCalendar= expression (systemd) or a 5-field cron expression (cron)',
  ),
  opt('out', OptionKind.STRING, [C.SCHEDULE], 'write the files into this directory instead of printing them'),
  opt('name', OptionKind.STRING, [C.SCHEDULE], 'the unit or cron file name (default dbbackup-COMMAND-DATABASE)'),
  opt('user', OptionKind.STRING, [C.SCHEDULE], 'the system user the job runs as (default dbbackup)'),
  opt(
    'exec',
    OptionKind.STRING,
    [C.SCHEDULE],
    'the absolute path of the dbbackup program the job runs (default: this node and this program)',
  ),
  opt('randomized-delay', OptionKind.INTEGER, [C.SCHEDULE], 'systemd: RandomizedDelaySec= in seconds (default 300)'),
  opt(
    'database-id',
    OptionKind.STRING,
    [C.SCHEDULE],
    'the DBBACKUP_DATABASE_ID the job reports under (give a backup and its drill the same one)',
  ),
];

/** Environment variables that carry secrets. They are read, never printed. */
export const SECRET_ENV = {
  SOURCE_PASSWORD: 'DBBACKUP_SOURCE_PASSWORD',
  TARGET_PASSWORD: 'DBBACKUP_TARGET_PASSWORD',
} as const;

/** Other environment variables the runner reads. */
export const RUNNER_ENV = {
  /** `json` or `text`: the log format on stderr (default: JSON lines when stderr is not a terminal). */
  LOG_FORMAT: 'DBBACKUP_LOG_FORMAT',
  /** Seconds between progress lines on long work (default 10). */
  PROGRESS_INTERVAL: 'DBBACKUP_PROGRESS_INTERVAL',
  /** The database's identifier in metrics and lock names (default: the source's host/database). */
  DATABASE_ID: 'DBBACKUP_DATABASE_ID',
  /** A directory holding the PostgreSQL client tools to use (default: the newest Debian install, then PATH). */
  PG_BIN: 'DBBACKUP_PG_BIN',
  /** binlog-stream: seconds between uploads of the open binary log (default 60). */
  BINLOG_UPLOAD_INTERVAL: 'DBBACKUP_BINLOG_UPLOAD_INTERVAL',
} as const;

/** Look an option up by name. */
export function optionSpec(name: string): OptionSpec | undefined {
  return RUNNER_OPTIONS.find((o) => o.name === name);
}

/** Runner settings as the constructs know them, keyed by option name (`source`, `to`, …). */
export type RunnerSettings = Readonly<Record<string, string | number | boolean | undefined>>;

/**
 * Render settings into the environment of a task that runs `command`. Fails on an option that
 * the command does not take, or that the settings' `engine` does not (an option's `engines`: the
 * runner would refuse the task at every run), so a construct cannot configure something the
 * runner ignores or refuses.
 */
export function renderRunnerEnvironment(command: RunnerCommand, settings: RunnerSettings): Record<string, string> {
  const env: Record<string, string> = {};
  const engine = settings.engine as Engine | undefined;
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined) continue;
    const spec = optionSpec(name);
    if (spec === undefined) throw new Error(`'${name}' is not an option of the runner`);
    if (!spec.commands.includes(command)) throw new Error(`the runner's ${command} command takes no option '${name}'`);
    if (engine !== undefined && spec.engines !== undefined && !spec.engines.includes(engine)) {
      if (String(value) !== spec.otherEnginesTake) {
        throw new ConfigError(
          `--${name} (${spec.env}) is '${value}', but it applies to ${spec.engines.join(' and ')} sources only, ` +
            `not to this ${engine} source, whose runner would refuse every run; leave the setting out.`,
        );
      }
    }
    if (spec.kind === OptionKind.FLAG) {
      if (value === true) env[spec.env] = 'true';
      continue;
    }
    env[spec.env] = String(value);
  }
  return env;
}

/**
 * What each engine can do, once: the backup methods and types it takes, whether it restores to
 * a moment and how it ships its log. The runner's option validation reads it (config.ts), and
 * the runner's drivers implement what it declares (runner/src/engines/<engine>/).
 */
import { RunnerCommand } from './contract';
import { ConfigError } from './errors';
import { METRICS } from './metrics';
import { BackupMethod, BackupType, Engine } from './model';

/** How an engine ships its log for point-in-time recovery. */
export enum LogShipping {
  /** PostgreSQL's archive_command/restore_command call `dbbackup wal-push`/`wal-fetch`. */
  WAL = 'wal',
  /** `dbbackup binlog-stream` follows the MySQL/MariaDB binary log. */
  BINLOG = 'binlog',
}

/**
 * How a long-running shipper streams an engine's log into the archive (the constructs run it as
 * a one-task service): the runner command, the archive folder it fills and its lag metric.
 */
export interface LogStreaming {
  readonly command: RunnerCommand;
  /** The log archive's folder under a database's prefix (lib/core/layout.ts's LOG_ARCHIVE_FOLDERS). */
  readonly folder: 'wal' | 'binlog';
  /** The metric the shipper publishes its lag as (seconds). */
  readonly lagMetric: string;
  /** Whether it needs a connection managed services (RDS, Aurora) do not give (a replication connection). */
  readonly selfManagedOnly: boolean;
}

export interface EngineCapabilities {
  /** The backup methods, the first the default of a full backup. */
  readonly methods: readonly BackupMethod[];
  /** The backup types. */
  readonly types: readonly BackupType[];
  /** The method of an incremental or differential backup when --method is not given. */
  readonly chainMethod: BackupMethod;
  /** Whether `restore --to-time` can restore to a moment. */
  readonly pointInTime: boolean;
  /** How the engine ships its log, if it does. */
  readonly logShipping?: LogShipping;
  /** How a long-running shipper streams its log, if one can. */
  readonly logStreaming?: LogStreaming;
}

const ALL_TYPES = [BackupType.FULL, BackupType.INCREMENTAL, BackupType.DIFFERENTIAL] as const;

export const ENGINE_CAPABILITIES: Readonly<Record<Engine, EngineCapabilities>> = {
  [Engine.POSTGRES]: {
    methods: [BackupMethod.LOGICAL, BackupMethod.PHYSICAL],
    types: ALL_TYPES,
    // PostgreSQL incrementals are WAL ranges over a physical base.
    chainMethod: BackupMethod.PHYSICAL,
    pointInTime: true,
    logShipping: LogShipping.WAL,
    // pg_receivewal over a replication connection, which RDS and Aurora do not allow.
    logStreaming: {
      command: RunnerCommand.WAL_RECEIVE,
      folder: 'wal',
      lagMetric: METRICS.WAL_STREAMING_LAG,
      selfManagedOnly: true,
    },
  },
  [Engine.MYSQL]: {
    // Physical: mariadb-backup (MariaDB) or Percona XtraBackup (MySQL), full and true incrementals by LSN.
    methods: [BackupMethod.LOGICAL, BackupMethod.PHYSICAL],
    types: ALL_TYPES,
    chainMethod: BackupMethod.LOGICAL,
    pointInTime: true,
    logShipping: LogShipping.BINLOG,
    logStreaming: {
      command: RunnerCommand.BINLOG_STREAM,
      folder: 'binlog',
      lagMetric: METRICS.LOG_LAG,
      selfManagedOnly: false,
    },
  },
  [Engine.MONGODB]: {
    methods: [BackupMethod.LOGICAL],
    types: [BackupType.FULL],
    chainMethod: BackupMethod.LOGICAL,
    pointInTime: false,
  },
};

/** The method of a backup of `engine` and `type` when --method is not given. */
export function defaultMethod(engine: Engine, type: BackupType): BackupMethod {
  const c = ENGINE_CAPABILITIES[engine];
  return type === BackupType.FULL ? c.methods[0] : c.chainMethod;
}

/**
 * Check that an engine takes every backup type scheduled for it (the constructs, before any
 * resource is made; the runner refuses the same at run time).
 */
export function checkBackupTypes(engine: Engine, types: Iterable<BackupType>, what = 'schedules'): void {
  const allowed = ENGINE_CAPABILITIES[engine].types;
  for (const t of types) {
    if (!allowed.includes(t)) {
      throw new ConfigError(
        `${what} has a ${t} backup, which a ${engine} source does not take (it takes ${allowed.join(', ')}); ` +
          `schedule ${allowed.join(' or ')} backups for it.`,
      );
    }
  }
}

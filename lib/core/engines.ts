/**
 * What each engine can do, once: the backup methods and types it takes, whether it restores to
 * a moment and how it ships its log. The runner's option validation and `--help` read it
 * (config.ts), the constructs refuse at synth what it rules out (`checkBackupTypes`,
 * `checkBackupTypeSupported`), and the runner's drivers implement what it declares
 * (runner/src/engines/<engine>/).
 */
import { ConfigError } from './errors';
import { BackupMethod, BackupType, Engine } from './model';

/** How an engine ships its log for point-in-time recovery. */
export enum LogShipping {
  /** PostgreSQL's archive_command/restore_command call `dbbackup wal-push`/`wal-fetch`. */
  WAL = 'wal',
  /** `dbbackup binlog-stream` follows the MySQL/MariaDB binary log. */
  BINLOG = 'binlog',
}

export interface EngineCapabilities {
  /** The engine's name in messages and `--help`. */
  readonly label: string;
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
  /** What an incremental or differential backup is made of, for messages and `--help`. */
  readonly chainOf: string;
}

const ALL_TYPES = [BackupType.FULL, BackupType.INCREMENTAL, BackupType.DIFFERENTIAL] as const;

export const ENGINE_CAPABILITIES: Readonly<Record<Engine, EngineCapabilities>> = {
  [Engine.POSTGRES]: {
    label: 'PostgreSQL',
    methods: [BackupMethod.LOGICAL, BackupMethod.PHYSICAL],
    types: ALL_TYPES,
    // PostgreSQL incrementals are WAL ranges over a physical base.
    chainMethod: BackupMethod.PHYSICAL,
    pointInTime: true,
    logShipping: LogShipping.WAL,
    chainOf: 'pg_basebackup and WAL',
  },
  [Engine.MYSQL]: {
    label: 'MySQL/MariaDB',
    methods: [BackupMethod.LOGICAL],
    types: ALL_TYPES,
    chainMethod: BackupMethod.LOGICAL,
    pointInTime: true,
    logShipping: LogShipping.BINLOG,
    chainOf: 'binary logs since a full dump',
  },
  [Engine.MONGODB]: {
    label: 'MongoDB',
    methods: [BackupMethod.LOGICAL],
    types: [BackupType.FULL],
    chainMethod: BackupMethod.LOGICAL,
    pointInTime: false,
    chainOf: 'no chains (full backups only)',
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

/** What a scheduled backup needs to know about its source to tell whether it can run. */
export interface ScheduledBackupSource {
  readonly engine: Engine;
  /** A managed service (Amazon RDS, Aurora) that allows no physical copy or WAL archive of its own. */
  readonly managed: boolean;
  /** The backup method the runner is configured with; the constructs offer only logical today. */
  readonly method: 'logical' | 'physical';
}

/**
 * An incremental or differential backup of an engine whose `chainMethod` is physical (PostgreSQL:
 * WAL since a `pg_basebackup`) is refused at synth on a managed service (RDS/Aurora allow no
 * physical copy and no log archive of their own) and with another method, rather than failing
 * every night. The same rule for every flavour, read from the record.
 */
export function checkBackupTypeSupported(source: ScheduledBackupSource, type: BackupType): void {
  const c = ENGINE_CAPABILITIES[source.engine];
  if (type === BackupType.FULL || c.chainMethod !== BackupMethod.PHYSICAL) return;
  if (source.managed) {
    throw new ConfigError(
      `a ${c.label} ${type} schedule is set on an RDS/Aurora source, which cannot take physical backups or ship WAL ` +
        "(the provider allows neither); schedule full backups only, and use the service's own automated backups for " +
        'point-in-time restore.',
    );
  }
  if (source.method !== c.chainMethod) {
    throw new ConfigError(
      `a ${c.label} ${type} schedule needs ${c.chainMethod} backups (${c.chainOf}), but the method is ` +
        `'${source.method}'; schedule full backups only, or run the runner with --method ${c.chainMethod} on a ` +
        'self-managed server (see docs/pitr.md).',
    );
  }
}

/** The lines `dbbackup --help` prints about each engine, from the record. */
export function engineCapabilityLines(): string[] {
  return (Object.keys(ENGINE_CAPABILITIES) as Engine[]).map((engine) => {
    const c = ENGINE_CAPABILITIES[engine];
    const chains = c.types.length > 1 ? ` (chains: ${c.chainMethod}, ${c.chainOf})` : '';
    return (
      `  ${engine.padEnd(8)} methods ${c.methods.join('|')}; types ${c.types.join('|')}` +
      `${chains}; point-in-time ${c.pointInTime ? 'yes' : 'no'}; log shipping ${c.logShipping ?? 'none'}`
    );
  });
}

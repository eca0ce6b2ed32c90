/**
 * What each engine can do, once: the backup methods and types it takes, whether it restores to
 * a moment and how it ships its log. The runner's option validation and `--help` read it
 * (config.ts), the constructs refuse at synth what it rules out (`checkBackupTypes`,
 * `checkBackupTypeSupported`), and the runner's drivers implement what it declares
 * (runner/src/engines/<engine>/).
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
  /** How a long-running shipper streams its log, if one can. */
  readonly logStreaming?: LogStreaming;
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
    // pg_receivewal over a replication connection, which RDS and Aurora do not allow.
    logStreaming: {
      command: RunnerCommand.WAL_RECEIVE,
      folder: 'wal',
      lagMetric: METRICS.WAL_STREAMING_LAG,
      selfManagedOnly: true,
    },
    chainOf: 'pg_basebackup and WAL',
  },
  [Engine.MYSQL]: {
    label: 'MySQL/MariaDB',
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
    chainOf: 'binary logs since a full dump (logical), or mariadb-backup/XtraBackup incrementals by LSN (physical)',
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
  /** On a managed service (`service`) that allows no physical copy or log archive of its own. */
  readonly managed: boolean;
  /** The backup method the runner is configured with. */
  readonly method: BackupMethod;
  /** The managed service of the flavour's cloud, named in the refusal. */
  readonly service: ManagedService;
}

/**
 * An incremental or differential backup of an engine whose `chainMethod` is physical (PostgreSQL:
 * WAL since a `pg_basebackup`) is refused at synth on a managed service (RDS/Aurora and Cloud SQL
 * allow no physical copy and no log archive of their own) and with another method, rather than
 * failing every night. The same rule for every flavour, read from the record; the message names
 * the flavour's managed service and where a self-managed server runs on its cloud.
 */
export function checkBackupTypeSupported(source: ScheduledBackupSource, type: BackupType): void {
  const c = ENGINE_CAPABILITIES[source.engine];
  if (type === BackupType.FULL || c.chainMethod !== BackupMethod.PHYSICAL) return;
  const { name, selfManagedOn } = source.service;
  if (source.managed) {
    throw new ConfigError(
      `a ${c.label} ${type} schedule is set on a source on ${name}, which cannot take physical backups or ship ` +
        `its log (${name} allows neither); schedule full backups only, and use ${name}'s own automated backups ` +
        'for point-in-time restore.',
    );
  }
  if (source.method !== c.chainMethod) {
    throw new ConfigError(
      `a ${c.label} ${type} schedule needs ${c.chainMethod} backups (${c.chainOf}), but the method is ` +
        `'${source.method}'; schedule full backups only, or give a self-managed source (e.g. on ${selfManagedOn}) ` +
        `method: BackupMethod.${c.chainMethod.toUpperCase()} (see docs/pitr.md).`,
    );
  }
}

/**
 * Every rule on a construct's scheduled backup types, for every flavour: the engine takes each
 * type (`checkBackupTypes`) and a chain can run on the source (`checkBackupTypeSupported`).
 */
export function checkScheduledTypes(source: ScheduledBackupSource, types: readonly BackupType[]): void {
  checkBackupTypes(source.engine, types);
  for (const t of types) checkBackupTypeSupported(source, t);
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

/** A cloud's managed database service, as messages name it. */
export interface ManagedService {
  /** `RDS or Aurora`, `Cloud SQL`. */
  readonly name: string;
  /** Where a self-managed server runs on that cloud: `EC2`, `Compute Engine`. */
  readonly selfManagedOn: string;
}

/** Amazon RDS and Aurora (the AWS CDK flavour and the CDKTF AWS flavour). */
export const AWS_MANAGED_SERVICE: ManagedService = { name: 'RDS or Aurora', selfManagedOn: 'EC2' };

/**
 * Whether a literal host name is an Amazon RDS or Aurora endpoint (`….rds.amazonaws.com`), for
 * every AWS flavour: the AWS CDK endpoint sources and the CDKTF URL sources count such a host as
 * managed. An unresolved token is not a host name: the caller skips it (the AWS CDK flavour knows
 * RDS from `fromRdsInstance`/`fromDatabaseCluster`, the CDKTF one from the source's `managed`).
 */
export function isRdsEndpoint(host: string): boolean {
  return /^[^/:@\s]+\.rds\.amazonaws\.com\.?$/i.test(host);
}

/** Google Cloud SQL (the CDKTF Google flavour). */
export const GOOGLE_MANAGED_SERVICE: ManagedService = { name: 'Cloud SQL', selfManagedOn: 'Compute Engine' };

/** What the constructs know about a source when they check its backup method. */
export interface SourceMethod {
  readonly engine: Engine;
  /** On a managed service that gives no access to the server's files (`service`). */
  readonly managed: boolean;
  readonly method: BackupMethod;
  /** The managed service of the flavour's cloud, named in the refusal. */
  readonly service: ManagedService;
}

/** What to do instead of a physical backup on a managed service, per engine. */
const MANAGED_PHYSICAL: Readonly<Record<Engine, (service: string) => string>> = {
  [Engine.POSTGRES]: (service) =>
    `pg_basebackup needs a replication connection and WAL archive of its own, which ${service} does not give`,
  [Engine.MYSQL]: (service) =>
    `mariadb-backup and Percona XtraBackup copy the server's data files, which ${service} gives no access to`,
  [Engine.MONGODB]: () => 'MongoDB backups are logical',
};

/**
 * Check a source's backup method at synth: the engine must take it (the record above), and a
 * physical method is refused on a managed service, naming it and saying what to use instead.
 */
export function checkBackupMethod(source: SourceMethod): void {
  const methods = ENGINE_CAPABILITIES[source.engine].methods;
  if (!methods.includes(source.method)) {
    throw new ConfigError(
      `method '${source.method}' is not available for a ${source.engine} source; it takes ${methods.join(' or ')}.`,
    );
  }
  if (source.method === BackupMethod.PHYSICAL && source.managed) {
    const { name, selfManagedOn } = source.service;
    throw new ConfigError(
      `method 'physical' is set on a ${source.engine} source on ${name}: ${MANAGED_PHYSICAL[source.engine](name)}. ` +
        'Leave method out (logical backups' +
        (source.engine === Engine.MYSQL ? ', with incrementals as binary log ranges' : '') +
        ") and use the service's snapshots and automated backups for a physical copy; method physical is for " +
        `a self-managed server (e.g. on ${selfManagedOn}).`,
    );
  }
}

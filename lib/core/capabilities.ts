import { ENGINE_CAPABILITIES } from './engines';
import { BackupMethod, BackupType, Engine } from './model';
import { ConfigError } from './errors';

/** What a scheduled backup needs to know about its source to tell whether it can run. */
export interface ScheduledBackupSource {
  readonly engine: Engine;
  /** A managed service (Amazon RDS, Aurora) that allows no physical copy or WAL archive of its own. */
  readonly managed: boolean;
  /** The backup method the runner is configured with; the constructs offer only logical today. */
  readonly method: 'logical' | 'physical';
}

/**
 * PostgreSQL incremental and differential backups are WAL since a physical base backup
 * (`pg_basebackup`): refused at synth on RDS/Aurora, which allow neither, and with the logical
 * method, rather than failing every night. (The engine capability record, when lib/core has one,
 * is the place for this rule; until then it lives here, once, for every flavour.)
 */
export function checkBackupTypeSupported(source: ScheduledBackupSource, type: BackupType): void {
  if (type === BackupType.FULL || source.engine !== Engine.POSTGRES) return;
  if (source.managed) {
    throw new ConfigError(
      `a PostgreSQL ${type} schedule is set on an RDS/Aurora source, which cannot take physical backups or ship WAL ` +
        "(the provider allows neither); schedule full backups only, and use the service's own automated backups for " +
        'point-in-time restore.',
    );
  }
  if (source.method !== 'physical') {
    throw new ConfigError(
      `a PostgreSQL ${type} schedule needs physical backups (pg_basebackup and WAL), but the method is ` +
        `'${source.method}'; schedule full backups only, or run the runner with --method physical on a ` +
        'self-managed server (see docs/pitr.md).',
    );
  }
}

/** What the constructs know about a source when they check its backup method. */
export interface SourceMethod {
  readonly engine: Engine;
  /** Amazon RDS or Aurora (or another managed service that gives no access to the server's files). */
  readonly managed: boolean;
  readonly method: BackupMethod;
}

/** What to do instead of a physical backup on a managed service, per engine. */
const MANAGED_PHYSICAL: Readonly<Record<Engine, string>> = {
  [Engine.POSTGRES]:
    'pg_basebackup needs a replication connection and WAL archive of its own, which RDS and Aurora do not give',
  [Engine.MYSQL]:
    "mariadb-backup and Percona XtraBackup copy the server's data files, which RDS and Aurora give no access to",
  [Engine.MONGODB]: 'MongoDB backups are logical',
};

/**
 * Check a source's backup method at synth: the engine must take it (lib/core/engines.ts), and a
 * physical method is refused on RDS/Aurora, saying what to use instead.
 */
export function checkBackupMethod(source: SourceMethod): void {
  const methods = ENGINE_CAPABILITIES[source.engine].methods;
  if (!methods.includes(source.method)) {
    throw new ConfigError(
      `method '${source.method}' is not available for a ${source.engine} source; it takes ${methods.join(' or ')}.`,
    );
  }
  if (source.method === BackupMethod.PHYSICAL && source.managed) {
    throw new ConfigError(
      `method 'physical' is set on an RDS/Aurora ${source.engine} source: ${MANAGED_PHYSICAL[source.engine]}. ` +
        'Leave method out (logical backups' +
        (source.engine === Engine.MYSQL ? ', with incrementals as binary log ranges' : '') +
        ") and use the service's snapshots and automated backups for a physical copy; method physical is for " +
        'a self-managed server (e.g. on EC2).',
    );
  }
}

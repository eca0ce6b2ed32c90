import { BackupType, Engine } from './model';
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

/**
 * How far a MySQL/MariaDB replica is behind its primary (backup --max-replica-lag): the
 * replication status's `Seconds_Behind_Master` (MySQL 8.0.22+: `Seconds_Behind_Source`).
 *
 * - No replication status (an empty `SHOW REPLICA STATUS`): not a replica; nothing to gate on.
 * - A number: the lag in seconds, as the server computes it (the age of the event the SQL thread
 *   is applying; 0 when it has applied everything the I/O thread fetched).
 * - NULL: replication is stopped (the I/O or SQL thread is not running), so the replica falls
 *   further behind with no bound: the backup fails, naming the threads' state and last error.
 *
 * `SHOW REPLICA STATUS` (MariaDB 10.5.1+, MySQL 8.0.22+) is tried first, then `SHOW SLAVE STATUS`
 * (older servers). It needs REPLICA MONITOR (MariaDB 10.5.9+) or REPLICATION CLIENT (MySQL).
 * Only the default replication connection is read (MariaDB multi-source: the unnamed one).
 */
import { SECRET_ENV } from '../../../../lib/core/contract';
import { SourceUrl } from '../../../../lib/core/urls';
import { BackupError } from '../../errors';
import { capture } from '../../pipeline/stages';
import { ReplicaLag } from '../shared/engine';
import { clientTool, mysqlConnArgs, mysqlEnv } from './client';

/** The fields of a vertical (`\G`) status row. */
export function parseVerticalRow(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^\s*([A-Za-z_]+): ?(.*)$/gm)) if (!out.has(m[1])) out.set(m[1], m[2]);
  return out;
}

/** The lag by the rule above, from a replication status row (undefined: the server is not a replica). */
export function lagOfReplica(row: Map<string, string> | undefined, display: string): ReplicaLag {
  if (row === undefined || row.size === 0) return { replica: false };
  const field = row.has('Seconds_Behind_Source') ? 'Seconds_Behind_Source' : 'Seconds_Behind_Master';
  const value = row.get(field);
  if (value === undefined || !/^\d+$/.test(value)) {
    const io = row.get('Replica_IO_Running') ?? row.get('Slave_IO_Running') ?? '?';
    const sqlThread = row.get('Replica_SQL_Running') ?? row.get('Slave_SQL_Running') ?? '?';
    const error = row.get('Last_Error') || row.get('Last_IO_Error') || row.get('Last_SQL_Error') || '';
    throw new BackupError(
      `${display} is a replica whose replication is stopped (${field} is ${value ?? 'missing'}; I/O thread: ${io}, ` +
        `SQL thread: ${sqlThread}${error !== '' ? `; last error: ${error.slice(0, 200)}` : ''}), so it falls ` +
        'behind without bound; start replication (START REPLICA) and let it catch up, or back up the primary.',
    );
  }
  return { replica: true, seconds: Number(value), how: field };
}

/** Measure a MySQL/MariaDB server's replication lag (EngineDriver.replicaLag). */
export async function mysqlReplicaLag(source: SourceUrl): Promise<ReplicaLag> {
  const env = mysqlEnv(process.env[SECRET_ENV.SOURCE_PASSWORD]);
  const tool = clientTool();
  const status = (statement: string) =>
    capture({
      cmd: tool,
      args: [...mysqlConnArgs(source), '--connect-timeout=10', '--batch', '--vertical', '-e', statement],
      env,
      label: 'mariadb',
    });
  let text: string;
  try {
    text = await status('SHOW REPLICA STATUS').catch((e: Error) => {
      if (/syntax/i.test(e.message)) return status('SHOW SLAVE STATUS');
      throw e;
    });
  } catch (e) {
    throw new BackupError(
      `could not read the replication status of ${source.display} (SHOW REPLICA STATUS needs REPLICA MONITOR on ` +
        `MariaDB, REPLICATION CLIENT on MySQL): ${(e as Error).message.split('\n')[0]}`,
    );
  }
  return lagOfReplica(text.trim() === '' ? undefined : parseVerticalRow(text), source.display);
}

// Internal (not exported by the entries): the log shipper's environment, the same on AWS and Google.
import { Engine, RUNNER_ENV, RunnerCommand, renderRunnerEnvironment } from '../../core';
import { PointInTimeRecovery } from './pitr';

/** What both clouds' shippers put in every run: the source, the archive, the pipeline. */
export interface ShipperSettings {
  readonly source: string;
  readonly to: string;
  readonly compression: string;
  readonly encrypt: string;
}

/**
 * The environment of `dbbackup wal-receive` (PostgreSQL: slot, partial-segment interval) or
 * `dbbackup binlog-stream` (MySQL/MariaDB: upload interval), with the database id and JSON logs.
 */
export function shipperEnvironment(
  command: RunnerCommand,
  engine: Engine,
  common: ShipperSettings,
  pitr: PointInTimeRecovery,
  databaseId: string,
): Record<string, string> {
  const base = { [RUNNER_ENV.DATABASE_ID]: databaseId, [RUNNER_ENV.LOG_FORMAT]: 'json' };
  const interval = pitr.intervalFor(engine).toSeconds();
  return command === RunnerCommand.WAL_RECEIVE
    ? {
        ...renderRunnerEnvironment(command, {
          ...common,
          slot: pitr.replicationSlot,
          'create-slot': true,
          'partial-interval': `${interval}s`,
        }),
        ...base,
      }
    : {
        ...renderRunnerEnvironment(command, { engine, ...common }),
        ...base,
        [RUNNER_ENV.BINLOG_UPLOAD_INTERVAL]: String(interval),
      };
}

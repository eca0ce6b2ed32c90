// What one run of backup, restore, verify or drill came to: the facts the metrics file and the
// webhook report, taken from the command's result or its error.
import * as os from 'node:os';
import { RUNNER_ENV, RunnerCommand } from '../../../lib/core/contract';
import { exitCodeOf } from '../errors';

export interface RunOutcome {
  readonly command: RunnerCommand;
  /** The database label: DBBACKUP_DATABASE_ID, else what the command's configuration names. */
  readonly database: string;
  readonly host: string;
  readonly ok: boolean;
  readonly exitCode: number;
  readonly startedAt: Date;
  readonly endedAt: Date;
  readonly error?: string;
  readonly backupId?: string;
  /** backup: stored bytes of all artifacts. */
  readonly sizeBytes?: number;
  /** restore and drill: seconds the restore took. */
  readonly restoreSeconds?: number;
  /** verify: true when every checked backup was whole, false when one was damaged or missing. */
  readonly verified?: boolean;
  /** drill: whether the restored database matched the manifest. */
  readonly drillOk?: boolean;
}

/** The command-specific facts, read from a result object of the command (or an error carrying one). */
export interface OutcomeFacts {
  readonly backupId?: string;
  readonly sizeBytes?: number;
  readonly restoreSeconds?: number;
}

/** The label a run reports under: DBBACKUP_DATABASE_ID wins, so a backup and its drill can share one. */
export function databaseLabel(fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  const id = env[RUNNER_ENV.DATABASE_ID];
  return id !== undefined && id !== '' ? id : fallback;
}

/** Build the outcome of a finished run. `error` is undefined on success. */
export function outcomeOf(
  command: RunnerCommand,
  database: string,
  startedAt: Date,
  facts: OutcomeFacts,
  error: unknown,
): RunOutcome {
  const ok = error === undefined;
  const exitCode = ok ? 0 : exitCodeOf(error);
  const damaged = !ok && (error as Error)?.name === 'DamagedError';
  return {
    command,
    database,
    host: os.hostname(),
    ok,
    exitCode,
    startedAt,
    endedAt: new Date(),
    error: ok ? undefined : String((error as Error)?.message ?? error),
    ...facts,
    verified: command !== RunnerCommand.VERIFY ? undefined : ok ? true : damaged ? false : undefined,
    drillOk: command === RunnerCommand.DRILL ? ok : undefined,
  };
}

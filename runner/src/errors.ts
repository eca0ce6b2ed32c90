import { ExitCode } from '../../lib/core/model';

export { ConfigError } from '../../lib/core/errors';

/** The operation failed (exit 1). The message says what failed. */
export class BackupError extends Error {
  public readonly name: string = 'BackupError';
}

/**
 * A dump tool that exited 0 without writing what it always writes (`what`: "nothing for
 * database.pgdump", "no toc.dat into its directory"): the backup fails rather than store it.
 */
export function wroteNothingError(
  tool: string,
  what: string,
  byHand = `${tool} by hand against the source`,
): BackupError {
  return new BackupError(
    `${tool} ended without an error but wrote ${what}: that is not a backup, and none was committed. ` +
      `Check that the ${tool} the runner runs is the real tool (a wrapper or a stub found first where the ` +
      `runner looks for it can write nothing) and run ${byHand}.`,
  );
}

/**
 * A stage that reads a stored backup back failed for a reason of its own (a tool missing, killed,
 * stalled or broken, a key that does not fit) while the stored bytes match the manifest: the
 * run failed (exit 1); the backup is not called damaged.
 */
export class StageError extends BackupError {
  public readonly name = 'StageError';
}

/** A stored backup is damaged or missing (exit 3). */
export class DamagedError extends Error {
  public readonly name = 'DamagedError';
}

/** A child process exited badly. Carries its exit code and the tail of its stderr. */
export class ChildProcessError extends BackupError {
  public readonly name = 'ChildProcessError';
  constructor(
    public readonly tool: string,
    public readonly exitCode: number | null,
    public readonly signal: NodeJS.Signals | null,
    public readonly stderrTail: string,
  ) {
    super(
      `${tool} ${signal !== null ? `was killed by ${signal}` : `exited with code ${exitCode}`}` +
        (stderrTail.trim() !== '' ? `: ${stderrTail.trim().split('\n').slice(-5).join(' | ')}` : ''),
    );
  }
}

/**
 * wal-fetch failed for a reason other than "the archive does not hold the file": it exits
 * WAL_FETCH_ABORT_BASE + the usual code (above 125), so PostgreSQL aborts recovery instead of
 * taking the failure for the end of the archive (see WAL_FETCH_ABORT_BASE).
 */
export class RecoveryAbortError extends Error {
  public readonly name = 'RecoveryAbortError';
  constructor(
    message: string,
    public readonly exitCode: number,
  ) {
    super(message);
  }
}

/** The exit code for an error. */
export function exitCodeOf(err: unknown): ExitCode {
  const name = (err as Error)?.name;
  if (name === 'RecoveryAbortError') return (err as RecoveryAbortError).exitCode as ExitCode;
  if (name === 'ConfigError') return ExitCode.USAGE;
  if (name === 'DamagedError' || name === 'ManifestError') return ExitCode.DAMAGED;
  return ExitCode.FAILED;
}

/**
 * How many parallel jobs a dump or a restore uses (`--jobs N`), one rule for the runner and the
 * constructs. PostgreSQL's `pg_dump -j` and `pg_restore -j` work table by table: a database whose
 * data sits in one table gains nothing from more jobs, and a parallel dump is written through a
 * local spool directory (engines/postgres/parallel-dump.ts), so it is chosen only where it pays.
 */

/** More jobs than this are only used when asked for: each is a server connection and a core. */
export const MAX_DEFAULT_JOBS = 4;

/** A table at least this large (bytes on disk) counts towards choosing a parallel dump by default. */
export const PARALLEL_TABLE_MIN_BYTES = 64 * 1024 * 1024;

/** The default number of jobs on a machine with `cores` cores: the cores, at most MAX_DEFAULT_JOBS. */
export function defaultJobs(cores: number): number {
  return Math.max(1, Math.min(MAX_DEFAULT_JOBS, Math.floor(cores)));
}

/**
 * The jobs of a dump: `--jobs N` when given; otherwise the default jobs, but no more than the
 * tables of at least PARALLEL_TABLE_MIN_BYTES, and 1 (one stream, no spool) when fewer than two
 * tables are that large.
 */
export function dumpJobs(requested: number | undefined, cores: number, largeTables: number): number {
  if (requested !== undefined) return requested;
  if (largeTables < 2) return 1;
  return Math.min(defaultJobs(cores), largeTables);
}

/**
 * The jobs of a restore: `--jobs N` when given; otherwise the default jobs for a backup dumped in
 * parallel (it is restored from a scratch directory anyway), and 1 for a single-stream backup (it
 * then streams into the restore tool with no local copy; `--jobs N` above 1 fetches it to a scratch
 * file first so the restore tool can seek).
 */
export function restoreJobs(requested: number | undefined, cores: number, dumpedInParallel: boolean): number {
  if (requested !== undefined) return requested;
  return dumpedInParallel ? defaultJobs(cores) : 1;
}

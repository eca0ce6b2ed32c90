/**
 * A parallel logical dump of PostgreSQL: `pg_dump -F d -j N` in the backup's snapshot, written
 * into a spool directory and streamed out, file by file as each is complete, as one tar archive
 * (`database.pgdir.tar`, members under `database.pgdir/`) through the shared pipeline (compress,
 * encrypt, sha256, storage). Each file is deleted from the spool once it is in the stream, so the
 * spool holds the tables being dumped and those waiting for the stream, never the whole dump
 * (pipeline/spool-tar.ts). Why one archive, not one stored object per table file: see
 * docs/postgresql.md (one compression stream for the whole dump, one object to verify, and the
 * manual restore is `tar -x` then `pg_restore -j N`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { log } from '../../log';
import { CommandSpec } from '../../pipeline/stages';
import { spoolTarProducer } from '../../pipeline/spool-tar';
import { ArtifactPlan } from '../shared/engine';

/** The stored artifact's name (before the codec's extensions) and format. */
export const PARALLEL_DUMP_NAME = 'database.pgdir.tar';
export const PARALLEL_DUMP_FORMAT = 'pg_dump-directory-tar';
/** The archive's top-level directory: `tar -x` makes it, `pg_restore -j N` reads it. */
export const PARALLEL_DUMP_TOP = 'database.pgdir';

/**
 * SQL: how many user tables are at least `bytes` large (a parallel dump pays only with two or
 * more). From pg_class's page counts (as of the last VACUUM/ANALYZE, the table and its TOAST):
 * pg_total_relation_size would lock every table, and wait on a table another session holds.
 */
export function largeTablesSql(bytes: number): string {
  return `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
    WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%'
      AND (c.relpages::bigint + coalesce(t.relpages, 0)) * current_setting('block_size')::bigint >= ${bytes}`;
}

export interface ParallelDumpOptions {
  readonly pgDump: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly snapshot: string;
  readonly lockWaitSeconds: number;
  readonly jobs: number;
  readonly onFailure: ArtifactPlan['onFailure'];
}

/** The database artifact of a parallel dump. */
export function parallelDumpArtifact(o: ParallelDumpOptions): ArtifactPlan {
  const tool = (dir: string): CommandSpec => ({
    cmd: o.pgDump,
    args: [
      '--format=directory',
      `--jobs=${o.jobs}`,
      '--compress=0',
      // The spool is read and deleted as the dump runs: syncing it to disk would only cost.
      '--no-sync',
      '--no-password',
      `--snapshot=${o.snapshot}`,
      `--lock-wait-timeout=${o.lockWaitSeconds}s`,
      `--file=${dir}`,
    ],
    env: o.env,
    label: 'pg_dump',
  });
  return {
    name: PARALLEL_DUMP_NAME,
    role: 'database',
    format: PARALLEL_DUMP_FORMAT,
    producer: {
      label: 'pg_dump',
      start: (onActivity) => {
        const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-spool-'));
        const dir = path.join(spool, PARALLEL_DUMP_TOP);
        log.info(`parallel dump: pg_dump -j ${o.jobs} through the spool ${spool}`, { jobs: o.jobs, spool });
        return spoolTarProducer({
          tool: tool(dir),
          dir,
          top: PARALLEL_DUMP_TOP,
          children: o.jobs,
          cleanup: () => fs.rmSync(spool, { recursive: true, force: true }),
        }).start(onActivity);
      },
    },
    onFailure: o.onFailure,
  };
}

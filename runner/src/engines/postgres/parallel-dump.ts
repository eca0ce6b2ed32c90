/**
 * A parallel logical dump of PostgreSQL: `pg_dump -F d -j N` in the backup's snapshot, written
 * into a spool directory and streamed out, file by file as each is complete, as one tar archive
 * (`database.pgdir.tar`, members under `database.pgdir/`) through the shared pipeline (compress,
 * encrypt, sha256, storage). Each file is deleted from the spool once it is in the stream, so the
 * spool holds the tables being dumped and those waiting for the stream, never the whole dump
 * (pipeline/spool-tar.ts). Why one archive, not one stored object per table file: see
 * docs/postgresql.md (one compression stream for the whole dump, one object to verify, and the
 * manual restore is `tar -x` then `pg_restore -j N`).
 *
 * pg_dump writes the table of contents (toc.dat) last, when every table is dumped, so it is the
 * archive's last member. A second, small artifact holds a copy of it (`database.pgdir.toc`): a
 * restore reads it first, creates the schema, and loads each table while the archive still
 * streams (parallel-restore.ts), instead of laying the whole archive down before it may start.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { log } from '../../log';
import { wroteNothingError } from '../../errors';
import { CommandSpec, ProducedStream } from '../../pipeline/stages';
import { spoolTarProducer } from '../../pipeline/spool-tar';
import { ArtifactPlan } from '../shared/engine';

/** The stored artifact's name (before the codec's extensions) and format. */
export const PARALLEL_DUMP_NAME = 'database.pgdir.tar';
export const PARALLEL_DUMP_FORMAT = 'pg_dump-directory-tar';
/** The archive's top-level directory: `tar -x` makes it, `pg_restore -j N` reads it. */
export const PARALLEL_DUMP_TOP = 'database.pgdir';
/** The copy of the archive's toc.dat, stored as its own artifact (see the module comment). */
export const PARALLEL_TOC_NAME = 'database.pgdir.toc';
export const PARALLEL_TOC_FORMAT = 'pg_dump-directory-toc';
export const PARALLEL_TOC_ROLE = 'database-toc';
/** The file pg_dump -F d writes its table of contents to. */
export const TOC_FILE = 'toc.dat';

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

/**
 * SQL: what the spool of pg_dump -j `jobs` may hold at once, in bytes: the `jobs` largest tables
 * (pages of the table and its TOAST, as of the last VACUUM/ANALYZE). Each worker writes one table's
 * file at a time and a file leaves the spool once it is whole in the stream.
 */
export function spoolBytesSql(jobs: number): string {
  return `SELECT coalesce(sum(b), 0) FROM (SELECT (c.relpages::bigint + coalesce(t.relpages, 0)) *
    current_setting('block_size')::bigint AS b FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
    WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%'
    ORDER BY b DESC LIMIT ${Math.max(1, Math.floor(jobs))}) AS largest`;
}

export interface ParallelDumpOptions {
  readonly pgDump: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly snapshot: string;
  readonly lockWaitSeconds: number;
  readonly jobs: number;
  readonly onFailure: ArtifactPlan['onFailure'];
  /** What the spool may hold at once (spoolBytesSql): checked against TMPDIR's free space first. */
  readonly spoolBytes?: number;
}

/** The artifacts of a parallel dump (the archive, then its toc's copy) and what removes their leftovers. */
export interface ParallelDumpPlans {
  readonly plans: readonly ArtifactPlan[];
  /** Remove the toc's copy (idempotent; after the backup, in every case). */
  readonly cleanup: () => void;
}

/** The database artifacts of a parallel dump. */
export function parallelDumpArtifacts(o: ParallelDumpOptions): ParallelDumpPlans {
  const side = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-toc-'));
  const tocCopy = path.join(side, TOC_FILE);
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
  const archive: ArtifactPlan = {
    name: PARALLEL_DUMP_NAME,
    role: 'database',
    format: PARALLEL_DUMP_FORMAT,
    neverEmpty: true,
    producer: {
      label: 'pg_dump',
      compresses: true,
      start: (onActivity, compress, outputFd) => {
        const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-spool-'));
        const dir = path.join(spool, PARALLEL_DUMP_TOP);
        log.info(`parallel dump: pg_dump -j ${o.jobs} through the spool ${spool}`, { jobs: o.jobs, spool });
        let tocSent = false;
        const produced = spoolTarProducer({
          tool: tool(dir),
          dir,
          top: PARALLEL_DUMP_TOP,
          children: o.jobs,
          expectBytes: o.spoolBytes,
          cleanup: () => fs.rmSync(spool, { recursive: true, force: true }),
          onSent: (name, file) => {
            if (name !== TOC_FILE) return;
            fs.copyFileSync(file, tocCopy);
            tocSent = true;
          },
        }).start(onActivity, compress, outputFd);
        // pg_dump writes toc.dat last, once every table is dumped: a dump without it is no dump.
        const done = produced.done.then(() => {
          if (!tocSent) {
            throw wroteNothingError(
              'pg_dump',
              `no ${TOC_FILE} into its directory`,
              `pg_dump --format=directory --jobs=${o.jobs} by hand against the source`,
            );
          }
        });
        done.catch(() => undefined);
        return { ...produced, done };
      },
    },
    onFailure: o.onFailure,
  };
  const toc: ArtifactPlan = {
    name: PARALLEL_TOC_NAME,
    role: PARALLEL_TOC_ROLE,
    format: PARALLEL_TOC_FORMAT,
    producer: { label: TOC_FILE, start: () => fileStream(tocCopy) },
  };
  return { plans: [archive, toc], cleanup: () => fs.rmSync(side, { recursive: true, force: true }) };
}

/** A file as a producer's output (the archive's toc, copied aside once it was in the stream). */
function fileStream(file: string): ProducedStream {
  const stdout = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const done = new Promise<void>((resolve, reject) => {
    stdout.once('end', resolve);
    stdout.once('error', reject);
  });
  done.catch(() => undefined);
  return { stdout, done, kill: () => stdout.destroy() };
}

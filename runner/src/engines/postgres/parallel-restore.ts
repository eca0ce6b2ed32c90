/**
 * A parallel restore of PostgreSQL: `pg_restore -j N` needs a directory (a parallel dump) or a
 * file it can seek in (a single-stream dump), so the artifact is first read back whole (stored
 * bytes against the manifest, decryption, decompression) into a scratch directory. Only when that
 * succeeded does pg_restore run, into a NEW database; that database takes the target's name (a
 * rename, in one transaction when the target exists) only once pg_restore succeeded. A damaged
 * backup, a wrong key or a failing pg_restore therefore leave the target as it was, and the new
 * database is dropped. pg_restore -j runs each item in its own transaction, so a database with
 * thousands of tables needs no more lock-table room (max_locks_per_transaction) than one table.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ConfigError } from '../../../../lib/core/errors';
import { Manifest, ManifestArtifact } from '../../../../lib/core/manifest';
import { SourceUrl } from '../../../../lib/core/urls';
import { BackupError, DamagedError } from '../../errors';
import { log } from '../../log';
import { capture, Child, CommandSpec } from '../../pipeline/stages';
import { ConfinedDir, extractTar } from '../../pipeline/untar';
import { RestoreSession, RestoreStep } from '../shared/engine';
import { PARALLEL_DUMP_FORMAT, PARALLEL_DUMP_TOP } from './parallel-dump';
import { pgEnv, pgTool } from './tools';

function quoteIdent(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"';
}

function quoteLiteral(s: string): string {
  return "'" + s.replace(/'/g, "''") + "'";
}

/** A database name for the restore's own copy: the target's name (cut to fit 63 bytes) and a random part. */
export function scratchDatabaseName(target: string, tag: string): string {
  let head = target;
  while (Buffer.byteLength(head) > 40) head = head.slice(0, -1);
  return `${head}_dbbackup_${tag}_${crypto.randomBytes(4).toString('hex')}`;
}

export interface ParallelRestoreOptions {
  readonly target: SourceUrl;
  readonly password: string | undefined;
  readonly manifest: Manifest;
  readonly database: ManifestArtifact;
  readonly jobs: number;
  readonly clean: boolean;
  /** Steps before the database's (the globals). */
  readonly before: readonly RestoreStep[];
  /** Refuses a target that has objects, unless --clean. */
  readonly refuseNonEmpty: () => Promise<void>;
  readonly signal?: AbortSignal;
}

/** Open a parallel restore (see the module comment). */
export async function openParallelRestore(o: ParallelRestoreOptions): Promise<RestoreSession> {
  const { target, password } = o;
  const adminEnv = pgEnv(target, password, target.params.maintenance_db ?? 'postgres');
  const sql = (q: string) =>
    capture({
      cmd: pgTool('psql'),
      args: ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', q],
      env: adminEnv,
      label: 'psql',
    }).then((out) => out.trim());
  const others = async (db: string) =>
    Number(
      await sql(
        `SELECT count(*) FROM pg_stat_activity WHERE datname = ${quoteLiteral(db)} AND pid <> pg_backend_pid()`,
      ),
    );
  const exists =
    (await sql(`SELECT count(*) FROM pg_database WHERE datname = ${quoteLiteral(target.database)}`)) === '1';
  if (exists) {
    await o.refuseNonEmpty();
    const n = await others(target.database);
    if (n > 0) {
      throw new ConfigError(
        `${n} other session(s) are connected to the target database ${target.database} on ${target.display}; a ` +
          'parallel restore swaps the restored database in by renaming it, which needs the target free. Close ' +
          'them (pg_stat_activity shows them), or restore into a new database.',
      );
    }
  }
  const copy = scratchDatabaseName(target.database, 'new');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-restore-'));
  const directory = o.database.format === PARALLEL_DUMP_FORMAT;
  const input = directory ? path.join(scratch, PARALLEL_DUMP_TOP) : path.join(scratch, 'database.pgdump');
  let made = false;
  const removeScratch = () => fs.rmSync(scratch, { recursive: true, force: true });
  const dropCopy = async () => {
    if (!made) return;
    log.info('dropping the database this failed restore made', { database: copy });
    await sql(`DROP DATABASE IF EXISTS ${quoteIdent(copy)} WITH (FORCE)`).catch((e: Error) =>
      log.warn(`could not drop ${copy}`, { error: e.message }),
    );
  };
  try {
    await sql(`CREATE DATABASE ${quoteIdent(copy)}`);
    made = true;
  } catch (e) {
    removeScratch();
    throw e;
  }
  // A parallel dump's archive is laid down by the confined extractor (files and directories only).
  const layDown = async (plaintext: Readable): Promise<void> => {
    const dir = await ConfinedDir.open(scratch);
    try {
      const done = await extractTar(plaintext, dir, { what: `the parallel dump of backup ${o.manifest.id}` });
      log.info(`laid the parallel dump down in ${scratch}`, { files: done.files, bytes: done.bytes });
    } finally {
      dir.close();
    }
    if (!fs.existsSync(path.join(input, 'toc.dat'))) {
      throw new DamagedError(`${o.database.name} holds no ${PARALLEL_DUMP_TOP}/toc.dat: it is not a parallel dump`);
    }
  };
  // A single-stream dump goes to its scratch file by `dd` at the end of the read-back's stages
  // (the kernel moves the bytes, not this process); it sees the end only once they matched.
  const toFile: CommandSpec = {
    cmd: 'dd',
    args: [`of=${input}`, 'bs=1M', 'status=none', 'conv=excl'],
    label: 'dd',
  };
  const restore = async (): Promise<void> => {
    if (o.signal?.aborted) throw o.signal.reason;
    log.info(`pg_restore -j ${o.jobs} into ${copy}`, { jobs: o.jobs, database: copy });
    const child = new Child(
      {
        cmd: pgTool('pg_restore'),
        args: [`--jobs=${o.jobs}`, '--exit-on-error', '--no-password', '-d', copy, input],
        env: pgEnv(target, password),
        label: 'pg_restore',
      },
      ['ignore', 'ignore', 'pipe'],
    );
    const onAbort = () => child.kill();
    o.signal?.addEventListener('abort', onAbort);
    try {
      await child.done;
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
    if (o.signal?.aborted) throw o.signal.reason;
    removeScratch();
    await swapIn();
  };
  const swapIn = async (): Promise<void> => {
    if (!exists) {
      await sql(`ALTER DATABASE ${quoteIdent(copy)} RENAME TO ${quoteIdent(target.database)}`);
      made = false;
      return;
    }
    const owner = await sql(
      `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = ${quoteLiteral(target.database)}`,
    );
    if (owner !== '') {
      await sql(`ALTER DATABASE ${quoteIdent(copy)} OWNER TO ${quoteIdent(owner)}`).catch((e: Error) =>
        log.warn(`the restored database could not be given to ${owner}, the target's owner`, { error: e.message }),
      );
    }
    const old = scratchDatabaseName(target.database, 'old');
    try {
      // One transaction: the target has its old content or the new, never neither.
      await sql(
        `BEGIN; ALTER DATABASE ${quoteIdent(target.database)} RENAME TO ${quoteIdent(old)}; ` +
          `ALTER DATABASE ${quoteIdent(copy)} RENAME TO ${quoteIdent(target.database)}; COMMIT;`,
      );
    } catch (e) {
      const n = await others(target.database).catch(() => 0);
      throw new BackupError(
        `could not swap the restored database in for ${target.database}` +
          (n > 0 ? ` (${n} session(s) connected to it meanwhile)` : '') +
          `: ${(e as Error).message.trim()}; the target is as it was.`,
      );
    }
    made = false;
    await sql(`DROP DATABASE IF EXISTS ${quoteIdent(old)} WITH (FORCE)`).catch((e: Error) =>
      log.warn(`the previous content of ${target.database} was kept as ${old}: it could not be dropped`, {
        error: e.message,
      }),
    );
    log.info(`swapped the restored database in for ${target.database}`, { database: target.database });
  };
  return {
    steps: [
      ...o.before,
      directory
        ? { artifact: o.database, consumer: layDown, streamed: true }
        : { artifact: o.database, consumer: toFile },
    ],
    commit: restore,
    rollback: async () => {
      removeScratch();
      await dropCopy();
    },
  };
}

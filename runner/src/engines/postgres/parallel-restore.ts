/**
 * A parallel restore of PostgreSQL, always into a NEW database that takes the target's name (a
 * rename, in one transaction when the target exists) only once everything succeeded. A damaged
 * backup, a wrong key or a failing pg_restore therefore leave the target as it was, and the new
 * database is dropped. pg_restore runs each item in its own transaction, so a database with
 * thousands of tables needs no more lock-table room (max_locks_per_transaction) than one table.
 *
 * A parallel dump with its table of contents stored apart (parallel-dump.ts) is restored while it
 * streams: the table of contents is read first and the schema created (`pg_restore
 * --section=pre-data`); each table's file is loaded as soon as it is whole on disk, by at most N
 * `pg_restore -L` processes at a time (each given the files ready when it starts), and deleted once
 * loaded, so the scratch directory holds only the files waiting for a loader; once the archive
 * ended and matched the manifest, the rest of the data section (sequence values, large objects)
 * and then the post-data section (indexes, constraints, triggers) run with `pg_restore -j N`.
 *
 * Otherwise (a parallel dump made before the table of contents was stored apart, or `--jobs N`
 * of a single-stream dump, which pg_restore -j must seek in) the artifact is first read back
 * whole (stored bytes against the manifest, decryption, decompression) into a scratch directory
 * or file, and only then does `pg_restore -j N` run.
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
import { capture } from '../../pipeline/stages';
import { ConfinedDir, extractTar } from '../../pipeline/untar';
import { FileConsumer, RestoreSession, RestoreStep } from '../shared/engine';
import { BatchLoads, LoaderGroup, shareOf } from '../shared/loaders';
import { applyDatabaseProperties } from './database-properties';
import { PARALLEL_DUMP_FORMAT, PARALLEL_DUMP_TOP, PARALLEL_TOC_FORMAT, TOC_FILE } from './parallel-dump';
import { quoteIdent, quoteLiteral } from './session';
import { pgEnv, pgTool } from './tools';

/** A database name for the restore's own copy: the target's name (cut to fit 63 bytes) and a random part. */
export function scratchDatabaseName(target: string, tag: string): string {
  let head = target;
  while (Buffer.byteLength(head) > 40) head = head.slice(0, -1);
  return `${head}_dbbackup_${tag}_${crypto.randomBytes(4).toString('hex')}`;
}

/** One item of an archive's table of contents, as `pg_restore --list` prints it. */
export interface TocItem {
  readonly id: number;
  /** Its line of the list (`3339; 0 16385 TABLE DATA public events_1 postgres`): what `-L` takes. */
  readonly line: string;
  readonly tableData: boolean;
}

/** The items of a `pg_restore --list` output (comment lines skipped). */
export function parseTocList(list: string): TocItem[] {
  const items: TocItem[] = [];
  for (const line of list.split('\n')) {
    const m = /^(\d+); \d+ \d+ (.*)$/.exec(line);
    if (m !== null) items.push({ id: Number(m[1]), line, tableData: m[2].startsWith('TABLE DATA ') });
  }
  return items;
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
  const toc = directory ? o.manifest.artifacts.find((a) => a.format === PARALLEL_TOC_FORMAT) : undefined;
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

  // Every pg_restore of this restore: stopped together when the run is interrupted or one fails.
  const group = new LoaderGroup(o.signal);
  const pgRestore = (args: readonly string[]): Promise<void> =>
    group.run({
      cmd: pgTool('pg_restore'),
      args: [...args, '--exit-on-error', '--no-password', '-d', copy, input],
      env: pgEnv(target, password),
      label: 'pg_restore',
    });
  // A list for `pg_restore -L`, in the scratch directory (not in the archive's own directory).
  let lists = 0;
  const listFile = (items: readonly TocItem[]): string => {
    const file = path.join(scratch, `dbbackup-list-${++lists}`);
    fs.writeFileSync(file, items.map((i) => i.line).join('\n') + '\n', { mode: 0o600, flag: 'wx' });
    return file;
  };

  // A parallel dump's archive is laid down by the confined extractor (files and directories only).
  const layDown = async (plaintext: Readable): Promise<void> => {
    const dir = await ConfinedDir.open(scratch);
    try {
      const done = await extractTar(plaintext, dir, { what: `the parallel dump of backup ${o.manifest.id}` });
      log.info(`laid the parallel dump down in ${scratch}`, { files: done.files, bytes: done.bytes });
    } finally {
      dir.close();
    }
    if (!fs.existsSync(path.join(input, TOC_FILE))) {
      throw new DamagedError(`${o.database.name} holds no ${PARALLEL_DUMP_TOP}/${TOC_FILE}: it is not a parallel dump`);
    }
  };
  // A single-stream dump goes to its scratch file from the read-back's last stage (zstd -d writes
  // it: no byte passes through this process); it sees the end only once the stored bytes matched.
  const toFile: FileConsumer = { file: input };

  // Restored while it streams (see the module comment).
  let items: TocItem[] = [];
  const loaded = new Set<number>();
  const layToc = async (plaintext: Readable): Promise<void> => {
    fs.mkdirSync(input, { mode: 0o700 });
    const chunks: Buffer[] = [];
    for await (const c of plaintext as AsyncIterable<Buffer>) chunks.push(c);
    fs.writeFileSync(path.join(input, TOC_FILE), Buffer.concat(chunks), { mode: 0o600, flag: 'wx' });
    items = parseTocList(await capture({ cmd: pgTool('pg_restore'), args: ['--list', input], label: 'pg_restore' }));
    log.info(`creating the schema in ${copy}, then loading each table as the archive streams`, {
      database: copy,
      tables: items.filter((i) => i.tableData).length,
    });
    await pgRestore(['--section=pre-data']);
  };
  const streamLoad = async (plaintext: Readable): Promise<void> => {
    const byFile = new Map(items.filter((i) => i.tableData).map((i) => [`${PARALLEL_DUMP_TOP}/${i.id}.dat`, i]));
    const ready: { item: TocItem; size: number }[] = [];
    // At most `jobs` loaders, each with a byte share of the files ready when it starts (shareOf).
    const pump = () => {
      while (loads.free > 0 && ready.length > 0) {
        const taken = ready.splice(0, shareOf(ready, o.jobs).length);
        const batch = taken.map((r) => r.item);
        const bytes = taken.reduce((n, r) => n + r.size, 0);
        log.info(`loading ${batch.length} table(s) into ${copy}`, { tables: batch.length, bytes });
        loads.start(
          () => pgRestore(['-L', listFile(batch)]),
          () => {
            for (const i of batch) {
              loaded.add(i.id);
              fs.rmSync(path.join(input, `${i.id}.dat`), { force: true });
            }
          },
        );
      }
    };
    const loads = new BatchLoads(o.jobs, group, pump);
    const dir = await ConfinedDir.open(scratch);
    try {
      const done = await extractTar(plaintext, dir, {
        what: `the parallel dump of backup ${o.manifest.id}`,
        // The same bytes as the table of contents already laid down (both were checked against the manifest).
        skip: (_m, rel) => (rel === `${PARALLEL_DUMP_TOP}/${TOC_FILE}` ? 'read from its own artifact' : undefined),
        onFile: (rel, size) => {
          loads.check();
          const item = byFile.get(rel);
          if (item === undefined) return;
          ready.push({ item, size });
          pump();
        },
      });
      log.info('the parallel dump streamed in whole', { files: done.files, bytes: done.bytes });
    } catch (e) {
      await loads.abandon(e);
    } finally {
      dir.close();
    }
    await loads.drain();
  };
  const finishStreamed = async (): Promise<void> => {
    // The rest of the data section (sequence values, large objects; a table whose file never
    // came fails here), then indexes, constraints and triggers in parallel.
    await pgRestore(['--section=data', '-L', listFile(items.filter((i) => !loaded.has(i.id)))]);
    log.info(`pg_restore -j ${o.jobs} of the post-data section into ${copy}`, { jobs: o.jobs, database: copy });
    await pgRestore(['--section=post-data', `--jobs=${o.jobs}`]);
  };

  const restore = async (): Promise<void> => {
    try {
      if (toc !== undefined) await finishStreamed();
      else {
        log.info(`pg_restore -j ${o.jobs} into ${copy}`, { jobs: o.jobs, database: copy });
        await pgRestore([`--jobs=${o.jobs}`]);
      }
    } finally {
      group.close();
    }
    await applyDatabaseProperties(
      input,
      path.join(scratch, 'dbbackup-list-properties'),
      o.manifest.database,
      copy,
      pgEnv(target, password, copy),
    );
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
      ...(toc !== undefined
        ? [
            { artifact: toc, consumer: layToc },
            { artifact: o.database, consumer: streamLoad, streamed: true },
          ]
        : [
            directory
              ? { artifact: o.database, consumer: layDown, streamed: true }
              : { artifact: o.database, consumer: toFile },
          ]),
    ],
    commit: restore,
    rollback: async () => {
      group.stopAll();
      group.close();
      removeScratch();
      await dropCopy();
    },
  };
}

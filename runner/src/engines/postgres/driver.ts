import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { SECRET_ENV } from '../../../../lib/core/contract';
import { ConfigError } from '../../../../lib/core/errors';
import { Manifest, ManifestArtifact, TableStat } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { dumpJobs, PARALLEL_TABLE_MIN_BYTES, restoreJobs } from '../../../../lib/core/parallel';
import { SourceUrl } from '../../../../lib/core/urls';
import { BackupError, ChildProcessError, DamagedError } from '../../errors';
import { log } from '../../log';
import { capture, Child, versionOutput } from '../../pipeline/stages';
import {
  ArtifactPlan,
  BackupOpenOptions,
  BackupSession,
  CheckBeforeWork,
  DeepCheck,
  EngineDriver,
  RestoreOptions,
  RestoreSession,
  RestoreStep,
  ToolNeed,
  ToolPurpose,
} from '../shared/engine';
import { openPhysicalBackup } from './physical';
import { RestoreConfig } from '../../config';
import { runWalFetch, runWalPush } from './wal-shipping';
import { runWalReceive } from './wal-receive';
import { walArchiveWindow } from './wal-archive';
import { RestoreResult, TimeDrillRequest, TimeDrillResult } from '../shared/engine';
import { postgresDrillToTime } from './drill-pitr';
import { runPhysicalRestore } from './pitr-restore';
import {
  largeTablesSql,
  PARALLEL_DUMP_FORMAT,
  PARALLEL_TOC_FORMAT,
  parallelDumpArtifacts,
  spoolBytesSql,
} from './parallel-dump';
import { applyDatabaseProperties } from './database-properties';
import { openParallelRestore } from './parallel-restore';
import { PsqlSession, quoteIdent, quoteLiteral } from './session';
import { postgresReplicaLag } from './replica-lag';
import { pgEnv, pgTool } from './tools';

/** The marker pg_dumpall writes at the end of a complete dump. */
const GLOBALS_TRAILER = 'PostgreSQL database cluster dump complete';

/** A 64-bit advisory lock key for a string. */
function lockKey(s: string): string {
  return crypto.createHash('sha256').update(s).digest().readBigInt64BE(0).toString();
}

async function toolVersion(tool: string): Promise<string> {
  // The preflight's run of `TOOL --version`, when it checked the tool already.
  const out = await versionOutput(tool).catch(() => '');
  return /(\d+(\.\d+)+)/.exec(out)?.[1] ?? 'unknown';
}

const TABLE_COUNTS_SQL = `
SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'name', c.relname,
  'rows', (xpath('/row/c/text()',
    query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname),
      false, true, '')))[1]::text::bigint)
  ORDER BY n.nspname, c.relname), '[]')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND has_table_privilege(c.oid, 'SELECT')`;

const TABLE_ESTIMATES_SQL = `
SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'name', c.relname,
  'rows', greatest(c.reltuples, 0)::bigint, 'estimated', true) ORDER BY n.nspname, c.relname), '[]')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND has_table_privilege(c.oid, 'SELECT')`;

/** Row counts of every user table, as the connected session sees them. */
export async function countTables(session: PsqlSession): Promise<TableStat[]> {
  return session.json<TableStat[]>(TABLE_COUNTS_SQL);
}

/**
 * The session the preflight asked the server's version in, kept for the command's first session
 * with the same settings (a backup's control session, a restore's maintenance session; see
 * openWith). Module-wide: each driverFor() is a new driver. Until taken it holds nothing (no
 * transaction, no lock), and it ends with this process.
 */
let spare: { readonly env: string; readonly session: PsqlSession } | undefined;

/** `SHOW server_version_num` in a client of its own. */
function askOnce(env: Record<string, string | undefined>): Promise<string> {
  return capture({
    cmd: pgTool('psql'),
    args: ['-X', '-A', '-t', '-c', 'SHOW server_version_num'],
    env,
    label: 'psql',
  });
}

/** `SHOW server_version_num` in a session kept for the command's session with the same settings (openWith). */
async function askInSpare(env: Record<string, string | undefined>): Promise<string> {
  const session = new PsqlSession({ cmd: pgTool('psql'), args: [], env, label: 'psql' });
  try {
    const out = await session.query('SHOW server_version_num');
    void spare?.session.close();
    spare = { env: JSON.stringify(env), session };
    return out;
  } catch (e) {
    await session.close();
    throw e;
  }
}

/**
 * A session with `env` and what its first query printed: the preflight's session if it was
 * opened with the same settings (so as the same user, to the same database), else (none, or it
 * has gone since: idle_session_timeout) a new one. A first query that fails closes the session.
 */
async function openWith(env: Record<string, string | undefined>, sql: string): Promise<[PsqlSession, string]> {
  const kept = spare;
  spare = undefined;
  if (kept !== undefined && kept.env === JSON.stringify(env) && kept.session.alive) {
    const out = await kept.session.query(sql).catch(() => undefined);
    if (out !== undefined) return [kept.session, out];
  }
  void kept?.session.close();
  const session = new PsqlSession({ cmd: pgTool('psql'), args: [], env, label: 'psql' });
  try {
    return [session, await session.query(sql)];
  } catch (e) {
    await session.close();
    throw e;
  }
}

export class PostgresDriver implements EngineDriver {
  public readonly engine = Engine.POSTGRES;
  public readonly walPush = runWalPush;
  public readonly walFetch = runWalFetch;
  public readonly replicaLag = postgresReplicaLag;
  public readonly walReceive = runWalReceive;
  public readonly archiveWindow = walArchiveWindow;
  public readonly toTimeRefusal =
    'PostgreSQL point-in-time recovery lays down a data directory from a physical base backup and the WAL ' +
    'archive: give --target-dir DIR instead of --target URL, then start PostgreSQL on DIR.';

  public notRestorableToUrl(manifest: Manifest): string | undefined {
    if (manifest.method !== BackupMethod.PHYSICAL) return undefined;
    return (
      `backup ${manifest.id} is a physical backup (a whole data directory); ` +
      `restore it with --target-dir DIR, then start PostgreSQL on DIR.`
    );
  }

  public drillToTime(request: TimeDrillRequest, signal: AbortSignal): Promise<TimeDrillResult> {
    return postgresDrillToTime(request, signal);
  }

  public restoreToDirectory(cfg: RestoreConfig, signal: AbortSignal, check: CheckBeforeWork): Promise<RestoreResult> {
    return runPhysicalRestore(cfg, signal, check);
  }

  public tools(purpose: ToolPurpose, method: BackupMethod): readonly ToolNeed[] {
    const fix = "install the PostgreSQL client tools (Debian: postgresql-client) of the server's version or newer";
    const need = (name: string, atLeastServerMajor = false): ToolNeed => ({
      cmd: pgTool(name),
      label: name,
      why: `a PostgreSQL ${purpose}`,
      fix,
      atLeastServerMajor,
    });
    if (purpose === ToolPurpose.RESTORE) return [need('psql'), need('pg_restore', true)];
    if (method === BackupMethod.PHYSICAL) return [need('psql'), need('pg_basebackup', true)];
    return [need('psql'), need('pg_dump', true), need('pg_dumpall', true)];
  }

  public async serverMajor(url: SourceUrl, purpose: ToolPurpose): Promise<number | undefined> {
    const variable = purpose === ToolPurpose.BACKUP ? SECRET_ENV.SOURCE_PASSWORD : SECRET_ENV.TARGET_PASSWORD;
    const password = process.env[variable];
    // A backup asks its database, then the maintenance database. A restore's database may not
    // exist yet, and a restore opens its session in the maintenance database: it asks that one
    // first (one connection, not a refused one and then another), then, if that fails for any
    // reason, its own database.
    const maintenance = url.params.maintenance_db ?? 'postgres';
    const restore = purpose === ToolPurpose.RESTORE;
    const databases = [...new Set(restore ? [maintenance, url.database] : [url.database, maintenance])];
    for (const [i, db] of databases.entries()) {
      const env = pgEnv(url, password, db);
      const next = (e: Error) => /does not exist/.test(e.message) || (restore && i === 0);
      // The first database asked is the one the command's first session opens in (a backup's
      // control session, a restore's maintenance session): asked in that session (openWith),
      // one client start and one connection fewer.
      const asked = i === 0 ? askInSpare(env) : askOnce(env);
      const out = await asked.catch((e: Error) => (next(e) ? '' : undefined));
      if (out === undefined) return undefined;
      if (/^\d+$/.test(out.trim())) return Math.floor(Number(out.trim()) / 10000);
    }
    return undefined;
  }

  public async openBackup(source: SourceUrl, options: BackupOpenOptions): Promise<BackupSession> {
    if (options.method === BackupMethod.LOGICAL && options.type !== BackupType.FULL) {
      throw new ConfigError(
        `--type ${options.type} of PostgreSQL is a WAL range over a physical base ` +
          `backup; give --method physical (pg_dump has no incremental form).`,
      );
    }
    const env = pgEnv(source, process.env[SECRET_ENV.SOURCE_PASSWORD]);
    // Asked while the session opens (each is a process start; the dump waits for neither otherwise).
    const pgDump = pgTool('pg_dump');
    const pgDumpall = pgTool('pg_dumpall');
    const versions = Promise.all([toolVersion(pgDump), toolVersion(pgDumpall)]);
    // The server's facts and the first try of the overlap lock: one round trip.
    const first =
      `SELECT json_build_object('version', current_setting('server_version'), 'num', ` +
      `current_setting('server_version_num')::int, 'recovery', pg_is_in_recovery(), ` +
      `'locked', pg_try_advisory_lock(${lockKey(options.lockKey)}))`;
    type Info = { version: string; num: number; recovery: boolean; locked: boolean };
    const [session, answer] = await openWith(env, first);
    try {
      const info = JSON.parse(answer) as Info;
      await this.lock(session, options, source, info.locked);
      if (options.method === BackupMethod.PHYSICAL)
        return await openPhysicalBackup(session, source, env, info, options, pgTool);
      // A table locked by another session (ACCESS EXCLUSIVE) must not hold the backup forever:
      // the control session's counts and pg_dump's table locks give up after a bounded wait.
      const lockWait = options.lockTimeoutSeconds ?? 60;
      // The exact row counts scan every table while the dump runs: in this one backend, not with
      // parallel workers that would take the cores pg_dump and the compressor need.
      // The settings, the transaction, its snapshot and (for the rule of lib/core/parallel.ts without
      // --jobs: parallel only with two large tables or more) the large tables in it: one round trip.
      const large = options.jobs === undefined ? `, 'large', (${largeTablesSql(PARALLEL_TABLE_MIN_BYTES)})` : '';
      // The WAL position: the insert position, which covers every commit the snapshot sees (with
      // synchronous_commit off a commit can still sit in the WAL buffers, past pg_current_wal_lsn).
      const snap = await session.json<{ snapshot: string; lsn: string | null; large?: number }>(
        `SET lock_timeout = '${lockWait}s'; SET max_parallel_workers_per_gather = 0; ` +
          'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; ' +
          `SELECT json_build_object('snapshot', pg_export_snapshot(), ` +
          `'lsn', ${info.recovery ? 'pg_last_wal_replay_lsn()' : 'pg_current_wal_insert_lsn()'}${large})`,
      );
      const dumpVersion = await versions.then(([d]) => d);
      if (Number(dumpVersion.split('.')[0]) < Math.floor(info.num / 10000)) {
        throw new BackupError(
          `pg_dump ${dumpVersion} (${pgDump}) cannot dump a PostgreSQL ${info.version} server; ` +
            `install the client tools of version ${Math.floor(info.num / 10000)} or newer.`,
        );
      }
      const globalsArgs = ['--globals-only', '--no-password', '-l', source.database];
      const jobs = dumpJobs(options.jobs, os.availableParallelism(), Number(snap.large ?? 0));
      const spoolBytes = jobs > 1 ? Number(await session.query(spoolBytesSql(jobs))) : undefined;
      // Counted in the same snapshot as the dump, while it runs (or the planner's estimates: no scan).
      const estimate = options.rowCounts === 'estimate';
      const counts = (estimate ? session.json<TableStat[]>(TABLE_ESTIMATES_SQL) : countTables(session)).catch(
        (e: Error) => {
          options.warn(
            'could not count table rows for the manifest; restore drills will check tables without row counts',
            {
              error: e.message,
            },
          );
          return undefined;
        },
      );
      const onDumpFailure = (stderr: string) => {
        const table = /(?:lock|statement) timeout[\s\S]*LOCK TABLE (\S+) IN/i.exec(stderr)?.[1];
        if (table === undefined) return undefined;
        return {
          fail:
            `pg_dump gave up after ${lockWait} s waiting for a lock on table ${table}: another session holds ` +
            'a lock that conflicts with ACCESS SHARE (e.g. ACCESS EXCLUSIVE from ALTER TABLE, LOCK TABLE or ' +
            'VACUUM FULL). Find it in pg_locks, or raise --lock-timeout SECONDS.',
        };
      };
      const parallel =
        jobs > 1
          ? parallelDumpArtifacts({
              pgDump,
              env,
              snapshot: snap.snapshot,
              lockWaitSeconds: lockWait,
              jobs,
              onFailure: onDumpFailure,
              spoolBytes,
            })
          : undefined;
      const databaseArtifacts: readonly ArtifactPlan[] = parallel?.plans ?? [
        {
          name: 'database.pgdump',
          role: 'database',
          format: 'pg_dump-custom',
          neverEmpty: true,
          producer: {
            cmd: pgDump,
            args: [
              '--format=custom',
              '--compress=0',
              '--no-password',
              `--snapshot=${snap.snapshot}`,
              `--lock-wait-timeout=${lockWait}s`,
            ],
            env,
            label: 'pg_dump',
          },
          onFailure: onDumpFailure,
        },
      ];
      return {
        serverVersion: info.version,
        tools: { pg_dump: dumpVersion, pg_dumpall: (await versions)[1] },
        position: snap.lsn === null ? undefined : { kind: 'lsn', lsn: snap.lsn },
        artifacts: [
          ...databaseArtifacts,
          {
            name: 'globals.sql',
            role: 'globals',
            format: 'sql',
            // Roles are not in the dump's snapshot either way: dumped while the database streams.
            alongside: true,
            producer: { cmd: pgDumpall, args: globalsArgs, env, label: 'pg_dumpall' },
            onFailure: (stderr) => {
              if (/permission denied/i.test(stderr)) {
                const who = source.user ?? 'the backup account';
                return {
                  retry: { cmd: pgDumpall, args: [...globalsArgs, '--no-role-passwords'], env, label: 'pg_dumpall' },
                  retryWarning: () =>
                    `roles were saved without their passwords: ${who} may not read pg_authid, so pg_dumpall ` +
                    'ran with --no-role-passwords; a restore --with-globals creates the roles without ' +
                    'passwords (set them again with ALTER ROLE … PASSWORD, or back up as a superuser to keep them).',
                };
              }
              return {
                skipWarning:
                  `roles and other globals were not saved: pg_dumpall ` +
                  `failed: ${stderr.trim().split('\n').slice(-2).join(' ')}`,
              };
            },
          },
        ],
        tables: () => counts,
        close: () => {
          parallel?.cleanup();
          return session.close();
        },
      };
    } catch (e) {
      await session.close();
      throw e;
    }
  }

  /** Hold the overlap lock, waiting up to --lock-wait for it; `taken`: the answer of the first try, made already. */
  private async lock(
    session: PsqlSession,
    options: BackupOpenOptions,
    source: SourceUrl,
    taken: boolean,
  ): Promise<void> {
    const key = lockKey(options.lockKey);
    const end = Date.now() + options.lockWaitSeconds * 1000;
    let locked = taken;
    while (!locked) {
      if (Date.now() >= end) {
        throw new BackupError(
          `another backup of ${source.database} to the same place is running ` +
            `(advisory lock ${key} on ${source.display} is held); this run refuses to ` +
            `interleave with it. Wait for it, or give --lock-wait SECONDS.`,
        );
      }
      log.info('waiting for an overlapping backup of the same database to end', { lock: key });
      await new Promise((r) => setTimeout(r, 1000));
      locked = (await session.query(`SELECT pg_try_advisory_lock(${key})`)) === 't';
    }
  }

  public async openRestore(target: SourceUrl, manifest: Manifest, options: RestoreOptions): Promise<RestoreSession> {
    const password = process.env[SECRET_ENV.TARGET_PASSWORD];
    const maintenanceDb = target.params.maintenance_db ?? 'postgres';
    const database = manifest.artifacts.find((a) => a.role === 'database');
    if (database === undefined) throw new BackupError(`backup ${manifest.id} has no database artifact`);
    const globals = manifest.artifacts.find((a) => a.role === 'globals');
    if (options.withGlobals && globals === undefined) {
      throw new BackupError(`backup ${manifest.id} holds no globals (roles); restore it without --with-globals.`);
    }
    const steps: RestoreStep[] = [];
    if (options.withGlobals) {
      steps.push({
        artifact: globals!,
        consumer: (plaintext) =>
          applyGlobals(plaintext, pgEnv(target, password, maintenanceDb), target.user ?? 'postgres'),
      });
    }

    // A parallel dump, or --jobs N above 1: read back into a scratch directory, pg_restore -j N into
    // a new database, swapped in on success (parallel-restore.ts).
    const directory = database.format === PARALLEL_DUMP_FORMAT;
    const jobs = restoreJobs(options.jobs, os.availableParallelism(), directory);
    if (directory || jobs > 1) {
      return openParallelRestore({
        target,
        password,
        manifest,
        database,
        jobs,
        clean: options.clean,
        before: steps,
        refuseNonEmpty: () => this.refuseNonEmpty(target, password, options.clean),
        signal: options.signal,
      });
    }
    // In the maintenance database: the session the preflight asked the server's version in, if it did.
    const [admin, count] = await openWith(
      pgEnv(target, password, maintenanceDb),
      `SELECT count(*) FROM pg_database WHERE datname = ${quoteLiteral(target.database)}`,
    );
    let created = false;
    try {
      if (count === '1') {
        await this.refuseNonEmpty(target, password, options.clean);
      } else {
        await admin.query(`CREATE DATABASE ${quoteIdent(target.database)}`);
        created = true;
      }
    } catch (e) {
      await admin.close();
      throw e;
    }
    // Into an existing database: one transaction, so a failure leaves it as it was. Into one
    // this restore created, a failure drops it, so no single transaction is needed, and none is
    // used: it would lock every table at once and overflow the lock table (max_locks_per_transaction)
    // of a server with the default settings once a database has thousands of tables.
    steps.push({
      artifact: database,
      consumer: {
        cmd: pgTool('pg_restore'),
        args: [
          ...(created ? [] : ['--single-transaction']),
          '--exit-on-error',
          '--no-password',
          ...(options.clean ? ['--clean', '--if-exists'] : []),
          '-d',
          target.database,
        ],
        env: pgEnv(target, password),
        label: 'pg_restore',
      },
    });
    // A new database is given the source database's own properties (comment, grants, settings),
    // which pg_restore writes only with --create (database-properties.ts). pg_restore read the
    // archive from a pipe, so a second read keeps the archive's start, its table of contents
    // (tee, until pg_restore --list has read it and exits), and the properties are read from that.
    // That read stops once the prefix it used matched the first read's (headOnly).
    const side = created ? fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-props-')) : undefined;
    const head = side === undefined ? undefined : path.join(side, 'archive-head');
    if (head !== undefined) {
      steps.push({
        artifact: database,
        consumer: {
          cmd: 'sh',
          args: ['-c', 'umask 077; tee "$1" | "$2" --create --list > /dev/null', 'sh', head, pgTool('pg_restore')],
          label: 'pg_restore',
        },
        headOnly: true,
      });
    }
    const removeSide = () => {
      if (side !== undefined) fs.rmSync(side, { recursive: true, force: true });
    };
    return {
      steps,
      // A failure here is the restore's: rollback then drops the new database (with `admin`).
      commit: async () => {
        if (head !== undefined) {
          const list = path.join(side!, 'list');
          await applyDatabaseProperties(head, list, manifest.database, target.database, pgEnv(target, password));
        }
        removeSide();
        await admin.close();
      },
      rollback: async () => {
        removeSide();
        if (created) {
          log.info('dropping the database this failed restore created', { database: target.database });
          // WITH (FORCE): a pg_restore we stopped may still hold a connection for a moment.
          await admin
            .query(`DROP DATABASE IF EXISTS ${quoteIdent(target.database)} WITH (FORCE)`)
            .catch(() => admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(target.database)}`))
            .catch((e: Error) => log.warn('could not drop it', { error: e.message }));
        }
        await admin.close();
      },
    };
  }

  /** A restore never mixes a backup into a database that has objects, unless told to replace them. */
  private async refuseNonEmpty(target: SourceUrl, password: string | undefined, clean: boolean): Promise<void> {
    const db = new PsqlSession({ cmd: pgTool('psql'), args: [], env: pgEnv(target, password), label: 'psql' });
    try {
      const objects = Number(
        await db.query(
          `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ` +
            `WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', ` +
            `'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'`,
        ),
      );
      if (objects > 0 && !clean) {
        throw new ConfigError(
          `the target database ${target.database} on ${target.display} already has ${objects} ` +
            `tables, views or sequences; restore refuses to mix a backup into them. Give --clean to ` +
            `replace the objects the backup contains, or restore into a new database.`,
        );
      }
    } finally {
      await db.close();
    }
  }

  public async countTables(target: SourceUrl): Promise<TableStat[]> {
    const session = new PsqlSession({
      cmd: pgTool('psql'),
      args: [],
      env: pgEnv(target, process.env[SECRET_ENV.TARGET_PASSWORD]),
      label: 'psql',
    });
    try {
      return await countTables(session);
    } finally {
      await session.close();
    }
  }

  private async admin<T>(target: SourceUrl, fn: (s: PsqlSession) => Promise<T>): Promise<T> {
    const env = pgEnv(target, process.env[SECRET_ENV.TARGET_PASSWORD], target.params.maintenance_db ?? 'postgres');
    const session = new PsqlSession({ cmd: pgTool('psql'), args: [], env, label: 'psql' });
    try {
      return await fn(session);
    } finally {
      await session.close();
    }
  }

  public async databaseExists(target: SourceUrl): Promise<boolean> {
    return this.admin(
      target,
      async (s) =>
        (await s.query(`SELECT count(*) FROM pg_database WHERE datname = ${quoteLiteral(target.database)}`)) === '1',
    );
  }

  public async dropDatabase(target: SourceUrl): Promise<void> {
    await this.admin(target, (s) => s.query(`DROP DATABASE IF EXISTS ${quoteIdent(target.database)} WITH (FORCE)`));
  }

  public deepCheck(artifact: ManifestArtifact): DeepCheck {
    if (artifact.role === 'globals') return { kind: 'trailer', trailer: GLOBALS_TRAILER };
    // A base backup: tar reads every member; a WAL segment: decryption and decompression check it whole.
    if (artifact.format === 'pg_basebackup-tar' || artifact.format === PARALLEL_DUMP_FORMAT)
      return { kind: 'command', command: { cmd: 'tar', args: ['-t', '-f', '-'], label: 'tar' } };
    if (artifact.format === PARALLEL_TOC_FORMAT) return { kind: 'reader', read: readToc };
    if (artifact.format === 'wal-segment')
      return { kind: 'command', command: { cmd: 'wc', args: ['-c'], label: 'wc' } };
    // Writing the whole archive out as SQL reads every data block, not only the table of contents.
    return { kind: 'command', command: { cmd: pgTool('pg_restore'), args: ['--file=/dev/null'], label: 'pg_restore' } };
  }
}

/** A parallel dump's table of contents: pg_dump's archive header, whole (its hash was checked already). */
async function readToc(plaintext: Readable): Promise<void> {
  let head = Buffer.alloc(0);
  for await (const c of plaintext as AsyncIterable<Buffer>) if (head.length < 5) head = Buffer.concat([head, c]);
  if (head.subarray(0, 5).toString('latin1') !== 'PGDMP') {
    throw new DamagedError("the parallel dump's table of contents does not begin with the archive header PGDMP");
  }
}

/**
 * Apply a pg_dumpall globals script. A role that already exists (such as `postgres`) is not an
 * error; every other error is.
 */
async function applyGlobals(
  plaintext: Readable,
  env: Record<string, string | undefined>,
  restoringRole: string,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of plaintext as AsyncIterable<Buffer>) chunks.push(c);
  const script = withoutOwnRole(Buffer.concat(chunks).toString('utf8'), restoringRole);
  const child = new Child(
    { cmd: pgTool('psql'), args: ['-X', '-q', '-v', 'ON_ERROR_STOP=0', '-f', '-'], env, label: 'psql' },
    ['pipe', 'ignore', 'pipe'],
  );
  child.process.stdin!.on('error', () => undefined);
  child.process.stdin!.end(script);
  let failure: unknown;
  await child.done.catch((e) => (failure = e));
  const errors = child.stderr
    .split('\n')
    .filter((l) => /ERROR:/.test(l))
    .filter((l) => !/already exists/.test(l));
  if (failure !== undefined || errors.length > 0) {
    throw new BackupError(
      `restoring roles and globals ` +
        `failed${failure instanceof ChildProcessError ? ` (psql exit ${failure.exitCode})` : ''}: ` +
        `${errors.slice(0, 5).join(' | ') || (failure as Error).message}`,
    );
  }
  log.info('restored roles and other globals');
}

/**
 * The globals script without the statements that would change the role doing the restore
 * (pg_dumpall writes `ALTER ROLE postgres WITH … PASSWORD '…'`: applied, it would replace the
 * target's own password with the source's and lock the restore out of its own server).
 */
export function withoutOwnRole(script: string, role: string): string {
  const names = new Set([role, quoteIdent(role)]);
  return script
    .split('\n')
    .filter((line) => {
      const m = /^(?:CREATE|ALTER) ROLE ("(?:[^"]|"")+"|[^\s;]+)[\s;]/.exec(line);
      if (m !== null && names.has(m[1])) {
        log.info(
          `kept the restoring role ${role} as it is on the target (its ` +
            `attributes and password are not taken from the backup)`,
        );
        return false;
      }
      return true;
    })
    .join('\n');
}

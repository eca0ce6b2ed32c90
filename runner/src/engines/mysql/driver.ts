import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { SECRET_ENV } from '../../../../lib/core/contract';
import { ConfigError } from '../../../../lib/core/errors';
import { restoreJobs } from '../../../../lib/core/parallel';
import { LogPosition, Manifest, ManifestArtifact, TableStat } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { SourceUrl } from '../../../../lib/core/urls';
import { ServerFamily, ServerVersions } from '../../../../lib/core/versions';
import { BackupError } from '../../errors';
import { log } from '../../log';
import { capture, CommandSpec, findTool } from '../../pipeline/stages';
import {
  ArtifactPlan,
  BackupOpenOptions,
  BackupSession,
  DeepCheck,
  EngineDriver,
  RestoreOptions,
  RestoreSession,
  RestoreStep,
  ToolContext,
  ToolNeed,
  ToolPurpose,
} from '../shared/engine';
import { RestoreConfig } from '../../config';
import { runBinlogStream } from './binlog-stream';
import { binlogArchiveWindow } from './binlog-archive';
import { CheckBeforeWork, RestoreBackup, RestoreResult, TimeDrillRequest, TimeDrillResult } from '../shared/engine';
import { mysqlDrillToTime } from './drill-pitr';
import { runBinlogChainRestore, runBinlogRestore } from './binlog-restore';
import { applyGrants, grantsNotSavedWarning, grantsWithoutUnknown } from './grants';
import { openBinlogRange } from './binlog-range';
import { MysqlSession, quoteName, quoteString } from './session';
import { mysqlReplicaLag } from './replica-lag';
import {
  DUMP_TRAILER,
  MysqlFlavor,
  ServerInfo,
  clientTool,
  contentsOf,
  checkEnumLabels,
  countRows,
  databaseExists,
  databaseExistsSql,
  dumpTool,
  lockName,
  mysqlConnArgs,
  mysqlEnv,
  openSession,
  serverInfo,
} from './client';
import { LockWatch, LockWatchOf, SharedSnapshot } from './snapshot';
import { RestorePlan, expectTrailer } from './restore-plan';
import { openPhysicalBackup, PhysicalFormat } from './physical';
import { drillMysqlPhysical, isMysqlPhysical, runMysqlPhysicalRestore } from './physical-restore';
import { physicalDeepCheck } from './physical-check';
import {
  MYDUMPER_FIX,
  MYDUMPER_FORMAT,
  mydumperSpoolBytes,
  mysqlDumpJobs,
  OBJECTS_FORMAT,
  objectsArtifact,
  openMydumperBackup,
} from './parallel-dump';
import { openMyloaderRestore } from './parallel-restore';

/** --jobs N above 1 of the restore of a single-stream backup (see docs/mysql.md#parallel-dumps-and-restores). */
const PARALLEL_SINGLE_STREAM =
  '--jobs above 1 is not used for this backup: it is a single-stream dump (mariadb-dump), restored as one ' +
  'stream; a backup taken with --jobs N (mydumper) restores with myloader -t N. See docs/mysql.md';

/** The statistics' row estimates of every base table (`--row-counts estimate`), marked as estimates. */
async function estimateRows(session: MysqlSession, database: string): Promise<TableStat[]> {
  const rows = await session.json<{ n: string; c: number | null }[]>(
    `SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT('n', TABLE_NAME, 'c', TABLE_ROWS)), '[]') ` +
      'FROM information_schema.TABLES ' +
      `WHERE TABLE_SCHEMA = ${quoteString(database)} AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`,
  );
  return rows
    .map((r) => ({ schema: '', name: r.n, rows: Number(r.c ?? 0), estimated: true }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The session the preflight asked a backup's server in (serverToolProblem), kept for the backup's
 * control session (module-wide: each driverFor() is a new driver). Until taken it holds nothing
 * (no transaction, no lock) and ends with this process.
 */
let spare: { readonly key: string; readonly session: MysqlSession; readonly info: ServerInfo } | undefined;

/** What a session was opened with: the client's connection arguments and environment. */
function spareKey(url: SourceUrl, env: Record<string, string | undefined>): string {
  return JSON.stringify([mysqlConnArgs(url), env]);
}

/** The preflight's session, if it was opened with the same connection arguments and environment. */
function takeSpare(key: string): { readonly session: MysqlSession; readonly info: ServerInfo } | undefined {
  const kept = spare;
  spare = undefined;
  if (kept === undefined) return undefined;
  if (kept.key === key && kept.session.alive) return kept;
  void kept.session.close();
  return undefined;
}

export class MySQLDriver implements EngineDriver {
  public readonly engine = Engine.MYSQL;
  public readonly binlogStream = runBinlogStream;
  public readonly replicaLag = mysqlReplicaLag;
  public readonly archiveWindow = binlogArchiveWindow;

  public drillToTime(
    request: TimeDrillRequest,
    signal: AbortSignal,
    restoreBackup: RestoreBackup,
  ): Promise<TimeDrillResult> {
    return mysqlDrillToTime(request, signal, restoreBackup, this);
  }

  public restoreToTime(
    cfg: RestoreConfig,
    signal: AbortSignal,
    restoreBackup: RestoreBackup,
    check: CheckBeforeWork,
  ): Promise<RestoreResult> {
    return runBinlogRestore(cfg, signal, restoreBackup, this, check);
  }

  public restoreChain(
    cfg: RestoreConfig,
    manifest: Manifest,
    signal: AbortSignal,
    restoreBackup: RestoreBackup,
    check: CheckBeforeWork,
  ): Promise<RestoreResult> {
    return runBinlogChainRestore(cfg, manifest, signal, restoreBackup, this, check);
  }

  /** `restore --target-dir DIR` of a physical backup (physical-restore.ts). */
  public restoreToDirectory(cfg: RestoreConfig, signal: AbortSignal, check: CheckBeforeWork): Promise<RestoreResult> {
    return runMysqlPhysicalRestore(cfg, signal, check);
  }

  /** A drill of a physical backup: laid down under TMPDIR, a temporary server, row counts (physical-restore.ts). */
  public readonly drillPhysical = drillMysqlPhysical;

  public notRestorableToUrl(manifest: Manifest): string | undefined {
    if (!isMysqlPhysical(manifest)) return undefined;
    return (
      `backup ${manifest.id} is a physical backup (a whole server's data directory); restore it with ` +
      '--target-dir DIR, then start mariadbd on DIR.'
    );
  }

  public tools(purpose: ToolPurpose, method?: BackupMethod, context?: ToolContext): readonly ToolNeed[] {
    const fix = 'install the MariaDB or MySQL client (Debian: mariadb-client)';
    const cmd = clientTool();
    const client: ToolNeed = { cmd, label: path.basename(cmd), why: `a MySQL/MariaDB ${purpose}`, fix };
    const mydumper = (name: 'mydumper' | 'myloader', why: string): ToolNeed => ({
      cmd: name,
      label: name,
      why,
      fix: `${MYDUMPER_FIX}, or give --jobs 1 for the single-stream dump`,
    });
    // The server family decides the physical tools (mariadb-backup or XtraBackup); the session checks them.
    if (method === BackupMethod.PHYSICAL && purpose === ToolPurpose.BACKUP) return [client];
    if (purpose === ToolPurpose.RESTORE) {
      // The backup's format picks myloader (a backup dumped with --jobs N), whatever --jobs the restore has.
      const parallel = context?.manifest?.artifacts.some((a) => a.format === MYDUMPER_FORMAT) === true;
      if (!parallel) return [client];
      const loader = mydumper('myloader', `the restore of backup ${context!.manifest!.id}, dumped by mydumper`);
      return [client, { ...loader, fix: MYDUMPER_FIX }];
    }
    const dump = findTool(['mariadb-dump', 'mysqldump']) ?? 'mariadb-dump';
    const tools = [client, { cmd: dump, label: path.basename(dump), why: 'a MySQL/MariaDB backup', fix }];
    // An explicit --jobs N above 1 of a full logical dump runs mydumper (the default falls back without it).
    const full = (context?.type ?? BackupType.FULL) === BackupType.FULL;
    if (full && (context?.jobs ?? 1) > 1) tools.push(mydumper('mydumper', `--jobs ${context!.jobs}`));
    return tools;
  }

  public async serverToolProblem(url: SourceUrl, purpose: ToolPurpose): Promise<string | undefined> {
    if (purpose !== ToolPurpose.BACKUP) return undefined;
    let info: ServerInfo;
    try {
      const env = mysqlEnv(process.env[SECRET_ENV.SOURCE_PASSWORD]);
      const session = await openSession(url, env);
      try {
        info = await serverInfo(session, url.display);
      } catch (e) {
        await session.close();
        throw e;
      }
      // Kept for the backup's control session (openBackup): one client start and connection fewer.
      void spare?.session.close();
      spare = { key: spareKey(url, env), session, info };
    } catch {
      return undefined;
    }
    const dump = await dumpTool(info.flavor).catch(() => undefined);
    if (dump === undefined) return undefined;
    const family = (flavor: boolean) => (flavor ? ServerFamily.MARIADB : ServerFamily.MYSQL);
    return ServerVersions.dumpToolProblem(
      family(info.flavor === MysqlFlavor.MARIADB),
      info.version,
      family(dump.mariadb),
      dump.version,
      `${path.basename(dump.path)} (${dump.path})`,
    );
  }

  public async openBackup(source: SourceUrl, options: BackupOpenOptions): Promise<BackupSession> {
    const env = mysqlEnv(process.env[SECRET_ENV.SOURCE_PASSWORD]);
    const connArgs = mysqlConnArgs(source);
    // The preflight's session when there is one; a new one if there is none or it has gone since (wait_timeout).
    const kept = takeSpare(spareKey(source, env));
    const keptExists = await kept?.session
      .query(databaseExistsSql(source.database))
      .catch(() => kept.session.close().then(() => undefined));
    const control = keptExists !== undefined ? kept!.session : await openSession(source, env);
    let snapshot: SharedSnapshot | undefined;
    let lockWatch: LockWatch | undefined;
    try {
      const info = keptExists !== undefined ? kept!.info : await serverInfo(control, source.display);
      const exists = keptExists ?? (await control.query(databaseExistsSql(source.database)));
      if (exists !== '1') {
        throw new BackupError(
          `the database ${source.database} does not exist on ${source.display} (or ${info.account} may not see it).`,
        );
      }
      await this.lock(control, options, source);
      if (options.method === BackupMethod.PHYSICAL)
        return await openPhysicalBackup(control, source, env, connArgs, info, options);
      if (options.type !== BackupType.FULL)
        return await openBinlogRange(control, source, env, connArgs, info.version, options);
      const dump = await dumpTool(info.flavor);
      await checkEnumLabels(control, source.database);
      // --jobs N, or the rule of lib/core/parallel.ts; above 1: mydumper -t N through a spool
      // (parallel-dump.ts), when mydumper and RELOAD are there (checked now, before any dump starts).
      const jobs = await mysqlDumpJobs(control, options.jobs, info.account, source.database);
      if (jobs > 1) {
        return await openMydumperBackup({
          source,
          password: process.env[SECRET_ENV.SOURCE_PASSWORD],
          jobs,
          spoolBytes: await mydumperSpoolBytes(control, source.database, jobs),
          lockTimeoutSeconds: options.lockTimeoutSeconds ?? 60,
          warn: options.warn,
          serverVersion: info.version,
          logBin: info.logBin,
          globals: [
            objectsArtifact(dump, connArgs, env, source.database),
            ...this.grantsArtifacts(dump, connArgs, env, options.warn),
          ],
          tables: () =>
            estimateRows(control, source.database).catch((e: Error) => {
              options.warn('could not read the tables for the manifest', { error: e.message.split('\n')[0] });
              return undefined;
            }),
          control,
          close: () => control.close(),
        });
      }
      snapshot = await SharedSnapshot.open(source, env, info);
      const snap = snapshot;
      // The row counts wait for a locked table no longer than the dump does.
      await snap.session.query(`SET SESSION lock_wait_timeout = ${options.lockTimeoutSeconds ?? 60}`);
      // --row-counts estimate: InnoDB's statistics (information_schema.TABLES.TABLE_ROWS), no scan.
      const counting =
        options.rowCounts === 'estimate'
          ? estimateRows(snap.session, source.database)
          : countRows(snap.session, source.database);
      const counts = counting.catch((e: Error) => {
        options.warn(
          'could not count table rows for the manifest; restore drills will check tables without row counts',
          {
            error: e.message.split('\n')[0],
          },
        );
        return undefined;
      });

      // The snapshot session's row counts wait on a locked table too, under their own lock_wait_timeout.
      const ours = snap.connectionId === undefined ? [] : [snap.connectionId];
      const seconds = options.lockTimeoutSeconds ?? 60;
      const watch = new LockWatch(control, source.database, seconds, LockWatchOf.SINGLE_STREAM, ours);
      lockWatch = watch;
      const dumpArgs = [
        ...connArgs,
        '--single-transaction',
        '--routines',
        '--triggers',
        '--events',
        '--hex-blob',
        '--default-character-set=utf8mb4',
        '--no-tablespaces',
        '--max-allowed-packet=1G',
        '--verbose',
      ];
      const positionArgs = info.logBin ? this.positionArgs(info, dump) : [];
      const dumpName = path.basename(dump.path);
      const dumpSpec = (extra: string[]): CommandSpec => ({
        cmd: dump.path,
        args: [...dumpArgs, ...extra, '--', source.database],
        env,
        label: dumpName,
      });
      const artifacts: ArtifactPlan[] = [
        {
          name: 'database.sql',
          role: 'database',
          format: 'mysql-sql',
          neverEmpty: true,
          producer: dumpSpec(positionArgs),
          onStderr: snap.onDumpStderr,
          onFailure: (stderr) => {
            if (watch.blocked !== undefined) return { fail: watch.blocked };
            // Without the privileges --master-data needs, dump without it (the manifest still
            // records the position from the shared snapshot).
            if (
              positionArgs.length > 0 &&
              /access denied|privilege|RELOAD|REPLICATION CLIENT|BINLOG MONITOR/i.test(stderr)
            ) {
              return { retry: dumpSpec([]) };
            }
            return undefined;
          },
        },
      ];
      artifacts.push(...this.grantsArtifacts(dump, connArgs, env, options.warn));
      let position: LogPosition | undefined;
      let positionDecided = false;
      return {
        serverVersion: info.version,
        tools: { [dumpName]: dump.version },
        get position() {
          return positionDecided ? position : snap.position;
        },
        artifacts,
        tables: async () => {
          await watch.stop();
          const stats = await counts;
          await snap.release();
          const same = await snap.sameAsDump(control);
          positionDecided = true;
          for (const w of snap.warnings) options.warn(w);
          if (!same) {
            if (snap.position !== undefined) {
              options.warn(
                'the binlog position and row counts are not recorded: the dump may have opened its snapshot ' +
                  'after other commits (give the backup user RELOAD so the runner can align the snapshots); ' +
                  'the dump itself records its position in a -- CHANGE MASTER TO comment',
              );
            } else {
              options.warn(
                'the row counts are not recorded: the dump may have opened its snapshot after other commits ' +
                  '(give the backup user RELOAD so the runner can align the snapshots)',
              );
            }
            position = undefined;
            return undefined;
          }
          position = snap.position;
          return stats;
        },
        close: async () => {
          await watch.stop();
          await snap.close();
          await control.close();
        },
      };
    } catch (e) {
      await lockWatch?.stop();
      await snapshot?.close();
      await control.close();
      throw e;
    }
  }

  /** The users-and-grants artifact (mariadb-dump --system=users), or none with a warning. */
  private grantsArtifacts(
    dump: { path: string; mariadb: boolean },
    connArgs: string[],
    env: Record<string, string | undefined>,
    warn: BackupOpenOptions['warn'],
  ): ArtifactPlan[] {
    const dumpName = path.basename(dump.path);
    if (!dump.mariadb) {
      warn(`users and grants are not saved: ${dump.path} cannot dump them (--system=users is a mariadb-dump option)`);
      return [];
    }
    const users: CommandSpec = {
      cmd: dump.path,
      args: [...connArgs, '--system=users', '--insert-ignore', '--default-character-set=utf8mb4'],
      env,
      label: `${dumpName} --system=users`,
    };
    // With --force, in one run: an account the server does not know would stop the dump, and the
    // others are saved without it (no second run to find that out).
    const producer = grantsWithoutUnknown(users);
    return [
      {
        name: 'grants.sql',
        role: 'globals',
        format: 'mysql-grants',
        // Users and grants are not in the dump's snapshot either way: dumped while the database streams.
        alongside: true,
        producer,
        warning: () => producer.warning(),
        onFailure: (stderr) => ({ skipWarning: grantsNotSavedWarning(dump.path, stderr) }),
      },
    ];
  }

  /** The dump options that write the binlog position into the dump itself (as a comment). */
  private positionArgs(info: ServerInfo, dump: { version: string; mariadb: boolean }): string[] {
    if (info.flavor === MysqlFlavor.MARIADB) return dump.mariadb ? ['--master-data=2', '--gtid'] : ['--master-data=2'];
    // MySQL 8.0.26 renamed --master-data to --source-data; GTID_PURGED stays out of the dump so
    // it restores into any server.
    const [maj, min, patch] = dump.version.split('.').map(Number);
    const source = !dump.mariadb && (maj > 8 || (maj === 8 && (min > 0 || patch >= 26)));
    return [source ? '--source-data=2' : '--master-data=2', ...(dump.mariadb ? [] : ['--set-gtid-purged=OFF'])];
  }

  private async lock(session: MysqlSession, options: BackupOpenOptions, source: SourceUrl): Promise<void> {
    const name = lockName(options.lockKey);
    const end = Date.now() + options.lockWaitSeconds * 1000;
    for (;;) {
      if ((await session.query(`SELECT GET_LOCK(${quoteString(name)}, 0)`)) === '1') return;
      if (Date.now() >= end) {
        throw new BackupError(
          `another backup of ${source.database} to the same place is running ` +
            `(lock ${name} on ${source.display} is held); this run refuses to interleave with it. ` +
            'Wait for it, or give --lock-wait SECONDS.',
        );
      }
      log.info('waiting for an overlapping backup of the same database to end', { lock: name });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  public async openRestore(target: SourceUrl, manifest: Manifest, options: RestoreOptions): Promise<RestoreSession> {
    const env = mysqlEnv(process.env[SECRET_ENV.TARGET_PASSWORD]);
    const connArgs = mysqlConnArgs(target, '--target');
    const admin = await openSession(target, env, undefined, undefined, '--target');
    try {
      const info = await serverInfo(admin, target.display);
      const database = manifest.artifacts.find((a) => a.role === 'database');
      if (database === undefined) throw new BackupError(`backup ${manifest.id} has no database artifact`);
      const parallel = database.format === MYDUMPER_FORMAT;
      if (!parallel && (options.jobs ?? 1) > 1) log.warn(PARALLEL_SINGLE_STREAM, { jobs: options.jobs });
      const grants = manifest.artifacts.find((a) => a.role === 'globals');
      if (options.withGlobals && grants === undefined) {
        throw new BackupError(
          `backup ${manifest.id} holds no users and grants` +
            `${manifest.warnings?.length ? ` (${manifest.warnings.join('; ')})` : ''}; ` +
            'restore it without --with-globals.',
        );
      }
      const exists = await databaseExists(admin, target.database);
      const contents = exists ? await contentsOf(admin, target.database) : undefined;
      const objects =
        contents === undefined
          ? 0
          : contents.tables + contents.views + contents.routines + contents.events + contents.triggers;
      if (objects > 0 && !options.clean) {
        throw new ConfigError(
          `the target database ${target.database} on ${target.display} already has ${contents!.tables} tables, ` +
            `${contents!.views} views, ${contents!.routines} routines and ${contents!.events} events; ` +
            'restore refuses to mix a backup into them. Give --clean to replace the objects the backup contains, ' +
            'or restore into a new database.',
        );
      }
      const client = clientTool(info.flavor);
      const restoreInto = (db: string): CommandSpec => ({
        cmd: client,
        args: [
          ...connArgs,
          '--binary-mode',
          '--default-character-set=utf8mb4',
          '--max-allowed-packet=1G',
          `--database=${db}`,
        ],
        env,
        label: 'mariadb-restore',
      });
      const plan = await RestorePlan.prepare(admin, target, info, exists, objects > 0, { connArgs, env });
      // A mydumper backup: loaded by up to N myloader processes as the archive streams (parallel-restore.ts).
      const loader = parallel
        ? openMyloaderRestore({
            target,
            password: process.env[SECRET_ENV.TARGET_PASSWORD],
            database,
            backupId: manifest.id,
            sourceDatabase: manifest.database,
            loadInto: plan.loadInto,
            jobs: restoreJobs(options.jobs, os.availableParallelism(), true),
            signal: options.signal,
          })
        : undefined;
      const steps: RestoreStep[] = [loader?.step ?? { artifact: database, consumer: restoreInto(plan.loadInto) }];
      // A mydumper backup's routines, events and triggers: read whole now, loaded after its rows and views.
      const routines = parallel ? manifest.artifacts.find((a) => a.format === OBJECTS_FORMAT) : undefined;
      let objectsScript: Buffer | undefined;
      if (routines !== undefined) {
        steps.push({
          artifact: routines,
          consumer: async (plaintext: Readable) => {
            const chunks: Buffer[] = [];
            for await (const c of plaintext as AsyncIterable<Buffer>) chunks.push(c);
            objectsScript = Buffer.concat(chunks);
          },
        });
      }
      let grantsScript: Buffer | undefined;
      if (options.withGlobals && grants !== undefined) {
        // Read and checked whole now; applied once the database is in place (table and routine
        // grants need their objects to exist).
        steps.push({
          artifact: grants,
          consumer: async (plaintext: Readable) => {
            const chunks: Buffer[] = [];
            for await (const c of plaintext as AsyncIterable<Buffer>) chunks.push(c);
            grantsScript = Buffer.concat(chunks);
          },
        });
      }
      return {
        steps,
        commit: async () => {
          // On failure the session stays open for rollback().
          if (objectsScript !== undefined) await capture(restoreInto(plan.loadInto), objectsScript);
          await plan.commit();
          if (grantsScript !== undefined) {
            await applyGrants(grantsScript.toString('utf8'), {
              client: {
                cmd: client,
                args: [...connArgs, '--default-character-set=utf8mb4'],
                env,
                label: 'mariadb-grants',
              },
              restoringAccount: info.account,
              sourceDatabase: manifest.database,
              targetDatabase: target.database,
            });
          }
          await admin.close();
        },
        rollback: async () => {
          loader?.cleanup();
          await plan.rollback().catch((e: Error) => log.warn(`could not undo the failed restore: ${e.message}`));
          await admin.close();
        },
      };
    } catch (e) {
      await admin.close();
      throw e;
    }
  }

  public deepCheck(artifact: ManifestArtifact): DeepCheck {
    if (artifact.format === PhysicalFormat.MBSTREAM || artifact.format === PhysicalFormat.XBSTREAM)
      return physicalDeepCheck(artifact);
    // A binary log range (incremental/differential): tar reads every member.
    if (artifact.format === 'binlog-range-tar' || artifact.format === MYDUMPER_FORMAT)
      return { kind: 'command', command: { cmd: 'tar', args: ['-t', '-f', '-'], label: 'tar' } };
    return { kind: 'reader', read: (plaintext) => expectTrailer(plaintext, DUMP_TRAILER) };
  }

  public async countTables(target: SourceUrl): Promise<TableStat[]> {
    return withTarget(target, (session) => countRows(session, target.database));
  }

  public async databaseExists(target: SourceUrl): Promise<boolean> {
    return withTarget(target, (session) => databaseExists(session, target.database));
  }

  public async dropDatabase(target: SourceUrl): Promise<void> {
    await withTarget(target, (session) => session.query(`DROP DATABASE IF EXISTS ${quoteName(target.database)}`));
  }
}

/** Run `work` on a session to the restore/drill target (its password from the target's variable), then close it. */
async function withTarget<T>(target: SourceUrl, work: (session: MysqlSession) => Promise<T>): Promise<T> {
  const session = await openSession(
    target,
    mysqlEnv(process.env[SECRET_ENV.TARGET_PASSWORD]),
    undefined,
    undefined,
    '--target',
  );
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}

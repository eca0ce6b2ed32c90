import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { SECRET_ENV } from '../../../lib/core/contract';
import { ConfigError } from '../../../lib/core/errors';
import { LogPosition, Manifest, ManifestArtifact, TableStat } from '../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../lib/core/model';
import { SourceUrl } from '../../../lib/core/urls';
import { BackupError } from '../errors';
import { log } from '../log';
import { capture, CommandSpec, findTool } from '../proc';
import {
  ArtifactPlan,
  BackupOpenOptions,
  BackupSession,
  DeepCheck,
  EngineDriver,
  RestoreOptions,
  RestoreSession,
  RestoreStep,
  ToolNeed,
  ToolPurpose,
} from './engine';
import { applyGrants } from './mysql-grants';
import { openBinlogRange } from './mysql-binlog';
import { MysqlSession, quoteName, quoteString } from './mysql-session';

/** The line mysqldump / mariadb-dump writes last when a dump is complete (with its comments on). */
export const DUMP_TRAILER = '-- Dump completed';

/** The server families the tools and SQL differ for. */
export enum MysqlFlavor {
  MARIADB = 'mariadb',
  MYSQL = 'mysql',
}

/** What the driver needs to know about a server. */
export interface ServerInfo {
  readonly version: string;
  readonly flavor: MysqlFlavor;
  /** major * 10000 + minor * 100 + patch, e.g. 101119. */
  readonly num: number;
  readonly logBin: boolean;
  /** The account the session runs as, `user@host` (CURRENT_USER()). */
  readonly account: string;
}

/** URL query parameters passed on to the tools (none is secret). */
const TLS_PARAMS = ['ssl', 'ssl-ca', 'ssl-capath', 'ssl-cert', 'ssl-key', 'ssl-cipher', 'ssl-crl', 'ssl-verify-server-cert', 'ssl-mode', 'tls-version'];
const KNOWN_PARAMS = new Set([...TLS_PARAMS, 'defaults-file']);

/**
 * Connection arguments for the MySQL/MariaDB tools: host and port, or the socket, and the user.
 * Never a password: that travels in MYSQL_PWD (see mysqlEnv). Option files are not read unless
 * the URL names one (`?defaults-file=/path`), so a `~/.my.cnf` password can never take the
 * place of the one given.
 */
export function mysqlConnArgs(url: SourceUrl, what = '--source'): string[] {
  for (const k of Object.keys(url.params)) {
    if (!KNOWN_PARAMS.has(k)) {
      throw new ConfigError(
        `${what} '${url.display}' has the parameter '${k}', which MySQL/MariaDB connections do not take. Use socket, defaults-file or one of: ${TLS_PARAMS.join(', ')}.`,
      );
    }
  }
  const args = [url.params['defaults-file'] !== undefined ? `--defaults-file=${url.params['defaults-file']}` : '--no-defaults'];
  if (url.socket !== undefined) args.push(`--socket=${url.socket}`, '--protocol=SOCKET');
  else args.push(`--host=${url.host}`, `--port=${url.port}`, '--protocol=TCP');
  if (url.user !== undefined) args.push(`--user=${url.user}`);
  for (const k of TLS_PARAMS) {
    const v = url.params[k];
    if (v === undefined) continue;
    if (k === 'ssl' || k === 'ssl-verify-server-cert') {
      if (/^(1|true|yes|on)$/i.test(v)) args.push(`--${k}`);
      else if (k === 'ssl') args.push('--skip-ssl');
    } else {
      args.push(`--${k}=${v}`);
    }
  }
  return args;
}

/** The tools' environment: the password in MYSQL_PWD (the runner's variable first, then an inherited MYSQL_PWD). */
export function mysqlEnv(password: string | undefined): Record<string, string | undefined> {
  return { MYSQL_PWD: password ?? process.env.MYSQL_PWD };
}

/** The client (`mariadb`, else `mysql`). */
export function clientTool(flavor?: MysqlFlavor): string {
  const names = flavor === MysqlFlavor.MYSQL ? ['mysql', 'mariadb'] : ['mariadb', 'mysql'];
  return findTool(names) ?? names[0];
}

/** A lock name for GET_LOCK (at most 64 characters) from any string. */
export function lockName(key: string): string {
  return 'dbbackup-' + crypto.createHash('sha256').update(key).digest('hex').slice(0, 48);
}

async function toolVersion(tool: string): Promise<string> {
  return (await capture({ cmd: tool, args: ['--version'] }).catch(() => '')).trim();
}

/**
 * The dump tool that matches the server: `mariadb-dump` for MariaDB, MySQL's own `mysqldump`
 * for MySQL (the two have drifted apart: GTID options, column statistics, sandbox mode).
 * Falls back to the other family's tool with a warning.
 */
export async function dumpTool(flavor: MysqlFlavor): Promise<{ path: string; version: string; mariadb: boolean }> {
  const candidates = ['mariadb-dump', 'mysqldump'].map((n) => findTool([n])).filter((p): p is string => p !== undefined);
  const found: { path: string; version: string; mariadb: boolean }[] = [];
  for (const p of candidates) {
    const v = await toolVersion(p);
    found.push({ path: p, version: /Distrib ([\d.]+-?[A-Za-z]*)|Ver ([\d.]+)/.exec(v)?.slice(1).find((x) => x) ?? 'unknown', mariadb: /mariadb/i.test(v) });
  }
  const match = found.find((t) => t.mariadb === (flavor === MysqlFlavor.MARIADB));
  if (match !== undefined) return match;
  if (found.length === 0) throw new BackupError(`neither mariadb-dump nor mysqldump is installed; install the ${flavor === MysqlFlavor.MARIADB ? 'mariadb-client' : 'mysql-client'} package.`);
  log.warn(`no ${flavor === MysqlFlavor.MARIADB ? 'mariadb-dump' : 'MySQL mysqldump'} is installed; using ${found[0].path} (${found[0].version}) for a ${flavor} server`);
  return found[0];
}

/** Version, family, binary logging and the session's account, in one round trip. */
export async function serverInfo(session: MysqlSession, display: string): Promise<ServerInfo> {
  let row: { version: string; comment: string; logBin: number; account: string };
  try {
    row = await session.json(`SELECT JSON_OBJECT('version', VERSION(), 'comment', @@version_comment, 'logBin', @@log_bin + 0, 'account', CURRENT_USER())`);
  } catch (e) {
    throw new BackupError(`could not connect to ${display}: ${(e as Error).message}`);
  }
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(row.version) ?? ['', '0', '0', '0'];
  return {
    version: row.version,
    flavor: /mariadb/i.test(row.version) || /mariadb/i.test(row.comment) ? MysqlFlavor.MARIADB : MysqlFlavor.MYSQL,
    num: Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]),
    logBin: Number(row.logBin) === 1,
    account: row.account,
  };
}

/** Open a session and make its SQL predictable (no NO_BACKSLASH_ESCAPES, utf8mb4). */
async function openSession(url: SourceUrl, env: Record<string, string | undefined>, flavor?: MysqlFlavor, database?: string, what = '--source'): Promise<MysqlSession> {
  const tool = clientTool(flavor);
  const session = new MysqlSession({
    cmd: tool,
    args: [...mysqlConnArgs(url, what), '--connect-timeout=10', ...(database !== undefined ? [`--database=${database}`] : [])],
    env,
    label: tool.endsWith('mysql') ? 'mysql' : 'mariadb',
  });
  try {
    await session.query(`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`);
  } catch (e) {
    await session.close();
    throw new BackupError(`could not connect to ${url.display}${database !== undefined ? ` (database ${database})` : ''}: ${(e as Error).message}`);
  }
  return session;
}

/** The base tables (incl. system-versioned ones) of a database. */
function baseTablesSql(schemaExpr: string): string {
  return `SELECT COALESCE(JSON_ARRAYAGG(TABLE_NAME), '[]') FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schemaExpr} AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`;
}

/**
 * Exact row counts (COUNT(*)) of every base table, as the session sees them: inside a
 * consistent snapshot, the snapshot's. MySQL databases have no schemas inside them, so
 * `schema` is empty: the counts of a database restored under another name compare equal.
 */
export async function countRows(session: MysqlSession, database: string): Promise<TableStat[]> {
  const names = (await session.json<string[]>(baseTablesSql(quoteString(database)))).sort();
  const stats: TableStat[] = [];
  for (let i = 0; i < names.length; i += 100) {
    const chunk = names.slice(i, i + 100);
    const sql = chunk.map((n) => `SELECT ${quoteString(n)} AS n, COUNT(*) AS c FROM ${quoteName(database)}.${quoteName(n)}`).join(' UNION ALL ');
    const rows = await session.json<{ n: string; c: number }[]>(`SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT('n', n, 'c', c)), '[]') FROM (${sql}) AS counts`);
    for (const r of rows) stats.push({ schema: '', name: r.n, rows: Number(r.c) });
  }
  return stats.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** What a database holds, by kind of object. */
interface DatabaseContents {
  readonly tables: number;
  readonly views: number;
  readonly routines: number;
  readonly events: number;
  readonly triggers: number;
}

async function contentsOf(session: MysqlSession, database: string): Promise<DatabaseContents> {
  const db = quoteString(database);
  return session.json<DatabaseContents>(
    `SELECT JSON_OBJECT(
      'tables', (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${db} AND TABLE_TYPE <> 'VIEW'),
      'views', (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${db} AND TABLE_TYPE = 'VIEW'),
      'routines', (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${db}),
      'events', (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${db}),
      'triggers', (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${db}))`,
  );
}

async function databaseExists(session: MysqlSession, database: string): Promise<boolean> {
  return (await session.query(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${quoteString(database)}`)) === '1';
}

/**
 * The snapshot a backup is consistent at, shared by the dump tool and the row counts.
 *
 * mysqldump/mariadb-dump open their own `START TRANSACTION WITH CONSISTENT SNAPSHOT`, which no
 * other session can join. So a control session blocks commits for a moment (MariaDB:
 * `BACKUP STAGE BLOCK_COMMIT`, MySQL: `FLUSH TABLES WITH READ LOCK`; both need RELOAD), opens
 * its own snapshot and reads the binary log position in it, and keeps the block until the
 * dump tool's `--verbose` output shows that its transaction is open too. Both snapshots then
 * see the same commits: the row counts (taken in the control snapshot while the dump runs) and
 * the binlog position are exactly the dump's. Reads and uncommitted writes go on meanwhile;
 * only commits wait, typically for a few tens of milliseconds.
 *
 * Without RELOAD (or if the dump's transaction does not open within a minute), the two
 * snapshots may differ by the commits in between. On MariaDB with binary logging that is
 * checked at the end: if the binary log did not move since the control snapshot, nothing was
 * committed and they are the same. Otherwise the manifest records neither row counts nor a
 * position (the dump's own header still has the position, as a `-- CHANGE MASTER TO` comment).
 */
class SharedSnapshot {
  public position?: LogPosition;
  private block?: MysqlSession;
  private blockedAt = 0;
  private blockTimer?: NodeJS.Timeout;
  /** The dump's current attempt opened its transaction while commits were blocked. */
  private dumpUnderBlock = false;
  private sawStart = false;
  private stderrTail = '';
  public readonly warnings: string[] = [];

  private constructor(
    public readonly session: MysqlSession,
    private readonly info: ServerInfo,
  ) {}

  public static async open(source: SourceUrl, env: Record<string, string | undefined>, info: ServerInfo): Promise<SharedSnapshot> {
    let block: MysqlSession | undefined = await openSession(source, env, info.flavor);
    try {
      await block.query('SET SESSION lock_wait_timeout = 10');
      if (info.flavor === MysqlFlavor.MARIADB && info.num >= 100400) await block.query('BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT');
      else await block.query('FLUSH TABLES WITH READ LOCK');
    } catch (e) {
      await block.close();
      block = undefined;
      log.warn('could not block commits while the backup opens its snapshots (this needs the RELOAD privilege); the row counts and binlog position are recorded only if nothing was committed meanwhile', {
        error: (e as Error).message.split('\n')[0],
      });
    }
    const session = await openSession(source, env, info.flavor, source.database);
    const snap = new SharedSnapshot(session, info);
    snap.block = block;
    snap.blockedAt = Date.now();
    try {
      await session.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT');
      if (info.logBin) snap.position = await snap.readPosition(source, env);
    } catch (e) {
      await snap.close();
      throw e;
    }
    if (block !== undefined) {
      // Never hold commits for long, whatever happens to the dump.
      snap.blockTimer = setTimeout(() => {
        log.warn('the dump did not open its transaction within 60 s; releasing the commit block');
        void snap.release();
      }, 60000);
    }
    return snap;
  }

  private async readPosition(source: SourceUrl, env: Record<string, string | undefined>): Promise<LogPosition | undefined> {
    if (this.info.flavor === MysqlFlavor.MARIADB) {
      // Binlog_snapshot_* are the position of this session's consistent snapshot (no privilege needed).
      const out = await this.session.query(`SHOW STATUS LIKE 'binlog\\_snapshot\\_%'`);
      const vars = Object.fromEntries(out.split('\n').map((l) => l.split('\t')));
      const file = vars.Binlog_snapshot_file;
      const pos = Number(vars.Binlog_snapshot_position);
      if (!file || !Number.isFinite(pos)) return undefined;
      const gtid = await this.session.query(`SELECT COALESCE(BINLOG_GTID_POS(${quoteString(file)}, ${pos}), '')`);
      return { kind: 'binlog', file, pos, gtid: gtid === '' ? undefined : gtid };
    }
    // MySQL: under FLUSH TABLES WITH READ LOCK the server's position is the snapshot's. The
    // statement needs REPLICATION CLIENT; run it in its own connection so a refusal costs nothing.
    if (this.block === undefined) return undefined;
    const statement = this.info.num >= 80400 ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS';
    try {
      const out = await capture(
        { cmd: clientTool(MysqlFlavor.MYSQL), args: [...mysqlConnArgs(source), '--batch', '--skip-column-names', '-e', statement], env, label: 'mysql' },
      );
      const [file, pos, , , gtid] = out.trim().split('\t');
      return file ? { kind: 'binlog', file, pos: Number(pos), gtid: gtid || undefined } : undefined;
    } catch (e) {
      this.warnings.push(`the binlog position was not recorded: ${statement} failed (it needs REPLICATION CLIENT): ${(e as Error).message.split('\n')[0]}`);
      return undefined;
    }
  }

  /**
   * Follow the dump tool's `--verbose` messages: once a message follows "-- Starting
   * transaction...", its snapshot is open and commits may go on.
   */
  public onDumpStderr = (text: string): void => {
    this.stderrTail = (this.stderrTail + text).slice(-4096);
    const lines = this.stderrTail.split('\n');
    const start = lines.findIndex((l) => l.startsWith('-- Starting transaction'));
    if (lines.some((l) => l.startsWith('-- Connecting to'))) {
      // A (re)started dump: only this attempt counts.
      const lastConnect = lines.map((l) => l.startsWith('-- Connecting to')).lastIndexOf(true);
      if (start < lastConnect) {
        if (this.sawStart) this.dumpUnderBlock = false;
        this.sawStart = false;
      }
    }
    if (start >= 0 && !this.sawStart && lines.slice(start + 1).some((l) => l.startsWith('-- '))) {
      this.sawStart = true;
      this.dumpUnderBlock = this.block !== undefined;
      this.stderrTail = '';
      void this.release();
    }
  };

  /** End the commit block. */
  public async release(): Promise<void> {
    if (this.blockTimer !== undefined) clearTimeout(this.blockTimer);
    const block = this.block;
    this.block = undefined;
    if (block === undefined) return;
    await block.query(this.info.flavor === MysqlFlavor.MARIADB && this.info.num >= 100400 ? 'BACKUP STAGE END' : 'UNLOCK TABLES').catch(() => undefined);
    await block.close();
    log.info(`commits were held for ${Date.now() - this.blockedAt} ms while the backup's snapshots opened`, { dumpInSnapshot: this.dumpUnderBlock });
  }

  /**
   * Whether the dump's snapshot is the control snapshot: opened under the commit block, or (on
   * MariaDB with binary logging) nothing was committed since the control snapshot opened.
   */
  public async sameAsDump(control: MysqlSession): Promise<boolean> {
    if (this.dumpUnderBlock) return true;
    if (this.info.flavor !== MysqlFlavor.MARIADB || this.position?.file === undefined) return false;
    // Outside a transaction, Binlog_snapshot_* is the server's current position.
    const out = await control.query(`SHOW STATUS LIKE 'binlog\\_snapshot\\_%'`).catch(() => '');
    const vars = Object.fromEntries(out.split('\n').map((l) => l.split('\t')));
    return vars.Binlog_snapshot_file === this.position.file && Number(vars.Binlog_snapshot_position) === this.position.pos;
  }

  public async close(): Promise<void> {
    await this.release();
    await this.session.close();
  }
}

/**
 * Gives up on a dump that waits for another session's metadata lock (`LOCK TABLES … WRITE`,
 * `ALTER TABLE`) longer than `seconds`: mariadb-dump/mysqldump have no lock_wait_timeout option
 * and the server's default is a day. The control session watches the processlist once a second
 * and stops the waiting query; the dump then fails and `blocked` says why.
 */
class LockWatch {
  public blocked?: string;
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly session: MysqlSession, private readonly database: string, private readonly seconds: number) {
    this.timer = setInterval(() => (this.running = this.running.then(() => this.check())), 1000);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (this.stopped || this.blocked !== undefined) return;
    const row = await this.session
      .query(
        `SELECT CONCAT(ID, ' ', TIME, ' ', COALESCE(INFO, '')) FROM information_schema.PROCESSLIST ` +
          `WHERE ID <> CONNECTION_ID() AND DB = ${quoteString(this.database)} ` +
          `AND USER = SUBSTRING_INDEX(USER(), '@', 1) AND STATE LIKE 'Waiting for table metadata lock%' ` +
          `AND TIME >= ${this.seconds} ORDER BY TIME DESC LIMIT 1`,
      )
      .catch(() => '');
    const m = /^(\d+) (\d+) ([\s\S]*)$/.exec(row.trim());
    if (m === null || this.stopped) return;
    const table = /(?:FROM|TABLE)\s+(`[^`]+`(?:\.`[^`]+`)?)/i.exec(m[3])?.[1] ?? 'a table';
    this.blocked =
      `the dump gave up after ${m[2]} s waiting for a metadata lock on ${table} in ${this.database}: another ` +
      'session holds it (LOCK TABLES … WRITE, ALTER TABLE, or a long transaction that used the table). ' +
      'Find it with SHOW PROCESSLIST, or raise --lock-timeout SECONDS.';
    log.warn(this.blocked);
    await this.session.query(`KILL QUERY ${Number(m[1])}`).catch(() => undefined);
  }

  public async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}

export class MySQLDriver implements EngineDriver {
  public readonly engine = Engine.MYSQL;

  public tools(purpose: ToolPurpose): readonly ToolNeed[] {
    const fix = 'install the MariaDB or MySQL client (Debian: mariadb-client)';
    const cmd = clientTool();
    const client: ToolNeed = { cmd, label: path.basename(cmd), why: `a MySQL/MariaDB ${purpose}`, fix };
    if (purpose === ToolPurpose.RESTORE) return [client];
    const dump = findTool(['mariadb-dump', 'mysqldump']) ?? 'mariadb-dump';
    return [client, { cmd: dump, label: path.basename(dump), why: 'a MySQL/MariaDB backup', fix }];
  }

  public async openBackup(source: SourceUrl, options: BackupOpenOptions): Promise<BackupSession> {
    if (options.method !== BackupMethod.LOGICAL) {
      throw new ConfigError(`--method ${options.method} is not available for MySQL/MariaDB; use --method logical (incremental and differential backups are binary log ranges).`);
    }
    const env = mysqlEnv(process.env[SECRET_ENV.SOURCE_PASSWORD]);
    const connArgs = mysqlConnArgs(source);
    const control = await openSession(source, env);
    let snapshot: SharedSnapshot | undefined;
    let lockWatch: LockWatch | undefined;
    try {
      const info = await serverInfo(control, source.display);
      if (!(await databaseExists(control, source.database))) {
        throw new BackupError(`the database ${source.database} does not exist on ${source.display} (or ${info.account} may not see it).`);
      }
      await this.lock(control, options, source);
      if (options.type !== BackupType.FULL) return await openBinlogRange(control, source, env, connArgs, info.version, options);
      const dump = await dumpTool(info.flavor);
      snapshot = await SharedSnapshot.open(source, env, info);
      const snap = snapshot;
      // The row counts wait for a locked table no longer than the dump does.
      await snap.session.query(`SET SESSION lock_wait_timeout = ${options.lockTimeoutSeconds ?? 60}`);
      const counts = countRows(snap.session, source.database).catch((e: Error) => {
        log.warn('could not count table rows for the manifest; restore drills will check tables without row counts', { error: e.message.split('\n')[0] });
        return undefined;
      });

      const watch = new LockWatch(control, source.database, options.lockTimeoutSeconds ?? 60);
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
      const dumpSpec = (extra: string[]): CommandSpec => ({ cmd: dump.path, args: [...dumpArgs, ...extra, '--', source.database], env, label: dumpName });
      const artifacts: ArtifactPlan[] = [
        {
          name: 'database.sql',
          role: 'database',
          format: 'mysql-sql',
          producer: dumpSpec(positionArgs),
          onStderr: snap.onDumpStderr,
          onFailure: (stderr) => {
            if (watch.blocked !== undefined) return { fail: watch.blocked };
            // Without the privileges --master-data needs, dump without it (the manifest still
            // records the position from the shared snapshot).
            if (positionArgs.length > 0 && /access denied|privilege|RELOAD|REPLICATION CLIENT|BINLOG MONITOR/i.test(stderr)) {
              return { retry: dumpSpec([]) };
            }
            return undefined;
          },
        },
      ];
      if (dump.mariadb) {
        artifacts.push({
          name: 'grants.sql',
          role: 'globals',
          format: 'mysql-grants',
          producer: { cmd: dump.path, args: [...connArgs, '--system=users', '--insert-ignore', '--default-character-set=utf8mb4'], env, label: `${dumpName} --system=users` },
          onFailure: (stderr) => ({
            skipWarning: `users and grants were not saved: ${dump.path} --system=users failed (reading them needs SELECT on the mysql schema): ${stderr.trim().split('\n').slice(-2).join(' ')}`,
          }),
        });
      } else {
        log.warn(`users and grants are not saved: ${dump.path} cannot dump them (--system=users is a mariadb-dump option)`);
      }
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
          for (const w of snap.warnings) log.warn(w);
          if (!same) {
            if (snap.position !== undefined) {
              log.warn(
                'the binlog position and row counts are not recorded: the dump may have opened its snapshot after other commits (give the backup user RELOAD so the runner can align the snapshots); the dump itself records its position in a -- CHANGE MASTER TO comment',
              );
            } else {
              log.warn('the row counts are not recorded: the dump may have opened its snapshot after other commits (give the backup user RELOAD so the runner can align the snapshots)');
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
          `another backup of ${source.database} to the same place is running (lock ${name} on ${source.display} is held); this run refuses to interleave with it. Wait for it, or give --lock-wait SECONDS.`,
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
      const grants = manifest.artifacts.find((a) => a.role === 'globals');
      if (options.withGlobals && grants === undefined) {
        throw new BackupError(`backup ${manifest.id} holds no users and grants${manifest.warnings?.length ? ` (${manifest.warnings.join('; ')})` : ''}; restore it without --with-globals.`);
      }
      const exists = await databaseExists(admin, target.database);
      const contents = exists ? await contentsOf(admin, target.database) : undefined;
      const objects = contents === undefined ? 0 : contents.tables + contents.views + contents.routines + contents.events + contents.triggers;
      if (objects > 0 && !options.clean) {
        throw new ConfigError(
          `the target database ${target.database} on ${target.display} already has ${contents!.tables} tables, ${contents!.views} views, ${contents!.routines} routines and ${contents!.events} events; restore refuses to mix a backup into them. Give --clean to replace the objects the backup contains, or restore into a new database.`,
        );
      }
      const client = clientTool(info.flavor);
      const restoreInto = (db: string): CommandSpec => ({
        cmd: client,
        args: [...connArgs, '--binary-mode', '--default-character-set=utf8mb4', '--max-allowed-packet=1G', `--database=${db}`],
        env,
        label: 'mariadb-restore',
      });
      const plan = await RestorePlan.prepare(admin, target, info, exists, objects > 0, { connArgs, env });
      const steps: RestoreStep[] = [{ artifact: database, consumer: restoreInto(plan.loadInto) }];
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
          await plan.commit();
          if (grantsScript !== undefined) {
            await applyGrants(grantsScript.toString('utf8'), {
              client: { cmd: client, args: [...connArgs, '--default-character-set=utf8mb4'], env, label: 'mariadb-grants' },
              restoringAccount: info.account,
              sourceDatabase: manifest.database,
              targetDatabase: target.database,
            });
          }
          await admin.close();
        },
        rollback: async () => {
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
    // A binary log range (incremental/differential): tar reads every member.
    if (artifact.format === 'binlog-range-tar') return { kind: 'command', command: { cmd: 'tar', args: ['-t', '-f', '-'], label: 'tar' } };
    return { kind: 'reader', read: (plaintext) => expectTrailer(plaintext, DUMP_TRAILER) };
  }

  public async countTables(target: SourceUrl): Promise<TableStat[]> {
    const session = await openSession(target, mysqlEnv(process.env[SECRET_ENV.TARGET_PASSWORD]), undefined, undefined, '--target');
    try {
      return await countRows(session, target.database);
    } finally {
      await session.close();
    }
  }

  public async databaseExists(target: SourceUrl): Promise<boolean> {
    const session = await openSession(target, mysqlEnv(process.env[SECRET_ENV.TARGET_PASSWORD]), undefined, undefined, '--target');
    try {
      return await databaseExists(session, target.database);
    } finally {
      await session.close();
    }
  }

  public async dropDatabase(target: SourceUrl): Promise<void> {
    const session = await openSession(target, mysqlEnv(process.env[SECRET_ENV.TARGET_PASSWORD]), undefined, undefined, '--target');
    try {
      await session.query(`DROP DATABASE IF EXISTS ${quoteName(target.database)}`);
    } finally {
      await session.close();
    }
  }
}

/** Read a whole plaintext stream and reject unless its last line starts with `trailer`. */
export async function expectTrailer(plaintext: Readable, trailer: string): Promise<void> {
  let tail = Buffer.alloc(0);
  let size = 0;
  for await (const c of plaintext as AsyncIterable<Buffer>) {
    size += c.length;
    tail = Buffer.concat([tail, c]).subarray(-4096);
  }
  const last = tail.toString('utf8').trimEnd().split('\n').pop() ?? '';
  if (!last.startsWith(trailer)) {
    throw new BackupError(`incomplete: the dump (${size} bytes of SQL) does not end with '${trailer}'; its last line is '${last.slice(0, 120)}'`);
  }
}

/**
 * Where a restore loads the dump, and how it is made final or undone. A MySQL restore is not
 * transactional (every CREATE TABLE commits), so the target is protected by where the dump goes:
 *
 * - a target that does not exist is created, loaded, and dropped again if anything fails;
 * - an existing target without tables, views, routines, events or triggers is loaded directly
 *   and, if anything fails, emptied again (dropped and re-created with its own options);
 * - an existing target with objects (only with --clean) is not touched while the dump loads:
 *   the dump goes into a new scratch database on the same server, and only when all of it is
 *   in does commit() move it in (see swapIn). A damaged backup, a wrong key, a failed statement
 *   or a lost connection leave the target as it was, and rollback drops the scratch database.
 */
class RestorePlan {
  private phase: 'loading' | 'moved' = 'loading';

  private constructor(
    public readonly loadInto: string,
    private readonly mode: 'create' | 'empty' | 'swap',
    private readonly admin: MysqlSession,
    private readonly target: SourceUrl,
    private readonly createSql: string | undefined,
    private readonly tools: { connArgs: string[]; env: Record<string, string | undefined>; info: ServerInfo },
  ) {}

  public static async prepare(
    admin: MysqlSession,
    target: SourceUrl,
    info: ServerInfo,
    exists: boolean,
    hasObjects: boolean,
    tools: { connArgs: string[]; env: Record<string, string | undefined> },
  ): Promise<RestorePlan> {
    const db = target.database;
    if (!exists) {
      await admin.query(`CREATE DATABASE ${quoteName(db)}`);
      return new RestorePlan(db, 'create', admin, target, undefined, { ...tools, info });
    }
    const createSql = (await admin.query(`SHOW CREATE DATABASE ${quoteName(db)}`)).split('\t').slice(1).join('\t');
    if (!hasObjects) return new RestorePlan(db, 'empty', admin, target, createSql, { ...tools, info });
    const scratch = `${db.slice(0, 40)}_dbbackup_${crypto.randomBytes(4).toString('hex')}`;
    const options = / DEFAULT CHARACTER SET .*$|\/\*!40100 (.*) \*\//.exec(createSql);
    const charset = /CHARACTER SET (\S+)/.exec(options?.[0] ?? '')?.[1];
    const collate = /COLLATE (\S+)/.exec(options?.[0] ?? '')?.[1];
    await admin.query(`CREATE DATABASE ${quoteName(scratch)}${charset ? ` CHARACTER SET ${charset}` : ''}${collate ? ` COLLATE ${collate}` : ''}`);
    log.info(`the target ${db} has objects: loading the backup into the scratch database ${scratch} first; the target is changed only once all of it is in`, { scratch });
    return new RestorePlan(scratch, 'swap', admin, target, createSql, { ...tools, info });
  }

  public async commit(): Promise<void> {
    if (this.mode !== 'swap') return;
    await swapIn(this.admin, this.loadInto, this.target.database, this.tools, () => (this.phase = 'moved'));
  }

  public async rollback(): Promise<void> {
    const db = this.target.database;
    switch (this.mode) {
      case 'create':
        log.info('dropping the database this failed restore created', { database: db });
        await this.admin.query(`DROP DATABASE IF EXISTS ${quoteName(db)}`);
        return;
      case 'empty':
        log.info('emptying the target database again after the failed restore', { database: db });
        await this.admin.query(`DROP DATABASE IF EXISTS ${quoteName(db)}`);
        await this.admin.query(this.createSql!);
        return;
      case 'swap':
        if (this.phase === 'moved') {
          log.warn(`the backup's tables were already moved into ${db}; only the scratch database ${this.loadInto} is dropped`);
        } else {
          log.info('dropping the scratch database of the failed restore; the target was not changed', { scratch: this.loadInto });
        }
        await this.admin.query(`DROP DATABASE IF EXISTS ${quoteName(this.loadInto)}`);
        return;
    }
  }
}

/**
 * Move a fully loaded scratch database into the target, replacing the objects of the same
 * names (other objects of the target stay). Everything that can fail is done first, in the
 * scratch database (reading the definitions of views, triggers, routines and events with the
 * dump tool, which writes each with its sql_mode, character set and definer); then, in a few
 * statements: the target's same-named objects are dropped, the tables are moved in with one
 * RENAME TABLE, and the views, triggers, routines and events are created in the target.
 * Tables with triggers cannot move between databases, so triggers are dropped in the scratch
 * database first and re-created in the target.
 */
async function swapIn(
  admin: MysqlSession,
  scratch: string,
  target: string,
  tools: { connArgs: string[]; env: Record<string, string | undefined>; info: ServerInfo },
  moved: () => void,
): Promise<void> {
  const s = quoteString(scratch);
  const names = (column: string, from: string) => admin.json<string[]>(`SELECT COALESCE(JSON_ARRAYAGG(${column}), '[]') FROM information_schema.${from}`);
  const inScratch = {
    tables: await names('TABLE_NAME', `TABLES WHERE TABLE_SCHEMA = ${s} AND TABLE_TYPE <> 'VIEW'`),
    views: await names('TABLE_NAME', `TABLES WHERE TABLE_SCHEMA = ${s} AND TABLE_TYPE = 'VIEW'`),
    triggers: await names('TRIGGER_NAME', `TRIGGERS WHERE TRIGGER_SCHEMA = ${s}`),
    procedures: await names('ROUTINE_NAME', `ROUTINES WHERE ROUTINE_SCHEMA = ${s} AND ROUTINE_TYPE = 'PROCEDURE'`),
    functions: await names('ROUTINE_NAME', `ROUTINES WHERE ROUTINE_SCHEMA = ${s} AND ROUTINE_TYPE = 'FUNCTION'`),
    events: await names('EVENT_NAME', `EVENTS WHERE EVENT_SCHEMA = ${s}`),
  };
  const dump = await dumpTool(tools.info.flavor);
  const dumpOf = (args: string[]) =>
    capture({ cmd: dump.path, args: [...tools.connArgs, '--no-data', '--skip-comments', '--default-character-set=utf8mb4', ...args], env: tools.env, label: path.basename(dump.path) });
  const others = await dumpOf(['--no-create-info', '--triggers', '--routines', '--events', '--', scratch]);
  const views = inScratch.views.length > 0 ? await dumpOf(['--skip-triggers', '--', scratch, ...inScratch.views]) : '';

  const t = quoteName(target);
  const q = (name: string) => `${t}.${quoteName(name)}`;
  await admin.query('SET SESSION lock_wait_timeout = 60; SET SESSION foreign_key_checks = 0');
  for (const trigger of inScratch.triggers) await admin.query(`DROP TRIGGER ${quoteName(scratch)}.${quoteName(trigger)}`);
  const targetViews = new Set(await names('TABLE_NAME', `TABLES WHERE TABLE_SCHEMA = ${quoteString(target)} AND TABLE_TYPE = 'VIEW'`));
  const drops = [
    ...[...inScratch.tables, ...inScratch.views].filter((n) => targetViews.has(n)).map((n) => `DROP VIEW IF EXISTS ${q(n)}`),
    ...inScratch.triggers.map((n) => `DROP TRIGGER IF EXISTS ${q(n)}`),
    ...inScratch.procedures.map((n) => `DROP PROCEDURE IF EXISTS ${q(n)}`),
    ...inScratch.functions.map((n) => `DROP FUNCTION IF EXISTS ${q(n)}`),
    ...inScratch.events.map((n) => `DROP EVENT IF EXISTS ${q(n)}`),
  ];
  log.info(`moving ${inScratch.tables.length} tables, ${inScratch.views.length} views, ${inScratch.triggers.length} triggers and ${inScratch.procedures.length + inScratch.functions.length} routines into ${target}`);
  for (const d of drops) await admin.query(d);
  const replaced = inScratch.tables.filter((n) => !targetViews.has(n));
  if (replaced.length > 0) await admin.query(`DROP TABLE IF EXISTS ${replaced.map(q).join(', ')}`);
  if (inScratch.tables.length > 0) {
    await admin.query(`RENAME TABLE ${inScratch.tables.map((n) => `${quoteName(scratch)}.${quoteName(n)} TO ${q(n)}`).join(', ')}`);
  }
  moved();
  const ddl = views + '\n' + others;
  if (ddl.trim() !== '') {
    await capture({ cmd: clientTool(tools.info.flavor), args: [...tools.connArgs, '--binary-mode', '--default-character-set=utf8mb4', `--database=${target}`], env: tools.env, label: 'mariadb' }, ddl);
  }
  await admin.query(`DROP DATABASE ${quoteName(scratch)}`);
}

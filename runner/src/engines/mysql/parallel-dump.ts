/**
 * A parallel logical dump of MySQL/MariaDB (`--jobs N` above 1): `mydumper -t N`, written into a
 * spool directory and streamed out, file by file as each is complete, as one tar archive
 * (`database.mydumper.tar`, members under `database.mydumper/`) through the shared pipeline
 * (compress, encrypt, sha256, storage), each file deleted from the spool once it is in the stream
 * (pipeline/spool-tar.ts), as the PostgreSQL parallel dump does (engines/postgres/parallel-dump.ts).
 *
 * mydumper takes its consistent snapshot itself (FLUSH TABLES WITH READ LOCK while its threads
 * open their transactions) and writes the binary log position of that snapshot into its
 * `metadata` file as soon as it has it; the file is read while the dump runs (it stays open, so
 * in the spool, until the dump ends) and the position goes into the manifest as a single-stream
 * dump's does. The password is never in argv: it is in a 0600 option file in a private directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../../../lib/core/errors';
import { wroteNothingError } from '../../errors';
import { LogPosition, TableStat } from '../../../../lib/core/manifest';
import { SourceUrl } from '../../../../lib/core/urls';
import { log } from '../../log';
import { diesWithRunner, findTool, versionOutput } from '../../pipeline/stages';
import { startSpoolTar } from '../../pipeline/spool-tar';
import { ArtifactPlan, BackupOpenOptions, BackupSession } from '../shared/engine';
import { KNOWN_PARAMS } from './client';
import { MysqlSession, quoteString } from './session';
import { LockWatch, LockWatchOf } from './snapshot';

/** The stored artifact's name (before the codec's extensions) and format. */
export const MYDUMPER_NAME = 'database.mydumper.tar';
export const MYDUMPER_FORMAT = 'mydumper-directory-tar';
/** The archive's top-level directory: `tar -x` makes it, `myloader -d` reads it. */
export const MYDUMPER_TOP = 'database.mydumper';

/** Rows per chunk file (mydumper --rows; bench/mariadb.sh measured it). */
export const MYDUMPER_CHUNK_ROWS = 250000;

/** How to get mydumper and myloader (one Debian package holds both). */
export const MYDUMPER_FIX = 'install it (Debian: apt-get install mydumper, which holds mydumper and myloader)';

/** The mydumper or myloader binary, or a clear error naming the fix. */
export function mydumperTool(name: 'mydumper' | 'myloader'): string {
  const found = findTool([name]);
  if (found === undefined) {
    throw new ConfigError(
      `--jobs above 1 for MySQL/MariaDB uses ${name}, which is not on PATH; ${MYDUMPER_FIX}, or give --jobs 1 ` +
        'for the single-stream dump (mariadb-dump).',
    );
  }
  return found;
}

/** The base tables of `database`, for the information_schema queries below. */
function baseTables(database: string): string {
  return (
    `FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)} ` +
    `AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`
  );
}

/**
 * What mydumper -t N may hold in its spool at once, in bytes: the N largest tables' data
 * (information_schema DATA_LENGTH). Each thread writes one table's rows at a time and a file leaves
 * the spool once it is whole in the stream, so the spool holds at most about that much.
 */
export async function mydumperSpoolBytes(session: MysqlSession, database: string, jobs: number): Promise<number> {
  const n = Math.max(1, Math.floor(jobs));
  const out = await session.query(
    `SELECT COALESCE(SUM(d), 0) FROM (SELECT COALESCE(DATA_LENGTH, 0) AS d ${baseTables(database)} ` +
      `ORDER BY d DESC LIMIT ${n}) AS largest`,
  );
  return Number(out.trim());
}

/**
 * What mydumper 0.10 cannot dump in `database`, by name: tables and views whose names hold a backtick
 * (it dies by SIGSEGV chunking them), and columns of MariaDB's data type plugins INET4, INET6 and
 * UUID (it writes their values as NULL: silent loss). The dump then takes the single stream.
 */
export async function mydumperUnsafeNames(session: MysqlSession, database: string): Promise<string[]> {
  const schema = quoteString(database);
  const q = (e: string) => `CONCAT('\`', REPLACE(${e}, '\`', '\`\`'), '\`')`;
  const out = await session.query(
    `SELECT ${q('TABLE_NAME')} FROM information_schema.TABLES ` +
      `WHERE TABLE_SCHEMA = ${schema} AND LOCATE('\`', TABLE_NAME) > 0 UNION ALL ` +
      `SELECT CONCAT(${q('c.TABLE_NAME')}, '.', ${q('c.COLUMN_NAME')}, ' ', c.DATA_TYPE) ` +
      'FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA ' +
      `AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE <> 'VIEW' ` +
      `WHERE c.TABLE_SCHEMA = ${schema} AND c.DATA_TYPE IN ('inet4', 'inet6', 'uuid')`,
  );
  return out.split('\n').filter((l) => l !== '');
}

/**
 * Whether the session's account holds RELOAD (or ALL PRIVILEGES) on *.*, as SHOW GRANTS lists it
 * (the account's own grants and those of its current role): mydumper's FLUSH TABLES WITH READ
 * LOCK needs it.
 */
export async function holdsReload(session: MysqlSession): Promise<boolean> {
  const grants = await session.query('SHOW GRANTS');
  return grants.split('\n').some((g) => {
    const privileges = /^GRANT\s+(.*?)\s+ON\s+\*\.\*\s+TO\s/i.exec(g)?.[1];
    return privileges !== undefined && /\b(RELOAD|ALL PRIVILEGES)\b/i.test(privileges);
  });
}

/**
 * The jobs of a MySQL/MariaDB dump, decided before it starts: `--jobs N`; without it one stream
 * (mariadb-dump), whatever the tables (docs/mysql.md says why: the parallel dump is another tool,
 * Debian's mydumper 0.10, with its own lock, FLUSH TABLES WITH READ LOCK, and its own privilege).
 * An explicit --jobs N above 1 needs mydumper and RELOAD: without them it is refused
 * (ConfigError, exit 2) naming the fix, before anything is dumped.
 */
export async function mysqlDumpJobs(
  session: MysqlSession,
  requested: number | undefined,
  account: string,
  database: string,
): Promise<number> {
  if (requested === undefined || requested <= 1) return 1;
  mydumperTool('mydumper');
  const unsafe = await mydumperUnsafeNames(session, database);
  if (unsafe.length > 0) {
    log.warn(
      `--jobs ${requested}: dumping with the single stream (mariadb-dump) instead of mydumper, which cannot ` +
        `dump a name with a backtick nor INET4/INET6/UUID values: ` +
        `${unsafe.slice(0, 5).join(', ')}${unsafe.length > 5 ? ', …' : ''}`,
      { jobs: requested, names: unsafe },
    );
    return 1;
  }
  if (!(await holdsReload(session))) {
    const at = account.lastIndexOf('@');
    const grantee = at < 0 ? `'${account}'` : `'${account.slice(0, at)}'@'${account.slice(at + 1)}'`;
    throw new ConfigError(
      `--jobs ${requested} dumps with mydumper, whose consistent snapshot (FLUSH TABLES WITH READ LOCK) needs the ` +
        `RELOAD privilege, which ${grantee} does not hold; grant it (GRANT RELOAD ON *.* TO ${grantee}), or give ` +
        '--jobs 1 for the single-stream dump, which does without it.',
    );
  }
  return requested;
}

/** The binary log position in the text of mydumper's `metadata` file (undefined until it is there). */
export function parseMydumperMetadata(text: string): LogPosition | undefined {
  const status = /SHOW MASTER STATUS:\s*\n\s*Log:\s*(\S+)\s*\n\s*Pos:\s*(\d+)\s*\n(?:\s*GTID:[ \t]*(\S*))?/.exec(text);
  if (status === null) return undefined;
  const gtid = status[3] !== undefined && status[3] !== '' ? status[3] : undefined;
  return { kind: 'binlog', file: status[1], pos: Number(status[2]), ...(gtid !== undefined ? { gtid } : {}) };
}

function optionValue(v: string, what: string): string {
  if (/[\n\r]/.test(v)) throw new ConfigError(`${what} holds a line break; mydumper/myloader cannot read it.`);
  return '"' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/**
 * A private directory with a 0600 option file for mydumper/myloader (the password, and the
 * URL's own defaults-file included), and the connection arguments that use it. remove() deletes it.
 */
export function mydumperConnection(
  url: SourceUrl,
  password: string | undefined,
  what: string,
): { args: string[]; remove: () => void } {
  for (const k of Object.keys(url.params)) {
    if (!KNOWN_PARAMS.has(k)) {
      throw new ConfigError(
        `${what} '${url.display}' has the parameter '${k}', which MySQL/MariaDB connections do not take.`,
      );
    }
  }
  const args: string[] = [];
  if (url.socket !== undefined) args.push(`--socket=${url.socket}`);
  else args.push(`--host=${url.host}`, `--port=${url.port}`);
  if (url.user !== undefined) args.push(`--user=${url.user}`);
  const tls: Record<string, string> = { 'ssl-ca': '--ca', 'ssl-capath': '--capath', 'ssl-cert': '--cert' };
  tls['ssl-key'] = '--key';
  tls['ssl-cipher'] = '--cipher';
  for (const [k, v] of Object.entries(url.params)) {
    if (k === 'defaults-file') continue;
    if (k === 'ssl') {
      if (/^(1|true|yes|on)$/i.test(v)) args.push('--ssl');
      continue;
    }
    const flag = tls[k];
    if (flag === undefined) {
      throw new ConfigError(
        `${what} '${url.display}' has the parameter '${k}', which mydumper/myloader do not take; give --jobs 1 ` +
          '(the single-stream dump), or leave the parameter out.',
      );
    }
    args.push(`${flag}=${v}`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-my-'));
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, 'client.cnf');
  const lines = [];
  if (url.params['defaults-file'] !== undefined) lines.push(`!include ${url.params['defaults-file']}`);
  lines.push('[client]');
  const pw = password ?? process.env.MYSQL_PWD;
  if (pw !== undefined && pw !== '') lines.push(`password=${optionValue(pw, 'the password')}`);
  fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
  return { args: [`--defaults-file=${file}`, ...args], remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface MydumperDumpOptions {
  readonly source: SourceUrl;
  readonly password: string | undefined;
  readonly jobs: number;
  /** mydumper's --long-query-guard: how long a running query may hold up its lock. */
  readonly lockTimeoutSeconds: number;
  /** The most the spool may hold (mydumperSpoolBytes), checked against TMPDIR's free space before the start. */
  readonly spoolBytes?: number;
  /** Called with the position once mydumper has written it. */
  readonly onPosition: (p: LogPosition) => void;
  /** The watch of the locks mydumper waits on: it stops mydumper when it gives up. */
  readonly lockWatch?: LockWatch;
  readonly onFailure?: ArtifactPlan['onFailure'];
}

/** The database artifact of a parallel dump (see the module comment). */
export function mydumperArtifact(o: MydumperDumpOptions): ArtifactPlan {
  const cmd = mydumperTool('mydumper');
  return {
    name: MYDUMPER_NAME,
    role: 'database',
    format: MYDUMPER_FORMAT,
    neverEmpty: true,
    producer: {
      label: 'mydumper',
      compresses: true,
      start: (onActivity, compress, outputFd) => {
        const conn = mydumperConnection(o.source, o.password, '--source');
        const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-spool-'));
        const dir = path.join(spool, MYDUMPER_TOP);
        log.info(`parallel dump: mydumper -t ${o.jobs} through the spool ${spool}`, { jobs: o.jobs, spool });
        let found = false;
        let metadataSent = false;
        const readPositionFrom = (file: string) => {
          if (found) return;
          try {
            const p = parseMydumperMetadata(fs.readFileSync(file, 'utf8'));
            if (p !== undefined) {
              found = true;
              o.onPosition(p);
            }
          } catch {
            // unreadable: no position, and the backup says so (openMydumperBackup's tables())
          }
        };
        const produced = startSpoolTar(
          {
            // Never left behind holding its global read lock by a runner that was killed.
            tool: diesWithRunner({
              cmd,
              args: [
                ...conn.args,
                `--database=${o.source.database}`,
                `--outputdir=${dir}`,
                `--threads=${o.jobs}`,
                // Row chunks (by the primary key), so one large table is dumped by every thread too.
                `--rows=${MYDUMPER_CHUNK_ROWS}`,
                // No --triggers/--events/--routines: objectsArtifact (mydumper 0.10 alters their bodies).
                `--long-query-guard=${o.lockTimeoutSeconds}`,
                // FLUSH TABLES WITH READ LOCK only while the threads open their snapshots. Without it
                // mydumper 0.10 holds it until its non-InnoDB tables are dumped, and may never let go:
                // a worker that ends the last of them before the main thread has counted it leaves
                // nobody to wake the main thread (5 hangs in 420 dumps of a database with an Aria
                // table on a busy machine). Non-transactional tables are then read as they are
                // when dumped, as by the single stream (docs/mysql.md).
                '--trx-consistency-only',
                '--verbose=2',
              ],
              label: 'mydumper',
            }),
            dir,
            top: MYDUMPER_TOP,
            expectBytes: o.spoolBytes,
            compress,
            outputFd,
            // The position, from mydumper's metadata file as it goes into the stream, before the
            // spool deletes it (a timer reading the spool could miss a file that short-lived).
            onSent: (name, file) => {
              if (name === 'metadata' || name === 'metadata.partial') readPositionFrom(file);
              if (name === 'metadata') metadataSent = true;
            },
            cleanup: () => {
              conn.remove();
              fs.rmSync(spool, { recursive: true, force: true });
            },
          },
          onActivity,
        );
        // SIGKILL: mydumper must not dump on without its snapshot, nor keep its sessions on the server.
        if (o.lockWatch !== undefined) o.lockWatch.onBlocked = () => produced.kill('SIGKILL');
        // mydumper writes its metadata file last, once every table is dumped: a dump without it is no dump.
        const done = produced.done.then(() => {
          if (!metadataSent) {
            throw wroteNothingError(
              'mydumper',
              'no metadata file into its directory',
              `mydumper --threads=${o.jobs} --database=${o.source.database} by hand against the source`,
            );
          }
        });
        done.catch(() => undefined);
        return { ...produced, done };
      },
    },
    onFailure: o.onFailure,
  };
}

export interface MydumperBackupOptions {
  readonly source: SourceUrl;
  readonly password: string | undefined;
  readonly jobs: number;
  readonly spoolBytes?: number;
  readonly lockTimeoutSeconds: number;
  readonly serverVersion: string;
  /** Whether the server writes a binary log (else no position is expected). */
  readonly logBin: boolean;
  /** The users-and-grants artifacts, as the single-stream dump has them. */
  readonly globals: readonly ArtifactPlan[];
  /** The manifest's tables (statistics' estimates: mydumper's snapshot cannot be shared). */
  readonly tables: () => Promise<TableStat[] | undefined>;
  /** The session that watches mydumper's sessions for a lock they wait on (snapshot.ts's LockWatch). */
  readonly control: MysqlSession;
  readonly close: () => Promise<void>;
  /** A warning for the manifest (BackupOpenOptions.warn). */
  readonly warn: BackupOpenOptions['warn'];
}

/** The backup session of a parallel dump. */
export async function openMydumperBackup(o: MydumperBackupOptions): Promise<BackupSession> {
  const cmd = mydumperTool('mydumper');
  const version = (await versionOutput(cmd).catch(() => '')).trim();
  let position: LogPosition | undefined;
  // --long-query-guard looks only at running queries: an idle session's LOCK TABLES … WRITE holds
  // mydumper's FLUSH TABLES WITH READ LOCK for ever. The watch stops it after --lock-timeout.
  const watch = new LockWatch(o.control, o.source.database, o.lockTimeoutSeconds, LockWatchOf.MYDUMPER);
  const blocked = (a: ArtifactPlan): ArtifactPlan => ({
    ...a,
    onFailure: (stderr) => (watch.blocked !== undefined ? { fail: watch.blocked } : a.onFailure?.(stderr)),
  });
  // Estimates, read while mydumper runs (the control session is idle between the watch's polls)
  // rather than after it, on the critical path.
  const tables = o.tables();
  const database = mydumperArtifact({
    ...o,
    onPosition: (p) => (position = p),
    lockWatch: watch,
    onFailure: () => (watch.blocked !== undefined ? { fail: watch.blocked } : undefined),
  });
  return {
    serverVersion: o.serverVersion,
    tools: { mydumper: /mydumper (\S+)/.exec(version)?.[1] ?? version },
    get position() {
      return position;
    },
    // The routines and grants are read while the watch runs too: a lock it gave up on fails them with its message.
    artifacts: [database, ...o.globals.map(blocked)],
    tables: async () => {
      await watch.stop();
      if (o.logBin && position === undefined) {
        o.warn('the binlog position is not recorded: mydumper wrote none into its metadata file');
      }
      return tables;
    },
    close: async () => {
      await watch.stop();
      await o.close();
    },
  };
}

/** The routines, events and triggers of a parallel dump: a second artifact, written by the dump tool. */
export const OBJECTS_NAME = 'objects.sql';
export const OBJECTS_FORMAT = 'mysql-objects-sql';

/**
 * The routines, events and triggers, by mariadb-dump (--no-data --no-create-info): mydumper 0.10
 * rewrites a body's line ends after ';' as '; ', so its definitions would not be the source's. They
 * are read while mydumper dumps (alongside: run after it, they added ~0.07 s to every backup), and
 * without LOCK TABLES (--skip-lock-tables: mariadb-dump's default read lock on every table of the
 * database would stop the source's writes for as long as it reads definitions, and keeps no rows
 * consistent here); DDL changed during the dump can show in them, as in mydumper's own schema files.
 */
export function objectsArtifact(
  dump: { path: string },
  connArgs: string[],
  env: Record<string, string | undefined>,
  database: string,
): ArtifactPlan {
  return {
    name: OBJECTS_NAME,
    role: 'objects',
    format: OBJECTS_FORMAT,
    alongside: true,
    producer: {
      cmd: dump.path,
      args: [
        ...connArgs,
        '--no-data',
        '--no-create-info',
        '--skip-lock-tables',
        '--triggers',
        '--routines',
        '--events',
        '--default-character-set=utf8mb4',
        '--',
        database,
      ],
      env,
      label: `${path.basename(dump.path)} --routines`,
    },
  };
}

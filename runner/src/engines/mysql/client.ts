/** The MySQL/MariaDB client side: connection arguments, tools, flavour, sessions, row counts. */
import * as crypto from 'node:crypto';
import { ConfigError } from '../../../../lib/core/errors';
import { TableStat } from '../../../../lib/core/manifest';
import { SourceUrl } from '../../../../lib/core/urls';
import { BackupError } from '../../errors';
import { log } from '../../log';
import { findTool, versionOutput } from '../../pipeline/stages';
import { MysqlSession, quoteName, quoteString } from './session';

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
export const TLS_PARAMS = [
  'ssl',
  'ssl-ca',
  'ssl-capath',
  'ssl-cert',
  'ssl-key',
  'ssl-cipher',
  'ssl-crl',
  'ssl-verify-server-cert',
  'ssl-mode',
  'tls-version',
];
export const KNOWN_PARAMS = new Set([...TLS_PARAMS, 'defaults-file']);

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
        `${what} '${url.display}' has the parameter '${k}', which MySQL/MariaDB connections do ` +
          `not take. Use socket, defaults-file or one of: ${TLS_PARAMS.join(', ')}.`,
      );
    }
  }
  const args = [
    url.params['defaults-file'] !== undefined ? `--defaults-file=${url.params['defaults-file']}` : '--no-defaults',
  ];
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

export async function toolVersion(tool: string): Promise<string> {
  // The preflight's run of `TOOL --version`, when it checked the tool already.
  return (await versionOutput(tool).catch(() => '')).trim();
}

/**
 * The dump tool that matches the server: `mariadb-dump` for MariaDB, MySQL's own `mysqldump`
 * for MySQL (the two have drifted apart: GTID options, column statistics, sandbox mode).
 * Falls back to the other family's tool with a warning.
 */
export async function dumpTool(flavor: MysqlFlavor): Promise<{ path: string; version: string; mariadb: boolean }> {
  const candidates = ['mariadb-dump', 'mysqldump']
    .map((n) => findTool([n]))
    .filter((p): p is string => p !== undefined);
  const found: { path: string; version: string; mariadb: boolean }[] = [];
  for (const p of candidates) {
    const v = await toolVersion(p);
    const tool = {
      path: p,
      // `mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB` and MySQL 5.7's `Ver 10.13 Distrib 5.7.44`:
      // the release is the Distrib (Ver is the client's own number); MySQL 8's is `Ver 8.4.7`.
      version: (/Distrib ([\d.]+-?[A-Za-z]*)/.exec(v) ?? /Ver ([\d.]+)/.exec(v))?.[1] ?? 'unknown',
      mariadb: /mariadb/i.test(v),
    };
    // The first of the server's family is the one (the next candidate's version is not needed).
    if (tool.mariadb === (flavor === MysqlFlavor.MARIADB)) return tool;
    found.push(tool);
  }
  if (found.length === 0)
    throw new BackupError(
      `neither mariadb-dump nor mysqldump is installed; install ` +
        `the ${flavor === MysqlFlavor.MARIADB ? 'mariadb-client' : 'mysql-client'} package.`,
    );
  log.warn(
    `no ${flavor === MysqlFlavor.MARIADB ? 'mariadb-dump' : 'MySQL mysqldump'} is ` +
      `installed; using ${found[0].path} (${found[0].version}) for a ${flavor} server`,
  );
  return found[0];
}

/** Version, family, binary logging and the session's account, in one round trip. */
export async function serverInfo(session: MysqlSession, display: string): Promise<ServerInfo> {
  let row: { version: string; comment: string; logBin: number; account: string };
  try {
    row = await session.json(
      `SELECT JSON_OBJECT('version', VERSION(), 'comment', ` +
        `@@version_comment, 'logBin', @@log_bin + 0, 'account', CURRENT_USER())`,
    );
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
export async function openSession(
  url: SourceUrl,
  env: Record<string, string | undefined>,
  flavor?: MysqlFlavor,
  database?: string,
  what = '--source',
): Promise<MysqlSession> {
  const tool = clientTool(flavor);
  const session = new MysqlSession({
    cmd: tool,
    args: [
      ...mysqlConnArgs(url, what),
      '--connect-timeout=10',
      ...(database !== undefined ? [`--database=${database}`] : []),
    ],
    env,
    label: tool.endsWith('mysql') ? 'mysql' : 'mariadb',
  });
  try {
    await session.query(`SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'`);
  } catch (e) {
    await session.close();
    throw new BackupError(
      `could not connect ` +
        `to ${url.display}${database !== undefined ? ` (database ${database})` : ''}: ${(e as Error).message}`,
    );
  }
  return session;
}

/** The base tables (incl. system-versioned ones) of a database. */
export function baseTablesSql(schemaExpr: string): string {
  return (
    `SELECT COALESCE(JSON_ARRAYAGG(TABLE_NAME), '[]') FROM information_schema.TABLES WHERE ` +
    `TABLE_SCHEMA = ${schemaExpr} AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`
  );
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
    const sql = chunk
      .map((n) => `SELECT ${quoteString(n)} AS n, COUNT(*) AS c FROM ${quoteName(database)}.${quoteName(n)}`)
      .join(' UNION ALL ');
    const rows = await session.json<{ n: string; c: number }[]>(
      `SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT('n', n, 'c', c)), '[]') FROM (${sql}) AS counts`,
    );
    for (const r of rows) stats.push({ schema: '', name: r.n, rows: Number(r.c) });
  }
  return stats.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** What a database holds, by kind of object. */
export interface DatabaseContents {
  readonly tables: number;
  readonly views: number;
  readonly routines: number;
  readonly events: number;
  readonly triggers: number;
}

export async function contentsOf(session: MysqlSession, database: string): Promise<DatabaseContents> {
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

/** SQL: 1 if the database exists, 0 if not. */
export function databaseExistsSql(database: string): string {
  return `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${quoteString(database)}`;
}

export async function databaseExists(session: MysqlSession, database: string): Promise<boolean> {
  return (await session.query(databaseExistsSql(database))) === '1';
}

/**
 * ENUM and SET labels with a 4-byte character (an emoji, say): the server reads a table's
 * definition in utf8mb3 and shows such a label as `?` (SHOW CREATE TABLE, information_schema;
 * every dump tool), so a restored column would have `?` for it and its rows the empty value.
 * Rows that hold such a value are refused (ConfigError, exit 2) naming the column and the fix;
 * a `?` label that no row uses yet is logged as a warning.
 */
export async function checkEnumLabels(session: MysqlSession, database: string): Promise<void> {
  const cols = await session.json<{ t: string; c: string }[]>(
    `SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT('t', TABLE_NAME, 'c', COLUMN_NAME)), '[]') FROM ` +
      `information_schema.COLUMNS WHERE TABLE_SCHEMA = ${quoteString(database)} AND DATA_TYPE IN ('enum', 'set') ` +
      `AND CHARACTER_SET_NAME = 'utf8mb4' AND COLUMN_TYPE LIKE '%?%' AND TABLE_NAME IN (SELECT TABLE_NAME FROM ` +
      `information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)} AND TABLE_TYPE <> 'VIEW')`,
  );
  for (const { t, c } of cols) {
    const name = `${quoteName(t)}.${quoteName(c)}`;
    // A 4-byte UTF-8 character starts with a byte F0..F4 (at an even position of the hex).
    const used = await session.query(
      `SELECT COUNT(*) FROM (SELECT 1 FROM ${quoteName(database)}.${quoteName(t)} WHERE ` +
        `HEX(CAST(${quoteName(c)} AS BINARY)) REGEXP '^(..)*F[0-4]' LIMIT 1) AS used`,
    );
    if (used === '1') {
      throw new ConfigError(
        `the column ${name} has an ENUM/SET label with a 4-byte character (such as an emoji), which the server ` +
          `itself shows as '?' in SHOW CREATE TABLE: no dump can carry it, and its rows would restore as ''. ` +
          `Change the label (ALTER TABLE … MODIFY), or the column to VARCHAR, before backing up.`,
      );
    }
    log.warn(
      `the column ${name} has an ENUM/SET label '?': if it stands for a label with a 4-byte character, the ` +
        `restored column has '?' instead (the server shows such labels as '?'; no row uses one yet)`,
      { column: name },
    );
  }
}

/**
 * The server versions the runner image can back up, per server family, and the client tools
 * (with the versions pinned in runner/Dockerfile) that make it so. A dump tool reads servers up
 * to its own release (`pg_dump` 17 cannot dump a PostgreSQL 18 server), so the newest server
 * supported is the newest tool carried. The constructs refuse at synth a source declared newer
 * than this table; the runner refuses, before any work, a server newer than its tools; a test
 * reads the Dockerfile's pins against this table.
 */
import { ConfigError } from './errors';
import { Engine } from './model';

/** A family of database servers, each with its own dump tools. */
export enum ServerFamily {
  /** PostgreSQL, including Amazon RDS and Aurora PostgreSQL. */
  POSTGRES = 'postgres',
  /** Oracle MySQL, including Amazon RDS for MySQL and Aurora MySQL. */
  MYSQL = 'mysql',
  /** MariaDB, including Amazon RDS for MariaDB. */
  MARIADB = 'mariadb',
  /** MongoDB. */
  MONGODB = 'mongodb',
}

/**
 * The server family of a source of `engine` when the source names none, for every flavour (the
 * AWS CDK and CDKTF sources and the drill read it): Oracle MySQL for the `mysql` engine
 * (`BackupSource.mysql`, an RDS for MySQL or Aurora MySQL endpoint); MariaDB is only ever chosen
 * by name (`BackupSource.mariadb`, a `mariadb://` URL, an RDS for MariaDB instance).
 */
export function defaultServerFamily(engine: Engine): ServerFamily {
  switch (engine) {
    case Engine.POSTGRES:
      return ServerFamily.POSTGRES;
    case Engine.MYSQL:
      return ServerFamily.MYSQL;
    case Engine.MONGODB:
      return ServerFamily.MONGODB;
  }
}

/**
 * The server family of a source of `engine`: MariaDB when the source says so (`mariadb`, for the
 * `mysql` engine only), else `defaultServerFamily`.
 */
export function sourceServerFamily(engine: Engine, mariadb: boolean): ServerFamily {
  return engine === Engine.MYSQL && mariadb ? ServerFamily.MARIADB : defaultServerFamily(engine);
}

/** The servers of one family that the runner image's tools back up and restore. */
export interface ServerVersionRange {
  /** The server family. */
  readonly family: ServerFamily;
  /** The runner's engine for this family. */
  readonly engine: Engine;
  /** The oldest server version supported (`major.minor`, or the major alone for PostgreSQL). */
  readonly minServer: string;
  /** The newest server version supported: the release of the newest tools the image carries. */
  readonly maxServer: string;
  /** The package (or distribution) the image installs the tools from. */
  readonly clientPackage: string;
  /** The tools' version as pinned in runner/Dockerfile. */
  readonly clientVersion: string;
  /** The `ARG` of runner/Dockerfile that pins `clientVersion`. */
  readonly dockerfileArg: string;
  /** The tools the runner uses for this family. */
  readonly tools: string[];
}

const TABLE: Readonly<Record<ServerFamily, ServerVersionRange>> = {
  [ServerFamily.POSTGRES]: {
    family: ServerFamily.POSTGRES,
    engine: Engine.POSTGRES,
    minServer: '9.2',
    maxServer: '18',
    clientPackage: 'postgresql-client-18 (PGDG apt repository)',
    clientVersion: '18',
    dockerfileArg: 'PG_MAJOR',
    tools: ['pg_dump', 'pg_dumpall', 'pg_restore', 'psql', 'pg_basebackup', 'pg_receivewal'],
  },
  [ServerFamily.MYSQL]: {
    family: ServerFamily.MYSQL,
    engine: Engine.MYSQL,
    minServer: '5.7',
    maxServer: '8.4',
    clientPackage: 'mysql-community-client 8.4 LTS (MySQL apt repository)',
    clientVersion: '8.4.7',
    dockerfileArg: 'MYSQL_VERSION',
    tools: ['mysqldump', 'mysql', 'mysqlbinlog'],
  },
  [ServerFamily.MARIADB]: {
    family: ServerFamily.MARIADB,
    engine: Engine.MYSQL,
    minServer: '10.3',
    maxServer: '11.8',
    clientPackage: 'mariadb-client 11.8 LTS (MariaDB apt repository)',
    clientVersion: '11.8',
    dockerfileArg: 'MARIADB_MAJOR',
    tools: ['mariadb-dump', 'mariadb', 'mariadb-binlog', 'mariadb-backup'],
  },
  [ServerFamily.MONGODB]: {
    family: ServerFamily.MONGODB,
    engine: Engine.MONGODB,
    minServer: '4.2',
    maxServer: '8.0',
    clientPackage: 'mongodb-database-tools 100.10.0 (MongoDB downloads)',
    clientVersion: '100.10.0',
    dockerfileArg: 'MONGO_TOOLS_VERSION',
    tools: ['mongodump', 'mongorestore'],
  },
};

/** `18`, `8.4.7`, `11.4.2-MariaDB-log`, `PostgreSQL 16.4` → [major, minor]; undefined when there is no number. */
export function parseServerVersion(version: string): [number, number] | undefined {
  const m = /(\d+)(?:\.(\d+))?/.exec(version);
  if (m === null) return undefined;
  return [Number(m[1]), m[2] === undefined ? 0 : Number(m[2])];
}

function compare(a: [number, number], b: [number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

/**
 * The supported server versions per family (one table, read by the constructs, the runner and
 * the test of runner/Dockerfile).
 */
export class ServerVersions {
  /** Every family's range. */
  public static all(): ServerVersionRange[] {
    return Object.values(TABLE);
  }

  /** One family's range. */
  public static of(family: ServerFamily): ServerVersionRange {
    return TABLE[family];
  }

  /**
   * Whether the image's tools can back up a server of this version: `undefined` when they can,
   * else the reason, naming both versions and the fix.
   */
  public static problem(family: ServerFamily, version: string): string | undefined {
    const range = TABLE[family];
    const v = parseServerVersion(version);
    if (v === undefined) {
      return `the ${family} server version '${version}' is not a version number; give e.g. '${range.maxServer}'.`;
    }
    // PostgreSQL numbers its releases by major alone since 10 (16.4 is release 16).
    const key: [number, number] = family === ServerFamily.POSTGRES && v[0] >= 10 ? [v[0], 0] : v;
    const max = parseServerVersion(range.maxServer)!;
    const min = parseServerVersion(range.minServer)!;
    if (compare(key, max) > 0) {
      return (
        `the ${family} server is version ${version}, newer than the runner image's tools ` +
        `(${range.tools[0]} ${range.clientVersion}, which back up ${family} ` +
        `${range.minServer} to ${range.maxServer}). ` +
        `Use a runner image with newer tools (build yours FROM the bundled one and raise ${range.dockerfileArg}), ` +
        `or back up a server of ${range.maxServer} or older.`
      );
    }
    if (compare(key, min) < 0) {
      return (
        `the ${family} server is version ${version}, older than the runner image's tools support ` +
        `(${range.tools[0]} ${range.clientVersion} backs up ${family} ${range.minServer} to ${range.maxServer}). ` +
        'Upgrade the server, or use an image with older tools.'
      );
    }
    return undefined;
  }

  /**
   * Whether the MySQL/MariaDB dump tool a runner found can dump this server (the runner asks before
   * any work): undefined when it can, else the reason, naming both versions and the fix.
   *
   * - A dump tool of the server's own family dumps servers up to its own `major.minor`:
   *   MariaDB's `mariadb-dump` 11.8 dumps MariaDB 10.3 to 11.8 (a MariaDB client reads every older
   *   MariaDB server), MySQL's `mysqldump` 8.4 dumps MySQL 5.7 to 8.4; a newer server may have
   *   syntax and system tables the tool does not know.
   * - MariaDB's tools dump Oracle MySQL up to 8.0; MySQL 8.4 and later need MySQL's `mysqldump`.
   * - MySQL's `mysqldump` (8.0 on) does not dump MariaDB: it reads
   *   `information_schema.COLUMN_STATISTICS`, which MariaDB lacks; MariaDB needs `mariadb-dump`.
   *
   * @param serverFamily `MYSQL` or `MARIADB`
   * @param serverVersion the server's `VERSION()`, e.g. `10.11.6-MariaDB-log`
   * @param toolFamily who made the tool (`MARIADB` when its `--version` says MariaDB)
   * @param toolVersion the release the tool reports, e.g. `10.11.19-MariaDB` or `8.4.7`
   * @param toolName the tool's name in the message
   */
  public static dumpToolProblem(
    serverFamily: ServerFamily,
    serverVersion: string,
    toolFamily: ServerFamily,
    toolVersion: string,
    toolName: string,
  ): string | undefined {
    const server = parseServerVersion(serverVersion);
    const tool = parseServerVersion(toolVersion);
    if (server === undefined || tool === undefined) return undefined;
    const install =
      serverFamily === ServerFamily.MARIADB
        ? `install MariaDB's client tools (mariadb-client) ${server[0]}.${server[1]} or newer`
        : `install MySQL's client tools (mysql-client, mysqldump) ${server[0]}.${server[1]} or newer`;
    const refuse = (why: string) =>
      `${toolName} ${toolVersion} cannot dump the ${serverFamily} ${serverVersion} server: ${why}; ${install}.`;
    if (toolFamily === serverFamily) {
      if (compare(server, tool) > 0) return refuse(`the server is newer than the tool`);
      return undefined;
    }
    if (serverFamily === ServerFamily.MYSQL) {
      if (compare(server, [8, 0]) > 0) return refuse("MariaDB's tools dump MySQL servers up to 8.0");
      return undefined;
    }
    if (tool[0] >= 8) return refuse("MySQL's mysqldump 8.0 and later read COLUMN_STATISTICS, which MariaDB lacks");
    return undefined;
  }

  /** Throw a ConfigError (naming both versions and the fix) unless `problem` finds none. */
  public static check(family: ServerFamily, version: string, what: string): void {
    const problem = ServerVersions.problem(family, version);
    if (problem !== undefined) throw new ConfigError(`${what}: ${problem}`);
  }

  private constructor() {}
}

/**
 * MySQL/MariaDB physical backups: `mariadb-backup` for MariaDB, Percona XtraBackup for Oracle
 * MySQL (chosen by the server's version; see physicalTools), streamed.
 *
 * - `--type full --method physical`: `mariadb-backup --backup --stream=mbstream` writes the whole
 *   server instance (every database: InnoDB is one tablespace system with one redo log) as one
 *   mbstream on stdout, which goes through the shared pipeline (compress, encrypt, sha256,
 *   storage) like any dump: no copy of the database is made on local disk. `--extra-lsndir`
 *   (a private temporary directory) receives the backup's xtrabackup_checkpoints and
 *   xtrabackup_info, a few hundred bytes: the InnoDB LSNs and the binary log position go into
 *   the manifest from there.
 * - `--type incremental|differential --method physical`: a true incremental, the pages changed
 *   since the parent's LSN (`--incremental-lsn=N`, N the parent's to_lsn as its manifest
 *   records it): the parent's files are never needed locally. The parent is the newest physical
 *   backup of the database (an incremental) or its newest physical full (a differential); the
 *   chain is recorded as for PostgreSQL (`parent`, `base`, `startPosition`).
 *
 * Row counts: while mariadb-backup holds BACKUP STAGE BLOCK_COMMIT (no transaction can commit),
 * a side session opens a consistent snapshot and counts the database's rows in it. The counts go
 * into the manifest only when that snapshot's binary log position is the backup's own (so a
 * drill compares with exactly what the backup holds); otherwise a warning says they were left out.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../../../lib/core/errors';
import { LogPosition, Manifest, TableStat } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { SourceUrl } from '../../../../lib/core/urls';
import { chooseParent } from '../../archive/chain';
import { readCatalog } from '../../catalog';
import { BackupError } from '../../errors';
import { Child, diesWithRunner, findTool } from '../../pipeline/stages';
import { BackupOpenOptions, BackupSession } from '../shared/engine';
import { countRows, MysqlFlavor, openSession, ServerInfo } from './client';
import { parseBinlogInfo, parseCheckpoints } from './mbstream';
import { MysqlSession } from './session';

/** The format of a physical MySQL/MariaDB artifact: what `--stream` wrote. */
export enum PhysicalFormat {
  MBSTREAM = 'mariadb-backup-mbstream',
  XBSTREAM = 'xtrabackup-xbstream',
}

/** The programs of a physical backup and restore, by server family. */
export interface PhysicalTools {
  /** The backup tool (mariadb-backup, xtrabackup). */
  readonly backup: string;
  /** The stream extractor (mbstream, xbstream). */
  readonly extract: string;
  readonly stream: 'mbstream' | 'xbstream';
  readonly format: PhysicalFormat;
  /** XtraBackup prepares every step but the last with --apply-log-only; mariadb-backup needs none. */
  readonly applyLogOnly: boolean;
  readonly fix: string;
}

/** mariadb-backup for MariaDB; Percona XtraBackup for Oracle MySQL (not verified here: no such server). */
export function physicalTools(flavor: MysqlFlavor): PhysicalTools {
  if (flavor === MysqlFlavor.MARIADB) {
    return {
      backup: findTool(['mariadb-backup', 'mariabackup']) ?? 'mariadb-backup',
      extract: findTool(['mbstream']) ?? 'mbstream',
      stream: 'mbstream',
      format: PhysicalFormat.MBSTREAM,
      applyLogOnly: false,
      fix: 'install mariadb-backup of the server version (Debian: apt-get install mariadb-backup)',
    };
  }
  return {
    backup: findTool(['xtrabackup']) ?? 'xtrabackup',
    extract: findTool(['xbstream']) ?? 'xbstream',
    stream: 'xbstream',
    format: PhysicalFormat.XBSTREAM,
    applyLogOnly: true,
    fix: "install Percona XtraBackup of the server's major version (percona-xtrabackup-80 for MySQL 8.0)",
  };
}

/** The tools of a manifest's physical artifacts (by the format it records). */
export function physicalToolsOf(format: string): PhysicalTools {
  return physicalTools(format === PhysicalFormat.XBSTREAM ? MysqlFlavor.MYSQL : MysqlFlavor.MARIADB);
}

/**
 * Reading a physical backup back needs both programs (the extractor unpacks, the backup tool
 * prepares): checked before any work, a missing one is bad usage (exit 2) naming it, never a
 * stream cut off half-way ("zstd was killed by SIGPIPE") or a half-made target.
 */
export function checkPhysicalTools(tools: PhysicalTools, why: string): void {
  for (const [tool, role] of [
    [tools.extract, `unpacks the ${tools.stream} stream`],
    [tools.backup, 'prepares the unpacked files'],
  ] as const) {
    let runs = path.isAbsolute(tool);
    try {
      if (runs) fs.accessSync(tool, fs.constants.X_OK);
    } catch {
      runs = false;
    }
    if (!runs) {
      throw new ConfigError(
        `${path.basename(tool)} is not installed or not on PATH (looked ` +
          `for '${path.basename(tool)}'); ${why} needs it ` +
          `(it ${role}). Fix: ${tools.fix}.`,
      );
    }
  }
}

/** `--version` of mariadb-backup / xtrabackup (they print it on stderr); '' when it does not run. */
export async function backupToolVersion(tool: string): Promise<string> {
  const child = new Child({ cmd: tool, args: ['--version'] }, ['ignore', 'pipe', 'pipe']);
  let out = '';
  child.process.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  return child.done.then(
    () => `${out}${child.stderr}`.trim(),
    () => '',
  );
}

/** The message line mariadb-backup and XtraBackup print once commits are blocked. */
const BLOCK_COMMIT = /Acquired locks for BACKUP STAGE BLOCK_COMMIT|Executing FLUSH TABLES WITH READ LOCK\.\.\./;

/** Open a physical backup on the control session, which holds the overlap lock. */
export async function openPhysicalBackup(
  control: MysqlSession,
  source: SourceUrl,
  env: Record<string, string | undefined>,
  connArgs: readonly string[],
  info: ServerInfo,
  options: BackupOpenOptions,
): Promise<BackupSession> {
  const tools = physicalTools(info.flavor);
  // Not installed: bad usage (exit 2) naming it; installed but not running: a runtime failure.
  if (!path.isAbsolute(tools.backup)) {
    throw new ConfigError(
      `${tools.backup} is not installed or not on PATH (looked for '${tools.backup}'); a physical backup streams ` +
        `the server's files with it. Fix: ${tools.fix}, or back up with --method logical.`,
    );
  }
  const version = await backupToolVersion(tools.backup);
  if (version === '') {
    throw new BackupError(`${tools.backup} is not installed or does not run; ${tools.fix}.`);
  }
  const toolVer = /(\d+\.\d+\.\d+)/.exec(version)?.[1] ?? version;
  // The tool reads the server's own files: its release must be the server's (major.minor), for
  // mariadb-backup as for XtraBackup (8.0 for MySQL 8.0, 8.4 for 8.4).
  const serverMm = /^(\d+\.\d+)/.exec(info.version)?.[1];
  if (serverMm !== undefined && !toolVer.startsWith(`${serverMm}.`)) {
    throw new BackupError(
      `${tools.backup} ${toolVer} cannot back up a ${info.flavor === MysqlFlavor.MARIADB ? 'MariaDB' : 'MySQL'} ` +
        `${info.version} server (their releases must match); ${tools.fix}.`,
    );
  }
  let parent: Manifest | undefined;
  let fromLsn: string | undefined;
  if (options.type !== BackupType.FULL) {
    const storage = options.storage;
    if (storage === undefined) throw new Error('a physical incremental backup needs the storage');
    const catalog = await readCatalog(storage);
    parent = chooseParent(
      catalog.backups.filter((m) => m.database === source.database),
      options.type,
      options.databaseId,
      Engine.MYSQL,
      BackupMethod.PHYSICAL,
    );
    if (parent === undefined) {
      throw new ConfigError(
        `there is no physical ${options.type === BackupType.DIFFERENTIAL ? 'full ' : ''}backup of ${source.database} ` +
          `(${options.databaseId}) in ${storage.url.display} for this ${options.type} backup to build on; take one ` +
          'first with: dbbackup backup --engine mysql --method physical --type full …',
      );
    }
    fromLsn = parent.position?.lsn;
    if (fromLsn === undefined || !/^\d+$/.test(fromLsn)) {
      throw new BackupError(
        `backup ${parent.id} records no InnoDB LSN (position.lsn); an incremental cannot start from it. ` +
          'Take a new full physical backup.',
      );
    }
  }
  const lsnDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-lsn-'));
  // Row counts from a snapshot opened while commits are blocked (see the file's comment).
  const side = await openSession(source, env, info.flavor).catch((e: Error) => {
    options.warn('could not open a session to count rows; the manifest records no row counts', { error: e.message });
    return undefined;
  });
  let counting: Promise<{ stats: TableStat[]; file: string; pos: number } | undefined> | undefined;
  const count = async () => {
    if (side === undefined) return undefined;
    try {
      await side.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      const status = await side.json<{ file: string; pos: number }>(
        `SELECT JSON_OBJECT('file', (SELECT VARIABLE_VALUE FROM ` +
          `information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'BINLOG_SNAPSHOT_FILE'), ` +
          `'pos', (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS ` +
          `WHERE VARIABLE_NAME = 'BINLOG_SNAPSHOT_POSITION') + 0)`,
      );
      const stats = await countRows(side, source.database);
      await side.query('COMMIT');
      return { stats, file: status.file, pos: Number(status.pos) };
    } catch (e) {
      options.warn('could not count rows in a snapshot during the backup; the manifest records no row counts', {
        error: (e as Error).message.split('\n')[0],
      });
      return undefined;
    }
  };
  let stderr = '';
  const args = [
    ...connArgs,
    '--backup',
    `--stream=${tools.stream}`,
    `--extra-lsndir=${lsnDir}`,
    `--target-dir=${lsnDir}`,
    ...(fromLsn !== undefined ? [`--incremental-lsn=${fromLsn}`] : []),
  ];
  const label = path.basename(tools.backup);
  const readLsnDir = async (): Promise<{ position: LogPosition; fromLsn: string }> => {
    const cp = parseCheckpoints(
      await fs.promises.readFile(path.join(lsnDir, 'xtrabackup_checkpoints'), 'utf8').catch(() => ''),
    );
    if (cp === undefined) {
      throw new BackupError(
        `${label} wrote no readable xtrabackup_checkpoints; the backup cannot be chained or restored.`,
      );
    }
    const infoText = await fs.promises.readFile(path.join(lsnDir, 'xtrabackup_info'), 'utf8').catch(() => '');
    const fromStderr =
      /MySQL binlog position: (filename '[^']+', position '\d+'(?:, GTID of the last change '[^']*')?)/.exec(stderr);
    const binlog =
      parseBinlogInfo(infoText) ?? (fromStderr ? parseBinlogInfo(`binlog_pos = ${fromStderr[1]}`) : undefined);
    const position: LogPosition =
      binlog !== undefined
        ? { kind: 'binlog', file: binlog.file, pos: binlog.pos, gtid: binlog.gtid, lsn: cp.toLsn }
        : { kind: 'lsn', lsn: cp.toLsn };
    return { position, fromLsn: cp.fromLsn };
  };
  let position: LogPosition | undefined;
  let lsns: { position: LogPosition; fromLsn: string } | undefined;
  const cleanup = async () => {
    await side?.close().catch(() => undefined);
    await fs.promises.rm(lsnDir, { recursive: true, force: true });
    await control.close();
  };
  return {
    serverVersion: info.version,
    tools: { [label]: toolVer },
    get position() {
      return position;
    },
    chain:
      parent === undefined
        ? undefined
        : {
            parent: parent.id,
            base: parent.type === BackupType.FULL ? parent.id : parent.base!,
            startPosition: parent.position!,
          },
    artifacts: [
      {
        name: `instance.${tools.stream}`,
        role: 'physical',
        format: tools.format,
        neverEmpty: true,
        // Never left behind holding BACKUP STAGE BLOCK_COMMIT by a runner that was killed.
        producer: diesWithRunner({ cmd: tools.backup, args, env, label }),
        onStderr: (text) => {
          stderr = (stderr + text).slice(-65536);
          if (counting === undefined && BLOCK_COMMIT.test(stderr)) counting = count();
        },
      },
    ],
    tables: async () => {
      lsns = await readLsnDir();
      position = lsns.position;
      if (fromLsn !== undefined && lsns.fromLsn !== fromLsn) {
        throw new BackupError(
          `${label} started its incremental at LSN ${lsns.fromLsn}, not at ${fromLsn} (the end of ${parent!.id}); ` +
            'the chain would not be whole.',
        );
      }
      const counted = await counting;
      if (counted === undefined) {
        if (counting === undefined)
          options.warn(`${label} never reported blocking commits; the manifest records no row counts`);
        return undefined;
      }
      if (position.file !== undefined && (counted.file !== position.file || counted.pos !== position.pos)) {
        options.warn(
          `the row counts are not recorded: the snapshot they were ` +
            `counted in (${counted.file}:${counted.pos}) is not ` +
            `the backup's point (${position.file}:${position.pos}); a drill then checks tables without row counts`,
        );
        return undefined;
      }
      if (position.file === undefined) {
        options.warn(
          'the server writes no binary log, so the row counts cannot be tied to the backup; none are recorded',
        );
        return undefined;
      }
      return counted.stats;
    },
    close: cleanup,
  };
}

/**
 * MySQL/MariaDB incremental and differential backups: the binary log range since the previous
 * backup / the last full, as the server has it.
 *
 * The range runs from the parent's recorded position to the server's current one (SHOW MASTER
 * STATUS, a transaction boundary). Its logs are copied raw from the server
 * (`mariadb-binlog --read-from-remote-server --raw`) into a private temporary directory (the
 * range only, never the database) and stored as one tar through the shared pipeline; the
 * manifest records the start position (the parent's) and the end position, and restore replays
 * exactly that range with `--start-position` / `--stop-position` after the chain's full.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../../../lib/core/errors';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { SourceUrl } from '../../../../lib/core/urls';
import { readCatalog } from '../../catalog';
import { BackupError } from '../../errors';
import { log } from '../../log';
import { binlogSeq } from './binlog-archive';
import { capture, findTool, versionOutput } from '../../pipeline/stages';
import { BackupOpenOptions, BackupSession } from '../shared/engine';
import { MysqlSession, quoteString } from './session';
import { chooseParent } from '../../archive/chain';

/** Open a binlog-range backup on a session that holds the overlap lock. */
export async function openBinlogRange(
  control: MysqlSession,
  source: SourceUrl,
  env: Record<string, string | undefined>,
  connArgs: readonly string[],
  serverVersion: string,
  options: BackupOpenOptions,
): Promise<BackupSession> {
  const storage = options.storage;
  if (storage === undefined) throw new Error('a binlog range backup needs the storage');
  const catalog = await readCatalog(storage);
  const parent = chooseParent(
    catalog.backups.filter((m) => m.database === source.database),
    options.type,
    options.databaseId,
    Engine.MYSQL,
    // A binary log range continues a logical chain; physical chains are physical.ts's.
    BackupMethod.LOGICAL,
  );
  if (parent === undefined) {
    throw new ConfigError(
      `there is no ${options.type === BackupType.DIFFERENTIAL ? 'full ' : ''}backup ` +
        `of ${source.database} (${options.databaseId}) in ${storage.url.display} for ` +
        `this ${options.type} backup to build on; take one first with --type full.`,
    );
  }
  const from = parent.position;
  if (from?.file === undefined || from.pos === undefined) {
    throw new BackupError(
      `backup ${parent.id} records no binlog position (binary logging was off, or the backup ` +
        `user could not read it); take a new full backup with binary logging on.`,
    );
  }
  const base = parent.type === BackupType.FULL ? parent.id : parent.base;
  if (base === undefined)
    throw new BackupError(
      `backup ${parent.id} names no full backup at the start of its chain; take a new full backup.`,
    );

  const status = (await control.query('SHOW MASTER STATUS')).split('\n')[0]?.split('\t');
  if (status === undefined || status[0] === '')
    throw new ConfigError(`binary logging is off on ${source.display}; ${options.type} backups are binary log ranges.`);
  const end = { file: status[0], pos: Number(status[1]) };
  const onServer = (await control.query('SHOW BINARY LOGS'))
    .split('\n')
    .map((l) => l.split('\t')[0])
    .filter((n) => n !== '');
  const fromSeq = binlogSeq(from.file)!;
  const toSeq = binlogSeq(end.file)!;
  const files = onServer.filter((n) => binlogSeq(n)! >= fromSeq && binlogSeq(n)! <= toSeq);
  if (files[0] !== from.file || files.length !== toSeq - fromSeq + 1) {
    throw new BackupError(
      `the binary logs since backup ${parent.id} (${from.file} position ${from.pos}) are no longer all ` +
        `on ${source.display} (it has ${onServer.join(', ')}); they were purged. Take a full backup, and ` +
        `keep binary logs longer than the time between backups (binlog_expire_logs_seconds).`,
    );
  }
  const gtid = (
    await control.query(`SELECT COALESCE(BINLOG_GTID_POS(${quoteString(end.file)}, ${end.pos}), '')`).catch(() => '')
  ).trim();

  // Copy the range's logs from the server (the last one is read up to where the server is now, which is at or after
  // `end`).
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-binlog-range-'));
  const tool = findTool(['mariadb-binlog', 'mysqlbinlog']) ?? 'mariadb-binlog';
  try {
    await capture({
      cmd: tool,
      args: [...connArgs, '--read-from-remote-server', '--raw', `--result-file=${dir}/`, ...files],
      env,
      label: path.basename(tool),
    });
    const got = (await fs.promises.readdir(dir)).sort();
    if (got.join(',') !== files.join(','))
      throw new BackupError(`${path.basename(tool)} copied ${got.join(', ')}, expected ${files.join(', ')}`);
    const last = (await fs.promises.stat(path.join(dir, end.file))).size;
    if (last < end.pos)
      throw new BackupError(`${end.file} was copied up to ${last} bytes, short of position ${end.pos}`);
  } catch (e) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw e;
  }
  log.info(
    `binary log range ${from.file}:${from.pos} to ${end.file}:${end.pos} (${files.length} log(s)) since ${parent.id}`,
    { event: 'binlog-range', parent: parent.id },
  );
  return {
    serverVersion,
    tools: { 'mariadb-binlog': (await versionOutput(tool).catch(() => '')).trim() },
    position: { kind: 'binlog', file: end.file, pos: end.pos, gtid: gtid === '' ? undefined : gtid },
    chain: { parent: parent.id, base, startPosition: from },
    artifacts: [
      {
        name: 'binlogs.tar',
        role: 'binlog',
        format: 'binlog-range-tar',
        producer: { cmd: 'tar', args: ['-c', '-f', '-', '-C', dir, ...files], label: 'tar' },
      },
    ],
    tables: async () => undefined,
    close: async () => {
      await fs.promises.rm(dir, { recursive: true, force: true });
      await control.close();
    },
  };
}

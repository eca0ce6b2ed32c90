// Helpers for the point-in-time recovery tests: a PostgreSQL server that archives its WAL with
// `dbbackup wal-push` into a file:// store, and a server started on a restored data directory.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from '@jest/globals';
import {
  LocalPostgres,
  postgresOwner,
  spawnPostgres,
  startLocalPostgres,
} from '../../runner/src/local/postgres-server';
import { freePort } from '../harness/ports';
import { DBBACKUP } from '../harness/runner';

/** The uid/gid PostgreSQL runs as (the `postgres` user under root). */
export const pgOwner = postgresOwner;

/**
 * The temporary directories this test file made (data directories, WAL archives: hundreds of
 * MB). They go once the file's tests are done (a root-level afterAll runs after every describe
 * block's own afterAll has stopped its servers). Removing them at process exit instead held the
 * jest worker past its exit deadline: it was force-exited ("A worker process has failed to exit
 * gracefully") half-way through, leaving the rest behind.
 */
const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.splice(0).map((d) => fs.promises.rm(d, { recursive: true, force: true })));
});
// Only what a file made after its afterAll (nothing, normally) is left for the exit.
process.on('exit', () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * A temporary directory the database user can write (archive_command runs as that user); removed
 * when the file's tests are done.
 */
export function sharedTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  const o = pgOwner();
  if (o.uid !== undefined) fs.chownSync(dir, o.uid, o.gid!);
  return dir;
}

/** archive_command as the README (Point-in-time recovery) gives it, with this checkout's bundle. */
export function archiveCommand(storeUrl: string, extra = ''): string {
  return `${process.execPath} ${DBBACKUP} wal-push %p --to ${storeUrl}${extra}`;
}

/** A PostgreSQL server archiving its WAL to `storeUrl` through `dbbackup wal-push`. */
export function startArchivingPostgres(storeUrl: string, extra = ''): Promise<LocalPostgres> {
  return startLocalPostgres({
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: archiveCommand(storeUrl, extra),
      max_wal_senders: '5',
    },
  });
}

/** Close the current segment and wait until the archiver has stored it (and everything before it). */
export async function switchAndWait(pg: LocalPostgres, timeoutMs = 60000): Promise<string> {
  // The segment the switch completed (the one holding everything written so far).
  const seg = await pg.sql(`SELECT pg_walfile_name(pg_switch_wal())`);
  const end = Date.now() + timeoutMs;
  // Archived means: the archiver has reached `seg` (its last file may be a backup history file such as
  // `<seg>.00000028.backup`, which sorts after `seg` — when the switch had nothing to close, `seg` is the
  // segment a base backup just finished) and no segment up to `seg` is still waiting (`.ready`).
  const last = `coalesce(last_archived_wal, '')`;
  const reached = `left(${last}, 24) >= '${seg}' AND ${last} ~ '^[0-9A-F]{24}'`;
  const waiting = `SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name ~ '^[0-9A-F]{24}' AND name LIKE '%.ready'
    AND left(name, 24) <= '${seg}'`;
  for (;;) {
    const ok = await pg.sql(`SELECT (${reached}) AND (${waiting}) = 0 FROM pg_stat_archiver`);
    if (ok === 't') return seg;
    if (Date.now() > end) {
      throw new Error(
        `segment ${seg} was not archived in time: ${await pg.sql(`SELECT row_to_json(a) FROM pg_stat_archiver a`)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A server running on a restored data directory. */
export interface RestoredServer {
  sql(sql: string, database?: string): Promise<string>;
  /** The server's log so far. */
  log(): string;
  stop(): Promise<void>;
}

/** Start PostgreSQL on `dataDir` (as the database user) and wait until recovery ended and it accepts writes. */
export async function startOnDataDir(dataDir: string, timeoutMs = 60000, archiveTo?: string): Promise<RestoredServer> {
  const owner = pgOwner();
  const socketDir = sharedTempDir('dbbackup-sock-');
  const port = await freePort();
  // Archiving off, unless the restored server is to go on archiving (as the original did) to `archiveTo`.
  const archive: Record<string, string> =
    archiveTo === undefined
      ? { archive_mode: 'off' }
      : { archive_mode: 'on', archive_command: archiveCommand(archiveTo), wal_level: 'replica' };
  const server = spawnPostgres({
    dataDir,
    port,
    settings: {
      port: String(port),
      listen_addresses: '',
      unix_socket_directories: socketDir,
      fsync: 'off',
      ...archive,
    },
    host: socketDir,
    owner,
    logTail: 200000,
  });
  const { proc, sql } = server;
  const stop = async () => {
    await server.stop();
    fs.rmSync(socketDir, { recursive: true, force: true });
  };
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw Object.assign(
        new Error(`postgres on ${dataDir} exited with ${proc.exitCode ?? proc.signalCode}:\n${server.log()}`),
        { serverLog: server.log() },
      );
    }
    try {
      if ((await sql('SELECT pg_is_in_recovery()')) === 'f') break;
    } catch {
      // not up yet
    }
    if (Date.now() > end) {
      await stop();
      throw new Error(`postgres on ${dataDir} did not finish recovery in time:\n${server.log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { sql, log: server.log, stop };
}

/** Start PostgreSQL on `dataDir` and expect it to fail; resolves with its log. */
export async function expectStartFailure(dataDir: string, timeoutMs = 60000): Promise<string> {
  try {
    const s = await startOnDataDir(dataDir, timeoutMs);
    const log = s.log();
    await s.stop();
    throw new Error(`postgres on ${dataDir} started, expected it to fail:\n${log}`);
  } catch (e) {
    const log = (e as { serverLog?: string }).serverLog;
    if (log === undefined) throw e;
    return log;
  }
}

/** A moment strictly between what was committed before and what is committed after. */
export async function noteMoment(): Promise<Date> {
  await new Promise((r) => setTimeout(r, 30));
  const t = new Date();
  await new Promise((r) => setTimeout(r, 30));
  return t;
}

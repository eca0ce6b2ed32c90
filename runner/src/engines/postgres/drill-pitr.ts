/**
 * The point-in-time part of a PostgreSQL restore drill: a random moment T of the WAL archive's
 * recoverable window is laid down into a scratch data directory as `restore --to-time T
 * --target-dir DIR` does (pitr-restore.ts: the newest physical base before T, recovery through
 * `wal-fetch` up to T, then promote), PostgreSQL is started on it on a private socket, and the
 * result is checked:
 *
 * - the server starts and recovery ends by reaching the target: its log says it stopped at the
 *   first transaction after T (`recovery stopping before commit …, time X` with X after T), and the
 *   last transaction it replayed (`last completed transaction was at log time R`) is at or before
 *   T: R is the moment reached. A recovery that runs out of WAL before T makes PostgreSQL refuse
 *   to start (`recovery ended before configured recovery target was reached`): the drill fails;
 * - the database the base was taken of exists, and every user table in it is read whole
 *   (count(*)), so a missing or unreadable data file fails the drill; the rows are reported, not
 *   compared (a physical base records no counts, and rows may be deleted after it).
 *
 * Since recovery stops only at a transaction after T, the moment is picked before the last
 * transaction the archive holds (read from its newest segments with pg_waldump), not up to the
 * window's end, which is when that segment was written.
 *
 * It needs the PostgreSQL server (`postgres`) beside the client tools (without it the part is
 * skipped with a warning, `skipped` in the result); under root it runs the server as the
 * `postgres` user. The server listens on no TCP port (only a socket in a private
 * directory) and trusts that socket (its own pg_hba.conf), so no credentials of the restored
 * cluster are needed; the directory is removed at the end.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunnerCommand } from '../../../../lib/core/contract';
import { TableStat } from '../../../../lib/core/manifest';
import { readManifest } from '../../catalog';
import { BackupError } from '../../errors';
import { log } from '../../log';
import { capture } from '../../pipeline/stages';
import { openStorage, Storage } from '../../storage';
import { ArchiveWindow } from '../../archive/window';
import { TimeDrillRequest, TimeDrillResult } from '../shared/engine';
import { runPhysicalRestore } from './pitr-restore';
import { transactionEnds } from './pitr-restore-wal';
import { pgTool } from './tools';
import { readWalIndex } from './wal-archive';
import { quoteLiteral } from './session';

/** How many of the newest archived segments are read for the archive's last transaction. */
const TAIL_SEGMENTS = 8;

/** The last transaction end the archive holds near the window's end (undefined: none found). */
export async function lastTransactionEnd(
  storage: Storage,
  window: ArchiveWindow,
  identity: string | undefined,
): Promise<Date | undefined> {
  const index = await readWalIndex(storage);
  for (const segs of index.segments.values()) {
    const numbers = [...segs.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    const at = numbers.findIndex((n) => segs.get(n)!.written.toISOString() === window.latest);
    if (at < 0) continue;
    for (const n of numbers.slice(at, at + TAIL_SEGMENTS)) {
      const ends = await transactionEnds(storage, segs.get(n)!, identity);
      if (ends.length > 0) return new Date(Math.max(...ends.map((e) => e.getTime())));
    }
  }
  return undefined;
}

/** What the server's log says about the end of recovery. */
export function recoveryEnd(serverLog: string): { stoppedAt?: Date; lastCompleted?: Date } {
  const time = (s: string) => new Date(s.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'));
  const stop = /recovery stopping before (?:commit|abort) of transaction \d+, time (\S+ \S+)/.exec(serverLog);
  const last = /last completed transaction was at log time (\S+ \S+)/.exec(serverLog);
  return {
    stoppedAt: stop === null ? undefined : time(stop[1]),
    lastCompleted: last === null ? undefined : time(last[1]),
  };
}

/** The uid/gid the server runs as: ours, or the `postgres` user's under root. */
function serverOwner(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  try {
    return {
      uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
    };
  } catch {
    throw new BackupError(
      'the point-in-time drill starts PostgreSQL on the restored directory, which refuses to run as root, ' +
        'and there is no postgres user to run it as; create one (useradd postgres) or run the drill as another user',
    );
  }
}

export async function postgresDrillToTime(request: TimeDrillRequest, signal: AbortSignal): Promise<TimeDrillResult> {
  const server = pgTool('postgres');
  if (!path.isAbsolute(server) || !fs.existsSync(server)) {
    // The drill task's image may carry only the client tools: say so loudly, but do not fail the logical drill.
    return {
      base: '',
      target: '',
      restoreSeconds: 0,
      tablesChecked: 0,
      rowsCounted: 0,
      problems: [],
      skipped:
        'the point-in-time drill starts PostgreSQL on the restored data directory and found no server program ' +
        `(${server}); install the PostgreSQL server package of the backups' major version (Debian: postgresql-15) ` +
        'or point DBBACKUP_PG_BIN at its bin directory',
    };
  }
  const storage = openStorage(request.from);
  const earliest = new Date(request.window.earliest!);
  const lastTx = await lastTransactionEnd(storage, request.window, request.identity);
  if (lastTx === undefined || lastTx <= earliest) {
    throw new BackupError(
      `the WAL archive holds no transaction after the newest base became consistent (${earliest.toISOString()}) ` +
        'near its end, so no moment of the window can be recovered to and checked; recovery stops at the first ' +
        'transaction after its target',
    );
  }
  const t = request.pick(earliest, new Date(lastTx.getTime() - 1));
  const owner = serverOwner();
  const scratch = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-drill-pitr-'));
  let proc: ChildProcess | undefined;
  try {
    if (owner.uid !== undefined) await fs.promises.chown(scratch, owner.uid, owner.gid!);
    const dataDir = path.join(scratch, 'data');
    const started = Date.now();
    const restored = await runPhysicalRestore(
      {
        command: RunnerCommand.RESTORE,
        from: request.from,
        selector: { kind: 'latest', database: request.database },
        toTime: t,
        targetDir: dataDir,
        identity: request.identity,
        withGlobals: false,
        clean: false,
        json: false,
      },
      signal,
      request.check,
    );
    const hba = path.join(scratch, 'pg_hba.conf');
    await fs.promises.writeFile(hba, 'local all all trust\n', { mode: 0o600 });
    if (owner.uid !== undefined) await fs.promises.chown(hba, owner.uid, owner.gid!);
    const settings = {
      listen_addresses: '',
      unix_socket_directories: scratch,
      hba_file: hba,
      archive_mode: 'off',
      fsync: 'off',
      log_timezone: 'UTC',
      timezone: 'UTC',
    };
    const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    proc = spawn(server, args, { stdio: ['ignore', 'ignore', 'pipe'], ...owner });
    let serverLog = '';
    proc.stderr!.on('data', (d: Buffer) => (serverLog = (serverLog + d.toString()).slice(-200000)));
    const exited = new Promise<void>((resolve) => proc!.once('exit', () => resolve()));
    const psql = (sql: string, user: string, database = 'postgres') =>
      capture({
        cmd: pgTool('psql'),
        args: ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', scratch, '-U', user, '-d', database, '-c', sql],
        env: { PGCONNECT_TIMEOUT: '5', PGAPPNAME: 'dbbackup-drill' },
        label: 'psql',
      }).then((o) => o.trim());
    const base = await readManifest(storage, restored.chain[0]);
    const user = await superuserOf(
      base.source.user ?? 'postgres',
      psql,
      () => proc!.exitCode !== null || signal.aborted,
    );
    // Recovery replays the WAL, then promotes: the server is out of recovery once it reached the target.
    for (;;) {
      if (signal.aborted) throw signal.reason;
      if (proc.exitCode !== null || proc.signalCode !== null) {
        const tail = serverLog
          .split('\n')
          .filter((l) => /FATAL|PANIC|ERROR/.test(l))
          .slice(-3)
          .join(' | ');
        throw new BackupError(
          `PostgreSQL on the drill's restored directory stopped during recovery ` +
            `to ${t.toISOString()}: ${tail || serverLog.slice(-500)}`,
        );
      }
      const inRecovery = await psql('SELECT pg_is_in_recovery()', user).catch(() => 't');
      if (inRecovery === 'f') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const restoreSeconds = (Date.now() - started) / 1000;
    const end = recoveryEnd(serverLog);
    const problems: string[] = [];
    if (end.stoppedAt === undefined)
      problems.push(
        `recovery ended without reaching ${t.toISOString()} (no stop at a later transaction in the server's log)`,
      );
    else if (end.stoppedAt <= t)
      problems.push(`recovery stopped at ${end.stoppedAt.toISOString()}, before the target ${t.toISOString()}`);
    if (end.lastCompleted !== undefined && end.lastCompleted > t)
      problems.push(
        `recovery replayed a transaction of ${end.lastCompleted.toISOString()}, after the target ${t.toISOString()}`,
      );
    const database = base.database;
    const exists = await psql(`SELECT count(*) FROM pg_database WHERE datname = ${quoteLiteral(database)}`, user);
    let tables: TableStat[] = [];
    if (exists !== '1') problems.push(`the database ${database} of base ${restored.id} is missing after the restore`);
    else {
      try {
        tables = JSON.parse(await psql(TABLE_ROWS_SQL, user, database)) as TableStat[];
      } catch (e) {
        problems.push(
          `reading the tables of ${database} after the restore failed: ${(e as Error).message.split('\n')[0]}`,
        );
      }
    }
    proc.kill('SIGINT');
    await exited;
    return {
      base: restored.chain[0],
      target: t.toISOString(),
      reached: end.lastCompleted?.toISOString(),
      restoreSeconds,
      tablesChecked: tables.length,
      rowsCounted: tables.reduce((s, x) => s + Number(x.rows), 0),
      problems,
    };
  } finally {
    if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise<void>((resolve) => proc!.once('exit', () => resolve()));
      proc.kill('SIGQUIT');
      await gone;
    }
    await fs.promises
      .rm(scratch, { recursive: true, force: true })
      .catch((e: Error) => log.warn(`could not remove the drill's scratch directory ${scratch}: ${e.message}`));
  }
}

/** Every user table's row count (reads each whole), as JSON. */
const TABLE_ROWS_SQL = `SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'name', c.relname,
  'rows', (xpath('/row/c/text()',
    query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname),
      false, true, '')))[1]::text::bigint)
  ORDER BY n.nspname, c.relname), '[]')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;

/**
 * The restored cluster's bootstrap superuser (the role with oid 10), found by connecting as the
 * base's backup user (a role the cluster has) once the server accepts connections.
 */
async function superuserOf(
  backupUser: string,
  psql: (sql: string, user: string) => Promise<string>,
  gone: () => boolean,
): Promise<string> {
  const deadline = Date.now() + 3600_000;
  for (;;) {
    if (gone()) return backupUser;
    try {
      return await psql('SELECT rolname FROM pg_roles WHERE oid = 10', backupUser);
    } catch (e) {
      // Not accepting connections yet (starting, or not yet consistent).
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

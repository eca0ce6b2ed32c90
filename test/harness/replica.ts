// Replicas for the tests: a PostgreSQL hot standby made with pg_basebackup -R from a primary, and
// a MariaDB replica (a second mariadbd replicating from the primary's binary log). Each runs on a
// free loopback port in a temporary directory, as the harness's other servers do.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pgTool } from '../../runner/src/engines/postgres/tools';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { LocalPostgres, postgresOwner, runAsOwner, spawnPostgres } from '../../runner/src/local/postgres-server';
import { capture } from '../../runner/src/pipeline/stages';
import { freePort, waitFor } from './ports';

/**
 * A hot standby of `primary`: `pg_basebackup -R` over the primary's socket (initdb's pg_hba trusts
 * local replication), then PostgreSQL on the copy, streaming from the primary. It has the primary's
 * password (it is a copy of the same cluster). Resolves once it accepts queries in recovery.
 */
export async function startPostgresStandby(primary: LocalPostgres): Promise<LocalPostgres> {
  const owner = postgresOwner();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-standby-'));
  if (owner.uid !== undefined) fs.chownSync(dir, owner.uid, owner.gid!);
  const pgdata = path.join(dir, 'data');
  const source = ['-h', primary.dataDir, '-p', String(primary.port), '-U', 'postgres'];
  await runAsOwner(pgTool('pg_basebackup'), ['-D', pgdata, '-R', '-X', 'stream', '-c', 'fast', ...source], owner);
  const port = await freePort();
  const server = spawnPostgres({
    dataDir: pgdata,
    port,
    settings: {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: dir,
      fsync: 'off',
      hot_standby: 'on',
      archive_mode: 'off',
    },
    host: dir,
    owner,
    logTail: 8000,
  });
  await waitFor(
    `the standby on port ${port} to accept queries in recovery`,
    async () => {
      if (server.proc.exitCode !== null)
        throw new Error(`the standby exited with ${server.proc.exitCode}: ${server.log()}`);
      return (await server.sql('SELECT pg_is_in_recovery()')) === 't';
    },
    60000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${server.log()}`);
  });
  return {
    port,
    dataDir: dir,
    password: primary.password,
    env: primary.env,
    url: (database, user = 'postgres') => `postgres://${user}@127.0.0.1:${port}/${database}`,
    sql: server.sql,
    stop: async () => {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Wait until the standby has replayed everything the primary has written so far. */
export async function waitStandbyCaughtUp(primary: LocalPostgres, standby: LocalPostgres): Promise<void> {
  // The insert position, not pg_current_wal_lsn() (the write position): with synchronous_commit off,
  // as the harness runs, a commit just made can still be in WAL buffers, behind the write position.
  const lsn = await primary.sql('SELECT pg_current_wal_insert_lsn()');
  await waitFor(
    `the standby to replay up to ${lsn}`,
    async () => (await standby.sql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`)) === 't',
    60000,
  );
}

/** A MariaDB replica and the primary it replicates from. */
export interface MariaReplica extends LocalMariaDB {
  /** The replication status row (`SHOW SLAVE STATUS`), field by field. */
  status(): Promise<Map<string, string>>;
}

/**
 * A second mariadbd replicating from `primary` (binary logging on, as startLocalMariaDB has it):
 * a replication user on the primary (not written to its binary log), CHANGE MASTER TO the
 * primary's port and current binary log position, START SLAVE. The primary should hold no user
 * data yet, or the replica starts without it.
 */
export async function startMariaReplica(primary: LocalMariaDB): Promise<MariaReplica> {
  const replica = await startLocalMariaDB({ settings: { 'server-id': '2' } });
  const password = 'repl-' + Math.random().toString(36).slice(2);
  await primary.sql(
    `SET SESSION sql_log_bin = 0;
     CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '${password}';
     GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';`,
  );
  const [file, pos] = (await primary.sql('SHOW MASTER STATUS')).split('\t');
  await replica.sql(
    `CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${primary.port}, MASTER_USER = 'repl',
       MASTER_PASSWORD = '${password}', MASTER_LOG_FILE = '${file}', MASTER_LOG_POS = ${pos}, MASTER_USE_GTID = no;
     START SLAVE;`,
  );
  const status = async () => {
    const text = await capture({
      cmd: 'mariadb',
      args: [
        '--no-defaults',
        `--socket=${replica.socket}`,
        '--user=root',
        '--batch',
        '--vertical',
        '-e',
        'SHOW SLAVE STATUS',
      ],
      env: { MYSQL_PWD: replica.password },
    });
    const out = new Map<string, string>();
    for (const m of text.matchAll(/^\s*([A-Za-z_]+): ?(.*)$/gm)) if (!out.has(m[1])) out.set(m[1], m[2]);
    return out;
  };
  await waitFor(
    'the replica to connect to the primary',
    async () => {
      const s = await status();
      return s.get('Slave_IO_Running') === 'Yes' && s.get('Slave_SQL_Running') === 'Yes';
    },
    30000,
  ).catch(async (e: Error) => {
    throw new Error(`${e.message}: ${JSON.stringify([...(await status())])}`);
  });
  return Object.assign(replica, { status });
}

/** Wait until the replica has applied everything the primary has written so far. */
export async function waitReplicaCaughtUp(primary: LocalMariaDB, replica: LocalMariaDB): Promise<void> {
  const [file, pos] = (await primary.sql('SHOW MASTER STATUS')).split('\t');
  const r = await replica.sql(`SELECT MASTER_POS_WAIT('${file}', ${pos}, 60)`);
  // The number of events it waited for; -1 on a timeout, NULL when replication is not running.
  if (!/^\d+$/.test(r)) throw new Error(`the replica did not reach ${file}:${pos} (MASTER_POS_WAIT returned ${r})`);
}

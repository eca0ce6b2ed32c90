import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pgTool } from '../engines/postgres/tools';
import { capture } from '../pipeline/stages';

/**
 * A throwaway PostgreSQL server in a temporary directory on a free loopback port, for the demo
 * and the tests. PostgreSQL refuses to run as root, so under root it runs as the `postgres` user.
 * Connections over TCP need the superuser's password (random per server); the socket is trusted.
 */
export interface LocalPostgres {
  readonly port: number;
  readonly dataDir: string;
  readonly password: string;
  /** `postgres://postgres@127.0.0.1:PORT/DB` (no password: give it in the environment). */
  url(database: string, user?: string): string;
  /** Environment that lets tools and the runner connect (PGPASSWORD / DBBACKUP_*_PASSWORD). */
  readonly env: Record<string, string>;
  /** Run SQL with psql as the superuser; returns unaligned, tuples-only output. */
  sql(sql: string, database?: string): Promise<string>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Who runs PostgreSQL's programs: the `postgres` user under root (PostgreSQL refuses root), else this process. */
export interface PostgresOwner {
  readonly uid?: number;
  readonly gid?: number;
}

export function postgresOwner(): PostgresOwner {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/** A PostgreSQL server process (`postgres -D DIR -c …`) and psql against it as the superuser. */
export interface PostgresProcess {
  readonly proc: ChildProcess;
  /** Run SQL with psql; returns unaligned, tuples-only output. */
  sql(sql: string, database?: string): Promise<string>;
  /** The tail of the server's stderr so far. */
  log(): string;
  /** Stop it (SIGINT, a fast shutdown) and wait until it has exited. */
  stop(): Promise<void>;
}

/** How `spawnPostgres` starts a server. */
export interface PostgresProcessOptions {
  readonly dataDir: string;
  readonly port: number;
  /** Server settings, each given as `-c name=value`. */
  readonly settings: Readonly<Record<string, string>>;
  /** Where psql connects: a socket directory or `127.0.0.1`. */
  readonly host: string;
  /** psql's environment (PGPASSWORD over TCP). */
  readonly env?: Readonly<Record<string, string>>;
  readonly owner: PostgresOwner;
  /** How much of the server's stderr `log()` keeps, in characters. */
  readonly logTail: number;
}

/** Start `postgres` on a data directory; the caller waits for what "ready" means to it. */
export function spawnPostgres(options: PostgresProcessOptions): PostgresProcess {
  const args = ['-D', options.dataDir, ...Object.entries(options.settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const proc: ChildProcess = spawn(pgTool('postgres'), args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...options.owner,
  });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-options.logTail)));
  const connection = ['-h', options.host, '-p', String(options.port), '-U', 'postgres'];
  const psql = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...connection];
  const env = options.env === undefined ? {} : { env: { ...options.env } };
  return {
    proc,
    sql: async (text, database = 'postgres') =>
      (await capture({ cmd: pgTool('psql'), args: [...psql, '-d', database, '-f', '-'], ...env }, text)).trim(),
    log: () => log,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGINT');
      });
    },
  };
}

export interface LocalPostgresOptions {
  /** Extra server settings (`-c name=value`), e.g. `{ wal_level: 'replica' }`. */
  readonly settings?: Readonly<Record<string, string>>;
}

export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const owner = postgresOwner();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-pg-'));
  const password = crypto.randomBytes(12).toString('hex');
  const pwfile = path.join(dataDir, '..', `${path.basename(dataDir)}.pw`);
  fs.writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  if (owner.uid !== undefined) {
    fs.chownSync(dataDir, owner.uid, owner.gid!);
    fs.chownSync(pwfile, owner.uid, owner.gid!);
  }
  const pgdata = path.join(dataDir, 'data');
  await runAsOwner(
    pgTool('initdb'),
    [
      '-D',
      pgdata,
      '-U',
      'postgres',
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      `--pwfile=${pwfile}`,
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
      '--no-sync',
    ],
    owner,
  );
  fs.rmSync(pwfile, { force: true });
  const port = await freePort();
  const server = spawnPostgres({
    dataDir: pgdata,
    port,
    settings: {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: dataDir,
      fsync: 'off',
      full_page_writes: 'off',
      synchronous_commit: 'off',
      max_connections: '50',
      ...options.settings,
    },
    host: '127.0.0.1',
    env: { PGPASSWORD: password },
    owner,
    logTail: 4000,
  });
  const { proc, sql } = server;
  const env = { PGPASSWORD: password, DBBACKUP_SOURCE_PASSWORD: password, DBBACKUP_TARGET_PASSWORD: password };
  const deadline = Date.now() + 30000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`postgres exited with ${proc.exitCode}: ${server.log()}`);
    try {
      await sql('SELECT 1');
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${server.log()} ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    dataDir,
    password,
    env,
    url: (database, user = 'postgres') => `postgres://${user}@127.0.0.1:${port}/${database}`,
    sql,
    stop: async () => {
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Run a PostgreSQL program (initdb, pg_basebackup) as `owner`; a failure carries its stderr. */
export function runAsOwner(cmd: string, args: string[], owner: PostgresOwner): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...owner });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err}`))));
  });
}

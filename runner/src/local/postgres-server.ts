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

function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

export interface LocalPostgresOptions {
  /** Extra server settings (`-c name=value`), e.g. `{ wal_level: 'replica' }`. */
  readonly settings?: Readonly<Record<string, string>>;
}

export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const owner = runAs();
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
  const settings = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: dataDir,
    fsync: 'off',
    full_page_writes: 'off',
    synchronous_commit: 'off',
    max_connections: '50',
    ...options.settings,
  };
  const args = ['-D', pgdata, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const proc: ChildProcess = spawn(pgTool('postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'], ...owner });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const env = { PGPASSWORD: password, DBBACKUP_SOURCE_PASSWORD: password, DBBACKUP_TARGET_PASSWORD: password };
  const sql = async (text: string, database = 'postgres') =>
    (
      await capture(
        {
          cmd: pgTool('psql'),
          args: [
            '-X',
            '-q',
            '-A',
            '-t',
            '-v',
            'ON_ERROR_STOP=1',
            '-h',
            '127.0.0.1',
            '-p',
            String(port),
            '-U',
            'postgres',
            '-d',
            database,
            '-f',
            '-',
          ],
          env: { PGPASSWORD: password },
        },
        text,
      )
    ).trim();
  const deadline = Date.now() + 30000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`postgres exited with ${proc.exitCode}: ${log}`);
    try {
      await sql('SELECT 1');
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${log} ${(e as Error).message}`);
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
      if (proc.exitCode === null && proc.signalCode === null) {
        await new Promise<void>((resolve) => {
          proc.once('exit', () => resolve());
          proc.kill('SIGINT');
        });
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function runAsOwner(cmd: string, args: string[], owner: { uid?: number; gid?: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...owner });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err}`))));
  });
}

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { capture, findTool } from '../pipeline/stages';

/**
 * A throwaway MariaDB server in a temporary directory, for the tests and the benchmark: its own
 * data directory, a Unix socket in that directory and a free loopback port, binary logging on
 * (so backups record a binlog position), and `root` with a random password per server (so a
 * wrong password is really wrong). Under root the server runs as the `mysql` user.
 */
export interface LocalMariaDB {
  readonly port: number;
  /** The server's Unix socket. */
  readonly socket: string;
  readonly dir: string;
  readonly password: string;
  /** `mysql://root@127.0.0.1:PORT/DB` (no password: give it in the environment). */
  url(database: string, user?: string): string;
  /** `mysql://root@localhost/DB?socket=SOCKET`. */
  socketUrl(database: string, user?: string): string;
  /** Environment that lets tools and the runner connect as root (MYSQL_PWD / DBBACKUP_*_PASSWORD). */
  readonly env: Record<string, string>;
  /** Run SQL as root over the socket; returns the batch output (tab-separated, no column names, raw). */
  sql(sql: string, database?: string): Promise<string>;
  /** The server's process id. */
  readonly pid: number;
  stop(): Promise<void>;
}

export interface LocalMariaDBOptions {
  /** Extra server options (`--name=value`), e.g. `{ 'max-allowed-packet': '64M' }`. */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Start on this existing data directory (e.g. a restored physical backup) instead of a new one:
   * nothing is installed or changed in it, `password` is root's there, and stop() leaves it.
   */
  readonly dataDir?: string;
  /** root's password in `dataDir`. */
  readonly password?: string;
  /** Binary logging (default true). */
  readonly binlog?: boolean;
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

/** The server binary: mariadbd (10.4+) or mysqld, on PATH or in /usr/sbin. */
function serverBinary(): string {
  const found = findTool(['mariadbd', 'mysqld'], ['/usr/sbin', '/usr/local/sbin']);
  if (found === undefined) throw new Error('no MariaDB server (mariadbd) is installed; apt-get install mariadb-server');
  return found;
}

export async function startLocalMariaDB(options: LocalMariaDBOptions = {}): Promise<LocalMariaDB> {
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-my-'));
  const dataDir = options.dataDir ?? path.join(dir, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'mysql']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'mysql']).toString().trim());
    fs.chownSync(dir, uid, gid);
  }
  const userArgs = asRoot ? ['--user=mysql'] : [];
  // A temporary directory of its own: a server starting beside it removes every '#sql*' file of
  // its tmpdir at startup, which makes a concurrent mariadb-install-db in a shared /tmp fail.
  const tmpDir = path.join(dir, 'tmp');
  fs.mkdirSync(tmpDir);
  if (asRoot) fs.chownSync(tmpDir, fs.statSync(dir).uid, fs.statSync(dir).gid);
  if (options.dataDir === undefined) {
    await run(findTool(['mariadb-install-db', 'mysql_install_db']) ?? 'mariadb-install-db', [
      '--no-defaults',
      `--datadir=${dataDir}`,
      ...userArgs,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--skip-name-resolve',
      `--tmpdir=${tmpDir}`,
    ]);
  }
  const port = await freePort();
  const socket = path.join(dir, 'mysqld.sock');
  const settings: Record<string, string> = {
    'innodb-buffer-pool-size': '128M',
    'innodb-log-file-size': '64M',
    'innodb-flush-log-at-trx-commit': '0',
    'sync-binlog': '0',
    'character-set-server': 'utf8mb4',
    'collation-server': 'utf8mb4_unicode_ci',
    'max-allowed-packet': '64M',
    ...options.settings,
  };
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--socket=${socket}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--pid-file=${path.join(dir, 'mysqld.pid')}`,
    '--skip-name-resolve',
    `--tmpdir=${tmpDir}`,
    '--server-id=1',
    ...(options.binlog === false ? [] : [`--log-bin=${path.join(dataDir, 'binlog')}`, '--binlog-format=ROW']),
    ...userArgs,
    ...Object.entries(settings).map(([k, v]) => `--${k}=${v}`),
  ];
  const proc: ChildProcess = spawn(serverBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  proc.on('error', (e) => (log += `\n${e.message}`));

  let password = options.password ?? '';
  const client = findTool(['mariadb', 'mysql']) ?? 'mariadb';
  const sql = async (text: string, database?: string) =>
    (
      await capture(
        {
          cmd: client,
          args: [
            '--no-defaults',
            `--socket=${socket}`,
            '--user=root',
            '--batch',
            '--raw',
            '--skip-column-names',
            '--default-character-set=utf8mb4',
            ...(database ? [`--database=${database}`] : []),
          ],
          env: { MYSQL_PWD: password },
        },
        text,
      )
    ).replace(/\n$/, '');
  const deadline = Date.now() + 30000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`mariadbd exited with ${proc.exitCode}: ${log}`);
    try {
      await sql('SELECT 1');
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`mariadbd did not start: ${log} ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (options.dataDir === undefined) {
    // Every root account gets the random password; accounts named after this host (which
    // --skip-name-resolve ignores) are removed.
    const pw = crypto.randomBytes(12).toString('hex');
    await sql(
      `SET SESSION sql_log_bin = 0;
       ALTER USER 'root'@'localhost' IDENTIFIED BY '${pw}';
       ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '${pw}';
       DROP USER IF EXISTS 'root'@'::1';
       FLUSH PRIVILEGES;`,
    );
    password = pw;
    for (const host of (
      await sql(`SELECT Host FROM mysql.user WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1')`)
    )
      .split('\n')
      .filter((h) => h !== '')) {
      await sql(`SET SESSION sql_log_bin = 0; DROP USER 'root'@'${host.replace(/'/g, "''")}'`);
    }
    await sql(
      `SET SESSION sql_log_bin = 0; DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', ''); ` +
        'FLUSH PRIVILEGES; RESET MASTER;',
    ).catch(() => undefined);
  }

  return {
    port,
    socket,
    dir,
    password,
    pid: proc.pid!,
    env: { MYSQL_PWD: password, DBBACKUP_SOURCE_PASSWORD: password, DBBACKUP_TARGET_PASSWORD: password },
    url: (database, user = 'root') =>
      `mysql://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    socketUrl: (database, user = 'root') =>
      `mysql://${encodeURIComponent(user)}@localhost/${encodeURIComponent(database)}` +
      `?socket=${encodeURIComponent(socket)}`,
    sql,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => proc.kill('SIGKILL'), 20000);
          proc.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          proc.kill('SIGTERM');
        });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err.slice(-2000)}`)),
    );
  });
}

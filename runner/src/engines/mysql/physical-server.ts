/**
 * A temporary MariaDB/MySQL server on a prepared physical backup, for the steps that need the
 * data running: the binary log replay of a point-in-time restore, restore drills and
 * `verify --deep` of a physical chain.
 *
 * It listens on a Unix socket in a private (0700) directory only (`--skip-networking`), with
 * `--skip-grant-tables` (no account or password of the backed-up server is needed or exposed:
 * nothing but this process can reach the socket) and `--skip-log-bin`, and reads the backup's
 * own `backup-my.cnf` (the InnoDB page size, log size and data file layout the files were
 * made with). `stop()` shuts it down cleanly (SIGTERM, then waits), so the directory is left as
 * a server leaves it.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackupError } from '../../errors';
import { capture, childEnv, findTool } from '../../pipeline/stages';
import { clientTool } from './client';

/** How long the temporary server may take to start (crash recovery of a big redo log included). */
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 300_000;

export interface TempServer {
  readonly socket: string;
  /** Connection arguments for the client. */
  readonly clientArgs: readonly string[];
  /** Run SQL; returns the batch output (tab-separated, no column names). */
  sql(text: string): Promise<string>;
  stop(): Promise<void>;
}

/** The server binary: mariadbd, else mysqld. */
export function serverBinary(): string {
  const found = findTool(['mariadbd', 'mysqld'], ['/usr/sbin', '/usr/local/sbin']);
  if (found === undefined) {
    throw new BackupError(
      'no MariaDB/MySQL server binary (mariadbd or mysqld) is installed here; the binary log replay and the drill ' +
        'of a physical backup start one on the restored files. Install mariadb-server (or mysql-server).',
    );
  }
  return found;
}

/** The OS user a server runs as when this program runs as root (mariadbd refuses root). */
export function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'mysql']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'mysql']).toString().trim());
    return { name: 'mysql', uid, gid };
  } catch {
    throw new BackupError(
      'running as root, the temporary server needs the mysql OS user to run as, and there is none; create it ' +
        '(useradd --system mysql) or run as a non-root user.',
    );
  }
}

/** Hand a tree to a user (lchown: links are never followed). */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.promises.lchown(dir, uid, gid);
  for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await fs.promises.lchown(p, uid, gid);
  }
}

/**
 * Start a server on `dataDir` with its socket and logs in `runDir` (a private directory the
 * caller made and removes).
 */
/** The longest socket path the kernel takes (sun_path is 108 bytes with its NUL). */
const SOCKET_PATH_MAX = 107;

export async function startTempServer(dataDir: string, runDir: string): Promise<TempServer> {
  const user = serverUser();
  if (user !== undefined) {
    await chownTree(dataDir, user.uid, user.gid);
    await fs.promises.chown(runDir, user.uid, user.gid);
  }
  // A Unix socket path holds at most 107 bytes: a deep runDir (a drill under a long TMPDIR) gets
  // its socket in a private directory of its own under /tmp, removed when the server stops.
  let socketDir: string | undefined;
  if (Buffer.byteLength(path.join(runDir, 'mysqld.sock')) > SOCKET_PATH_MAX) {
    socketDir = await fs.promises.mkdtemp('/tmp/dbbackup-sock-');
    if (user !== undefined) await fs.promises.chown(socketDir, user.uid, user.gid);
  }
  const socket = path.join(socketDir ?? runDir, 'mysqld.sock');
  const removeSocketDir = () =>
    socketDir === undefined ? Promise.resolve() : fs.promises.rm(socketDir, { recursive: true, force: true });
  const cnf = path.join(dataDir, 'backup-my.cnf');
  const hasCnf = fs.existsSync(cnf);
  const args = [
    hasCnf ? `--defaults-file=${cnf}` : '--no-defaults',
    `--datadir=${dataDir}`,
    `--socket=${socket}`,
    `--pid-file=${path.join(runDir, 'mysqld.pid')}`,
    `--log-error=${path.join(runDir, 'error.log')}`,
    // Its own temporary files stay in the private directory (the runner's TMPDIR may not be its user's).
    `--tmpdir=${runDir}`,
    '--skip-networking',
    '--skip-grant-tables',
    '--skip-log-bin',
    '--skip-slave-start',
    '--event-scheduler=DISABLED',
    '--innodb-buffer-pool-size=128M',
    ...(user !== undefined ? [`--user=${user.name}`] : []),
  ];
  const proc: ChildProcess = spawn(serverBinary(), args, { stdio: ['ignore', 'ignore', 'ignore'], env: childEnv() });
  let exited: number | null = null;
  proc.on('exit', (code) => {
    exited = code ?? -1;
  });
  const client = clientTool();
  const clientArgs = ['--no-defaults', `--socket=${socket}`, '--protocol=SOCKET', '--user=root'];
  const sql = async (text: string) =>
    (
      await capture(
        {
          cmd: client,
          args: [...clientArgs, '--batch', '--raw', '--skip-column-names', '--default-character-set=utf8mb4'],
          label: 'mariadb',
        },
        text,
      )
    ).replace(/\n$/, '');
  const errorLog = () =>
    fs.promises
      .readFile(path.join(runDir, 'error.log'), 'utf8')
      .then((t) => t.split('\n').slice(-15).join('\n'))
      .catch(() => '(no error log)');
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited !== null) {
      await removeSocketDir();
      throw new BackupError(
        `the temporary server on the restored files exited with ${exited} before it accepted connections: ` +
          `${await errorLog()}`,
      );
    }
    if (fs.existsSync(socket)) {
      try {
        await sql('SELECT 1');
        break;
      } catch {
        // not yet
      }
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      await removeSocketDir();
      throw new BackupError(
        `the temporary server did not start within ${START_TIMEOUT_MS / 1000} s: ${await errorLog()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const stop = async () => {
    if (exited !== null) return removeSocketDir();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill('SIGTERM');
    });
    await removeSocketDir();
    if (exited !== 0) {
      throw new BackupError(`the temporary server did not shut down cleanly (exit ${exited}): ${await errorLog()}`);
    }
  };
  return { socket, clientArgs, sql, stop };
}

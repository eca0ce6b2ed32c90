// Helpers for the streaming WAL tests and the RPO benchmark: a PostgreSQL server that allows
// replication connections, `dbbackup wal-receive` running beside it, a steady commit load that
// notes when each commit was acknowledged, and a crash of the whole server (SIGKILL).
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { DBBACKUP } from '../harness/runner';
import { pgOwner } from './pitr-harness';

/** A server with wal_level=replica and WAL senders, committing synchronously (an acknowledged commit is flushed). */
export function startStreamingPostgres(): Promise<LocalPostgres> {
  return startLocalPostgres({
    settings: { wal_level: 'replica', max_wal_senders: '5', max_replication_slots: '5', synchronous_commit: 'on' },
  });
}

export interface WalReceiver {
  readonly proc: ChildProcess;
  log(): string;
  /** Send `signal` and resolve with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start `dbbackup wal-receive` for `pg` into `storeUrl`. */
export function startWalReceive(pg: LocalPostgres, storeUrl: string, extra: readonly string[] = []): WalReceiver {
  // Only the runner's own variable: the password reaches pg_receivewal in its environment.
  const env: NodeJS.ProcessEnv = { ...process.env, DBBACKUP_SOURCE_PASSWORD: pg.password, DBBACKUP_LOG_FORMAT: 'json' };
  delete env.PGPASSWORD;
  const proc = spawn(
    process.execPath,
    [DBBACKUP, 'wal-receive', '--source', pg.url('postgres'), '--to', storeUrl, ...extra],
    // As the database's OS user, as a WAL shipper beside the server runs: the restored server's
    // restore_command (that user too) reads what it stored.
    { env, stdio: ['ignore', 'pipe', 'pipe'], ...pgOwner() },
  );
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-400000)));
  proc.stdout!.resume();
  const closed = new Promise<number | null>((r) => proc.once('close', (c) => r(c)));
  return {
    proc,
    log: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return closed;
    },
  };
}

/** Wait until `cond` holds (polled every 100 ms), or fail with `what`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pids of a process's children (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Crash the server: SIGKILL its postmaster and every process it started, at once. */
export function crashServer(pg: LocalPostgres): Date {
  const pid = Number(fs.readFileSync(path.join(pg.dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const all = [pid, ...childrenOf(pid)];
  const at = new Date();
  for (const p of all) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return at;
}

/** One acknowledged commit: its number and when the client saw the COMMIT return. */
export interface Ack {
  readonly n: number;
  readonly at: number;
}

/**
 * Commit rows `(n, clock_timestamp())` into `commits` one transaction at a time until `stop()`
 * is called or the server goes away; resolves with the acknowledged ones.
 */
export function steadyLoad(pg: LocalPostgres, database: string): { stop(): void; done: Promise<Ack[]> } {
  let stopped = false;
  const acks: Ack[] = [];
  const done = (async () => {
    for (let n = 1; !stopped; n++) {
      try {
        await pg.sql(`INSERT INTO commits (n, at) VALUES (${n}, clock_timestamp())`, database);
      } catch {
        break; // the server is gone
      }
      acks.push({ n, at: Date.now() });
    }
    return acks;
  })();
  return { stop: () => (stopped = true), done };
}

/** What a restore kept of the acknowledged commits. */
export interface Loss {
  /** Acknowledged commits missing from the restore. */
  readonly missing: number;
  /** Seconds from the earliest missing acknowledged commit to the crash (0 when none is missing): the RPO. */
  readonly rpoSeconds: number;
  /** The latest acknowledgement time of a commit that is missing (undefined when none). */
  readonly firstMissingAt?: number;
}

export function lossOf(acks: readonly Ack[], restored: ReadonlySet<number>, crashAt: Date): Loss {
  const missing = acks.filter((a) => !restored.has(a.n));
  const first = missing.length > 0 ? Math.min(...missing.map((a) => a.at)) : undefined;
  return {
    missing: missing.length,
    rpoSeconds: first === undefined ? 0 : Math.max(0, (crashAt.getTime() - first) / 1000),
    firstMissingAt: first,
  };
}

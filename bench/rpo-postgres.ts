// The recovery point of PostgreSQL with `dbbackup wal-receive`: how much acknowledged work a
// crash loses. A script to run, not a test (npm run build first):
//   npx tsx bench/rpo-postgres.ts [--seconds 20] [--partial-interval 5s]
//
// Twice, on a fresh server each time: wal-receive streams (the given --partial-interval, default
// the option's default), a physical base backup is taken, rows are committed one transaction at a
// time under a steady load (each commit's acknowledgement time noted), a segment switch happens
// half-way, then the server is crashed with SIGKILL (every process of it at once), and
//   1. "server crash": wal-receive is stopped with SIGTERM afterwards (as a shipper on another
//      host would go on running: it uploads what it received);
//   2. "server and shipper crash": wal-receive is SIGKILLed at the same moment (the worst case:
//      only what the last partial upload held survives).
// Each time the archive is restored with restore --to-time latest into a fresh data directory,
// the server started on it, and the acknowledged commits that are missing counted. Printed: the
// count, and the RPO in seconds (from the earliest missing acknowledged commit to the crash).
// Goal: RPO <= 10 s in both cases.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { optionSpec } from '../lib/core/contract';
import { dbbackup } from '../test/harness/runner';
import { sharedTempDir, startOnDataDir } from '../test/runner/pitr-harness';
import {
  crashServer,
  lossOf,
  startStreamingPostgres,
  startWalReceive,
  steadyLoad,
  waitFor,
} from '../test/runner/wal-receive-harness';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const seconds = Number(arg('seconds', '20'));
const interval = arg('partial-interval', optionSpec('partial-interval')!.default!);

async function round(killShipper: boolean): Promise<string> {
  const dir = sharedTempDir('dbbackup-rpo-');
  const url = `file://${path.join(dir, 'store')}`;
  const pg = await startStreamingPostgres();
  try {
    await pg.sql('CREATE DATABASE app');
    await pg.sql('CREATE TABLE commits (n int PRIMARY KEY, at timestamptz NOT NULL)', 'app');
    const receiver = startWalReceive(pg, url, ['--create-slot', '--partial-interval', interval]);
    await waitFor(
      async () => (await pg.sql(`SELECT active FROM pg_replication_slots WHERE slot_name = 'dbbackup'`)) === 't',
      'pg_receivewal to stream',
    );
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--method', 'physical', '--source', pg.url('app'), '--to', url],
      { env: pg.env },
    );
    if (b.code !== 0) throw new Error(b.stderr);
    const load = steadyLoad(pg, 'app');
    await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
    await pg.sql('SELECT pg_switch_wal()');
    await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
    const crashAt = crashServer(pg);
    if (killShipper) receiver.proc.kill('SIGKILL');
    const acks = await load.done;
    await new Promise((r) => setTimeout(r, 500));
    await receiver.stop('SIGTERM');
    const target = path.join(dir, 'restored');
    const r = await dbbackup(['restore', '--from', url, '--to-time', 'latest', '--target-dir', target]);
    if (r.code !== 0) throw new Error(r.stderr);
    const server = await startOnDataDir(target, 120000);
    try {
      const rows = (await server.sql('SELECT n FROM commits', 'app')).split('\n').filter((l) => l !== '');
      const loss = lossOf(acks, new Set(rows.map(Number)), crashAt);
      const rate = acks.length / seconds;
      return (
        `${(killShipper ? 'server and shipper crash' : 'server crash').padEnd(26)} ` +
        `${String(acks.length).padStart(6)} acknowledged (${rate.toFixed(0)}/s)  ` +
        `${String(loss.missing).padStart(5)} missing  RPO ${loss.rpoSeconds.toFixed(1)} s`
      );
    } finally {
      await server.stop();
    }
  } finally {
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`wal-receive RPO: ${seconds} s of steady commits, --partial-interval ${interval}, goal RPO <= 10 s`);
  for (const killShipper of [false, true]) console.log(await round(killShipper));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

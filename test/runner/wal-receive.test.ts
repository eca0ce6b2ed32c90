// `dbbackup wal-receive` against a real PostgreSQL 15 server: pg_receivewal streams from a
// replication slot, completed segments go to the WAL archive as wal-push stores them, and the
// segment being received is uploaded every --partial-interval. Under a steady commit load the
// server is crashed (SIGKILL), the receiver stopped (SIGTERM), and `restore --to-time latest`
// must hold every commit acknowledged more than about the partial interval before the crash.
// Also: a restart re-uploads nothing, and an archived segment that differs from the one received
// fails the run loudly and stays as it was.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { dbbackup, logLines } from '../harness/runner';
import { expectStartFailure, pgOwner, sharedTempDir, startOnDataDir } from './pitr-harness';
import {
  crashServer,
  lossOf,
  startStreamingPostgres,
  startWalReceive,
  steadyLoad,
  waitFor,
  WalReceiver,
} from './wal-receive-harness';

const PARTIAL_INTERVAL_MS = 1000;

describe('wal-receive: streaming WAL shipping with pg_receivewal', () => {
  let pg: LocalPostgres;
  let dir: string;
  let store: string;
  let url: string;
  let receiver: WalReceiver | undefined;
  const spool = () => path.join(dir, 'spool');
  const walDir = () => path.join(store, 'wal', '00000001');
  const archived = () =>
    fs.existsSync(walDir())
      ? fs
          .readdirSync(walDir())
          .filter((f) => /^[0-9A-F]{24}$/.test(f))
          .sort()
      : [];
  const pointer = () => path.join(store, 'wal', 'partial', '00000001', 'current.json');
  const start = () =>
    startWalReceive(pg, url, [
      '--create-slot',
      '--synchronous',
      '--partial-interval',
      `${PARTIAL_INTERVAL_MS}ms`,
      '--spool-dir',
      spool(),
    ]);

  /** Put an archived segment into the spool, as the receiver's user. */
  const fetchInto = async (seg: string, dest: string) => {
    const f = await dbbackup(['wal-fetch', seg, dest, '--from', url]);
    assert.equal(f.code, 0, f.stderr);
    const o = pgOwner();
    if (o.uid !== undefined) fs.chownSync(dest, o.uid, o.gid!);
  };

  beforeAll(async () => {
    dir = sharedTempDir('dbbackup-walrecv-');
    store = path.join(dir, 'store');
    url = `file://${store}`;
    pg = await startStreamingPostgres();
    await pg.sql('CREATE DATABASE app');
    await pg.sql('CREATE TABLE commits (n int PRIMARY KEY, at timestamptz NOT NULL)', 'app');
  });

  afterAll(async () => {
    await receiver?.stop('SIGKILL');
    await pg?.stop();
  });

  test('completed segments and the partial segment reach the archive; the password is never in argv', async () => {
    receiver = start();
    await waitFor(() => fs.existsSync(pointer()), `the first partial upload:\n${receiver.log().slice(-3000)}`);
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--method', 'physical', '--source', pg.url('app'), '--to', url, '--json'],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    const seg = await pg.sql('SELECT pg_walfile_name(pg_current_wal_lsn())');
    await pg.sql('SELECT pg_switch_wal()');
    await pg.sql('INSERT INTO commits VALUES (0, now())', 'app');
    const stored = () =>
      archived().includes(seg) &&
      fs.readdirSync(path.join(walDir(), seg)).some((o) => /^[0-9a-f]{64}\.\d+\.\w+\.zst$/.test(o));
    await waitFor(stored, `${seg} archived:\n${receiver.log().slice(-3000)}`);
    // What was archived is the wal-push format: one object, named sha256.size.written[.zst].
    const objects = fs.readdirSync(path.join(walDir(), seg));
    assert.equal(objects.length, 1);
    assert.match(objects[0], /^[0-9a-f]{64}\.16777216\.\d{8}T\d{9}Z\.zst$/);
    // pg_receivewal got the password in its environment only.
    const pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    let seen = 0;
    for (const p of pids) {
      let cmd: string;
      try {
        cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!cmd.includes('pg_receivewal') && !cmd.includes('wal-receive')) continue;
      seen++;
      assert.ok(!cmd.includes(pg.password), `the password is in the argv of ${p}`);
    }
    assert.ok(seen >= 2, 'wal-receive and pg_receivewal were running');
    assert.ok(logLines(receiver.log()).some((l) => typeof l.WalStreamingLagSeconds === 'number'));
  });

  test(
    'a restart uploads nothing twice: a segment left in ' + 'the spool is found archived with the same content',
    async () => {
      assert.equal(await receiver!.stop('SIGTERM'), 0, receiver!.log().slice(-3000));
      // As if the last run was killed between the upload and removing the local copy.
      const seg = archived()[archived().length - 1];
      await fetchInto(seg, path.join(spool(), seg));
      const before = fs.readdirSync(path.join(walDir(), seg));
      receiver = start();
      const segmentLine = () =>
        logLines(receiver!.log()).find((l) => l.event === 'wal-receive-segment' && l.file === seg);
      // The local copy goes first and the log line after it: wait for both.
      await waitFor(
        () => !fs.existsSync(path.join(spool(), seg)) && segmentLine() !== undefined,
        `${seg} taken from the spool and logged`,
      );
      assert.deepEqual(fs.readdirSync(path.join(walDir(), seg)), before);
      const line = segmentLine();
      assert.equal(line?.status, 'present');
      // Every archived segment holds exactly one object.
      for (const s of archived()) assert.equal(fs.readdirSync(path.join(walDir(), s)).length, 1, s);
    },
  );

  test('an archived segment that differs from the received one is refused loudly and left as it was', async () => {
    assert.equal(await receiver!.stop('SIGTERM'), 0, receiver!.log().slice(-3000));
    const seg = archived()[archived().length - 1];
    const local = path.join(spool(), seg);
    await fetchInto(seg, local);
    const fd = fs.openSync(local, 'r+');
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, 1000);
    fs.closeSync(fd);
    const before = fs.readdirSync(path.join(walDir(), seg));
    receiver = start();
    const code = await new Promise<number | null>((r) => receiver!.proc.once('close', (c) => r(c)));
    assert.equal(code, 1, receiver.log().slice(-3000));
    assert.match(receiver.log(), new RegExp(`WAL file ${seg} is already archived at .* with different content`));
    assert.deepEqual(fs.readdirSync(path.join(walDir(), seg)), before);
    fs.rmSync(local);
  });

  test(
    'crash under load: restore --to-time latest holds ' + 'every commit acknowledged before the partial interval',
    async () => {
      receiver = start();
      await waitFor(
        async () => (await pg.sql(`SELECT active FROM pg_replication_slots WHERE slot_name = 'dbbackup'`)) === 't',
        'pg_receivewal to stream from the slot',
      );
      const load = steadyLoad(pg, 'app');
      // A segment completes during the load, so the restore reads completed segments and the partial one.
      await new Promise((r) => setTimeout(r, 2500));
      await pg.sql('SELECT pg_switch_wal()');
      await new Promise((r) => setTimeout(r, 3500));
      const crashAt = crashServer(pg);
      const acks = await load.done;
      load.stop();
      assert.ok(acks.length > 20, `only ${acks.length} commits were acknowledged`);
      // The receiver notices the server is gone and keeps trying; SIGTERM uploads what it has and exits 0.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await receiver!.stop('SIGTERM'), 0, receiver!.log().slice(-3000));
      receiver = undefined;

      const target = path.join(dir, 'restored');
      const r = await dbbackup(['restore', '--from', url, '--to-time', 'latest', '--target-dir', target, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        logLines(r.stderr).some((l) => l.event === 'pitr-partial'),
        'the restore used the streamed partial',
      );
      const result = JSON.parse(r.stdout);
      assert.ok(result.artifacts.some((a: string) => a.includes('streamed partial')));
      // The last whole record is the recovery target, so a short replay cannot promote silently (below).
      assert.match(result.recoveryTarget, /the end of the archived WAL \([0-9A-F]{24}, [0-9A-F]+\/[0-9A-F]+\)/);
      const server = await startOnDataDir(target);
      try {
        const rows = (await server.sql('SELECT n FROM commits ORDER BY n', 'app')).split('\n').filter((l) => l !== '');
        const restored = new Set(rows.map(Number));
        const loss = lossOf(acks, restored, crashAt);
        const bound = crashAt.getTime() - PARTIAL_INTERVAL_MS - 1000;
        const lostEarly = acks.filter((a) => a.at < bound && !restored.has(a.n));
        assert.deepEqual(
          lostEarly.map((a) => a.n),
          [],
          `commits acknowledged more than ${PARTIAL_INTERVAL_MS + 1000} ms before the crash are missing ` +
            `(${loss.missing} of ${acks.length} missing in all, RPO ${loss.rpoSeconds} s)`,
        );
        // Nothing that was never acknowledged-or-in-flight appears: the restore holds a prefix of the commits.
        const max = Math.max(...restored);
        assert.ok(max <= acks.length + 1);
        for (let n = 1; n <= max; n++) assert.ok(restored.has(n), `commit ${n} missing before ${max}`);
        process.stderr.write(
          `wal-receive crash test: ${acks.length} acknowledged, ${loss.missing} missing, RPO ${loss.rpoSeconds} s\n`,
        );
      } finally {
        await server.stop();
      }

      // A moment past the completed segments, inside the streamed partial one: exactly what committed before it.
      const t = acks[acks.length - 3].at - 1;
      const atTarget = path.join(dir, 'restored-moment');
      const r3 = await dbbackup([
        'restore',
        '--from',
        url,
        '--to-time',
        new Date(t).toISOString(),
        '--target-dir',
        atTarget,
      ]);
      assert.equal(r3.code, 0, r3.stderr);
      assert.ok(
        logLines(r3.stderr).some((l) => l.event === 'pitr-partial'),
        'the moment is in the partial segment',
      );
      const atMoment = await startOnDataDir(atTarget);
      try {
        const rows = (
          await atMoment.sql(`SELECT n || ' ' || (extract(epoch from at) * 1000)::bigint FROM commits`, 'app')
        )
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => l.split(' ').map(Number));
        const have = new Set(rows.map(([n]) => n));
        for (const a of acks.filter((x) => x.at < t))
          assert.ok(have.has(a.n), `commit ${a.n} acknowledged before the moment`);
        for (const [n, at] of rows) assert.ok(at <= t, `row ${n} was written at ${at}, after the moment ${t}`);
      } finally {
        await atMoment.stop();
      }

      // A segment recovery cannot fetch (here: unreadable to the server's user) stops it short of
      // the target instead of promoting a server that misses commits: wal-fetch exits 129 for the
      // runtime failure, so PostgreSQL aborts recovery (it resumes once the segment is readable).
      const again = path.join(dir, 'restored-short');
      const r2 = await dbbackup(['restore', '--from', url, '--to-time', 'latest', '--target-dir', again]);
      assert.equal(r2.code, 0, r2.stderr);
      const segs = archived();
      const victim = path.join(walDir(), segs[segs.length - 1]);
      const object = path.join(victim, fs.readdirSync(victim)[0]);
      fs.chmodSync(object, 0o000);
      try {
        const log = await expectStartFailure(again);
        assert.match(log, /could not restore file .* from archive: child process exited with exit code 129/);
      } finally {
        fs.chmodSync(object, 0o640);
      }
    },
  );
});

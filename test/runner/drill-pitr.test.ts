// Drills at a random moment: where a store holds a log archive, `dbbackup drill` also restores a
// seeded random moment of the recoverable window and checks that the restore reaches it. Rows are
// committed one at a time across the window, so the rows a restore to the drawn moment must hold
// are known exactly; the drill's count is compared with them.
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { pickMoment } from '../../runner/src/commands/drill';
import { recoveryEnd } from '../../runner/src/engines/postgres/drill-pitr';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { DBBACKUP, dbbackup, logLines } from '../harness/runner';
import { archiveCommand, sharedTempDir, switchAndWait } from './pitr-harness';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PointInTime {
  engine: string;
  seed: string;
  base: string;
  target: string;
  reached?: string;
  restoreSeconds: number;
  tablesChecked: number;
  rowsCounted: number;
  problems: string[];
}

describe('the moment a drill draws (no server)', () => {
  test('the same seed gives the same moment; it stays inside the window and out of its holes', () => {
    const from = new Date('2026-12-01T10:00:00Z');
    const to = new Date('2026-12-01T11:00:00Z');
    assert.equal(pickMoment('abc', from, to).toISOString(), pickMoment('abc', from, to).toISOString());
    const holes = [{ from: '2026-12-01T10:10:00Z', to: '2026-12-01T10:50:00Z' }];
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const t = pickMoment(`seed-${i}`, from, to, holes);
      assert.ok(t >= from && t <= to, t.toISOString());
      assert.ok(
        t.toISOString() <= holes[0].from || t.toISOString() >= holes[0].to,
        `${t.toISOString()} is in the hole`,
      );
      seen.add(t.toISOString());
    }
    assert.ok(seen.size > 150, 'different seeds draw different moments');
    assert.equal(pickMoment('x', from, from).toISOString(), from.toISOString());
  });

  test("PostgreSQL's end-of-recovery lines give where it stopped and the last transaction replayed", () => {
    const log =
      '2026-12-01 12:00:03.100 UTC [9] LOG:  recovery stopping before ' +
      'commit of transaction 745, time 2026-12-01 12:00:02.5+00\n' +
      '2026-12-01 12:00:03.100 UTC [9] LOG:  last completed ' +
      'transaction was at log time 2026-12-01 12:00:01.123456+00\n';
    const end = recoveryEnd(log);
    assert.equal(end.stoppedAt?.toISOString(), '2026-12-01T12:00:02.500Z');
    assert.equal(end.lastCompleted?.toISOString(), '2026-12-01T12:00:01.123Z');
    assert.deepEqual(recoveryEnd('LOG:  redo done'), { stoppedAt: undefined, lastCompleted: undefined });
  });
});

describe('drill at a random moment (MariaDB: full backup + binary log archive)', () => {
  let src: LocalMariaDB;
  let scratch: LocalMariaDB;
  let dir: string;
  let url: string;
  let shipper: ChildProcess | undefined;
  let shipperLog = '';
  let baseRows = 0;

  const drill = (seed: string) =>
    dbbackup(['drill', '--from', url, '--target', scratch.url('drill'), '--drill-seed', seed, '--json'], {
      env: { DBBACKUP_TARGET_PASSWORD: scratch.password },
    });

  beforeAll(async () => {
    [src, scratch] = await Promise.all([startLocalMariaDB(), startLocalMariaDB()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-drill-pitr-my-'));
    url = `file://${dir}/store`;
    await src.sql(
      'CREATE DATABASE app; CREATE TABLE app.events (id INT PRIMARY KEY, v VARCHAR(20), at BIGINT ' +
        'NOT NULL DEFAULT (UNIX_TIMESTAMP())); CREATE TABLE app.static (k INT PRIMARY KEY)',
    );
    await src.sql(
      'INSERT INTO events (id, v) VALUES (1, "base"), (2, "base"); INSERT INTO static VALUES (1), (2), (3)',
      'app',
    );
    baseRows = 5;
    shipper = spawn(process.execPath, [DBBACKUP, 'binlog-stream', '--source', src.url('app'), '--to', url], {
      env: { ...process.env, ...src.env, DBBACKUP_LOG_FORMAT: 'json', DBBACKUP_BINLOG_UPLOAD_INTERVAL: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    shipper.stderr!.on('data', (d: Buffer) => (shipperLog += d.toString()));
    shipper.stdout!.resume();
    const b = await dbbackup(['backup', '--engine', 'mysql', '--source', src.url('app'), '--to', url, '--json'], {
      env: src.env,
    });
    assert.equal(b.code, 0, b.stderr);
    // About one row per second. Each records the second the server logged it in (NOW() is the statement's
    // binary log timestamp), which is what a replay to a moment goes by.
    for (let id = 3; id <= 9; id++) {
      await sleep(1000 - (Date.now() % 1000) + 200);
      await src.sql(`INSERT INTO events (id, v) VALUES (${id}, 'later')`, 'app');
    }
    await sleep(1500);
    const file = path.join(dir, 'store', 'binlog', 'binlog', 'shipped.json');
    const asked = Date.now();
    for (let i = 0; ; i++) {
      if (fs.existsSync(file) && Date.parse(JSON.parse(fs.readFileSync(file, 'utf8')).at) > asked) break;
      if (i > 200) throw new Error(`the shipper did not catch up:\n${shipperLog.slice(-3000)}`);
      await sleep(100);
    }
    // Stopped, so the window stays as it is: the same seed over the same window draws the same moment.
    const stopped = new Promise((r) => shipper!.once('close', r));
    shipper.kill('SIGTERM');
    await stopped;
  });
  afterAll(async () => {
    shipper?.kill('SIGKILL');
    await Promise.all([src?.stop(), scratch?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test(
    'the drill restores the drawn moment: exactly the ' + 'rows committed by then, the moment and seed reported',
    async () => {
      const r = await drill('seed-one');
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      const pit = out.pointInTime as PointInTime;
      assert.equal(pit.engine, 'mysql');
      assert.equal(pit.seed, 'seed-one');
      assert.deepEqual(pit.problems, []);
      const t = Date.parse(pit.target);
      const l = JSON.parse((await dbbackup(['list', '--from', url, '--json'])).stdout);
      const w = l.windows.find((x: { archive: string }) => x.archive === 'binlog');
      assert.ok(pit.target >= w.earliest && pit.target <= w.latest, `${pit.target} in ${w.earliest} .. ${w.latest}`);
      // Replay runs through the second of the moment: the rows logged in every earlier or equal second.
      const second = Math.floor(t / 1000);
      const expected =
        Number(await src.sql(`SELECT COUNT(*) FROM events WHERE at <= ${second}`, 'app')) +
        Number(await src.sql('SELECT COUNT(*) FROM static', 'app'));
      assert.ok(expected >= baseRows && expected <= baseRows + 7, `${expected} rows by ${pit.target}`);
      assert.equal(pit.rowsCounted, expected, `restored to ${pit.target}`);
      assert.equal(pit.tablesChecked, 2);
      assert.ok(pit.restoreSeconds > 0);
      assert.match(r.stderr, /point-in-time drill: restoring mysql to \S+, drawn with seed seed-one/);
      const emf = logLines(r.stderr).find((x) => x._aws !== undefined && x.DrillSucceeded !== undefined);
      assert.equal(emf?.DrillSucceeded, 1);
      assert.equal(typeof emf?.PointInTimeRestoreTimeSeconds, 'number');
      assert.equal(
        await scratch.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'drill'`),
        '0',
      );

      // The same seed draws the same moment again.
      const again = await drill('seed-one');
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).pointInTime.target, pit.target);
    },
  );

  test('a damaged archived binary log fails the drill (exit 3), naming the moment and the seed', async () => {
    const objects: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/binlog\.\d+/.test(p) && !p.endsWith('.json')) objects.push(p);
      }
    };
    walk(path.join(dir, 'store', 'binlog'));
    assert.ok(objects.length > 0, 'the archive holds binary logs');
    const originals = objects.map((o) => fs.readFileSync(o));
    try {
      for (const o of objects) {
        const b = Buffer.from(fs.readFileSync(o));
        b[b.length - 5] ^= 0xff;
        fs.writeFileSync(o, b);
      }
      const r = await drill('seed-two');
      assert.equal(r.code, 3, r.stderr);
      assert.match(
        r.stderr,
        /the point-in-time restore to \S+ \(seed seed-two\) failed: .*(could not be read back|sha256)/,
      );
      assert.equal(
        await scratch.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'drill'`),
        '0',
      );
    } finally {
      for (const [i, o] of objects.entries()) fs.writeFileSync(o, originals[i]);
    }
  });
});

describe('drill at a random moment (PostgreSQL: physical base + WAL archive)', () => {
  let pg: LocalPostgres;
  let dir: string;
  let url: string;

  const drill = (seed: string) =>
    dbbackup(['drill', '--from', url, '--target', pg.url('drill_unused'), '--drill-seed', seed, '--json'], {
      env: pg.env,
      timeoutMs: 240000,
    });

  beforeAll(async () => {
    dir = sharedTempDir('dbbackup-drill-pitr-pg-');
    const store = path.join(dir, 'store');
    fs.mkdirSync(store);
    fs.chownSync(store, fs.statSync(dir).uid, fs.statSync(dir).gid);
    url = `file://${store}`;
    pg = await startLocalPostgres({
      settings: {
        wal_level: 'replica',
        archive_mode: 'on',
        archive_command: archiveCommand(url),
        max_wal_senders: '5',
        track_commit_timestamp: 'on',
      },
    });
    await pg.sql('CREATE DATABASE app');
    await pg.sql(
      "CREATE TABLE events (id int PRIMARY KEY, v text); INSERT INTO events VALUES (1, 'base'), (2, 'base')",
      'app',
    );
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--method', 'physical', '--source', pg.url('app'), '--to', url, '--json'],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    for (let id = 3; id <= 12; id++) {
      await sleep(300);
      await pg.sql(`INSERT INTO events VALUES (${id}, 'later')`, 'app');
    }
    await switchAndWait(pg);
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test(
    'the drill recovers a scratch server to the drawn moment: exactly ' +
      'the rows committed by then, and it says what it reached',
    async () => {
      const r = await drill('pg-seed');
      assert.equal(r.code, 0, r.stderr);
      const pit = JSON.parse(r.stdout).pointInTime as PointInTime;
      assert.equal(pit.engine, 'postgres');
      assert.deepEqual(pit.problems, []);
      // The commits a recovery to the moment replays (recovery_target_inclusive: those at or before it).
      const expected = Number(
        await pg.sql(
          `SELECT count(*) FROM events WHERE pg_xact_commit_timestamp(xmin) <= '${pit.target}'::timestamptz`,
          'app',
        ),
      );
      const baseOnly = Number(
        await pg.sql(`SELECT count(*) FROM events WHERE pg_xact_commit_timestamp(xmin) IS NULL`, 'app'),
      );
      assert.equal(pit.rowsCounted, expected + baseOnly, `restored to ${pit.target}`);
      assert.equal(pit.tablesChecked, 1);
      assert.ok(pit.reached !== undefined && pit.reached <= pit.target, `reached ${pit.reached}, target ${pit.target}`);
      assert.ok(pit.restoreSeconds > 0);
      // No logical backup in the store: the drill's result is the point-in-time part's.
      assert.equal(JSON.parse(r.stdout).id, pit.base);
      assert.equal(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = 'drill_unused'`), '0');
    },
  );

  test(
    'without the PostgreSQL server program a drill that ' + 'would check nothing fails (exit 1), naming the fix',
    async () => {
      const r = await dbbackup(['drill', '--from', url, '--target', pg.url('drill_unused'), '--json'], {
        env: { ...pg.env, DBBACKUP_PG_BIN: path.join(dir, 'no-such-bin') },
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /checked nothing: the point-in-time drill starts PostgreSQL .* found no server program/);
      assert.equal(logLines(r.stderr).find((l) => l._aws !== undefined)?.DrillFailed, 1);
    },
  );

  test('a damaged archived WAL segment fails the drill, naming the moment and the seed', async () => {
    const segments: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/^[0-9A-F]{24}$/.test(path.basename(d))) segments.push(p);
      }
    };
    walk(path.join(dir, 'store', 'wal'));
    assert.ok(segments.length > 0, 'the archive holds WAL segments');
    const originals = segments.map((s) => fs.readFileSync(s));
    try {
      for (const s of segments) {
        const b = Buffer.from(fs.readFileSync(s));
        b[Math.floor(b.length / 2)] ^= 0xff;
        fs.writeFileSync(s, b);
      }
      const r = await drill('pg-seed-2');
      assert.equal(r.code, 3, r.stderr);
      assert.match(
        r.stderr,
        /the point-in-time (restore to \S+|drill) \(seed pg-seed-2\) failed.*could not be read back/,
      );
      assert.equal(logLines(r.stderr).find((l) => l._aws !== undefined)?.DrillFailed, 1);
    } finally {
      for (const [i, s] of segments.entries()) fs.writeFileSync(s, originals[i]);
    }
  });
});

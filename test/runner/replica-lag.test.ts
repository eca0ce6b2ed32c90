// backup --max-replica-lag against real replicas: a PostgreSQL hot standby (pg_basebackup -R) and
// a MariaDB replica, each beside its primary. A lagging replica is refused (exit 1, no manifest),
// a caught-up one backs up and its manifest records the lag, a primary is unaffected.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { parseDurationSeconds } from '../../lib/core/duration';
import { replicaLagGate, replicaLagRecord } from '../../runner/src/commands/replica-gate';
import { EngineDriver, ReplicaLag } from '../../runner/src/engines';
import { lagOfReplica, parseVerticalRow } from '../../runner/src/engines/mysql/replica-lag';
import { lagOfStandby } from '../../runner/src/engines/postgres/replica-lag';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { waitFor } from '../harness/ports';
import {
  MariaReplica,
  startMariaReplica,
  startPostgresStandby,
  waitReplicaCaughtUp,
  waitStandbyCaughtUp,
} from '../harness/replica';
import { dbbackup, logLines } from '../harness/runner';

/** The committed backups (folders with a manifest) of a file:// store. */
function committed(store: string): string[] {
  if (!fs.existsSync(store)) return [];
  return fs.readdirSync(store).filter((d) => fs.existsSync(path.join(store, d, 'manifest.json')));
}

function manifestOf(store: string, id: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(store, id, 'manifest.json'), 'utf8'));
}

describe('the lag rules (no server)', () => {
  test('durations: units, sums and bare seconds; anything else is refused naming the value', () => {
    assert.equal(parseDurationSeconds('30s', '--max-replica-lag'), 30);
    assert.equal(parseDurationSeconds('5m', '--max-replica-lag'), 300);
    assert.equal(parseDurationSeconds('1h', '--max-replica-lag'), 3600);
    assert.equal(parseDurationSeconds('1m30s', '--max-replica-lag'), 90);
    assert.equal(parseDurationSeconds('45', '--max-replica-lag'), 45);
    assert.throws(
      () => parseDurationSeconds('5 minutes', '--max-replica-lag'),
      /--max-replica-lag is '5 minutes', not a duration/,
    );
    assert.throws(() => parseDurationSeconds('-3s', '--max-replica-lag'), /not a duration/);
  });

  test(
    'PostgreSQL: a primary has no lag; a streaming standby with ' + 'nothing pending is 0 however old its last commit',
    () => {
      assert.deepEqual(
        lagOfStandby({ recovery: false, receiver: null, replayedAll: null, sinceLastReplay: null }, 'x'),
        {
          replica: false,
        },
      );
      const idle = lagOfStandby(
        { recovery: true, receiver: 'streaming', replayedAll: true, sinceLastReplay: 9000 },
        'x',
      );
      assert.equal(idle.replica && idle.seconds, 0);
      const pending = lagOfStandby(
        { recovery: true, receiver: 'streaming', replayedAll: false, sinceLastReplay: 42 },
        'x',
      );
      assert.equal(pending.replica && pending.seconds, 42);
      // Disconnected from the primary: nothing pending locally says nothing about what the primary wrote since.
      const cut = lagOfStandby({ recovery: true, receiver: null, replayedAll: true, sinceLastReplay: 70 }, 'x');
      assert.equal(cut.replica && cut.seconds, 70);
      assert.throws(
        () =>
          lagOfStandby({ recovery: true, receiver: 'starting', replayedAll: null, sinceLastReplay: null }, 'pg://s'),
        /pg:\/\/s is a standby that has replayed no transaction yet/,
      );
    },
  );

  test('MySQL/MariaDB: no status row is a primary, a number is the lag, NULL is stopped replication', () => {
    assert.deepEqual(lagOfReplica(undefined, 'x'), { replica: false });
    const row = parseVerticalRow('*** 1. row ***\n  Slave_IO_Running: Yes\n  Seconds_Behind_Master: 7\n');
    const lag = lagOfReplica(row, 'x');
    assert.equal(lag.replica && lag.seconds, 7);
    const mysql8 = lagOfReplica(parseVerticalRow('  Seconds_Behind_Source: 3\n'), 'x');
    assert.equal(mysql8.replica && mysql8.seconds, 3);
    const stopped = parseVerticalRow(
      '  Slave_IO_Running: Yes\n  Slave_SQL_Running: No\n  Seconds_Behind_Master: NULL\n',
    );
    assert.throws(
      () => lagOfReplica(stopped, 'my://r'),
      /my:\/\/r is a replica whose replication is stopped .*SQL thread: No/,
    );
  });
});

describe('the gate (a stand-in driver)', () => {
  const source = { display: 'postgres://backup@replica:5432/app' } as Parameters<typeof replicaLagGate>[1];
  const driverLagging = (...readings: ReplicaLag[]) =>
    ({ engine: 'postgres', replicaLag: async () => readings.shift()! }) as unknown as EngineDriver;

  test('a reading above the limit after the dump fails, naming when, the lag and the limit', async () => {
    const driver = driverLagging({ replica: true, seconds: 1, how: 'x' }, { replica: true, seconds: 95.04, how: 'x' });
    assert.equal(await replicaLagGate(driver, source, 60, 'before'), 1);
    await assert.rejects(
      replicaLagGate(driver, source, 60, 'after'),
      new RegExp(
        /replica postgres:\/\/backup@replica:5432\/app lags 95 s behind/.source +
          / its primary after the dump, above --max-replica-lag 60s/.source,
      ),
    );
  });

  test('no limit asks nothing; a primary gives no reading and no record; equal to the limit passes', async () => {
    let asked = 0;
    const counting = {
      engine: 'postgres',
      replicaLag: async () => {
        asked++;
        return { replica: false };
      },
    } as unknown as EngineDriver;
    assert.equal(await replicaLagGate(counting, source, undefined, 'before'), undefined);
    assert.equal(asked, 0);
    assert.equal(await replicaLagGate(counting, source, 30, 'before'), undefined);
    assert.equal(replicaLagRecord(undefined, undefined, 30), undefined);
    assert.equal(
      await replicaLagGate(driverLagging({ replica: true, seconds: 30, how: 'x' }), source, 30, 'before'),
      30,
    );
    assert.deepEqual(replicaLagRecord(0, 2.5, 30), { beforeSeconds: 0, afterSeconds: 2.5, maxSeconds: 30 });
  });
});

describe('--max-replica-lag (PostgreSQL primary and hot standby)', () => {
  let primary: LocalPostgres;
  let standby: LocalPostgres;
  let dir: string;

  beforeAll(async () => {
    primary = await startLocalPostgres();
    await primary.sql('CREATE DATABASE shop');
    await primary.sql(
      'CREATE TABLE orders (id serial PRIMARY KEY, at timestamptz DEFAULT now()); INSERT INTO orders DEFAULT VALUES',
      'shop',
    );
    standby = await startPostgresStandby(primary);
    await waitStandbyCaughtUp(primary, standby);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-replica-pg-'));
  });
  afterAll(async () => {
    await standby?.stop();
    await primary?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const backup = (source: string, store: string, limit: string) =>
    dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--source',
        source,
        '--to',
        `file://${store}`,
        '--max-replica-lag',
        limit,
        '--json',
      ],
      {
        env: primary.env,
      },
    );

  test('a primary is unaffected: the backup runs, says so, and records no lag', async () => {
    const store = path.join(dir, 'primary');
    const r = await backup(primary.url('shop'), store, '1s');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /is a primary, not a replica; nothing to check/);
    const id = JSON.parse(r.stdout).id;
    assert.equal(manifestOf(store, id).replicaLag, undefined);
  });

  test('a caught-up standby backs up, and the manifest records the lag before and after', async () => {
    await primary.sql('INSERT INTO orders DEFAULT VALUES', 'shop');
    await waitStandbyCaughtUp(primary, standby);
    const store = path.join(dir, 'caught-up');
    const r = await backup(standby.url('shop'), store, '30s');
    assert.equal(r.code, 0, r.stderr);
    const id = JSON.parse(r.stdout).id;
    const m = manifestOf(store, id) as { replicaLag: Record<string, number>; tables: { name: string; rows: number }[] };
    assert.equal(m.replicaLag.maxSeconds, 30);
    assert.ok(m.replicaLag.beforeSeconds >= 0 && m.replicaLag.beforeSeconds <= 30, JSON.stringify(m.replicaLag));
    assert.ok(m.replicaLag.afterSeconds >= 0 && m.replicaLag.afterSeconds <= 30, JSON.stringify(m.replicaLag));
    assert.equal(m.tables.find((t) => t.name === 'orders')?.rows, 2);
    const lines = logLines(r.stderr).filter((l) => l.event === 'replica-lag');
    assert.deepEqual(
      lines.map((l) => l.when),
      ['before', 'after'],
    );
  });

  test(
    'a standby whose replay is paused while the primary writes is ' +
      'refused: exit 1, the lag and the limit named, no manifest',
    async () => {
      await standby.sql('SELECT pg_wal_replay_pause()');
      try {
        await primary.sql('INSERT INTO orders DEFAULT VALUES', 'shop');
        // The write reaches the standby but is not replayed; its last replayed commit ages past the limit.
        await waitFor(
          'the write to reach the standby',
          async () => (await standby.sql('SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()')) === 't',
        );
        await new Promise((r) => setTimeout(r, 3000));
        const store = path.join(dir, 'lagging');
        const r = await backup(standby.url('shop'), store, '2s');
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /lags \d+(\.\d)? s behind its primary before the dump, above --max-replica-lag 2s/);
        assert.deepEqual(committed(store), []);
      } finally {
        await standby.sql('SELECT pg_wal_replay_resume()');
      }
      await waitStandbyCaughtUp(primary, standby);
    },
  );

  test('a limit that is not a duration is refused before any work (exit 2), naming the value', async () => {
    const r = await backup(standby.url('shop'), path.join(dir, 'bad'), 'soon');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--max-replica-lag is 'soon', not a duration/);
  });
});

describe('--max-replica-lag (MariaDB primary and replica)', () => {
  let primary: LocalMariaDB;
  let replica: MariaReplica;
  let dir: string;

  beforeAll(async () => {
    primary = await startLocalMariaDB();
    replica = await startMariaReplica(primary);
    await primary.sql(
      'CREATE DATABASE shop; CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, ' +
        'at DATETIME(6) DEFAULT NOW(6)); INSERT INTO shop.orders () VALUES ()',
    );
    await waitReplicaCaughtUp(primary, replica);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-replica-my-'));
  });
  afterAll(async () => {
    await replica?.stop();
    await primary?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const backup = (db: LocalMariaDB, store: string, limit: string) =>
    dbbackup(
      [
        'backup',
        '--engine',
        'mysql',
        '--source',
        db.url('shop'),
        '--to',
        `file://${store}`,
        '--max-replica-lag',
        limit,
        '--json',
      ],
      {
        env: db.env,
      },
    );

  test('a primary is unaffected: the backup runs, says so, and records no lag', async () => {
    const store = path.join(dir, 'primary');
    const r = await backup(primary, store, '1s');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /is a primary, not a replica; nothing to check/);
    assert.equal(manifestOf(store, JSON.parse(r.stdout).id).replicaLag, undefined);
  });

  test('a caught-up replica backs up, and the manifest records the lag before and after', async () => {
    await primary.sql('INSERT INTO shop.orders () VALUES ()');
    await waitReplicaCaughtUp(primary, replica);
    const store = path.join(dir, 'caught-up');
    const r = await backup(replica, store, '30s');
    assert.equal(r.code, 0, r.stderr);
    const m = manifestOf(store, JSON.parse(r.stdout).id) as {
      replicaLag: Record<string, number>;
      tables: { name: string; rows: number }[];
    };
    assert.deepEqual(m.replicaLag, { beforeSeconds: 0, afterSeconds: 0, maxSeconds: 30 });
    assert.equal(m.tables.find((t) => t.name === 'orders')?.rows, 2);
  });

  test('a replica held back by MASTER_DELAY is refused: exit 1, the lag and the limit named, no manifest', async () => {
    await replica.sql('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 120; START SLAVE');
    try {
      await primary.sql('INSERT INTO shop.orders () VALUES ()');
      await waitFor(
        'the replica to fall behind',
        async () => Number((await replica.status()).get('Seconds_Behind_Master')) >= 3,
        30000,
        200,
      );
      const store = path.join(dir, 'delayed');
      const r = await backup(replica, store, '2s');
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /lags \d+ s behind its primary before the dump, above --max-replica-lag 2s \(Seconds_Behind_Master\)/,
      );
      assert.deepEqual(committed(store), []);
    } finally {
      await replica.sql('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE');
    }
    await waitReplicaCaughtUp(primary, replica);
  });

  test(
    'a replica whose SQL thread is stopped is refused ' + 'as stopped replication (Seconds_Behind_Master NULL)',
    async () => {
      await replica.sql('STOP SLAVE SQL_THREAD');
      try {
        const store = path.join(dir, 'stopped');
        const r = await backup(replica, store, '1h');
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          /is a replica whose replication is stopped \(Seconds_Behind_Master is NULL; I\/O thread: Yes, SQL thread: No/,
        );
        assert.deepEqual(committed(store), []);
      } finally {
        await replica.sql('START SLAVE SQL_THREAD');
      }
    },
  );
});

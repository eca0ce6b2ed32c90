// Point-in-time recovery of PostgreSQL against real servers: a server archives its WAL through
// `dbbackup wal-push` (archive_command as the README (Point-in-time recovery) gives it), a physical base backup is
// taken, rows are written, updated and deleted around noted moments, and each moment is restored
// into a fresh data directory that a new server recovers and promotes. Incremental and
// differential chains restore to their own end; a missing segment makes a later moment fail.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { dbbackup, logLines } from '../harness/runner';
import {
  expectStartFailure,
  noteMoment,
  sharedTempDir,
  startArchivingPostgres,
  startOnDataDir,
  switchAndWait,
} from './pitr-harness';

/** Every row of the test table, in order: what "exactly the rows committed before T" is compared on. */
const STATE = `SELECT count(*) || ':' || coalesce(string_agg(id || '=' || v, ',' ORDER BY id), '') FROM accounts`;

describe('PostgreSQL point-in-time recovery', () => {
  let pg: LocalPostgres;
  let dir: string;
  let store: string;
  let url: string;
  const moments: { t: Date; state: string }[] = [];

  const backup = async (type: string) => {
    const b = await dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--method',
        'physical',
        '--type',
        type,
        '--source',
        pg.url('app'),
        '--to',
        url,
        '--json',
      ],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    return JSON.parse(b.stdout);
  };
  const restoreDir = () => path.join(sharedTempDir('dbbackup-pitr-'), 'data');

  beforeAll(async () => {
    dir = sharedTempDir('dbbackup-pitr-store-');
    store = path.join(dir, 'store');
    fs.mkdirSync(store);
    fs.chownSync(store, fs.statSync(dir).uid, fs.statSync(dir).gid);
    url = `file://${store}`;
    pg = await startArchivingPostgres(url);
    await pg.sql('CREATE DATABASE app');
    await pg.sql(
      `CREATE TABLE accounts (id int PRIMARY KEY, v text NOT NULL); INSERT INTO ` +
        `accounts SELECT g, 'v' || g FROM generate_series(1, 20) g;`,
      'app',
    );
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a physical base backup records its WAL start and stop points and timeline', async () => {
    const m = await backup('full');
    assert.equal(m.method, 'physical');
    assert.deepEqual(
      m.artifacts.map((a: { name: string; format: string }) => [a.name, a.format]),
      [['base.tar.zst', 'pg_basebackup-tar']],
    );
    assert.match(m.startPosition.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.match(m.position.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.equal(m.position.timeline, 1);
    assert.ok(
      BigInt('0x' + m.position.lsn.replace('/', '').padStart(16, '0')) >=
        BigInt('0x' + m.startPosition.lsn.replace('/', '').padStart(16, '0')),
    );
  });

  test('restoring to noted moments gives exactly the rows committed before each', async () => {
    // Committed transactions around each moment: inserts, then updates and deletes.
    await pg.sql(`INSERT INTO accounts SELECT g, 'v' || g FROM generate_series(21, 30) g`, 'app');
    moments.push({ t: await noteMoment(), state: await pg.sql(STATE, 'app') });
    await pg.sql(`UPDATE accounts SET v = 'changed' WHERE id <= 5`, 'app');
    await pg.sql(`DELETE FROM accounts WHERE id > 25`, 'app');
    moments.push({ t: await noteMoment(), state: await pg.sql(STATE, 'app') });
    await pg.sql(
      `BEGIN; INSERT INTO accounts VALUES (100, 'late'); UPDATE accounts SET v = 'later' WHERE id = 6; COMMIT;`,
      'app',
    );
    await pg.sql(`BEGIN; INSERT INTO accounts VALUES (101, 'rolled back'); ROLLBACK;`, 'app');
    moments.push({ t: await noteMoment(), state: await pg.sql(STATE, 'app') });
    await pg.sql(`DELETE FROM accounts WHERE id = 1`, 'app');
    await switchAndWait(pg);
    assert.equal(new Set(moments.map((m) => m.state)).size, 3, 'each moment has a different state');

    for (const m of moments) {
      const target = restoreDir();
      const r = await dbbackup([
        'restore',
        '--from',
        url,
        '--to-time',
        m.t.toISOString(),
        '--target-dir',
        target,
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.recoveryTarget, m.t.toISOString());
      assert.ok(fs.existsSync(path.join(target, 'recovery.signal')));
      assert.match(
        fs.readFileSync(path.join(target, 'postgresql.auto.conf'), 'utf8'),
        new RegExp(
          /restore_command = '.*wal-fetch "%f" "%p" --from file:\/\/.*'\nrecovery_target_time/.source +
            / = '.*'\nrecovery_target_timeline = '1'\nrecovery_target_action = 'promote'/.source,
        ),
      );
      const server = await startOnDataDir(target);
      try {
        assert.equal(await server.sql(STATE, 'app'), m.state, `restored to ${m.t.toISOString()}`);
        assert.match(server.log(), /recovery stopping before commit/);
      } finally {
        await server.stop();
      }
    }
  });

  test('wal-fetch hands recovery only verified segments; list shows the window', async () => {
    const l = await dbbackup(['list', '--from', url, '--json']);
    assert.equal(l.code, 0, l.stderr);
    const list = JSON.parse(l.stdout);
    assert.equal(list.windows.length, 1);
    const w = list.windows[0];
    assert.equal(w.engine, 'postgres');
    assert.ok(w.earliest <= moments[0].t.toISOString() && w.latest >= moments[2].t.toISOString(), JSON.stringify(w));
    assert.deepEqual(w.gaps, []);
    const text = await dbbackup(['list', '--from', url]);
    assert.match(
      text.stdout,
      new RegExp(
        /point-in-time recovery: any moment from \S+ to \S+ \(postgres/.source +
          / WAL archive \(wal\/, \d+ objects, [^)]+\), 1 base backup\)/.source,
      ),
    );
    const v = await dbbackup(['verify', '--from', url, '--all']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /ok\s+wal-archive/);
  });

  test('an incremental and a differential chain each restore to the moment they ended', async () => {
    const chain: { m: { id: string; type: string; parent: string; base: string }; state: string }[] = [];
    await pg.sql(`INSERT INTO accounts VALUES (200, 'inc1')`, 'app');
    chain.push({ m: await backup('incremental'), state: await pg.sql(STATE, 'app') });
    await pg.sql(`UPDATE accounts SET v = 'inc2' WHERE id = 2; DELETE FROM accounts WHERE id = 3`, 'app');
    chain.push({ m: await backup('incremental'), state: await pg.sql(STATE, 'app') });
    await pg.sql(`INSERT INTO accounts VALUES (201, 'diff')`, 'app');
    chain.push({ m: await backup('differential'), state: await pg.sql(STATE, 'app') });
    await pg.sql(`INSERT INTO accounts VALUES (202, 'after everything')`, 'app');

    const [inc1, inc2, diff] = chain.map((c) => c.m);
    assert.equal(inc2.parent, inc1.id);
    assert.equal(inc1.base, inc2.base);
    assert.equal(diff.parent, diff.base, 'a differential depends on the full');
    assert.equal(diff.base, inc1.base);
    for (const { m, state } of chain) {
      const target = restoreDir();
      const r = await dbbackup(['restore', '--from', url, '--id', m.id, '--target-dir', target, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).chain.length, m.type === 'differential' ? 2 : m.id === inc1.id ? 2 : 3);
      const server = await startOnDataDir(target);
      try {
        assert.equal(await server.sql(STATE, 'app'), state, `restored ${m.type} ${m.id}`);
      } finally {
        await server.stop();
      }
    }
    const l = await dbbackup(['list', '--from', url]);
    assert.match(l.stdout, new RegExp(`${inc2.id}.*incremental.*${inc1.id}`));
  });

  test(
    'a missing segment in the middle: a later moment fails naming ' +
      'it, an earlier one still restores, verify exits 3',
    async () => {
      // A second base later on, then more writes; then one archived segment disappears.
      await pg.sql(`INSERT INTO accounts VALUES (300, 'before gap')`, 'app');
      const beforeGap = { t: await noteMoment(), state: await pg.sql(STATE, 'app') };
      // A transaction after the moment in the same segment: recovery stops there, before the gap.
      await pg.sql(`UPDATE accounts SET v = 'after the moment' WHERE id = 300`, 'app');
      await switchAndWait(pg);
      const atGapEdge = await noteMoment();
      await pg.sql(`INSERT INTO accounts VALUES (301, 'in the lost segment')`, 'app');
      const lost = await switchAndWait(pg);
      await pg.sql(`INSERT INTO accounts VALUES (302, 'after gap')`, 'app');
      const afterGap = await noteMoment();
      await pg.sql(`INSERT INTO accounts VALUES (303, 'later')`, 'app');
      await switchAndWait(pg);
      fs.rmSync(path.join(store, 'wal', lost.slice(0, 8), lost), { recursive: true });

      const target = restoreDir();
      const r = await dbbackup(['restore', '--from', url, '--to-time', afterGap.toISOString(), '--target-dir', target]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`gap: segment ${lost} is missing`));
      assert.equal(fs.existsSync(target), false, 'nothing was laid down');

      // Just before the gap, with no transaction after the moment left in the archive before it: refused, naming the
      // gap.
      const edge = await dbbackup([
        'restore',
        '--from',
        url,
        '--to-time',
        atGapEdge.toISOString(),
        '--target-dir',
        restoreDir(),
      ]);
      assert.equal(edge.code, 3, edge.stderr);
      assert.match(edge.stderr, new RegExp(`gap: segment ${lost} is missing`));

      const ok = restoreDir();
      const r2 = await dbbackup(['restore', '--from', url, '--to-time', beforeGap.t.toISOString(), '--target-dir', ok]);
      assert.equal(r2.code, 0, r2.stderr);
      const server = await startOnDataDir(ok);
      try {
        assert.equal(await server.sql(STATE, 'app'), beforeGap.state);
      } finally {
        await server.stop();
      }

      const v = await dbbackup(['verify', '--from', url, '--all']);
      assert.equal(v.code, 3, v.stdout + v.stderr);
      assert.match(
        v.stdout,
        new RegExp(`DAMAGED\\s+wal-archive: the WAL archive .* has a gap: segment ${lost} is missing`),
      );
      const l = await dbbackup(['list', '--from', url]);
      assert.match(l.stdout, new RegExp(`GAP: .*${lost}`));

      // Recovery itself never steps over the gap: wal-fetch names it (exit 3) instead of "not found".
      const f = await dbbackup(['wal-fetch', lost, path.join(dir, 'x'), '--from', url]);
      assert.equal(f.code, 3);
      assert.match(f.stderr, new RegExp(`gap: ${lost} is missing but \\d+ later segment`));

      // A recovery that was laid down before the segment went missing stops with PostgreSQL's own error, never a silent
      // partial restore.
      const laid = restoreDir();
      const planOk = await dbbackup([
        'restore',
        '--from',
        url,
        '--to-time',
        beforeGap.t.toISOString(),
        '--target-dir',
        laid,
        '--json',
      ]);
      assert.equal(planOk.code, 0);
      const conf = path.join(laid, 'postgresql.auto.conf');
      fs.writeFileSync(
        conf,
        fs
          .readFileSync(conf, 'utf8')
          .replace(
            /recovery_target_time = '[^']*'/,
            `recovery_target_time = '${afterGap.toISOString().replace('T', ' ').replace('Z', '+00')}'`,
          ),
      );
      const serverLog = await expectStartFailure(laid);
      assert.match(serverLog, new RegExp(`gap: ${lost} is missing`));
      assert.match(serverLog, /recovery ended before configured recovery target was reached/);
      assert.ok(logLines(r.stderr).length > 0);
    },
  );
});

// Timelines: a restored server that is promoted and keeps archiving into the same store starts
// a new timeline. A restore to a later moment of the original server must stay on the original
// timeline when that server went on (a fork), and follow the new timeline when the restored
// server replaced it (a continuation).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { dbbackup } from '../harness/runner';
import { noteMoment, sharedTempDir, startArchivingPostgres, startOnDataDir, switchAndWait } from './pitr-harness';

const STATE = `SELECT count(*) || ':' || coalesce(string_agg(v, ',' ORDER BY id), '') FROM t`;

describe('PostgreSQL point-in-time recovery across timelines', () => {
  let pg: LocalPostgres;
  let store: string;
  let url: string;
  const restore = async (t: Date) => {
    const dir = path.join(sharedTempDir('dbbackup-tl-'), 'data');
    const r = await dbbackup(['restore', '--from', url, '--to-time', t.toISOString(), '--target-dir', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return { dir, out: JSON.parse(r.stdout) };
  };

  beforeAll(async () => {
    store = sharedTempDir('dbbackup-tl-store-');
    url = `file://${store}`;
    pg = await startArchivingPostgres(url);
    await pg.sql(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')`);
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--method', 'physical', '--source', pg.url('postgres'), '--to', url],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
  });
  afterAll(async () => {
    await pg?.stop();
    fs.rmSync(store, { recursive: true, force: true });
  });

  test(
    'a promoted restore that archives on a new timeline is a fork: ' +
      'later moments of the original stay on timeline 1',
    async () => {
      await pg.sql(`INSERT INTO t VALUES (2, 'b')`);
      const t1 = await noteMoment();
      await pg.sql(`INSERT INTO t VALUES (3, 'c')`);
      await switchAndWait(pg);
      const { dir } = await restore(t1);
      const fork = await startOnDataDir(dir, 60000, url);
      try {
        assert.equal(await fork.sql(STATE), '2:a,b');
        await fork.sql(`INSERT INTO t VALUES (100, 'fork')`);
        await fork.sql('SELECT pg_switch_wal()');
        for (let i = 0; i < 100 && !fs.existsSync(path.join(store, 'wal', '00000002', '00000002.history')); i++)
          await new Promise((r) => setTimeout(r, 100));
        assert.ok(
          fs.existsSync(path.join(store, 'wal', '00000002', '00000002.history')),
          'the fork archived its timeline history',
        );
      } finally {
        await fork.stop();
      }
      await pg.sql(`INSERT INTO t VALUES (4, 'd')`);
      const t2 = await noteMoment();
      const s2 = await pg.sql(STATE);
      await pg.sql(`INSERT INTO t VALUES (5, 'e')`);
      await switchAndWait(pg);
      const r2 = await restore(t2);
      assert.equal(r2.out.timeline, 1);
      const server = await startOnDataDir(r2.dir);
      try {
        assert.equal(await server.sql(STATE), s2);
      } finally {
        await server.stop();
      }
    },
  );

  test('a promoted restore that replaced the original: moments after the promotion follow its timeline', async () => {
    await pg.sql(`INSERT INTO t VALUES (6, 'f')`);
    const t3 = await noteMoment();
    await pg.sql(`INSERT INTO t VALUES (7, 'lost with the old server')`);
    await switchAndWait(pg);
    await pg.stop(); // the original is gone
    const { dir } = await restore(t3);
    const successor = await startOnDataDir(dir, 60000, url);
    let t4: Date;
    let s4: string;
    try {
      await successor.sql(`INSERT INTO t VALUES (8, 'on the new timeline')`);
      t4 = await noteMoment();
      s4 = await successor.sql(STATE);
      await successor.sql(`INSERT INTO t VALUES (9, 'after t4')`);
      const seg = await successor.sql(`SELECT pg_walfile_name(pg_switch_wal())`);
      for (
        let i = 0;
        i < 100 &&
        (await successor.sql(`SELECT coalesce(last_archived_wal, '') >= '${seg}' FROM pg_stat_archiver`)) !== 't';
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
    } finally {
      await successor.stop();
    }
    const r4 = await restore(t4);
    assert.equal(r4.out.timeline, 3, 'timeline 2 is the fork; the successor promoted to 3');
    const server = await startOnDataDir(r4.dir);
    try {
      assert.equal(await server.sql(STATE), s4);
      assert.match(s4, /on the new timeline/);
    } finally {
      await server.stop();
    }
  });
});

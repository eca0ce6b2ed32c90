// `prune` removes the log objects no kept base can replay, per archive (real PostgreSQL archiving
// its WAL through `dbbackup wal-push` into a file:// store): two physical bases, the older
// pruned, then `list` shows the smaller archive and the window left, and the oldest and newest
// moments it promises restore exactly; a moment before the window no longer does.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { dbbackup } from '../harness/runner';
import { noteMoment, sharedTempDir, startArchivingPostgres, startOnDataDir, switchAndWait } from './pitr-harness';

const STATE = `SELECT count(*) || ':' || coalesce(string_agg(id || '=' || v, ',' ORDER BY id), '') FROM accounts`;

describe('prune of the PostgreSQL WAL archive on file://', () => {
  let pg: LocalPostgres;
  let dir: string;
  let url: string;

  const backup = async () => {
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--method', 'physical', '--source', pg.url('app'), '--to', url, '--json'],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    return JSON.parse(b.stdout);
  };
  const list = async () => {
    const l = await dbbackup(['list', '--from', url, '--json']);
    assert.equal(l.code, 0, l.stderr);
    return JSON.parse(l.stdout);
  };
  const restoreTo = async (t: Date) => {
    const target = path.join(sharedTempDir('dbbackup-prune-restore-'), 'data');
    return {
      r: await dbbackup(['restore', '--from', url, '--to-time', t.toISOString(), '--target-dir', target, '--json']),
      target,
    };
  };

  beforeAll(async () => {
    dir = sharedTempDir('dbbackup-prune-logs-');
    const store = path.join(dir, 'store');
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

  test('WAL before the oldest kept base goes; the promised window restores at both ends', async () => {
    const first = await backup();
    await pg.sql(`INSERT INTO accounts SELECT g, 'old' || g FROM generate_series(21, 30) g`, 'app');
    const beforeSecond = { t: await noteMoment(), state: await pg.sql(STATE, 'app') };
    for (let i = 0; i < 3; i++) await switchAndWait(pg); // segments only the first base needs
    const second = await backup();
    await pg.sql(`UPDATE accounts SET v = 'new' WHERE id <= 5`, 'app');
    const newest = { t: await noteMoment(), state: await pg.sql(STATE, 'app') };
    await pg.sql(`DELETE FROM accounts WHERE id = 1`, 'app');
    await switchAndWait(pg);

    const was = (await list()).windows[0];
    assert.ok(was.earliest <= beforeSecond.t.toISOString(), 'before the prune the first base reaches back further');

    const p = await dbbackup([
      'prune',
      '--from',
      url,
      '--keep-daily',
      '1',
      '--keep-weekly',
      '0',
      '--keep-monthly',
      '0',
      '--json',
    ]);
    assert.equal(p.code, 0, p.stderr);
    const pruned = JSON.parse(p.stdout);
    assert.deepEqual(pruned.deleted, [first.id]);
    const wal = pruned.logs.find((l: { archive: string }) => l.archive === 'wal');
    assert.ok(wal.files >= 3, `segments before ${second.id} removed: ${JSON.stringify(wal)}`);

    const now = (await list()).windows[0];
    assert.equal(now.bases, 1);
    assert.ok(
      now.bytes < was.bytes && now.objects < was.objects,
      `the archive shrank: ${was.objects} → ${now.objects} objects`,
    );
    assert.deepEqual(now.gaps, []);
    assert.ok(
      now.earliest > beforeSecond.t.toISOString() && now.earliest >= second.endedAt.slice(0, 19),
      JSON.stringify(now),
    );
    const text = await dbbackup(['list', '--from', url]);
    assert.match(
      text.stdout,
      new RegExp(
        /point-in-time recovery: any moment from \S+ to \S+ \(postgres/.source +
          / WAL archive \(wal\/, \d+ objects, [^)]+\), 1 base backup\)/.source,
      ),
    );

    // The oldest moment promised (the kept base's end) and the newest noted one.
    const oldest = { t: new Date(now.earliest), state: undefined as string | undefined };
    for (const m of [oldest, newest]) {
      const { r, target } = await restoreTo(m.t);
      assert.equal(r.code, 0, `restore to ${m.t.toISOString()}: ${r.stderr}`);
      const server = await startOnDataDir(target);
      try {
        const state = await server.sql(STATE, 'app');
        if (m.state !== undefined) assert.equal(state, m.state);
        else assert.equal(state, beforeSecond.state, 'the oldest moment holds what the second base holds');
      } finally {
        await server.stop();
      }
    }
    // A moment before the window is refused now (its base and logs are gone).
    const { r } = await restoreTo(beforeSecond.t);
    assert.notEqual(r.code, 0, 'a moment before the kept base cannot be restored');
  });
});

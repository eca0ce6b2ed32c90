// Interrupts in quick succession, against a real PostgreSQL 15: two SIGTERMs (an impatient
// operator, or an orchestrator that signals twice) during a restore into a new database, or a
// drill, must not skip the cleanup the first one started: the database the run created is gone
// when it exits. A third signal exits at once (tested on a restore whose cleanup is held up).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { dbbackup } from '../harness/runner';

describe('a second SIGTERM does not skip cleanup', () => {
  let pg: LocalPostgres;
  let tmp: string;
  let store: string;

  beforeAll(async () => {
    pg = await startLocalPostgres();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-signals-'));
    store = `file://${tmp}/store`;
    await pg.sql('CREATE DATABASE big');
    // Large enough that the restore runs for a while after its database exists.
    await pg.sql(
      'CREATE TABLE t (id int PRIMARY KEY, v text); ' +
        'INSERT INTO t SELECT i, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 800000) i; ' +
        'CREATE INDEX ON t (v);',
      'big',
    );
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('big'), '--to', store], {
      env: pg.env,
    });
    assert.equal(b.code, 0, b.stderr);
  });
  afterAll(async () => {
    await pg?.stop();
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const exists = async (db: string) =>
    (await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = '${db}'`)) === '1';

  /** Run `args`; once `db` exists (the run created it), send `count` SIGTERMs back to back. */
  async function interrupted(args: string[], db: string, count: number) {
    let sent = 0;
    const r = await dbbackup(args, {
      env: pg.env,
      onSpawn: (pid) => {
        void (async () => {
          const end = Date.now() + 60000;
          while (Date.now() < end) {
            if (await exists(db).catch(() => false)) {
              // Let the load start into it, then signal in quick succession (a few ms apart: the
              // kernel merges a signal sent while the same one is still pending).
              await new Promise((res) => setTimeout(res, 300));
              for (let i = 0; i < count; i++) {
                if (i > 0) await new Promise((res) => setTimeout(res, 25));
                try {
                  process.kill(pid, 'SIGTERM');
                } catch {
                  return; // it exited before this signal (its cleanup was quicker): `sent` says how many landed
                }
                sent = i + 1;
              }
              return;
            }
            await new Promise((res) => setTimeout(res, 20));
          }
        })();
      },
    });
    return { ...r, sent };
  }

  test('restore into a new database: two SIGTERMs, exit 1, and the database is gone', async () => {
    const r = await interrupted(['restore', '--from', store, '--latest', '--target', pg.url('twice')], 'twice', 2);
    assert.equal(r.sent, 2, `the signals were sent: ${r.stderr.slice(-1000)}`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /interrupted by SIGTERM/);
    assert.match(r.stderr, /received SIGTERM again; still removing what this run made/);
    assert.equal(await exists('twice'), false, 'the restore left its new database behind');
  });

  test('drill: two SIGTERMs, and its scratch database is gone', async () => {
    const r = await interrupted(['drill', '--from', store, '--target', pg.url('drill_twice')], 'drill_twice', 2);
    assert.equal(r.sent, 2, `the signals were sent: ${r.stderr.slice(-1000)}`);
    assert.notEqual(r.code, 0, r.stderr);
    assert.equal(await exists('drill_twice'), false, 'the drill left its database behind');
  });

  test('a third signal exits at once (exit 143)', async () => {
    // The cleanup the first signal starts is held up (the server's postmaster is stopped, so the
    // connection that would drop the new database waits): the second signal is only noted, the
    // third exits at once, whatever the machine's speed.
    const postmaster = Number(fs.readFileSync(path.join(pg.dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    let stopped = false;
    const r = await dbbackup(['restore', '--from', store, '--latest', '--target', pg.url('thrice')], {
      env: pg.env,
      onSpawn: (pid) => {
        void (async () => {
          const end = Date.now() + 60000;
          while (Date.now() < end && !(await exists('thrice').catch(() => false))) {
            await new Promise((res) => setTimeout(res, 20));
          }
          await new Promise((res) => setTimeout(res, 300));
          process.kill(postmaster, 'SIGSTOP');
          stopped = true;
          for (let i = 0; i < 3; i++) {
            if (i > 0) await new Promise((res) => setTimeout(res, 300));
            process.kill(pid, 'SIGTERM');
          }
        })().catch(() => undefined);
      },
    }).finally(() => {
      if (stopped) process.kill(postmaster, 'SIGCONT');
    });
    assert.equal(stopped, true, 'the restore ended before its database was seen');
    assert.equal(r.code, 143, r.stderr);
    assert.match(r.stderr, /received SIGTERM again; still removing/);
    assert.match(r.stderr, /a third time; exiting without finishing the cleanup/);
    // What it left is the operator's to remove: that is what the third signal asked for.
    await pg.sql('DROP DATABASE IF EXISTS thrice WITH (FORCE)');
  });
});

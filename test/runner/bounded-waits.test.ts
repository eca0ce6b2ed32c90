import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { pgTool } from '../../runner/src/engines/postgres/tools';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { loadFixture } from '../harness/pg-fixture';
import { waitFor } from '../harness/ports';
import { dbbackup } from '../harness/runner';

const TABLES = 10000;

describe('the real cause, bounded waits: lock waits, the overlap lock, thousands of tables', () => {
  let source: LocalPostgres;
  let target: LocalPostgres;
  let dir: string;
  const realPath = process.env.PATH ?? '';
  const holders: ChildProcess[] = [];

  beforeAll(async () => {
    // The source can dump 10,000 tables (pg_dump locks each); the target keeps PostgreSQL's default.
    [source, target] = await Promise.all([
      startLocalPostgres({ settings: { max_locks_per_transaction: '512' } }),
      startLocalPostgres(),
    ]);
    await loadFixture(source, 'shop', 500);
    await source.sql('CREATE DATABASE many');
    // In batches of 1,000 (one transaction each, so creating them fits the lock table too).
    const batches = Array.from(
      { length: TABLES / 1000 },
      (_, b) =>
        `DO $$ BEGIN FOR i IN ${b * 1000 + 1}..${(b + 1) * 1000} LOOP ` +
        `EXECUTE format('CREATE TABLE t%s (id int, v int)', i); END LOOP; END $$;`,
    );
    await source.sql(`${batches.join('\n')}\nINSERT INTO t1 SELECT g, g FROM generate_series(1, 10) g;`, 'many');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-waits-'));
  });
  afterAll(async () => {
    for (const h of holders) h.kill('SIGKILL');
    await Promise.all([source?.stop(), target?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test(`a database with ${TABLES} tables restores into a server with the default lock table`, async () => {
    assert.equal(await target.sql('SHOW max_locks_per_transaction'), '64');
    const store = `file://${dir}/many`;
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', source.url('many'), '--to', store], {
      env: source.env,
      timeoutMs: 300000,
    });
    assert.equal(b.code, 0, b.stderr);
    // What the restore did before: one transaction over every table overflows the lock table.
    const id = fs.readdirSync(`${dir}/many`).find((f) => fs.existsSync(`${dir}/many/${f}/manifest.json`))!;
    const dump = path.join(dir, 'many.pgdump');
    execFileSync('zstd', ['-q', '-d', '-f', '-o', dump, `${dir}/many/${id}/database.pgdump.zst`]);
    await target.sql('CREATE DATABASE old_way');
    const conn = ['-h', '127.0.0.1', '-p', String(target.port), '-U', 'postgres'];
    const old = spawn(
      pgTool('pg_restore'),
      ['--single-transaction', '--exit-on-error', ...conn, '-d', 'old_way', dump],
      {
        env: { ...process.env, PGPASSWORD: target.password },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let oldErr = '';
    old.stderr!.on('data', (d: Buffer) => (oldErr += d.toString()));
    const oldCode = await new Promise<number | null>((r) => old.on('close', r));
    assert.notEqual(
      oldCode,
      0,
      'one transaction over 10,000 tables fit the default lock table; this test proves nothing',
    );
    assert.match(oldErr, /max_locks_per_transaction/);

    const t0 = Date.now();
    const r = await dbbackup(['restore', '--from', store, '--latest', '--target', target.url('many')], {
      env: target.env,
      timeoutMs: 300000,
    });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const count = `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`;
    assert.equal(await target.sql(count, 'many'), String(TABLES));
    assert.equal(await target.sql('SELECT count(*) FROM t1', 'many'), '10');
    process.stdout.write(`# restore of ${TABLES} tables: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  });

  test('a restore into an existing database that overflows the lock table names pg_restore, the setting', async () => {
    const store = `file://${dir}/many`;
    await target.sql('CREATE DATABASE existing');
    const r = await dbbackup(['restore', '--from', store, '--latest', '--target', target.url('existing')], {
      env: target.env,
      timeoutMs: 300000,
    });
    assert.equal(r.code, 1, r.stderr.slice(-3000));
    const last = r.stderr.trim().split('\n').pop()!;
    assert.match(last, /^dbbackup: pg_restore exited with code 1: .*max_locks_per_transaction/);
    assert.doesNotMatch(last, /zstd|SIGPIPE|SIGTERM/);
    // One transaction: the existing database is as it was (empty).
    assert.equal(await target.sql(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`, 'existing'), '0');
  });

  test("a backup blocked by another session's ACCESS EXCLUSIVE lock gives up after --lock-timeout", async () => {
    const conn = ['-h', '127.0.0.1', '-p', String(source.port), '-U', 'postgres', '-d', 'shop'];
    const holder = spawn(pgTool('psql'), ['-X', '-q', ...conn], {
      env: { ...process.env, PGPASSWORD: source.password },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    holders.push(holder);
    holder.stdin!.write('BEGIN; LOCK TABLE sales.orders IN ACCESS EXCLUSIVE MODE;\n');
    const held =
      `SELECT count(*) FROM pg_locks WHERE mode = ` + `'AccessExclusiveLock' AND relation = 'sales.orders'::regclass`;
    await waitFor('the lock', async () => (await source.sql(held, 'shop')) === '1');
    try {
      const t0 = Date.now();
      const args = ['backup', '--engine', 'postgres', '--source', source.url('shop'), '--to', `file://${dir}/locked`];
      const r = await dbbackup([...args, '--lock-timeout', '2'], {
        env: source.env,
        timeoutMs: 60000,
      });
      const ms = Date.now() - t0;
      assert.equal(r.code, 1, r.stderr);
      assert.ok(ms < 30000, `took ${ms} ms`);
      assert.match(r.stderr, /pg_dump gave up after 2 s waiting for a lock on table sales\.orders/);
      assert.match(r.stderr, /nothing was committed/);
    } finally {
      holder.stdin!.end('ROLLBACK;\n');
    }
  });

  test('the overlap lock holds across localhost and 127.0.0.1 and a trailing slash', async () => {
    // The first run's zstd holds the stream for a few seconds, so the second starts while it runs.
    const slow = path.join(dir, 'slowbin');
    fs.mkdirSync(slow, { recursive: true });
    const zstd = execFileSync('sh', ['-c', 'command -v zstd']).toString().trim();
    fs.writeFileSync(
      path.join(slow, 'zstd'),
      `#!/bin/sh\ncase "$1" in --version) exec ${zstd} "$@";; esac\nsleep 6\nexec ${zstd} "$@"\n`,
      { mode: 0o755 },
    );
    const store = `file://${dir}/overlap`;
    const first = dbbackup(['backup', '--engine', 'postgres', '--source', source.url('shop'), '--to', store], {
      env: { ...source.env, PATH: `${slow}${path.delimiter}${realPath}` },
    });
    const advisory = `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`;
    await waitFor('the first run to hold its lock', async () => Number(await source.sql(advisory)) > 0, 20000, 50);
    const other = source.url('shop').replace('127.0.0.1', 'localhost');
    assert.notEqual(other, source.url('shop'));
    const backup = ['backup', '--engine', 'postgres', '--source'];
    const second = await dbbackup([...backup, other, '--to', store], { env: source.env });
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /another backup of shop to the same place is running/);
    const third = await dbbackup([...backup, other, '--to', `${store}/`], { env: source.env });
    // A trailing slash is the same place: refused as an overlap (or refused as input, exit 2).
    assert.ok(third.code === 1 || third.code === 2, third.stderr);
    if (third.code === 1) assert.match(third.stderr, /another backup of shop to the same place is running/);
    const r = await first;
    assert.equal(r.code, 0, r.stderr);
    // A different database on the same server is not an overlap.
    const fourth = await dbbackup([...backup, source.url('postgres'), '--to', store], { env: source.env });
    assert.equal(fourth.code, 0, fourth.stderr);
  });
});

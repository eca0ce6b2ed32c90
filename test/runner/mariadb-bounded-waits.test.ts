import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { parseSourceUrl } from '../../lib/core/urls';
import { openSession } from '../../runner/src/engines/mysql/client';
import { LockWatch, LockWatchOf } from '../../runner/src/engines/mysql/snapshot';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { findTool } from '../../runner/src/pipeline/stages';
import { loadMariaFixture } from '../harness/mariadb-fixture';
import { waitFor } from '../harness/ports';
import { findDescendant, poll } from '../harness/procs';
import { dbbackup } from '../harness/runner';

describe('MariaDB: a locked table bounds the wait; the overlap lock holds across TCP and the socket', () => {
  let db: LocalMariaDB;
  let dir: string;
  const holders: ChildProcess[] = [];

  beforeAll(async () => {
    db = await startLocalMariaDB();
    await loadMariaFixture(db, 'shop', 300);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-mwaits-'));
  });
  /** Another session's LOCK TABLES … WRITE on shop's first table, held until its stdin ends. */
  async function lockFirstTable(): Promise<{ table: string; holder: ChildProcess }> {
    const tables =
      `SELECT TABLE_NAME FROM information_schema.TABLES WHERE ` + `TABLE_SCHEMA = 'shop' AND TABLE_TYPE = 'BASE TABLE'`;
    const table = (await db.sql(`${tables} ORDER BY 1 LIMIT 1`)).trim();
    const holder = spawn(findTool(['mariadb', 'mysql'])!, ['--no-defaults', '-S', db.socket, '-u', 'root', 'shop'], {
      env: { ...process.env, MYSQL_PWD: db.password },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    holders.push(holder);
    holder.stdin!.write(`LOCK TABLES \`${table.replace(/`/g, '``')}\` WRITE;\n`);
    const idle = `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'shop' AND COMMAND = 'Sleep'`;
    await waitFor('the lock', async () => Number(await db.sql(idle)) > 0);
    return { table, holder };
  }

  afterAll(async () => {
    for (const h of holders) h.kill('SIGKILL');
    await db?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a backup blocked by another session's LOCK TABLES … WRITE gives up after --lock-timeout", async () => {
    const { table, holder } = await lockFirstTable();
    await new Promise((r) => setTimeout(r, 500));
    try {
      const t0 = Date.now();
      const args = ['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${dir}/locked`];
      const r = await dbbackup([...args, '--lock-timeout', '2'], {
        env: db.env,
        timeoutMs: 60000,
      });
      const ms = Date.now() - t0;
      assert.equal(r.code, 1, r.stderr);
      assert.ok(ms < 30000, `took ${ms} ms`);
      const last = r.stderr.trim().split('\n').pop()!;
      assert.match(last, new RegExp(`gave up after \\d+ s waiting for a metadata lock on \`${table}\``));
      assert.match(r.stderr, /nothing was committed/);
    } finally {
      holder.stdin!.end('UNLOCK TABLES;\n');
    }
    const args = ['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${dir}/unlocked`];
    const ok = await dbbackup([...args, '--lock-timeout', '2'], { env: db.env });
    assert.equal(ok.code, 0, ok.stderr);
  });

  test("the lock watch passes over the runner's own sessions and stops every dump query that waits", async () => {
    // A CI run: the snapshot session's row counts waited on the locked table too; the watch took
    // them for the dump, stopped them, and never looked again, so the dump waited for ever.
    const locked = await lockFirstTable();
    const holder = locked.holder;
    const table = locked.table.replace(/`/g, '``');
    const url = parseSourceUrl(db.url('shop'), '--source');
    const open = () => openSession(url, db.env, undefined, 'shop');
    const [control, own, dump, later] = await Promise.all([open(), open(), open(), open()]);
    try {
      const waitOn = (s: typeof own) =>
        s.query(`SET SESSION lock_wait_timeout = 600; SELECT COUNT(*) FROM \`${table}\``).then(
          () => 'ended',
          (e: Error) => e.message,
        );
      const ownId = Number((await own.query('SELECT CONNECTION_ID()')).trim());
      const ownWait = waitOn(own);
      const watch = new LockWatch(control, 'shop', 1, LockWatchOf.SINGLE_STREAM, [ownId]);
      try {
        await new Promise((r) => setTimeout(r, 3500));
        assert.equal(watch.blocked, undefined, "the watch took the runner's own session for the dump");
        const dumpWait = waitOn(dump);
        await poll(() => watch.blocked, 10000);
        assert.match(watch.blocked!, /the dump gave up after \d+ s waiting for a metadata lock/);
        assert.match(await dumpWait, /interrupted|ERROR 1317/i);
        // A query that waits after the first stop is stopped too.
        assert.match(await waitOn(later), /interrupted|ERROR 1317/i);
      } finally {
        await watch.stop();
      }
      const still = `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ${ownId} AND STATE LIKE 'Waiting%'`;
      assert.equal((await db.sql(still)).trim(), '1', "the watch stopped the runner's own session");
      holder.stdin!.end('UNLOCK TABLES;\n');
      assert.equal(await ownWait, 'ended');
    } finally {
      if (!holder.stdin!.writableEnded) holder.stdin!.end('UNLOCK TABLES;\n');
      await Promise.all([control, own, dump, later].map((s) => s.close()));
    }
  });

  test('the overlap lock holds across 127.0.0.1 and the local socket', async () => {
    const slow = path.join(dir, 'slowbin');
    fs.mkdirSync(slow, { recursive: true });
    const zstd = execFileSync('sh', ['-c', 'command -v zstd']).toString().trim();
    fs.writeFileSync(
      path.join(slow, 'zstd'),
      `#!/bin/sh\ncase "$1" in --version) exec ${zstd} "$@";; esac\nsleep 6\nexec ${zstd} "$@"\n`,
      { mode: 0o755 },
    );
    const store = `file://${dir}/overlap`;
    let runner = 0;
    const first = dbbackup(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', store], {
      env: { ...db.env, PATH: `${slow}${path.delimiter}${process.env.PATH}` },
      onSpawn: (pid) => (runner = pid),
    });
    // Its dump runs (into the slow zstd) only after the run took the overlap lock.
    await poll(() => findDescendant(runner, 'mariadb-dump') ?? findDescendant(runner, 'mysqldump'), 20000);
    const backup = ['backup', '--engine', 'mysql', '--source', db.socketUrl('shop'), '--to'];
    const second = await dbbackup([...backup, `${store}/`], { env: db.env });
    assert.ok(second.code === 1 || second.code === 2, second.stderr);
    if (second.code === 1) assert.match(second.stderr, /another backup of shop to the same place is running/);
    const third = await dbbackup([...backup, store], { env: db.env });
    assert.equal(third.code, 1, third.stderr);
    assert.match(third.stderr, /another backup of shop to the same place is running/);
    const r = await first;
    assert.equal(r.code, 0, r.stderr);
  });
});

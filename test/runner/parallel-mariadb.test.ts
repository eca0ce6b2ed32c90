// MySQL/MariaDB and the options of issue 18, against a real MariaDB server: --jobs above 1 is
// said to be unused (the dump and the restore stay one stream, and round-trip as before), and
// --row-counts estimate records InnoDB's statistics, marked as estimates, which a drill checks
// table by table without comparing counts.
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { loadMariaFixture, mariaFingerprint } from '../harness/mariadb-fixture';
import { dbbackup } from '../harness/runner';

describe('MariaDB: --jobs and --row-counts', () => {
  let db: LocalMariaDB;
  let dir: string;
  let expected: Record<string, string>;
  const run = (args: string[]) => dbbackup(args, { env: db.env, timeoutMs: 300000 });

  beforeAll(async () => {
    db = await startLocalMariaDB();
    await loadMariaFixture(db, 'shop');
    expected = await mariaFingerprint(db, 'shop');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-parallel-my-'));
  }, 300000);
  afterAll(async () => {
    await db?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('--jobs 2: one stream, said so in the log; the round trip gives identical data', async () => {
    const store = `file://${dir}/jobs`;
    const b = await run([
      'backup',
      '--engine',
      'mysql',
      '--source',
      db.url('shop'),
      '--to',
      store,
      '--jobs',
      '2',
      '--json',
    ]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /--jobs above 1 is not used for MySQL\/MariaDB in this release/);
    assert.equal(JSON.parse(b.stdout).artifacts[0].name, 'database.sql.zst');
    const r = await run(['restore', '--from', store, '--latest', '--target', db.url('jobs_copy'), '--jobs', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /--jobs above 1 is not used/);
    assert.deepEqual(await mariaFingerprint(db, 'jobs_copy'), expected);
  });

  test('--row-counts estimate: every base table recorded with an estimate; a drill checks the tables', async () => {
    const store = `file://${dir}/estimate`;
    const b = await run([
      'backup',
      '--engine',
      'mysql',
      '--source',
      db.url('shop'),
      '--to',
      store,
      '--row-counts',
      'estimate',
      '--json',
    ]);
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    const exact = Number(await db.sql('SELECT COUNT(*) FROM shop.customers'));
    const customers = m.tables.find((t: { name: string }) => t.name === 'customers');
    assert.equal(customers.estimated, true);
    assert.equal(typeof customers.rows, 'number');
    assert.ok(m.tables.every((t: { estimated?: boolean }) => t.estimated === true));
    assert.ok(exact > 0);
    const d = await run(['drill', '--from', store, '--target', db.url('drill_scratch'), '--json']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(JSON.parse(d.stdout).ok, true);
    assert.equal(JSON.parse(d.stdout).tablesChecked, m.tables.length);
  });
});

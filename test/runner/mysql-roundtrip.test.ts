import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { grantsOf, loadMariaFixture, mariaFingerprint } from '../harness/mariadb-fixture';
import { dbbackup, logLines } from '../harness/runner';

/** The plaintext of a stored zstd (unencrypted) artifact. */
function plaintextOf(file: string): string {
  return execFileSync('zstd', ['-q', '-d', '-c', file], { maxBuffer: 256 << 20 }).toString('utf8');
}

describe('MariaDB round trips to file:// storage', () => {
  let db: LocalMariaDB;
  let dir: string;
  let expected: Record<string, string>;
  let expectedGrants: string[];
  let identity: string;
  let recipient: string;

  beforeAll(async () => {
    db = await startLocalMariaDB();
    await loadMariaFixture(db, 'shop');
    expected = await mariaFingerprint(db, 'shop');
    expectedGrants = await grantsOf(db, `'reporting'@'%'`, 'shop');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-myrt-'));
    identity = path.join(dir, 'identity.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
  });
  afterAll(async () => {
    await db?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [compression, encrypt] of [
    ['zstd', 'none'],
    ['gzip', 'none'],
    ['lz4', 'none'],
    ['none', 'none'],
    ['zstd', 'age'],
  ] as const) {
    test(`${compression} + ${encrypt}: backup, verify --deep, restore gives identical data and objects`, async () => {
      const store = `file://${dir}/${compression}-${encrypt}`;
      const enc = encrypt === 'age' ? `age:${recipient}` : 'none';
      const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', store, '--compression', compression, '--encrypt', enc, '--json'], {
        env: db.env,
      });
      assert.equal(b.code, 0, b.stderr);
      const manifest = JSON.parse(b.stdout);
      assert.equal(manifest.engine, 'mysql');
      assert.match(manifest.serverVersion, /MariaDB/);
      assert.ok(manifest.tools['mariadb-dump'], JSON.stringify(manifest.tools));
      assert.deepEqual(
        manifest.artifacts.map((a: { role: string; format: string }) => `${a.role}:${a.format}`),
        ['database:mysql-sql', 'globals:mysql-grants'],
      );
      assert.equal(manifest.position.kind, 'binlog');
      assert.match(manifest.position.file, /^binlog\.\d+$/);
      assert.ok(manifest.position.pos > 0);
      assert.match(manifest.position.gtid, /^\d+-\d+-\d+$/);
      assert.deepEqual(
        manifest.tables.map((t: { name: string; rows: number }) => `${t.name}=${t.rows}`),
        ['Tàble ñ 表=3', 'audit=0', 'counters=2', 'customers=2000', 'empty_table=0', 'every_byte=3', 'legacy=2', 'orders=4000'],
      );
      const ext = { zstd: '.zst', gzip: '.gz', lz4: '.lz4', none: '' }[compression];
      assert.equal(manifest.artifacts[0].name, `database.sql${ext}${encrypt === 'age' ? '.age' : ''}`);
      assert.ok(manifest.manualRestore.some((l: string) => l.includes('mariadb --binary-mode TARGET_DATABASE')), manifest.manualRestore.join('\n'));

      const identityArgs = encrypt === 'age' ? ['--identity', identity] : [];
      const v = await dbbackup(['verify', '--from', store, '--latest', '--deep', ...identityArgs], { env: db.env });
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, new RegExp(`ok\\s+${manifest.id} \\(deep\\)`));

      const target = `restored_${compression}_${encrypt}`;
      const r = await dbbackup(['restore', '--from', store, '--id', manifest.id, '--target', db.url(target), ...identityArgs], { env: db.env });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await mariaFingerprint(db, target), expected);
    });
  }

  test('the binlog position in the manifest is the one the dump itself records', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'zstd-none', fs.readdirSync(path.join(dir, 'zstd-none'))[0], 'manifest.json'), 'utf8'));
    const sql = plaintextOf(path.join(dir, 'zstd-none', manifest.id, 'database.sql.zst'));
    const m = /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);/m.exec(sql);
    assert.ok(m, 'the dump has a -- CHANGE MASTER TO comment');
    assert.deepEqual([m[1], Number(m[2])], [manifest.position.file, manifest.position.pos]);
    assert.match(sql, new RegExp(`^-- SET GLOBAL gtid_slave_pos='${manifest.position.gtid}';`, 'm'));
    assert.match(sql.trimEnd().split('\n').pop()!, /^-- Dump completed on /);
  });

  /** A writer committing small transactions into busy.ticks as fast as it can, until stopped. */
  function startWriter(): { stop(): Promise<void> } {
    const writer: ChildProcess = spawn('mariadb', ['--no-defaults', `--socket=${db.socket}`, '--user=root', 'busy'], { env: { ...process.env, MYSQL_PWD: db.password }, stdio: ['pipe', 'ignore', 'ignore'] });
    writer.stdin!.on('error', () => undefined);
    let writing = true;
    const feeding = (async () => {
      while (writing) {
        const ok = writer.stdin!.write(`INSERT INTO ticks (at, pad) VALUES (NOW(6), REPEAT('x', 100));\n`.repeat(50));
        if (!ok) await new Promise((r) => writer.stdin!.once('drain', r));
        await new Promise((r) => setImmediate(r));
      }
    })();
    return {
      stop: async () => {
        writing = false;
        await feeding;
        writer.stdin!.end();
        await new Promise((r) => writer.once('close', r));
      },
    };
  }

  test('under concurrent commits, row counts and binlog position are exactly those of the dump', async () => {
    await db.sql('CREATE DATABASE busy');
    await db.sql('CREATE TABLE ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6), pad VARCHAR(200)); CREATE TABLE bulk AS SELECT seq, REPEAT(MD5(seq), 6) AS pad FROM seq_1_to_60000;', 'busy');
    const writer = startWriter();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const before = Number(await db.sql('SELECT COUNT(*) FROM busy.ticks'));
      assert.ok(before > 0, 'the writer is committing');
      const store = `file://${dir}/busy`;
      const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('busy'), '--to', store, '--json'], { env: db.env });
      assert.equal(b.code, 0, b.stderr);
      const manifest = JSON.parse(b.stdout);
      assert.ok(manifest.position, 'a position was recorded');
      const recorded = manifest.tables.find((t: { name: string }) => t.name === 'ticks').rows;
      assert.ok(recorded > before, `rows were committed during the backup (${before} → ${recorded})`);

      const sql = plaintextOf(path.join(dir, 'busy', manifest.id, 'database.sql.zst'));
      const m = /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);/m.exec(sql)!;
      assert.deepEqual([m[1], Number(m[2])], [manifest.position.file, manifest.position.pos]);

      const r = await dbbackup(['restore', '--from', store, '--latest', '--target', db.url('busy_restored')], { env: db.env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(Number(await db.sql('SELECT COUNT(*) FROM busy_restored.ticks')), recorded);
      assert.ok(Number(await db.sql('SELECT COUNT(*) FROM busy.ticks')) > recorded, 'the writer went on after the backup');
    } finally {
      await writer.stop();
    }
  });

  test('a backup user without RELOAD: counts and position only when provably the dump\'s; users and grants skipped with a warning', async () => {
    await db.sql(`CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY 'backup-pw'; GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON busy.* TO 'backup'@'127.0.0.1';`);
    const env = { DBBACKUP_SOURCE_PASSWORD: 'backup-pw', MYSQL_PWD: undefined };
    const quiet = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('busy', 'backup'), '--to', `file://${dir}/limited`, '--json'], { env });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stderr, /could not block commits .*RELOAD/);
    const q = JSON.parse(quiet.stdout);
    assert.ok(q.position?.file, 'nothing was committed meanwhile: the position is the dump\'s');
    assert.ok(q.tables.some((t: { name: string }) => t.name === 'ticks'));
    assert.deepEqual(q.artifacts.map((a: { role: string }) => a.role), ['database']);
    assert.match(q.warnings.join('\n'), /users and grants were not saved: .*SELECT command denied/);

    const writer = startWriter();
    try {
      const busy = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('busy', 'backup'), '--to', `file://${dir}/limited`, '--json'], { env });
      assert.equal(busy.code, 0, busy.stderr);
      const b = JSON.parse(busy.stdout);
      assert.equal(b.position, undefined);
      assert.equal(b.tables, undefined);
      assert.match(busy.stderr, /the binlog position and row counts are not recorded: .*RELOAD/);
    } finally {
      await writer.stop();
    }
  });

  test('restore --with-globals brings users and grants to another server, renamed with the database; its root stays as it is', async () => {
    const store = `file://${dir}/zstd-none`;
    const other = await startLocalMariaDB();
    try {
      const r = await dbbackup(['restore', '--from', store, '--latest', '--with-globals', '--target', other.url('shop_copy')], { env: other.env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /kept the target's own accounts as they are .*root@localhost/);
      assert.deepEqual(await grantsOf(other, `'reporting'@'%'`, 'shop_copy'), expectedGrants);
      assert.deepEqual(await mariaFingerprint(other, 'shop_copy'), expected);
      // The target's root still logs in with its own password, and the user with the source's.
      assert.equal(await other.sql('SELECT 1'), '1');
      const login = execFileSync('mariadb', ['--no-defaults', '--protocol=TCP', '--host=127.0.0.1', `--port=${other.port}`, '--user=reporting', '-N', '-e', 'SELECT COUNT(*) FROM shop_copy.customers'], {
        env: { ...process.env, MYSQL_PWD: 'reporting-pw' },
      });
      assert.equal(login.toString().trim(), '2000');
    } finally {
      await other.stop();
    }
  });

  test('restore refuses a target with objects unless --clean; --clean replaces what the backup holds and keeps the rest', async () => {
    const store = `file://${dir}/zstd-none`;
    await db.sql(
      `CREATE DATABASE occupied; USE occupied;
       CREATE TABLE customers (id INT PRIMARY KEY, x TEXT); INSERT INTO customers VALUES (42, 'old');
       CREATE TABLE orders (id INT PRIMARY KEY); CREATE TRIGGER old_trigger BEFORE INSERT ON orders FOR EACH ROW SET NEW.id = NEW.id;
       CREATE VIEW big_orders AS SELECT 1 AS old_view;
       CREATE TABLE unrelated (v TEXT); INSERT INTO unrelated VALUES ('still here');
       CREATE TABLE kids (id INT PRIMARY KEY, customer INT, FOREIGN KEY (customer) REFERENCES customers (id));`,
    );
    const refused = await dbbackup(['restore', '--from', store, '--latest', '--target', db.url('occupied')], { env: db.env });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /already has 4 tables, 1 views, 0 routines and 0 events.*--clean/);
    assert.equal(await db.sql('SELECT x FROM occupied.customers'), 'old');

    const cleaned = await dbbackup(['restore', '--from', store, '--latest', '--clean', '--target', db.url('occupied')], { env: db.env });
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.match(cleaned.stderr, /loading the backup into the scratch database/);
    const fp = await mariaFingerprint(db, 'occupied');
    const unrelated = Object.keys(fp).filter((k) => k.startsWith('table unrelated') || k.startsWith('table kids'));
    for (const k of unrelated) delete fp[k];
    assert.deepEqual(fp, expected);
    assert.equal(await db.sql('SELECT v FROM occupied.unrelated'), 'still here');
    // The target's own foreign key now points at the restored customers.
    await db.sql('INSERT INTO occupied.kids VALUES (1, 5)');
    await assert.rejects(db.sql('INSERT INTO occupied.kids VALUES (2, 999999)'), /foreign key constraint fails/);
    assert.equal(await db.sql(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'occupied\\_dbbackup\\_%'`), '0');
  });

  test('a restore into an existing empty database keeps the database and its options', async () => {
    await db.sql('CREATE DATABASE empty_target CHARACTER SET latin1 COLLATE latin1_german1_ci');
    const r = await dbbackup(['restore', '--from', `file://${dir}/zstd-none`, '--latest', '--target', db.url('empty_target')], { env: db.env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await mariaFingerprint(db, 'empty_target'), expected);
    assert.match(await db.sql('SHOW CREATE DATABASE empty_target'), /CHARACTER SET latin1 COLLATE latin1_german1_ci/);
  });

  test('a socket URL works for backup and restore, and a drill checks the restored row counts', async () => {
    const store = `file://${dir}/socket`;
    const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.socketUrl('shop'), '--to', store], { env: db.env });
    assert.equal(b.code, 0, b.stderr);
    const d = await dbbackup(['drill', '--from', store, '--target', db.socketUrl('drill_db'), '--json'], { env: db.env });
    assert.equal(d.code, 0, d.stderr);
    const result = JSON.parse(d.stdout);
    assert.equal(result.ok, true);
    assert.equal(result.tablesChecked, 8);
    assert.equal(result.rowsChecked, 3 + 2 + 2000 + 3 + 2 + 4000);
    assert.equal(await db.sql(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'drill_db'`), '0');
  });

  test('progress and events are JSON lines on stderr', async () => {
    const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${dir}/progress`], {
      env: { ...db.env, DBBACKUP_PROGRESS_INTERVAL: '0.01' },
    });
    assert.equal(b.code, 0, b.stderr);
    const lines = logLines(b.stderr);
    assert.ok(lines.some((l) => l.event === 'backup-done'));
    assert.ok(lines.some((l) => typeof l.msg === 'string' && /commits were held/.test(l.msg as string)), b.stderr);
  });
});

// What only the MySQL/MariaDB engine does, beside the SQL engine contract (engine-contract.test.ts):
// the binlog position of a logical dump, consistency under concurrent commits, a backup user
// without RELOAD, database options, socket URLs and drills, and a server refusing a statement.
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { mariadb } from '../harness/engines';
import { loadMariaFixture, mariaFingerprint } from '../harness/mariadb-fixture';
import { dbbackup } from '../harness/runner';

/** The plaintext of a stored zstd (unencrypted) artifact. */
function plaintextOf(file: string): string {
  return execFileSync('zstd', ['-q', '-d', '-c', file], { maxBuffer: 256 << 20 }).toString('utf8');
}

describe('MariaDB: what only the MySQL engine does', () => {
  let db: LocalMariaDB;
  let dir: string;
  let expected: Record<string, string>;
  /** The id of a zstd backup of the fixture in file://DIR/zstd-none. */
  let shopBackup: string;

  beforeAll(async () => {
    db = await startLocalMariaDB();
    await loadMariaFixture(db, 'shop');
    expected = await mariaFingerprint(db, 'shop');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-mysql-'));
    const b = await dbbackup(
      ['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${dir}/zstd-none`, '--json'],
      { env: db.env },
    );
    assert.equal(b.code, 0, b.stderr);
    shopBackup = JSON.parse(b.stdout).id;
  });
  afterAll(async () => {
    await db?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the binlog position in the manifest is the one the dump itself records', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'zstd-none', shopBackup, 'manifest.json'), 'utf8'));
    const sql = plaintextOf(path.join(dir, 'zstd-none', manifest.id, 'database.sql.zst'));
    const m = /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);/m.exec(sql);
    assert.ok(m, 'the dump has a -- CHANGE MASTER TO comment');
    assert.deepEqual([m[1], Number(m[2])], [manifest.position.file, manifest.position.pos]);
    assert.match(sql, new RegExp(`^-- SET GLOBAL gtid_slave_pos='${manifest.position.gtid}';`, 'm'));
    assert.match(sql.trimEnd().split('\n').pop()!, /^-- Dump completed on /);
  });

  /** A writer committing small transactions into busy.ticks as fast as it can, until stopped. */
  function startWriter(): { stop(): Promise<void> } {
    const writer: ChildProcess = spawn('mariadb', ['--no-defaults', `--socket=${db.socket}`, '--user=root', 'busy'], {
      env: { ...process.env, MYSQL_PWD: db.password },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
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
    await db.sql(
      `CREATE TABLE ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6), pad VARCHAR(200));
       CREATE TABLE bulk AS SELECT seq, REPEAT(MD5(seq), 6) AS pad FROM seq_1_to_60000;`,
      'busy',
    );
    const writer = startWriter();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const before = Number(await db.sql('SELECT COUNT(*) FROM busy.ticks'));
      assert.ok(before > 0, 'the writer is committing');
      const store = `file://${dir}/busy`;
      const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('busy'), '--to', store, '--json'], {
        env: db.env,
      });
      assert.equal(b.code, 0, b.stderr);
      const manifest = JSON.parse(b.stdout);
      assert.ok(manifest.position, 'a position was recorded');
      const recorded = manifest.tables.find((t: { name: string }) => t.name === 'ticks').rows;
      assert.ok(recorded > before, `rows were committed during the backup (${before} → ${recorded})`);

      const sql = plaintextOf(path.join(dir, 'busy', manifest.id, 'database.sql.zst'));
      const m = /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);/m.exec(sql)!;
      assert.deepEqual([m[1], Number(m[2])], [manifest.position.file, manifest.position.pos]);

      const r = await dbbackup(['restore', '--from', store, '--latest', '--target', db.url('busy_restored')], {
        env: db.env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(Number(await db.sql('SELECT COUNT(*) FROM busy_restored.ticks')), recorded);
      assert.ok(
        Number(await db.sql('SELECT COUNT(*) FROM busy.ticks')) > recorded,
        'the writer went on after the backup',
      );
    } finally {
      await writer.stop();
    }
  });

  test(
    'a backup user without RELOAD: counts and position only when ' +
      "provably the dump's; users and grants skipped with a warning",
    async () => {
      // A throwaway password for the throwaway server, made here rather than written in the test.
      const password = crypto.randomBytes(12).toString('hex');
      await db.sql(
        `CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY '${password}';
       GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON busy.* TO 'backup'@'127.0.0.1';`,
      );
      const env = { DBBACKUP_SOURCE_PASSWORD: password, MYSQL_PWD: undefined };
      const args = [
        'backup',
        '--engine',
        'mysql',
        '--source',
        db.url('busy', 'backup'),
        '--to',
        `file://${dir}/limited`,
        '--json',
      ];
      const quiet = await dbbackup(args, { env });
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.match(quiet.stderr, /could not block commits .*RELOAD/);
      const q = JSON.parse(quiet.stdout);
      assert.ok(q.position?.file, "nothing was committed meanwhile: the position is the dump's");
      assert.ok(q.tables.some((t: { name: string }) => t.name === 'ticks'));
      assert.deepEqual(
        q.artifacts.map((a: { role: string }) => a.role),
        ['database'],
      );
      assert.match(q.warnings.join('\n'), /users and grants were not saved: .*SELECT command denied/);

      const writer = startWriter();
      try {
        const busy = await dbbackup(args, { env });
        assert.equal(busy.code, 0, busy.stderr);
        const b = JSON.parse(busy.stdout);
        assert.equal(b.position, undefined);
        assert.equal(b.tables, undefined);
        assert.match(busy.stderr, /the binlog position and row counts are not recorded: .*RELOAD/);
        // The manifest says so too, beside the users and grants it could not save.
        assert.match(b.warnings.join('\n'), /the binlog position and row counts are not recorded: .*RELOAD/);
        assert.match(b.warnings.join('\n'), /users and grants were not saved/);
      } finally {
        await writer.stop();
      }
    },
  );

  test('an account the server ignores (skip-name-resolve): the others are saved, the warning names it', async () => {
    // The server runs with --skip-name-resolve: after FLUSH PRIVILEGES it ignores this account, and
    // mariadb-dump --system=users stops at its SHOW CREATE USER (error 1133); `kept` is an account it knows.
    await db.sql(
      "SET SESSION sql_log_bin = 0; CREATE USER 'ghost'@'ghost.example'; CREATE USER 'kept'@'127.0.0.1'; " +
        "GRANT SELECT ON busy.* TO 'kept'@'127.0.0.1'; FLUSH PRIVILEGES;",
    );
    const args = ['backup', '--engine', 'mysql', '--source', db.url('busy'), '--json', '--to'];
    try {
      const r = await dbbackup([...args, `file://${dir}/ghost`], { env: db.env });
      assert.equal(r.code, 0, r.stderr);
      const m = JSON.parse(r.stdout);
      assert.ok(
        m.artifacts.some((a: { role: string }) => a.role === 'globals'),
        'no grants.sql was stored',
      );
      assert.match(
        m.warnings.join('\n'),
        /saved without 'ghost'@'ghost\.example': mysql\.user lists .*skip-name-resolve.*DROP USER 'ghost'@'ghost\.ex/,
      );
      const folder = path.join(dir, 'ghost', m.id);
      const grants = execFileSync('zstd', ['-dc', path.join(folder, 'grants.sql.zst')], { encoding: 'utf8' });
      assert.match(grants, /GRANT SELECT ON `busy`\.\* TO `kept`@`127\.0\.0\.1`/);
      assert.doesNotMatch(grants, /ghost/);
      // The script restores: `kept` comes back, its grant on the restored database's new name.
      await db.sql("SET SESSION sql_log_bin = 0; DROP USER 'kept'@'127.0.0.1';");
      const restored = await dbbackup(
        ['restore', '--from', `file://${dir}/ghost`, '--id', m.id, '--target', db.url('busy_ghost'), '--with-globals'],
        { env: db.env },
      );
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(await db.sql("SHOW GRANTS FOR 'kept'@'127.0.0.1'"), /GRANT SELECT ON `busy_ghost`\.\*/);
    } finally {
      // The fix the warning gives.
      await db.sql(
        "SET SESSION sql_log_bin = 0; DROP USER 'ghost'@'ghost.example'; DROP USER IF EXISTS 'kept'@'127.0.0.1';",
      );
    }
    const fixed = await dbbackup([...args, `file://${dir}/ghost-dropped`], { env: db.env });
    assert.equal(fixed.code, 0, fixed.stderr);
    const m = JSON.parse(fixed.stdout);
    assert.ok(
      m.artifacts.some((a: { role: string }) => a.role === 'globals'),
      fixed.stderr,
    );
    assert.doesNotMatch(m.warnings?.join('\n') ?? '', /users and grants/);
  });

  test('a restore into an existing empty database keeps the database and its options', async () => {
    await db.sql('CREATE DATABASE empty_target CHARACTER SET latin1 COLLATE latin1_german1_ci');
    const r = await dbbackup(
      ['restore', '--from', `file://${dir}/zstd-none`, '--latest', '--target', db.url('empty_target')],
      { env: db.env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await mariaFingerprint(db, 'empty_target'), expected);
    assert.match(await db.sql('SHOW CREATE DATABASE empty_target'), /CHARACTER SET latin1 COLLATE latin1_german1_ci/);
  });

  test('a socket URL works for backup and restore, and a drill checks the restored row counts', async () => {
    const store = `file://${dir}/socket`;
    const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.socketUrl('shop'), '--to', store], {
      env: db.env,
    });
    assert.equal(b.code, 0, b.stderr);
    const d = await dbbackup(['drill', '--from', store, '--target', db.socketUrl('drill_db'), '--json'], {
      env: db.env,
    });
    assert.equal(d.code, 0, d.stderr);
    const result = JSON.parse(d.stdout);
    assert.equal(result.ok, true);
    assert.equal(result.tablesChecked, 8);
    assert.equal(result.rowsChecked, 3 + 2 + 2000 + 3 + 2 + 4000);
    assert.equal(await db.sql(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'drill_db'`), '0');
  });

  test('a database that does not exist: exit 1 naming it', async () => {
    const missing = await dbbackup(
      ['backup', '--engine', 'mysql', '--source', db.url('no_such_db'), '--to', `file://${dir}/missing`],
      { env: db.env },
    );
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /the database no_such_db does not exist on mysql:\/\/root@127\.0\.0\.1:\d+\/no_such_db/,
    );
  });

  test('the server refusing a statement half-way through a --clean restore leaves the target unchanged', async () => {
    const store = `file://${dir}/zstd-none`;
    const before = await mariadb.occupied(db, 'midway_target');
    // every_byte holds a 100 kB row: its INSERT is larger than the server now accepts.
    await db.sql('SET GLOBAL max_allowed_packet = 65536');
    try {
      const r = await dbbackup(
        ['restore', '--from', store, '--latest', '--clean', '--target', db.url('midway_target')],
        { env: db.env },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /mariadb-restore exited with code 1: .*(packet|max_allowed_packet|gone away)/i);
      assert.match(r.stderr, /the target was not changed/);
    } finally {
      await db.sql('SET GLOBAL max_allowed_packet = 67108864');
    }
    assert.deepEqual(await mariaFingerprint(db, 'midway_target'), before);
    assert.deepEqual(await mariadb.leftovers(db), []);
  });
});

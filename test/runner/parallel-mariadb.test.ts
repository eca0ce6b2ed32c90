// MySQL/MariaDB and the options of issue 18, against a real MariaDB server: --jobs above 1 dumps
// with mydumper -t N through a spool into one tar artifact and restores with up to N myloader processes
// while it streams, file by file through a scratch directory (into the target when it is new, else a
// scratch database swapped in with --clean); the binlog position is mydumper's; damage leaves the
// target untouched. A single-stream backup restored with --jobs 2 stays one stream, said so.
// --row-counts estimate records InnoDB's statistics, marked as estimates, which a drill checks table
// by table without comparing counts.
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { loadMariaFixture, mariaFingerprint } from '../harness/mariadb-fixture';
import { DBBACKUP, dbbackup } from '../harness/runner';
import { flipByte } from '../harness/damage';
import { allCmdlines, findDescendant } from '../harness/procs';

describe('MariaDB: --jobs and --row-counts', () => {
  let db: LocalMariaDB;
  let dir: string;
  let tmp: string;
  let expected: Record<string, string>;
  // TMPDIR: the spool, scratch and option-file directories go there, so the tests see none is left.
  const run = (args: string[]) => dbbackup(args, { env: { ...db.env, TMPDIR: tmp }, timeoutMs: 300000 });
  const backup = (store: string, ...extra: string[]) =>
    run(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', store, '--json', ...extra]);
  const restore = (store: string, database: string, ...extra: string[]) =>
    run(['restore', '--from', store, '--latest', '--target', db.url(database), ...extra]);
  const leftovers = async () =>
    (await db.sql(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '%dbbackup%'`))
      .split('\n')
      .filter((l) => l !== '');
  const occupied = async (database: string) => {
    await db.sql(`CREATE DATABASE ${database}`);
    await db.sql(`CREATE TABLE keep_me (v text); INSERT INTO keep_me VALUES ('still here')`, database);
    return mariaFingerprint(db, database);
  };

  /** DATABASE of four tables of ROWS rows that do not compress (250 random bytes each), and its --jobs 2 backup. */
  const incompressibleBackup = async (database: string, rows: number): Promise<string> => {
    await db.sql(`CREATE DATABASE ${database}`);
    for (const t of ['t1', 't2', 't3', 't4']) {
      await db.sql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARBINARY(255) NOT NULL)`, database);
      await db.sql(`INSERT INTO ${t} SELECT seq, RANDOM_BYTES(250) FROM seq_1_to_${rows}`, database);
    }
    const store = `file://${dir}/${database}`;
    const b = await run(['backup', '--engine', 'mysql', '--source', db.url(database), '--to', store, '--jobs', '2']);
    assert.equal(b.code, 0, b.stderr);
    return store;
  };

  beforeAll(async () => {
    db = await startLocalMariaDB();
    await loadMariaFixture(db, 'shop');
    expected = await mariaFingerprint(db, 'shop');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-parallel-my-'));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-parallel-my-tmp-'));
  }, 300000);
  afterAll(async () => {
    await db?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('--jobs 2: mydumper into one tar artifact; restored by myloader into a new database, identical', async () => {
    const store = `file://${dir}/jobs`;
    const status = (await db.sql('SHOW MASTER STATUS')).split('\t');
    const gtid = await db.sql('SELECT @@gtid_binlog_pos');
    const b = await backup(store, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    const database = m.artifacts.find((a: { role: string }) => a.role === 'database');
    assert.equal(database.name, 'database.mydumper.tar.zst');
    assert.equal(database.format, 'mydumper-directory-tar');
    assert.ok(m.tools.mydumper, JSON.stringify(m.tools));
    assert.ok(m.artifacts.some((a: { role: string }) => a.role === 'globals'));
    // Nothing committed meanwhile: the dump's snapshot is the server's position before it.
    assert.deepEqual(m.position, { kind: 'binlog', file: status[0], pos: Number(status[1]), gtid });
    // ... and the one mydumper wrote in the archive's metadata file.
    const members = execFileSync('sh', [
      '-c',
      `zstd -dc "$1" | tar -t -f -`,
      'sh',
      path.join(dir, 'jobs', m.id, database.name),
    ])
      .toString()
      .split('\n');
    assert.ok(members.includes('database.mydumper/metadata'), members.join(' '));
    const metadata = execFileSync('sh', [
      '-c',
      `zstd -dc "$1" | tar -x -O -f - database.mydumper/metadata`,
      'sh',
      path.join(dir, 'jobs', m.id, database.name),
    ]).toString();
    assert.match(metadata, new RegExp(`Log: ${status[0]}\\s+Pos: ${status[1]}\\s`));
    assert.ok(
      m.manualRestore.some((l: string) => /myloader .*--directory=database\.mydumper/.test(l)),
      m.manualRestore,
    );
    assert.deepEqual(fs.readdirSync(tmp), []);

    const r = await restore(store, 'jobs_copy', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /myloader into jobs_copy as the archive streams, up to 2 at a time/);
    assert.deepEqual(await mariaFingerprint(db, 'jobs_copy'), expected);
    // Without --jobs, a mydumper backup restores with myloader too (the default jobs).
    const d = await restore(store, 'jobs_default');
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await mariaFingerprint(db, 'jobs_default'), expected);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  test("--jobs 2 by hand: the manifest's lines (tar, myloader, objects) restore it with standard tools", async () => {
    const b = await backup(`file://${dir}/by-hand`, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    const line = (role: string) => m.manualRestore[m.manualRestore.indexOf(`# ${role}:`) + 1] as string;
    assert.match(line('database'), /\| zstd -d -c \| tar -x -f - && myloader --threads=4 .*--database=TARGET_DATABASE/);
    assert.match(line('objects'), /\| zstd -d -c \| mariadb --binary-mode TARGET_DATABASE/);
    // The client tools find the server and the password in ~/.my.cnf, as a person's would.
    const home = fs.mkdtempSync(path.join(dir, 'hand-home-'));
    fs.writeFileSync(
      path.join(home, '.my.cnf'),
      `[client]\nhost=127.0.0.1\nport=${db.port}\nuser=root\npassword=${db.password}\n`,
      { mode: 0o600 },
    );
    await db.sql('CREATE DATABASE by_hand');
    const work = fs.mkdtempSync(path.join(dir, 'hand-'));
    for (const role of ['database', 'objects']) {
      execFileSync('bash', ['-o', 'pipefail', '-c', line(role).replaceAll('TARGET_DATABASE', 'by_hand')], {
        cwd: work,
        env: { PATH: process.env.PATH, HOME: home },
        stdio: 'ignore',
      });
    }
    assert.deepEqual(await mariaFingerprint(db, 'by_hand'), expected);
  });

  test('an existing target: refused without --clean (exit 2, untouched); --clean swaps the backup in', async () => {
    const store = `file://${dir}/swap`;
    const b = await backup(store, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr);
    const before = await occupied('swap_target');
    const refused = await restore(store, 'swap_target', '--jobs', '2');
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /already has 1 tables.*--clean/);
    assert.deepEqual(await mariaFingerprint(db, 'swap_target'), before);

    const r = await restore(store, 'swap_target', '--jobs', '2', '--clean');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /loading the backup into the scratch database/);
    const after = await mariaFingerprint(db, 'swap_target');
    // The backup's objects replaced; the target's own table (not in the backup) stays, as --clean does.
    const { 'table keep_me': kept, 'table keep_me ddl': keptDdl, ...rest } = after;
    assert.deepEqual([kept, keptDdl], [before['table keep_me'], before['table keep_me ddl']]);
    assert.deepEqual(rest, expected);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  test('one flipped byte: exit 3, the target untouched, no scratch database or directory left', async () => {
    const store = `file://${dir}/flip`;
    const b = await backup(store, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    const name = m.artifacts.find((a: { role: string }) => a.role === 'database').name;
    const object = path.join(dir, 'flip', m.id, name);
    flipByte(object);

    const before = await occupied('flip_target');
    const r = await restore(store, 'flip_target', '--clean', '--jobs', '2');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /database\.mydumper\.tar\.zst: sha256 .* does not match/);
    assert.deepEqual(await mariaFingerprint(db, 'flip_target'), before);
    const fresh = await restore(store, 'flip_new', '--jobs', '2');
    assert.equal(fresh.code, 3, fresh.stderr);
    assert.equal(await db.sql(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'flip_new'`), '0');
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  test('the wrong age identity: restore fails (exit 1) and the target is untouched, nothing left', async () => {
    const store = `file://${dir}/wrongkey`;
    const identity = path.join(dir, 'identity.txt');
    const other = path.join(dir, 'other.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    execFileSync('age-keygen', ['-o', other], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
    const b = await backup(store, '--jobs', '2', '--encrypt', `age:${recipient}`);
    assert.equal(b.code, 0, b.stderr);
    const ok = await restore(store, 'rightkey', '--identity', identity);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await mariaFingerprint(db, 'rightkey'), expected);

    const before = await occupied('wrongkey_target');
    const r = await restore(store, 'wrongkey_target', '--clean', '--identity', other);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no identity matched any of the recipients/);
    assert.deepEqual(await mariaFingerprint(db, 'wrongkey_target'), before);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  test('binlog PITR starts from the position of a --jobs 2 backup: a noted moment restores exactly', async () => {
    await db.sql('CREATE DATABASE app; CREATE TABLE app.accounts (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)');
    await db.sql(`INSERT INTO accounts VALUES (1, 'a'), (2, 'b')`, 'app');
    const url = `file://${dir}/pitr`;
    let shipperLog = '';
    const shipper = spawn(process.execPath, [DBBACKUP, 'binlog-stream', '--source', db.url('app'), '--to', url], {
      env: { ...process.env, ...db.env, DBBACKUP_LOG_FORMAT: 'json', DBBACKUP_BINLOG_UPLOAD_INTERVAL: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    shipper.stderr!.on('data', (d: Buffer) => (shipperLog += d.toString()));
    try {
      const b = await run([
        'backup',
        '--engine',
        'mysql',
        '--source',
        db.url('app'),
        '--to',
        url,
        '--jobs',
        '2',
        '--json',
      ]);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(JSON.parse(b.stdout).artifacts[0].format, 'mydumper-directory-tar');
      await db.sql(`INSERT INTO accounts VALUES (3, 'after the backup')`, 'app');
      // Binary logs record whole seconds: the moment is alone in its second.
      const second = () => new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 150));
      await second();
      const t = new Date();
      await second();
      await db.sql(`INSERT INTO accounts VALUES (4, 'after the moment')`, 'app');
      const file = path.join(dir, 'pitr', 'binlog', 'binlog', 'shipped.json');
      const asked = Date.now();
      let caught = false;
      for (let i = 0; i < 200 && !caught; i++) {
        caught = fs.existsSync(file) && Date.parse(JSON.parse(fs.readFileSync(file, 'utf8')).at) > asked;
        if (!caught) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(caught, `the shipper did not catch up:\n${shipperLog.slice(-3000)}`);
      const r = await run(['restore', '--from', url, '--to-time', t.toISOString(), '--target', db.url('pitr_copy')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await db.sql('SELECT GROUP_CONCAT(id ORDER BY id) FROM accounts', 'pitr_copy'), '1,2,3');
    } finally {
      shipper.kill('SIGTERM');
      await new Promise((r) => shipper.once('close', r));
    }
  });

  test('a table larger than one row chunk: dumped in several chunk files, restored identical', async () => {
    await db.sql('CREATE DATABASE chunks; CREATE TABLE chunks.big (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)');
    // The sequence engine's seq_1_to_N is a table of the current database.
    await db.sql("INSERT INTO big SELECT seq, CONCAT('row ', seq) FROM seq_1_to_600000", 'chunks');
    const want = await mariaFingerprint(db, 'chunks');
    const store = `file://${dir}/chunks`;
    const b = await run([
      'backup',
      '--engine',
      'mysql',
      '--source',
      db.url('chunks'),
      '--to',
      store,
      '--jobs',
      '2',
      '--json',
    ]);
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    const object = path.join(dir, 'chunks', m.id, m.artifacts[0].name);
    const members = execFileSync('sh', ['-c', 'zstd -dc "$1" | tar -t -f -', 'sh', object]).toString().split('\n');
    const chunks = members.filter((n) => /^database\.mydumper\/chunks\.big\.\d+\.sql$/.test(n));
    assert.ok(chunks.length >= 2, members.join(' '));
    const r = await restore(store, 'chunks_copy', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await mariaFingerprint(db, 'chunks_copy'), want);
  });

  test('names with dots, a table named like a chunk, generated columns, partitions, no key: identical', async () => {
    await db.sql('CREATE DATABASE odd');
    await db.sql(
      `CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20));
       CREATE TABLE child (id INT PRIMARY KEY, parent_id INT NOT NULL,
         FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE);
       CREATE TABLE gen (id INT PRIMARY KEY, a INT, b INT AS (a * 2) VIRTUAL, c INT AS (a + 1) PERSISTENT);
       CREATE TABLE \`a.b\` (id INT PRIMARY KEY, v TEXT);
       CREATE TABLE x (id INT PRIMARY KEY);
       CREATE TABLE \`x.00001\` (id INT PRIMARY KEY);
       CREATE TABLE nokey (v TEXT);
       CREATE TABLE part (id INT NOT NULL, d DATE NOT NULL, PRIMARY KEY (id, d)) PARTITION BY RANGE (YEAR(d))
         (PARTITION p2025 VALUES LESS THAN (2026), PARTITION pmax VALUES LESS THAN MAXVALUE);
       CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
       INSERT INTO parent VALUES (1, 'one'), (2, 'two');
       INSERT INTO child VALUES (10, 1), (20, 2);
       INSERT INTO gen (id, a) VALUES (1, 5), (2, 7);
       INSERT INTO \`a.b\` VALUES (1, 'a dot');
       INSERT INTO x VALUES (8);
       INSERT INTO \`x.00001\` VALUES (7);
       INSERT INTO nokey VALUES ('a'), ('b'), ('b');
       INSERT INTO part VALUES (1, '2025-05-01'), (2, '2026-05-01');
       INSERT INTO ai (v) VALUES (1), (2), (3); DELETE FROM ai WHERE id = 3;
       CREATE VIEW v1 AS SELECT id FROM parent;
       CREATE VIEW v2 AS SELECT * FROM v1;
       CREATE TRIGGER up BEFORE INSERT ON parent FOR EACH ROW SET NEW.name = UPPER(NEW.name);`,
      'odd',
    );
    const want = await mariaFingerprint(db, 'odd');
    const store = `file://${dir}/odd`;
    const b = await run(['backup', '--engine', 'mysql', '--source', db.url('odd'), '--to', store, '--jobs', '2']);
    assert.equal(b.code, 0, b.stderr);
    const r = await restore(store, 'odd_copy', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await mariaFingerprint(db, 'odd_copy'), want);
    // Rows load before the triggers exist (names stay as stored); the counter goes on where it was.
    assert.equal(await db.sql('SELECT GROUP_CONCAT(name ORDER BY id) FROM parent', 'odd_copy'), 'one,two');
    await db.sql('INSERT INTO ai (v) VALUES (4)', 'odd_copy');
    assert.equal(await db.sql('SELECT MAX(id) FROM ai', 'odd_copy'), '4');
    await db.sql('DROP DATABASE odd');
  });

  test('1500 tables: a --jobs 2 backup restores whole, its definitions and rows in a few dozen loads', async () => {
    await db.sql('CREATE DATABASE many');
    const tables = Array.from({ length: 1500 }, (_, i) => `t${i}`);
    await db.sql(
      tables
        .map((t) => `CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ${t} VALUES (1, '${t}');`)
        .join('\n'),
      'many',
    );
    const store = `file://${dir}/many`;
    const b = await run(['backup', '--engine', 'mysql', '--source', db.url('many'), '--to', store, '--jobs', '2']);
    assert.equal(b.code, 0, b.stderr);
    const r = await dbbackup(['restore', '--from', store, '--latest', '--target', db.url('many_copy'), '--jobs', '2'], {
      env: { ...db.env, TMPDIR: tmp, DBBACKUP_DEBUG: '1' },
      timeoutMs: 300000,
    });
    assert.equal(r.code, 0, r.stderr);
    const defined = await db.sql(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'many_copy'`);
    assert.equal(defined, '1500');
    const rows = tables.map((t) => `SELECT v FROM ${t}`).join(' UNION ALL ');
    assert.equal(
      await db.sql(`SELECT COUNT(*), COUNT(DISTINCT v) FROM (${rows}) AS copied`, 'many_copy'),
      '1500\t1500',
    );
    // Files ready at once go to one loader together: far fewer myloader runs than 3000 files.
    const loads = r.stderr.split('\n').filter((l) => l.includes('"msg":"myloader: ')).length;
    assert.ok(loads > 0 && loads < 500, `${loads} myloader runs`);
    assert.deepEqual(fs.readdirSync(tmp), []);
    await db.sql('DROP DATABASE many; DROP DATABASE many_copy');
  });

  test('damage at the end of a large archive: tables load as it streams, then each target is as it was', async () => {
    // 100 MB of rows that do not compress, in four tables: all but the last 4 MiB stream to the loaders
    // before the damage shows (the read-back holds the end back until the stored bytes match).
    const store = await incompressibleBackup('late', 100000);
    const id = fs.readdirSync(path.join(dir, 'late')).find((n) => /^\d{8}T/.test(n))!;
    const object = path.join(dir, 'late', id, 'database.mydumper.tar.zst');
    assert.ok(fs.statSync(object).size > 64 << 20, `${fs.statSync(object).size} bytes`);
    flipByte(object, fs.statSync(object).size - 1);
    const late = (database: string, ...extra: string[]) =>
      dbbackup(['restore', '--from', store, '--latest', '--target', db.url(database), '--jobs', '2', ...extra], {
        env: { ...db.env, TMPDIR: tmp, DBBACKUP_DEBUG: '1' },
        timeoutMs: 300000,
      });
    await db.sql('CREATE DATABASE late_empty CHARACTER SET latin1 COLLATE latin1_swedish_ci');
    const empty = await late('late_empty');
    assert.equal(empty.code, 3, empty.stderr);
    assert.match(empty.stderr, /database\.mydumper\.tar\.zst: sha256 .* does not match/);
    // Rows were loading (a batch of row files went to myloader) before the damage showed.
    assert.match(empty.stderr, /"msg":"myloader: \d+ file\(s\) into late_empty","files":\d+,"bytes":[1-9]/);
    assert.match(empty.stderr, /emptying the target database again/);
    const tables = (database: string) =>
      db.sql(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${database}'`);
    assert.equal(await tables('late_empty'), '0');
    assert.equal(
      await db.sql(`SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'late_empty'`),
      'latin1_swedish_ci',
    );
    const fresh = await late('late_new');
    assert.equal(fresh.code, 3, fresh.stderr);
    assert.equal(await db.sql(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'late_new'`), '0');
    const before = await occupied('late_occupied');
    const swap = await late('late_occupied', '--clean');
    assert.equal(swap.code, 3, swap.stderr);
    assert.deepEqual(await mariaFingerprint(db, 'late_occupied'), before);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(fs.readdirSync(tmp), []);
    await db.sql('DROP DATABASE late');
  });

  test('SIGTERM while myloader loads: exit 1, each target as it was, no loader, scratch or session left', async () => {
    // Rows that do not compress, in four tables, so the loads take long enough to be caught at.
    const store = await incompressibleBackup('sig', 60000);
    const interrupted = async (database: string, ...extra: string[]) => {
      let signalled = false;
      const r = await dbbackup(
        ['restore', '--from', store, '--latest', '--target', db.url(database), '--jobs', '2', ...extra],
        {
          env: { ...db.env, TMPDIR: tmp },
          timeoutMs: 300000,
          onSpawn: (pid) => {
            void (async () => {
              for (const end = Date.now() + 120000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
                if (findDescendant(pid, 'myloader') !== undefined) {
                  process.kill(pid, 'SIGTERM');
                  signalled = true;
                  return;
                }
              }
            })();
          },
        },
      );
      assert.ok(signalled, `no myloader was seen loading ${database}\n${r.stderr}`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /interrupted by SIGTERM/);
    };
    await interrupted('sig_new');
    assert.equal(await db.sql(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'sig_new'`), '0');
    const before = await occupied('sig_occupied');
    await interrupted('sig_occupied', '--clean');
    assert.deepEqual(await mariaFingerprint(db, 'sig_occupied'), before);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(fs.readdirSync(tmp), []);
    assert.deepEqual(
      allCmdlines().filter((c) => c.startsWith('myloader')),
      [],
    );
    // No session of the restore is left on the server either (a killed client's ends as the server notices).
    const sessions = `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB LIKE 'sig\\_%'`;
    for (const end = Date.now() + 5000; Date.now() < end && (await db.sql(sessions)) !== '0'; ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await db.sql(sessions), '0');
    await db.sql('DROP DATABASE sig; DROP DATABASE sig_occupied');
  });

  test('a single-stream backup restored with --jobs 2: one stream, said so in the log; identical data', async () => {
    const store = `file://${dir}/single`;
    const b = await backup(store);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(JSON.parse(b.stdout).artifacts[0].name, 'database.sql.zst');
    const r = await restore(store, 'single_copy', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /--jobs above 1 is not used for this backup: it is a single-stream dump/);
    assert.deepEqual(await mariaFingerprint(db, 'single_copy'), expected);
  });

  test('--row-counts estimate: every base table recorded with an estimate; a drill checks the tables', async () => {
    const store = `file://${dir}/estimate`;
    const b = await backup(store, '--row-counts', 'estimate');
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

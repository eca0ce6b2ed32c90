// A database the project has never seen, through every logical path: backup --jobs 1 (mariadb-dump),
// --jobs 2 and --jobs 4 (mydumper), each restored with --jobs 1, 2 and 4 into a new database, into an
// existing empty one, and with --clean over an occupied one. Every restore must equal the source
// exactly: SHOW CREATE of every object (AUTO_INCREMENT compared apart), every column of every row
// as hex ordered by all columns, sequence values, routine, trigger, event and view definitions.
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { dbbackup } from '../harness/runner';

const SOURCE = 'unseen';

async function loadUnseen(db: LocalMariaDB): Promise<void> {
  await db.sql(`CREATE DATABASE ${SOURCE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await db.sql(
    `
    CREATE TABLE nums (
      id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
      ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT ZEROFILL, mi MEDIUMINT UNSIGNED, bi BIGINT,
      bu BIGINT UNSIGNED, d DECIMAL(65,30), dn DECIMAL(10,0) UNSIGNED, f FLOAT, db DOUBLE, b1 BIT(1), b64 BIT(64),
      b5 BIT(5), y YEAR
    ) AUTO_INCREMENT=1;
    INSERT INTO nums (ti, tu, si, mi, bi, bu, d, dn, f, db, b1, b64, b5, y) VALUES
      (-128, 255, 7, 16777215, -9223372036854775808, 18446744073709551615,
       '-99999999999999999999999999999999999.999999999999999999999999999999', 9999999999,
       -3.40282e38, 1.7976931348623157e308, b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
       b'10101', 1901),
      (127, 0, 0, 0, 9223372036854775807, 0, '0.000000000000000000000000000001', 0, 1.17549e-38,
       2.2250738585072014e-308, b'0', b'0', b'0', 2155),
      (0, 1, 65535, 1, 0, 1, '12345678901234567890123456789012345.123456789012345678901234567890', 1, -0.0, -0.0,
       NULL, b'1000000000000000000000000000000000000000000000000000000000000001', b'11111', 0),
      (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 4.9e-324, 4.9406564584124654e-324, NULL, NULL, NULL, NULL),
      (1, 2, 3, 4, 5, 6, 0.1, 7, 0.1, 0.1, 1, 2, 3, 2000);
    ALTER TABLE nums AUTO_INCREMENT = 1000;
    CREATE TABLE texts (
      id INT PRIMARY KEY,
      u VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
      ug TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci,
      l1 VARCHAR(100) CHARACTER SET latin1 COLLATE latin1_german2_ci,
      l1t TEXT CHARACTER SET latin1,
      c CHAR(10) CHARACTER SET ascii,
      bn VARCHAR(50) CHARACTER SET binary,
      u8 VARCHAR(20) CHARACTER SET utf8mb3,
      cp CHAR(5) CHARACTER SET cp1251
    ) DEFAULT CHARSET=latin1;
    INSERT INTO texts VALUES
      (1, '🦀𝄞😀 中文 𠜎', 'Ünïcödé ✓ \\n\\t\\\\ '' "', CONVERT(UNHEX('E4F6FCDFA0FF80') USING latin1),
       CONVERT(UNHEX('A9AEB0B1B2B3C0FFFE') USING latin1), 'abc  ', UNHEX('00FF2000'), 'ключ', 'Ж'),
      (2, '', '', '', '', '', '', '', ''),
      (3, 'trailing   ', 'x\\0y', 'a\\rb', NULL, NULL, UNHEX('2020'), NULL, NULL);
    CREATE TABLE bins (
      id INT PRIMARY KEY, b BINARY(8), vb VARBINARY(300), tb TINYBLOB, bl BLOB, lb LONGBLOB
    );
    INSERT INTO bins VALUES
      (1, UNHEX('0001020300000000'), (SELECT GROUP_CONCAT(CHAR(seq USING binary) SEPARATOR '') FROM seq_0_to_255),
       UNHEX('00'), UNHEX('2020200020'), (SELECT GROUP_CONCAT(CHAR(255 - seq USING binary) SEPARATOR '')
       FROM seq_0_to_255)),
      (2, UNHEX('20'), UNHEX('0A0D5C2722001A'), '', '', ''),
      (3, NULL, NULL, NULL, NULL, REPEAT(UNHEX('00FF5C27'), 1500000));
    CREATE TABLE enums (
      id INT PRIMARY KEY, e ENUM('', 'a', 'b c', 'Ä', '✓') COLLATE utf8mb4_bin NOT NULL, s SET('x', 'y', 'z', 'ß') ,
      e2 ENUM('one', 'two') DEFAULT 'two'
    );
    INSERT INTO enums (id, e, s) VALUES (1, '', ''), (2, 'b c', 'x,y'), (3, '✓', 'ß'), (4, 'Ä', NULL);
    CREATE TABLE times (
      id INT PRIMARY KEY, d DATE, t TIME(3), tn TIME, dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
      ts0 TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, y YEAR(4)
    );
    INSERT INTO times VALUES
      (1, '0000-00-00', '-838:59:59.000', '838:59:59', '0000-00-00 00:00:00', '1970-01-01 05:30:01.000001',
       '2038-01-19 03:14:07', 1901),
      (2, '1000-01-01', '00:00:00.001', '-00:00:01', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
       '2026-03-29 02:30:00', 2155),
      (3, '2024-02-29', NULL, NULL, '2024-10-27 02:30:00.5', '2024-10-27 02:30:00.5', '2001-01-01 00:00:00', NULL),
      (4, '2026-00-00', '12:34:56.789', '01:02:03', '2026-01-00 00:00:00', NULL, '1999-12-31 23:59:59', 0);
    CREATE TABLE docs (id INT PRIMARY KEY, j JSON, j2 LONGTEXT CHECK (JSON_VALID(j2)));
    INSERT INTO docs VALUES (1, '{"a": [1, 2.5, "🎉", null, true], "b": {"c": "\\\\u0000"}}', '[]'),
      (2, '"just a string"', NULL), (3, NULL, '{"k": 1e300}');
    CREATE TABLE geo (
      id INT PRIMARY KEY, p POINT REF_SYSTEM_ID=4326 NOT NULL, g GEOMETRY, ls LINESTRING, SPATIAL INDEX (p)
    );
    INSERT INTO geo VALUES (1, ST_GeomFromText('POINT(1.5 -2.25)', 4326), ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'),
      ST_GeomFromText('LINESTRING(0 0, 10 10, 20 25)')),
      (2, ST_GeomFromText('POINT(0 0)', 4326), NULL, NULL);
    CREATE TABLE gen (
      id INT PRIMARY KEY AUTO_INCREMENT, a INT NOT NULL DEFAULT (FLOOR(RAND() * 0) + 7), b VARCHAR(20) INVISIBLE
      DEFAULT 'hidden', v INT AS (a * 2) VIRTUAL, s VARCHAR(40) AS (CONCAT(b, '/', a)) PERSISTENT,
      created DATETIME DEFAULT (DATE('2026-01-01') + INTERVAL 1 DAY), CHECK (a >= 0),
      CONSTRAINT named_check CHECK (a < 1000000), KEY (s)
    ) AUTO_INCREMENT = 500;
    INSERT INTO gen (a, b) VALUES (1, 'one'), (2, NULL);
    INSERT INTO gen (id) VALUES (NULL);
    DELETE FROM gen WHERE id = 502;
    CREATE TABLE myisam_t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(20)) ENGINE=MyISAM;
    INSERT INTO myisam_t (v) VALUES ('m1'), ('m2');
    CREATE TABLE aria_t (k VARCHAR(10), n INT) ENGINE=Aria;
    INSERT INTO aria_t VALUES ('a', 1), ('a', 1), (NULL, NULL);
    CREATE TABLE nokey (a INT, b TEXT);
    INSERT INTO nokey VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL), (2, '');
    CREATE TABLE empty_one (id INT PRIMARY KEY AUTO_INCREMENT, v INT) AUTO_INCREMENT = 42;
    CREATE SEQUENCE seq_a START WITH 100 INCREMENT BY 7 MINVALUE 1 MAXVALUE 100000 CACHE 10;
    DO NEXTVAL(seq_a); DO NEXTVAL(seq_a); DO NEXTVAL(seq_a);
    CREATE SEQUENCE seq_unused START WITH -5 INCREMENT BY -1 MINVALUE -100 MAXVALUE 0 CYCLE NOCACHE;
    CREATE TABLE versioned (id INT PRIMARY KEY, v VARCHAR(10)) WITH SYSTEM VERSIONING;
    INSERT INTO versioned VALUES (1, 'old'), (2, 'two');
    UPDATE versioned SET v = 'new' WHERE id = 1;
    CREATE TABLE parent (id INT PRIMARY KEY, up INT, CONSTRAINT self_fk FOREIGN KEY (up) REFERENCES parent (id)
      ON DELETE CASCADE);
    INSERT INTO parent VALUES (1, NULL), (2, 1), (3, 2);
    CREATE TABLE zz_parent (id INT PRIMARY KEY);
    CREATE TABLE a_child (id INT PRIMARY KEY, p INT, CONSTRAINT child_fk FOREIGN KEY (p) REFERENCES zz_parent (id))
      ENGINE=InnoDB;
    INSERT INTO zz_parent VALUES (10), (20);
    INSERT INTO a_child VALUES (1, 10), (2, 20), (3, NULL);
    CREATE TABLE \`my table.with dots\` (\`select\` INT PRIMARY KEY, \`back\`\`tick\` VARCHAR(10), \`ünï 名\` INT,
      \`order\` INT);
    INSERT INTO \`my table.with dots\` VALUES (1, 'x', 2, 3), (2, 'y', NULL, 4);
    CREATE TABLE \`表 ñ\` (id INT PRIMARY KEY);
    INSERT INTO \`表 ñ\` VALUES (1), (2);
    CREATE TABLE \`group\` (id INT PRIMARY KEY);
    INSERT INTO \`group\` VALUES (7);
    CREATE TABLE pr (id INT NOT NULL, d DATE NOT NULL, v INT, PRIMARY KEY (id, d))
      PARTITION BY RANGE (YEAR(d)) (PARTITION p0 VALUES LESS THAN (2000), PARTITION p1 VALUES LESS THAN MAXVALUE);
    INSERT INTO pr VALUES (1, '1999-01-01', 1), (2, '2026-01-01', 2);
    CREATE TABLE pl (id INT NOT NULL, r INT NOT NULL, PRIMARY KEY (id, r))
      PARTITION BY LIST (r) (PARTITION pa VALUES IN (1, 2), PARTITION pb VALUES IN (3, NULL));
    INSERT INTO pl VALUES (1, 1), (2, 3);
    CREATE TABLE ph (id INT PRIMARY KEY, v INT) PARTITION BY HASH (id) PARTITIONS 3;
    INSERT INTO ph SELECT seq, seq * 2 FROM seq_1_to_20;
    CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(60));
    CREATE DEFINER = root@localhost SQL SECURITY INVOKER VIEW v_base AS SELECT id, a, v FROM gen WHERE a > 0;
    CREATE VIEW \`v of v\` AS SELECT COUNT(*) AS n, SUM(a) AS s FROM v_base;
    CREATE ALGORITHM = MERGE VIEW v_check AS SELECT * FROM zz_parent WHERE id > 5 WITH CASCADED CHECK OPTION;
    CREATE TRIGGER gen_bi BEFORE INSERT ON gen FOR EACH ROW SET NEW.a = NEW.a + 0;
    CREATE TRIGGER gen_ai AFTER INSERT ON gen FOR EACH ROW INSERT INTO log (what) VALUES (CONCAT('gen ', NEW.id));
    CREATE TRIGGER gen_ai2 AFTER INSERT ON gen FOR EACH ROW PRECEDES gen_ai INSERT INTO log (what) VALUES ('first');
    CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC COMMENT 'doubles' RETURN x * 2;
    CREATE EVENT ev_off ON SCHEDULE EVERY 1 HOUR STARTS '2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE
      DO INSERT INTO log (what) VALUES ('event');
    `,
    SOURCE,
  );
  await db.sql(
    `DELIMITER //
    CREATE DEFINER = root@localhost PROCEDURE \`do it\`(IN n INT, OUT m TEXT)
    SQL SECURITY INVOKER
    BEGIN
      DECLARE i INT DEFAULT 0;
      WHILE i < n DO
        SET i = i + 1; -- a comment; with a semicolon
      END WHILE;
      SET m = CONCAT('done ', i, ' 🎉');
    END //
    DELIMITER ;`,
    SOURCE,
  );
}

const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
const id = (s: string) => '`' + s.replace(/`/g, '``') + '`';
const rows = (s: string) =>
  s
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));

/** The rows last read of each table ("DB TABLE"), to show in a failure. */
const shown = new Map<string, string>();

/** Every object and every row of a database, exactly, with the database's own name taken out. */
async function exact(db: LocalMariaDB, database: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const strip = (s: string) => s.split(`\`${database}\``).join('<db>');
  for (const [name, type] of rows(
    await db.sql(`SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${q(database)}
      ORDER BY TABLE_NAME`),
  )) {
    const t = `${id(database)}.${id(name)}`;
    if (type === 'VIEW') {
      out[`view ${name}`] = strip(rows(await db.sql(`SHOW CREATE VIEW ${t}`))[0][1]);
      continue;
    }
    const ddl = rows(await db.sql(`SHOW CREATE ${type === 'SEQUENCE' ? 'SEQUENCE' : 'TABLE'} ${t}`))[0][1];
    out[`${type} ${name}`] = strip(ddl.replace(/ AUTO_INCREMENT=\d+/, ''));
    out[`${type} ${name} auto_increment`] = (/ AUTO_INCREMENT=(\d+)/.exec(ddl) ?? ['', 'none'])[1];
    if (type === 'SEQUENCE') {
      out[`sequence ${name} state`] = await db.sql(`SELECT * FROM ${t}`);
      continue;
    }
    // System-versioned tables: the current rows are carried, not their history (row_start/row_end).
    const cols = rows(
      await db.sql(`SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ${q(database)}
        AND TABLE_NAME = ${q(name)} AND EXTRA NOT LIKE '%ROW START%' AND EXTRA NOT LIKE '%ROW END%'
        ORDER BY ORDINAL_POSITION`),
    ).map((r) => `IFNULL(HEX(CONCAT(${id(r[0])})), 'NULL')`);
    const data = await db.sql(`SELECT ${cols.join(', ')} FROM ${t} ORDER BY ${cols.join(', ')}`);
    out[`rows ${name}`] = `${data.split('\n').length} ${createHash('sha256').update(data).digest('hex')}`;
    shown.set(`${database} ${name}`, data);
    // CHECKSUM TABLE covers row_start/row_end too: a restored system-versioned table has new ones.
    if (type !== 'SYSTEM VERSIONED') out[`checksum ${name}`] = rows(await db.sql(`CHECKSUM TABLE ${t} EXTENDED`))[0][1];
  }
  const list = async (sql: string) => strip(await db.sql(sql));
  out.triggers = await list(`SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING,
    ACTION_ORDER, HEX(ACTION_STATEMENT), SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, DATABASE_COLLATION
    FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${q(database)} ORDER BY TRIGGER_NAME`);
  out.routines = await list(`SELECT ROUTINE_TYPE, ROUTINE_NAME, HEX(ROUTINE_DEFINITION), SQL_DATA_ACCESS,
    SECURITY_TYPE, IS_DETERMINISTIC, SQL_MODE, DEFINER, DTD_IDENTIFIER, ROUTINE_COMMENT, DATABASE_COLLATION
    FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${q(database)} ORDER BY ROUTINE_NAME`);
  out.parameters = await list(`SELECT SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME,
    DTD_IDENTIFIER FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = ${q(database)}
    ORDER BY SPECIFIC_NAME, ORDINAL_POSITION`);
  out.events = await list(`SELECT EVENT_NAME, HEX(EVENT_DEFINITION), INTERVAL_VALUE, INTERVAL_FIELD, STARTS,
    STATUS, ON_COMPLETION, EVENT_COMMENT, DEFINER, SQL_MODE, TIME_ZONE FROM information_schema.EVENTS
    WHERE EVENT_SCHEMA = ${q(database)} ORDER BY EVENT_NAME`);
  out.views = await list(`SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, DEFINER, SECURITY_TYPE,
    ALGORITHM FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ${q(database)} ORDER BY TABLE_NAME`);
  out.schema = rows(await db.sql(`SHOW CREATE DATABASE ${id(database)}`))[0][1].replace(id(database), '<db>');
  return out;
}

describe('MariaDB: an unseen database, every logical path, exactly', () => {
  let db: LocalMariaDB;
  let dir: string;
  let tmp: string;
  let expected: Record<string, string>;
  const run = (args: string[]) => dbbackup(args, { env: { ...db.env, TMPDIR: tmp }, timeoutMs: 120000 });
  const restore = (store: string, database: string, ...extra: string[]) =>
    run(['restore', '--from', store, '--latest', '--target', db.url(database), ...extra]);
  const same = async (database: string, what: string) => {
    const got = await exact(db, database);
    for (const k of new Set([...Object.keys(expected), ...Object.keys(got)])) {
      const table = k.startsWith('rows ') ? k.slice(5) : undefined;
      const detail =
        table === undefined ? '' : `\n${shown.get(`${SOURCE} ${table}`)}\n---\n${shown.get(`${database} ${table}`)}`;
      assert.equal(got[k], expected[k], `${what}: ${k}${detail}`);
    }
  };

  beforeAll(async () => {
    db = await startLocalMariaDB({ settings: { 'max-allowed-packet': '64M' } });
    await loadUnseen(db);
    // Backups and comparisons under a time zone that is not UTC (TIMESTAMPs are shown in it).
    await db.sql(`SET GLOBAL time_zone = '+05:30'`);
    expected = await exact(db, SOURCE);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-unseen-'));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-unseen-tmp-'));
  }, 120000);
  afterAll(async () => {
    await db?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test.each([1, 2, 4])(
    'backup --jobs %i: restores --jobs 1, 2, 4, into an empty target and --clean',
    async (jobs) => {
      const store = `file://${dir}/b${jobs}`;
      const b = await run([
        'backup',
        '--engine',
        'mysql',
        '--source',
        db.url(SOURCE),
        '--to',
        store,
        '--jobs',
        `${jobs}`,
      ]);
      assert.equal(b.code, 0, b.stderr);
      for (const r of [1, 2, 4]) {
        const target = `u${jobs}_r${r}`;
        const res = await restore(store, target, '--jobs', `${r}`);
        assert.equal(res.code, 0, res.stderr);
        await same(target, `backup --jobs ${jobs}, restore --jobs ${r}`);
      }
      const empty = `u${jobs}_empty`;
      await db.sql(`CREATE DATABASE ${empty} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
      const e = await restore(store, empty, '--jobs', '2');
      assert.equal(e.code, 0, e.stderr);
      await same(empty, `backup --jobs ${jobs}, existing empty target`);
      const busy = `u${jobs}_busy`;
      await db.sql(`CREATE DATABASE ${busy}; CREATE TABLE ${busy}.gen (x INT); CREATE TABLE ${busy}.nums (y INT)`);
      await db.sql(`CREATE SEQUENCE ${busy}.seq_a; CREATE VIEW ${busy}.v_base AS SELECT 1 AS one`);
      const c = await restore(store, busy, '--jobs', `${jobs}`, '--clean');
      assert.equal(c.code, 0, c.stderr);
      await same(busy, `backup --jobs ${jobs}, --clean over an occupied target`);
      assert.deepEqual(fs.readdirSync(tmp), []);
    },
    300000,
  );

  test('what no dump tool carries: refused or routed around, never lost in silence', async () => {
    // mydumper 0.10 dies (SIGSEGV) on a table name with a backtick: --jobs 2 dumps with the single stream.
    await db.sql('CREATE DATABASE odd; CREATE TABLE odd.`we``ird` (id INT PRIMARY KEY, v VARCHAR(5))');
    await db.sql("INSERT INTO odd.`we``ird` VALUES (1, 'k'), (2, NULL)");
    const store = `file://${dir}/odd`;
    const b = await run(['backup', '--engine', 'mysql', '--source', db.url('odd'), '--to', store, '--jobs', '2']);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /single stream \(mariadb-dump\) instead of mydumper.*`we``ird`/);
    const r = await restore(store, 'odd_copy', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await db.sql("SELECT GROUP_CONCAT(id, IFNULL(v, '-')) FROM odd_copy.`we``ird`"), '1k,2-');
    // mydumper 0.10 writes INET4/INET6/UUID values as NULL: --jobs 2 dumps with the single stream.
    await db.sql(`CREATE DATABASE typed; CREATE TABLE typed.t (id INT PRIMARY KEY, ip INET6, u UUID, ip4 INET4);
      INSERT INTO typed.t VALUES (1, '::1', '123e4567-e89b-12d3-a456-426614174000', '10.0.0.1'),
      (2, '::ffff:1.2.3.4', NULL, '255.255.255.255')`);
    const typed = `file://${dir}/typed`;
    const t = await run(['backup', '--engine', 'mysql', '--source', db.url('typed'), '--to', typed, '--jobs', '2']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stderr, /instead of mydumper.*`t`\.`ip` inet6/);
    assert.equal((await restore(typed, 'typed_copy', '--jobs', '2')).code, 0);
    const all = "SELECT GROUP_CONCAT(CONCAT_WS('|', id, ip, u, ip4) ORDER BY id) FROM t";
    assert.equal(await db.sql(all, 'typed_copy'), await db.sql(all, 'typed'));
    // A key column with a backtick in its name (mydumper chunks by it).
    await db.sql('CREATE DATABASE pkq; CREATE TABLE pkq.t (`k``ey` INT PRIMARY KEY, v INT)');
    await db.sql('INSERT INTO pkq.t SELECT seq, seq FROM seq_1_to_300', 'pkq');
    const pkq = `file://${dir}/pkq`;
    const p = await run(['backup', '--engine', 'mysql', '--source', db.url('pkq'), '--to', pkq, '--jobs', '2']);
    assert.equal(p.code, 0, p.stderr);
    assert.equal((await restore(pkq, 'pkq_copy', '--jobs', '2')).code, 0);
    const sum = 'SELECT COUNT(*), SUM(`k``ey` * v) FROM t';
    assert.equal(await db.sql(sum, 'pkq_copy'), await db.sql(sum, 'pkq'));
    // An ENUM label with a 4-byte character is '?' in the server's own SHOW CREATE TABLE: refused.
    await db.sql("CREATE TABLE odd.e (id INT PRIMARY KEY, e ENUM('a', '🎉') CHARACTER SET utf8mb4)");
    await db.sql("INSERT INTO odd.e VALUES (1, '🎉')");
    for (const jobs of ['1', '2']) {
      const e = await run(['backup', '--engine', 'mysql', '--source', db.url('odd'), '--to', store, '--jobs', jobs]);
      assert.equal(e.code, 2, e.stderr);
      assert.match(e.stderr, /the column `e`\.`e` has an ENUM\/SET label with a 4-byte character/);
    }
    assert.deepEqual(fs.readdirSync(tmp), []);
  }, 120000);
});

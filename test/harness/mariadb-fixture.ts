import { LocalMariaDB } from '../../runner/src/local/mariadb-server';

/**
 * A MariaDB database with what a round trip must keep: utf8mb4 text (emoji, CJK), a latin1
 * table, BLOBs with every byte value, JSON, DECIMAL, DATETIME(6), ENUM/SET, a unicode table
 * name, an empty table, an Aria (non-transactional) table, a sequence, a foreign key, views (one
 * over another), two ordered triggers on one table, a stored procedure and a function, a
 * (disabled) event, and a user with database, table, column and routine grants.
 */
export async function loadMariaFixture(db: LocalMariaDB, database: string, rows = 2000): Promise<void> {
  await db.sql(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await db.sql(
    `
    CREATE TABLE customers (
      id INT AUTO_INCREMENT PRIMARY KEY,
      name VARCHAR(200) NOT NULL,
      note TEXT NULL,
      created DATETIME(6) NOT NULL,
      doc JSON,
      balance DECIMAL(14,2) NOT NULL DEFAULT 0,
      kind ENUM('retail', 'wholesale', 'staff') NOT NULL,
      tags SET('new', 'vip', 'late') NOT NULL DEFAULT '',
      ratio DOUBLE
    ) ENGINE=InnoDB;
    INSERT INTO customers (name, note, created, doc, balance, kind, tags, ratio)
      SELECT CONCAT('customer ', seq, ' héllo 世界 🎉 ', REPEAT('ß', seq MOD 5)),
             IF(seq MOD 7 = 0, NULL, CONCAT('line1\\nline2\\t"quoted" \\'single\\' back\\\\slash ', MD5(seq))),
             TIMESTAMP('2026-01-01 00:00:00') + INTERVAL seq * 37 MINUTE + INTERVAL seq MICROSECOND,
             JSON_OBJECT('i', seq, 'tags', JSON_ARRAY('a', 'ß', seq MOD 5), 'nested', JSON_OBJECT('x', seq * 1.5)),
             (seq * 7.31) - 500, ELT(1 + seq MOD 3, 'retail', 'wholesale', 'staff'), IF(seq MOD 4 = 0, 'new,vip', ''),
               seq / 3
      FROM seq_1_to_${rows};
    CREATE TABLE orders (
      id BIGINT AUTO_INCREMENT PRIMARY KEY,
      customer_id INT NOT NULL,
      amount DECIMAL(12,2),
      payload BLOB,
      placed DATE,
      CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
    ) ENGINE=InnoDB;
    INSERT INTO orders (customer_id, amount, payload, placed)
      SELECT 1 + (seq MOD ${rows}), (seq * 7.31) MOD 1000, CONCAT(UNHEX(SHA2(seq, 256)), X'00FF0D0A5C27225C30',
        UNHEX(MD5(seq))), DATE('2026-01-01') + INTERVAL seq MOD 365 DAY
      FROM seq_1_to_${rows * 2};
    CREATE TABLE every_byte (id INT PRIMARY KEY, b LONGBLOB);
    INSERT INTO every_byte VALUES (1, (SELECT GROUP_CONCAT(CHAR(seq USING binary) SEPARATOR '') FROM seq_0_to_255)),
      (2, REPEAT(X'00', 100000)), (3, '');
    CREATE TABLE legacy (id INT PRIMARY KEY, txt VARCHAR(100)) CHARACTER SET latin1 COLLATE latin1_swedish_ci;
    INSERT INTO legacy VALUES (1, 'Fußgängerübergänge'), (2, 'Ça, c''est très bien');
    CREATE TABLE \`Tàble ñ 表\` (\`ключ\` VARCHAR(20) PRIMARY KEY, v VARCHAR(50));
    INSERT INTO \`Tàble ñ 表\` VALUES ('ключ', 'значение'), ('鍵', '値'), ('emoji', '🦀🐬');
    CREATE TABLE empty_table (id INT PRIMARY KEY);
    CREATE TABLE counters (k VARCHAR(10) PRIMARY KEY, n INT) ENGINE=Aria;
    INSERT INTO counters VALUES ('a', 1), ('b', 2);
    CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(100), at_order INT);
    CREATE SEQUENCE invoice_no START WITH 1000 INCREMENT BY 5;
    DO NEXTVAL(invoice_no); DO NEXTVAL(invoice_no);
    CREATE VIEW big_orders AS SELECT o.id, o.amount,
      c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.amount > 500;
    CREATE VIEW big_order_count AS SELECT COUNT(*) AS n FROM big_orders;
    CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (what,
      at_order) VALUES (CONCAT('order ', NEW.id), 1);
    CREATE TRIGGER orders_audit_2 AFTER INSERT ON orders FOR EACH ROW FOLLOWS orders_audit INSERT INTO audit (what,
      at_order) VALUES ('second', 2);
    CREATE FUNCTION order_total(c INT) RETURNS DECIMAL(14,2) READS SQL DATA RETURN (SELECT COALESCE(SUM(amount),
      0) FROM orders WHERE customer_id = c);
    CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' DISABLE COMMENT
      'keeps audit small' DO DELETE FROM audit WHERE id < 0;
    `,
    database,
  );
  // A procedure with a body of several statements needs its own delimiter.
  await db.sql(
    `DELIMITER //
    CREATE PROCEDURE add_order(IN c INT, IN a DECIMAL(12,2))
    BEGIN
      DECLARE n INT;
      INSERT INTO orders (customer_id, amount, placed) VALUES (c, a, CURDATE());
      SELECT COUNT(*) INTO n FROM orders WHERE customer_id = c;
      SELECT n AS orders_of_customer;
    END //
    DELIMITER ;`,
    database,
  );
  await db.sql(
    `CREATE USER IF NOT EXISTS 'reporting'@'%' IDENTIFIED BY 'reporting-pw';
     GRANT SELECT ON \`${database}\`.* TO 'reporting'@'%';
     GRANT INSERT, UPDATE ON \`${database}\`.audit TO 'reporting'@'%';
     GRANT SELECT (id, name) ON \`${database}\`.customers TO 'reporting'@'%';
     GRANT EXECUTE ON PROCEDURE \`${database}\`.add_order TO 'reporting'@'%';`,
  );
}

/**
 * A fingerprint of a database: per table its row count and CHECKSUM TABLE, the definitions of
 * tables, views, triggers (with their order), routines, events and sequences, with the
 * database's own name taken out so a copy under another name compares equal.
 */
export async function mariaFingerprint(db: LocalMariaDB, database: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  const strip = (s: string) => s.split(`\`${database}\`.`).join('').split(database).join('<db>');
  const tables = (
    await db.sql(
      `SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES ` +
        `WHERE TABLE_SCHEMA = ${q(database)} ORDER BY TABLE_NAME`,
    )
  )
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
  for (const [name, type] of tables) {
    const t = `\`${database}\`.\`${name}\``;
    if (type === 'VIEW') {
      out[`view ${name}`] = strip((await db.sql(`SHOW CREATE VIEW \`${name}\``, database)).split('\t')[1]);
      out[`view ${name} rows`] = await db.sql(`SELECT COUNT(*) FROM ${t}`);
    } else if (type === 'SEQUENCE') {
      out[`sequence ${name}`] =
        strip((await db.sql(`SHOW CREATE SEQUENCE ${t}`)).split('\t')[1]) +
        ' next=' +
        (await db.sql(`SELECT next_not_cached_value FROM ${t}`));
    } else {
      out[`table ${name}`] =
        (await db.sql(`SELECT COUNT(*) FROM ${t}`)) +
        ' rows, checksum ' +
        (await db.sql(`CHECKSUM TABLE ${t} EXTENDED`)).split('\t')[1];
      out[`table ${name} ddl`] = strip((await db.sql(`SHOW CREATE TABLE ${t}`)).split('\t').slice(1).join('\t'));
    }
  }
  out.triggers = strip(
    await db.sql(
      `SELECT GROUP_CONCAT(CONCAT_WS('|', TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ` +
        `ACTION_TIMING, ACTION_ORDER, MD5(ACTION_STATEMENT), SQL_MODE, DEFINER) ORDER BY TRIGGER_NAME ` +
        `SEPARATOR '\\n') FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${q(database)}`,
    ),
  );
  out.routines = strip(
    await db.sql(
      `SELECT GROUP_CONCAT(CONCAT_WS('|', ROUTINE_TYPE, ROUTINE_NAME, MD5(ROUTINE_DEFINITION), ` +
        `SQL_DATA_ACCESS, SECURITY_TYPE, SQL_MODE, DEFINER, DTD_IDENTIFIER) ORDER BY ROUTINE_NAME ` +
        `SEPARATOR '\\n') FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${q(database)}`,
    ),
  );
  out.events = strip(
    await db.sql(
      `SELECT GROUP_CONCAT(CONCAT_WS('|', EVENT_NAME, MD5(EVENT_DEFINITION), INTERVAL_VALUE, ` +
        `INTERVAL_FIELD, STARTS, STATUS, EVENT_COMMENT, DEFINER) ORDER BY EVENT_NAME SEPARATOR ` +
        `'\\n') FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${q(database)}`,
    ),
  );
  return out;
}

/** The grants of an account with database names taken out (`<db>`), sorted. */
export async function grantsOf(db: LocalMariaDB, account: string, database: string): Promise<string[]> {
  return (
    (await db.sql(`SHOW GRANTS FOR ${account}`))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split(`\`${database}\``).join('`<db>`'))
      // Column lists come in no fixed order.
      .map((l) => l.replace(/\(([^)]*)\)/g, (_m, cols: string) => `(${cols.split(', ').sort().join(', ')})`))
      .sort()
  );
}

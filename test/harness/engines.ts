// The engine table the SQL engine contract (test/runner/engine-contract.test.ts) runs over: for
// each engine, how to start a real server, load the fixture, fingerprint a database, name URLs,
// and what that engine's messages, tools and stored names are. What differs between the engines
// is written here; what every engine must do is written once, in the contract.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { startLocalPostgres } from '../../runner/src/local/postgres-server';
import { grantsOf, loadMariaFixture, mariaFingerprint } from './mariadb-fixture';
import { fingerprint, loadFixture } from './pg-fixture';
import { dbbackup, RunResult } from './runner';

/** What the contract needs of a running server (LocalPostgres and LocalMariaDB both are one). */
export interface Server {
  readonly port: number;
  readonly password: string;
  readonly env: Record<string, string>;
  url(database: string, user?: string): string;
  sql(sql: string, database?: string): Promise<string>;
  stop(): Promise<void>;
}

export type Fingerprint = Record<string, string>;
export type Manifest = Record<string, any>;

export interface SqlEngine {
  /** The `--engine` value. */
  readonly name: 'postgres' | 'mysql';
  /** The server the tests run against, for test names. */
  readonly label: string;
  start(): Promise<Server>;
  /** Create `database` with the fixture (`rows` customers, twice as many orders). */
  load(server: Server, database: string, rows?: number): Promise<void>;
  fingerprint(server: Server, database: string): Promise<Fingerprint>;
  /** Create the database `big`: about 25 MB of incompressible rows, long enough to interrupt. */
  loadBig(server: Server): Promise<void>;
  /** Whether a database of that exact name exists. */
  exists(server: Server, database: string): Promise<boolean>;
  /** Databases a restore made for itself (scratch copies) and left behind. */
  leftovers(server: Server): Promise<string[]>;
  /** The database artifact's name without the codec extensions. */
  readonly artifact: string;
  /** The dump tool's process name. */
  readonly dumpTool: string;
  /** The password variable the standard tools read. */
  readonly toolPasswordEnv: string;
  /** Engine facts in the manifest of a backup of the fixture. */
  checkManifest(manifest: Manifest): void;
  /** An extra check of a backup's progress log lines. */
  checkProgress?(lines: Record<string, unknown>[], stderr: string): void;
  /** A database with objects of its own, to be refused and then replaced with --clean. */
  readonly busyTarget: {
    create(server: Server, database: string): Promise<void>;
    readonly refusal: RegExp;
    assertUntouched(server: Server, database: string): Promise<void>;
    /** After --clean: what the target holds now, given the fixture's fingerprint. */
    assertCleaned(server: Server, database: string, expected: Fingerprint, run: RunResult): Promise<void>;
  };
  /** A database with something of its own in it, to restore over with --clean; its fingerprint. */
  occupied(server: Server, database: string): Promise<Fingerprint>;
  /** --with-globals: the database name on the fresh server, what the globals are, extra checks. */
  readonly globals: {
    readonly target: string;
    of(server: Server, database: string): Promise<unknown>;
    check?(other: Server, run: RunResult): Promise<void>;
  };
  /** Bad input that exits 2 with a message naming the value and the fix. */
  badInput(server: Server, dir: string): [string[], RegExp][];
  readonly unreachable: { readonly url: string; readonly message: RegExp };
  readonly wrongPassword: RegExp;
  /** The refusal of a second backup of the same database to the same place (the lock it found). */
  readonly lockHeld: RegExp;
  /** The codec of the SIGTERM test (each engine another, so both pipelines are interrupted). */
  readonly sigtermCompression: string;
  /** Checks after a SIGTERM'd backup (locks released, ...). */
  afterSigterm?(server: Server): Promise<void>;
  /** Extra restore targets a damaged backup (of that codec) must leave as they were. */
  checkDamagedRestore?(server: Server, store: string, compression: string): Promise<void>;
  /** The secrets test: which processes to watch, what must be seen running, how to restore. */
  readonly secrets: {
    readonly watch: RegExp;
    readonly sawDump: (cmdline: string) => boolean;
    readonly sawRestore: (cmdline: string) => boolean;
    prepare?(server: Server, database: string): Promise<void>;
    readonly restoreArgs: readonly string[];
  };
}

async function mariaDatabases(db: Server, like: string): Promise<string[]> {
  const out = await db.sql(
    `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '${like}' ORDER BY 1`,
  );
  return out.split('\n').filter((l) => l !== '');
}

export const postgres: SqlEngine = {
  name: 'postgres',
  label: 'PostgreSQL',
  start: () => startLocalPostgres(),
  load: (s, database, rows) => loadFixture(s as never, database, rows),
  fingerprint: (s, database) => fingerprint(s as never, database),
  loadBig: async (s) => {
    await s.sql('CREATE DATABASE big');
    await s.sql(
      `CREATE TABLE noise AS SELECT i, decode(string_agg(md5(i::text || j::text), ''), 'hex') AS b
       FROM generate_series(1, 8000) i, generate_series(1, 200) j GROUP BY i`,
      'big',
    );
  },
  exists: async (s, database) =>
    (await s.sql(`SELECT count(*) FROM pg_database WHERE datname = '${database}'`)) === '1',
  leftovers: async (s) =>
    (await s.sql(`SELECT datname FROM pg_database WHERE datname LIKE '%dbbackup%'`))
      .split('\n')
      .filter((l) => l !== ''),
  artifact: 'database.pgdump',
  dumpTool: 'pg_dump',
  toolPasswordEnv: 'PGPASSWORD',
  checkManifest: (manifest) => {
    assert.deepEqual(
      manifest.artifacts.map((a: { role: string }) => a.role),
      ['database', 'globals'],
    );
    assert.match(manifest.position.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.deepEqual(
      manifest.tables.find((t: { name: string }) => t.name === 'orders'),
      { schema: 'sales', name: 'orders', rows: 4000 },
    );
  },
  busyTarget: {
    create: async (s, database) => {
      await s.sql(`CREATE DATABASE ${database}`);
      await s.sql('CREATE TABLE public.customers (id int); INSERT INTO public.customers VALUES (42);', database);
    },
    refusal: /already has 1 tables.*--clean/,
    assertUntouched: async (s, database) =>
      assert.equal(await s.sql('SELECT count(*) FROM public.customers', database), '1'),
    assertCleaned: async (s, database, expected) => assert.deepEqual(await fingerprint(s as never, database), expected),
  },
  occupied: async (s, database) => {
    await s.sql(`CREATE DATABASE ${database}`);
    await s.sql(`CREATE TABLE keep_me (v text); INSERT INTO keep_me VALUES ('still here')`, database);
    return fingerprint(s as never, database);
  },
  globals: {
    target: 'shop',
    of: (s) => s.sql(`SELECT rolname FROM pg_roles WHERE rolname = 'reporting'`),
  },
  badInput: (s, dir) => [
    [
      ['backup', '--engine', 'oracle', '--source', s.url('shop'), '--to', `file://${dir}/x`],
      /--engine is 'oracle'; use one of: postgres, mysql, mongodb/,
    ],
    [
      ['backup', '--engine', 'postgres', '--source', 'not a url', '--to', `file://${dir}/x`],
      /--source 'not a url' is not a URL\. Use e\.g\. postgres:\/\//,
    ],
    [
      ['backup', '--engine', 'postgres', '--source', s.url('shop'), '--to', `file://${dir}/x`, '--frobnicate'],
      /unknown option --frobnicate for 'backup'/,
    ],
    [['backup', '--engine', 'postgres', '--source', s.url('shop')], /'backup' needs --to \(or DBBACKUP_TO\)/],
    [
      ['backup', '--engine', 'postgres', '--source', s.url('shop'), '--to', './relative'],
      /--to '\.\/relative' is a path, not a URL\. Write it as file:\/\//,
    ],
    [
      ['backup', '--engine', 'postgres', '--source', 'postgres://u:hunter2@h/db', '--to', `file://${dir}/x`],
      /contains a password\. Remove it from the URL and give it in DBBACKUP_SOURCE_PASSWORD/,
    ],
    [
      ['backup', '--engine', 'postgres', '--source', s.url('shop'), '--to', `file://${dir}/x`, '--encrypt', 'age:nope'],
      /--encrypt 'age:nope' does not hold an age recipient/,
    ],
    [['restore', '--from', `file://${dir}/x`, '--target', s.url('t')], /'restore' needs one of --latest or --id ID/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ],
  unreachable: {
    url: 'postgres://postgres@127.0.0.1:1/shop',
    message: /psql exited with code 2: .*connection to server at "127\.0\.0\.1", port 1 failed/,
  },
  wrongPassword: /password authentication failed for user "postgres"/,
  lockHeld: new RegExp(
    /another backup of big to the same place is running \(advisory/.source +
      / lock -?\d+ on postgres:\/\/\S+\/big is held\).*--lock-wait/.source,
  ),
  sigtermCompression: 'zstd',
  secrets: {
    watch: /pg_dump|pg_dumpall|psql|pg_restore|zstd|age|dbbackup/,
    sawDump: (c) => c.includes('pg_dump') && c.includes('--format=custom'),
    sawRestore: (c) => c.includes('pg_restore'),
    restoreArgs: [],
  },
};

export const mariadb: SqlEngine = {
  name: 'mysql',
  label: 'MariaDB',
  start: () => startLocalMariaDB(),
  load: (s, database, rows) => loadMariaFixture(s as LocalMariaDB, database, rows),
  fingerprint: (s, database) => mariaFingerprint(s as LocalMariaDB, database),
  loadBig: async (s) => {
    // About 24 MB of incompressible rows (48 MB of SQL with --hex-blob).
    await s.sql('CREATE DATABASE big');
    await s.sql(
      'CREATE TABLE noise (id INT PRIMARY KEY, b BLOB) AS SELECT seq ' +
        'AS id, RANDOM_BYTES(1000) AS b FROM seq_1_to_24000',
      'big',
    );
  },
  exists: async (s, database) => (await mariaDatabases(s, database.replace(/_/g, '\\_'))).length === 1,
  leftovers: (s) => mariaDatabases(s, '%\\_dbbackup\\_%'),
  artifact: 'database.sql',
  dumpTool: 'mariadb-dump',
  toolPasswordEnv: 'MYSQL_PWD',
  checkManifest: (manifest) => {
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
      [
        'Tàble ñ 表=3',
        'audit=0',
        'counters=2',
        'customers=2000',
        'empty_table=0',
        'every_byte=3',
        'legacy=2',
        'orders=4000',
      ],
    );
    assert.ok(
      manifest.manualRestore.some((l: string) => l.includes('mariadb --binary-mode TARGET_DATABASE')),
      manifest.manualRestore.join('\n'),
    );
  },
  checkProgress: (lines, stderr) => {
    assert.ok(
      lines.some((l) => typeof l.msg === 'string' && /commits were held/.test(l.msg as string)),
      stderr,
    );
  },
  busyTarget: {
    // Objects the backup holds (customers, orders with a trigger, a view) and some it does not.
    create: (s, database) =>
      s
        .sql(
          `CREATE DATABASE ${database}; USE ${database};
         CREATE TABLE customers (id INT PRIMARY KEY, x TEXT); INSERT INTO customers VALUES (42, 'old');
         CREATE TABLE orders (id INT PRIMARY KEY);
         CREATE TRIGGER old_trigger BEFORE INSERT ON orders FOR EACH ROW SET NEW.id = NEW.id;
         CREATE VIEW big_orders AS SELECT 1 AS old_view;
         CREATE TABLE unrelated (v TEXT); INSERT INTO unrelated VALUES ('still here');
         CREATE TABLE kids (id INT PRIMARY KEY, customer INT, FOREIGN KEY (customer) REFERENCES customers (id));`,
        )
        .then(() => undefined),
    refusal: /already has 4 tables, 1 views, 0 routines and 0 events.*--clean/,
    assertUntouched: async (s, database) => assert.equal(await s.sql(`SELECT x FROM ${database}.customers`), 'old'),
    // --clean replaces what the backup holds and keeps the rest.
    assertCleaned: async (s, database, expected, run) => {
      assert.match(run.stderr, /loading the backup into the scratch database/);
      const fp = await mariaFingerprint(s as LocalMariaDB, database);
      const unrelated = Object.keys(fp).filter((k) => k.startsWith('table unrelated') || k.startsWith('table kids'));
      for (const k of unrelated) delete fp[k];
      assert.deepEqual(fp, expected);
      assert.equal(await s.sql(`SELECT v FROM ${database}.unrelated`), 'still here');
      // The target's own foreign key now points at the restored customers.
      await s.sql(`INSERT INTO ${database}.kids VALUES (1, 5)`);
      await assert.rejects(s.sql(`INSERT INTO ${database}.kids VALUES (2, 999999)`), /foreign key constraint fails/);
      assert.equal(
        await s.sql(
          `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '${database}\\_dbbackup\\_%'`,
        ),
        '0',
      );
    },
  },
  occupied: async (s, database) => {
    await s.sql(
      `CREATE DATABASE ${database}; USE ${database}; CREATE TABLE customers (id INT PRIMARY KEY, x TEXT);
       INSERT INTO customers VALUES (42, 'old'); CREATE TABLE keep_me (v TEXT);
         INSERT INTO keep_me VALUES ('still here');`,
    );
    return mariaFingerprint(s as LocalMariaDB, database);
  },
  globals: {
    // Users and grants go with the database, renamed; the target's root stays as it is.
    target: 'shop_copy',
    of: (s, database) => grantsOf(s as LocalMariaDB, `'reporting'@'%'`, database),
    check: async (other, run) => {
      assert.match(run.stderr, /kept the target's own accounts as they are .*root@localhost/);
      // The target's root still logs in with its own password, and the user with the source's.
      assert.equal(await other.sql('SELECT 1'), '1');
      const login = execFileSync(
        'mariadb',
        [
          '--no-defaults',
          '--protocol=TCP',
          '--host=127.0.0.1',
          `--port=${other.port}`,
          '--user=reporting',
          '-N',
          '-e',
          'SELECT COUNT(*) FROM shop_copy.customers',
        ],
        { env: { ...process.env, MYSQL_PWD: 'reporting-pw' } },
      );
      assert.equal(login.toString().trim(), '2000');
    },
  },
  badInput: (s, dir) => [
    [
      ['backup', '--engine', 'mysql', '--source', 'mysql://u:hunter2@h/db', '--to', `file://${dir}/x`],
      /contains a password\. Remove it from the URL and give it in DBBACKUP_SOURCE_PASSWORD/,
    ],
    [
      ['backup', '--engine', 'mysql', '--source', 'mysql://root@127.0.0.1/', '--to', `file://${dir}/x`],
      /names no database/,
    ],
    [
      [
        'backup',
        '--engine',
        'mysql',
        '--source',
        s.url('shop').replace('mysql:', 'postgres:'),
        '--to',
        `file://${dir}/x`,
      ],
      /is a postgres URL but the engine is 'mysql'/,
    ],
    [
      ['backup', '--engine', 'mysql', '--source', `${s.url('shop')}?sslmode=require`, '--to', `file://${dir}/x`],
      /has the parameter 'sslmode', which MySQL\/MariaDB connections do not take/,
    ],
    [
      ['backup', '--engine', 'mysql', '--source', s.url('shop'), '--to', `file://${dir}/x`, '--type', 'incremental'],
      /there is no backup of shop .* for this incremental backup to build on; take one first with --type full/,
    ],
    [
      [
        ...['backup', '--engine', 'mysql', '--source', s.url('shop'), '--to', `file://${dir}/x`],
        ...['--method', 'physical', '--type', 'incremental'],
      ],
      new RegExp(
        /there is no physical backup of shop .* to build on; take one first/.source +
          / with: dbbackup backup --engine mysql --method physical --type full/.source,
      ),
    ],
  ],
  unreachable: {
    url: 'mysql://root@127.0.0.1:1/shop',
    message: new RegExp(
      /could not connect to mysql:\/\/root@127\.0\.0\.1:1\/shop: mariadb/.source +
        / exited with code 1: .*Can't connect to server on '127\.0\.0\.1'/.source,
    ),
  },
  wrongPassword: /Access denied for user 'root'@'127\.0\.0\.1' \(using password: YES\)/,
  lockHeld: /another backup of big to the same place is running \(lock dbbackup-[0-9a-f]{48} on .*\).*--lock-wait/,
  sigtermCompression: 'gzip',
  // An existing empty database stays, empty, with its options.
  checkDamagedRestore: async (s, store, compression) => {
    const name = `flip_${compression}_empty`;
    await s.sql(`CREATE DATABASE ${name} CHARACTER SET latin1`);
    const e = await dbbackup(['restore', '--from', store, '--latest', '--target', s.url(name)], { env: s.env });
    assert.equal(e.code, 3, e.stderr);
    assert.deepEqual(await mariaFingerprint(s as LocalMariaDB, name), {
      triggers: 'NULL',
      routines: 'NULL',
      events: 'NULL',
    });
    assert.match(await s.sql(`SHOW CREATE DATABASE ${name}`), /CHARACTER SET latin1/);
  },
  // Commits go on: no session of the run holds a BACKUP STAGE or a lock any more.
  afterSigterm: async (s) => {
    await s.sql(
      'CREATE TABLE big.after_sigterm (id INT); INSERT INTO ' +
        'big.after_sigterm VALUES (1); DROP TABLE big.after_sigterm;',
    );
  },
  secrets: {
    watch: /mariadb|mysql|zstd|age|dbbackup/,
    sawDump: (c) => c.includes('mariadb-dump') && c.includes('--single-transaction'),
    sawRestore: (c) => c.includes('mariadb') && c.includes('--binary-mode'),
    prepare: async (s, database) => {
      await mariadb.occupied(s, database);
    },
    restoreArgs: ['--clean', '--with-globals'],
  },
};

/** The engines the SQL contract runs over. */

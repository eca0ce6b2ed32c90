// Parallel logical backup and restore of PostgreSQL (--jobs N: pg_dump -F d -j N through a spool,
// stored as one tar archive and a copy of its table of contents; restored into a new database that
// is swapped in on success, each table loaded while the archive streams), against real servers.
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manifestDigest } from '../../lib/core/manifest';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { pgTool } from '../../runner/src/engines/postgres/tools';
import { fingerprint, loadFixture } from '../harness/pg-fixture';
import { dbbackup, logLines } from '../harness/runner';
import { removeSmallFilesystem, smallFilesystem, withSmallTmp } from '../harness/small-fs';
import { flipByte } from '../harness/damage';

const TABLES = 2100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PostgreSQL: parallel backup and restore (--jobs)', () => {
  let source: LocalPostgres;
  let target: LocalPostgres;
  let dir: string;
  let tmp: string;
  let expected: Record<string, string>;
  let identity: string;
  let otherIdentity: string;
  let recipient: string;

  // TMPDIR: the spool and scratch directories go there, so the tests can see that none is left.
  const env = (server: LocalPostgres) => ({ ...server.env, TMPDIR: tmp });
  const backup = (database: string, store: string, ...extra: string[]) =>
    dbbackup(['backup', '--engine', 'postgres', '--source', source.url(database), '--to', store, '--json', ...extra], {
      env: env(source),
      timeoutMs: 300000,
    });
  const restore = (store: string, database: string, ...extra: string[]) =>
    dbbackup(['restore', '--from', store, '--latest', '--target', target.url(database), ...extra], {
      env: env(target),
      timeoutMs: 300000,
    });
  const leftovers = async () =>
    (await target.sql(`SELECT datname FROM pg_database WHERE datname LIKE '%dbbackup%'`))
      .split('\n')
      .filter((l) => l !== '');
  const occupied = async (database: string) => {
    await target.sql(`CREATE DATABASE ${database}`);
    await target.sql(`CREATE TABLE keep_me (v text); INSERT INTO keep_me VALUES ('still here')`, database);
    return fingerprint(target, database);
  };

  beforeAll(async () => {
    // The source dumps thousands of tables (pg_dump's leader, its workers and the row counts each
    // lock every table); the target keeps PostgreSQL's default lock table.
    [source, target] = await Promise.all([
      startLocalPostgres({ settings: { max_locks_per_transaction: '512' } }),
      startLocalPostgres(),
    ]);
    await loadFixture(source, 'shop');
    // The fixture's grants name this role: the target server has it too (--with-globals is tested elsewhere).
    await target.sql('CREATE ROLE reporting NOLOGIN');
    await source.sql('CREATE DATABASE many');
    const batches = Array.from(
      { length: Math.ceil(TABLES / 1000) },
      (_, b) =>
        `DO $$ BEGIN FOR i IN ${b * 1000 + 1}..${Math.min(TABLES, (b + 1) * 1000)} LOOP ` +
        `EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i); ` +
        `EXECUTE format('INSERT INTO t%s SELECT g, md5((g * %s)::text) FROM generate_series(1, 3) g', i, i); ` +
        'END LOOP; END $$;',
    );
    await source.sql(batches.join('\n'), 'many');
    // Large enough (about 14 MB stored) that tables load while the archive still streams.
    await source.sql('CREATE DATABASE big');
    await source.sql(
      Array.from(
        { length: 4 },
        (_, t) =>
          `CREATE TABLE big_${t} (id int PRIMARY KEY, v text); ` +
          `INSERT INTO big_${t} SELECT g, md5((g * ${t + 7})::text) || md5(g::text) FROM generate_series(1, 110000) g;`,
      ).join('\n'),
      'big',
    );
    // Page counts for the spool's estimate (pg_class, as of the last ANALYZE).
    await source.sql('ANALYZE', 'big');
    expected = await fingerprint(source, 'shop');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-parallel-'));
    tmp = path.join(dir, 'tmp');
    fs.mkdirSync(tmp);
    identity = path.join(dir, 'identity.txt');
    otherIdentity = path.join(dir, 'other.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    execFileSync('age-keygen', ['-o', otherIdentity], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
  }, 300000);
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test(
    '--jobs 2 round trip: one tar archive of the directory dump, ' +
      'verify --deep, identical rows; nothing left in TMPDIR',
    async () => {
      const store = `file://${dir}/round`;
      const b = await backup('shop', store, '--jobs', '2');
      assert.equal(b.code, 0, b.stderr);
      const m = JSON.parse(b.stdout);
      const database = m.artifacts.find((a: { role: string }) => a.role === 'database');
      assert.equal(database.name, 'database.pgdir.tar.zst');
      assert.equal(database.format, 'pg_dump-directory-tar');
      const toc = m.artifacts.find((a: { role: string }) => a.role === 'database-toc');
      assert.equal(toc.name, 'database.pgdir.toc.zst');
      assert.ok(
        m.manualRestore.includes(
          '# database-toc: not needed by hand (a copy of database.pgdir/toc.dat, ' + 'which the archive holds too)',
        ),
        m.manualRestore.join('\n'),
      );
      assert.deepEqual(
        m.tables.find((t: { name: string }) => t.name === 'orders'),
        { schema: 'sales', name: 'orders', rows: 4000 },
      );
      assert.ok(
        logLines(b.stderr).some((l) => /parallel dump: pg_dump -j 2/.test(String(l.msg ?? l.message))),
        b.stderr,
      );
      // The archive is a plain tar of pg_dump's directory: toc.dat and a file per table's data.
      const stored = path.join(dir, 'round', m.id, database.name);
      const members = execFileSync('bash', ['-c', `zstd -d -c ${stored} | tar -t`])
        .toString()
        .split('\n');
      assert.ok(members.includes('database.pgdir/toc.dat'), members.join(' '));
      assert.ok(members.filter((n) => /^database\.pgdir\/\d+\.dat$/.test(n)).length >= 4, members.join(' '));
      assert.deepEqual(fs.readdirSync(tmp), [], 'the spool is removed');

      const v = await dbbackup(['verify', '--from', store, '--latest', '--deep'], { env: env(target) });
      assert.equal(v.code, 0, v.stderr);

      const r = await restore(store, 'round_new', '--jobs', '2');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /loading each table as the archive streams/);
      assert.deepEqual(await fingerprint(target, 'round_new'), expected);
      // The stored copy of the table of contents is the archive's own toc.dat.
      const tocBytes = execFileSync('bash', ['-c', `zstd -d -c ${path.join(dir, 'round', m.id, toc.name)}`]);
      const inArchive = execFileSync('bash', ['-c', `zstd -d -c ${stored} | tar -x -O -f - database.pgdir/toc.dat`]);
      assert.ok(tocBytes.equals(inArchive));

      // Into a database with objects of its own: --clean swaps the restored copy in for it.
      await occupied('round_clean');
      const c = await restore(store, 'round_clean', '--clean');
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(await fingerprint(target, 'round_clean'), expected);
      // ... and without --clean it is refused before anything is made.
      const before = await occupied('round_busy');
      const refused = await restore(store, 'round_busy');
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /already has 1 tables.*--clean/);
      assert.deepEqual(await fingerprint(target, 'round_busy'), before);
      assert.deepEqual(await leftovers(), []);
      assert.deepEqual(fs.readdirSync(tmp), [], 'the scratch directories are removed');
    },
  );

  test(
    'the manual restore line of a parallel backup ' + 'works with standard tools (zstd, tar, pg_restore -j)',
    async () => {
      const store = `file://${dir}/manual`;
      const b = await backup('shop', store, '--jobs', '2');
      assert.equal(b.code, 0, b.stderr);
      const m = JSON.parse(b.stdout);
      const line = m.manualRestore[m.manualRestore.indexOf('# database:') + 1] as string;
      assert.match(line, /\| zstd -d -c \| tar -x -f - && pg_restore --jobs=4 .* database\.pgdir$/);
      await target.sql('CREATE DATABASE by_hand');
      const work = fs.mkdtempSync(path.join(dir, 'hand-'));
      execFileSync('bash', ['-o', 'pipefail', '-c', line.replace('TARGET_DATABASE', 'by_hand')], {
        cwd: work,
        env: {
          ...process.env,
          PATH: `${path.dirname(pgTool('pg_restore'))}:${process.env.PATH}`,
          PGHOST: '127.0.0.1',
          PGPORT: String(target.port),
          PGUSER: 'postgres',
          PGPASSWORD: target.password,
        },
        stdio: 'ignore',
      });
      assert.deepEqual(await fingerprint(target, 'by_hand'), expected);
    },
  );

  test(
    'a single-stream backup restores with --jobs 2 (fetched to a scratch ' +
      'file so pg_restore can seek); damaged: exit 3, untouched',
    async () => {
      const store = `file://${dir}/single`;
      const b = await backup('shop', store);
      assert.equal(b.code, 0, b.stderr);
      const m = JSON.parse(b.stdout);
      assert.equal(m.artifacts[0].name, 'database.pgdump.zst', 'a small database is dumped as one stream');
      const r = await restore(store, 'single_j2', '--jobs', '2');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /pg_restore -j 2/);
      assert.deepEqual(await fingerprint(target, 'single_j2'), expected);
      assert.deepEqual(fs.readdirSync(tmp), []);

      // Damaged: the scratch file is never handed to pg_restore, the target stays as it was.
      const object = path.join(dir, 'single', m.id, m.artifacts[0].name);
      flipByte(object);
      const before = await occupied('single_flip');
      const f = await restore(store, 'single_flip', '--clean', '--jobs', '2');
      assert.equal(f.code, 3, f.stderr);
      assert.doesNotMatch(f.stderr, /pg_restore -j 2/);
      assert.deepEqual(await fingerprint(target, 'single_flip'), before);
      assert.deepEqual(await leftovers(), []);
      assert.deepEqual(fs.readdirSync(tmp), []);
    },
  );

  test(
    'one flipped byte: restore exits 3 and leaves the ' + 'target untouched, makes no database, leaves no scratch',
    async () => {
      const store = `file://${dir}/flip`;
      const b = await backup('shop', store, '--jobs', '2');
      assert.equal(b.code, 0, b.stderr);
      const m = JSON.parse(b.stdout);
      const name = m.artifacts.find((a: { role: string }) => a.role === 'database').name;
      const object = path.join(dir, 'flip', m.id, name);
      flipByte(object);

      const before = await occupied('flip_target');
      const r = await restore(store, 'flip_target', '--clean', '--jobs', '2');
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /database\.pgdir\.tar\.zst: sha256 .* does not match/);
      assert.deepEqual(await fingerprint(target, 'flip_target'), before);
      const fresh = await restore(store, 'flip_new', '--jobs', '2');
      assert.equal(fresh.code, 3, fresh.stderr);
      assert.equal(await target.sql(`SELECT count(*) FROM pg_database WHERE datname = 'flip_new'`), '0');
      assert.deepEqual(await leftovers(), []);
      assert.deepEqual(fs.readdirSync(tmp), []);
    },
  );

  test(
    'the wrong age identity: restore fails (exit 1, as every ' +
      'restore with a wrong key) and the target is untouched',
    async () => {
      const store = `file://${dir}/wrongkey`;
      const b = await backup('shop', store, '--jobs', '2', '--encrypt', `age:${recipient}`);
      assert.equal(b.code, 0, b.stderr);
      const ok = await restore(store, 'rightkey', '--identity', identity);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(await fingerprint(target, 'rightkey'), expected);

      const before = await occupied('wrongkey_target');
      const r = await restore(store, 'wrongkey_target', '--clean', '--identity', otherIdentity);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /no identity matched any of the recipients/);
      assert.deepEqual(await fingerprint(target, 'wrongkey_target'), before);
      assert.deepEqual(await leftovers(), []);
      assert.deepEqual(fs.readdirSync(tmp), []);
    },
  );

  test(
    'a parallel dump that fails (a table lock it waits for): exit ' + '1 naming the table, no manifest, no spool left',
    async () => {
      const conn = ['-h', '127.0.0.1', '-p', String(source.port), '-U', 'postgres', '-d', 'shop'];
      const holder = spawn(pgTool('psql'), ['-X', '-q', ...conn], {
        env: { ...process.env, PGPASSWORD: source.password },
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      try {
        holder.stdin!.write('BEGIN; LOCK TABLE sales.orders IN ACCESS EXCLUSIVE MODE;\n');
        const locked =
          `SELECT count(*) FROM pg_locks WHERE mode = ` +
          `'AccessExclusiveLock' AND relation = 'sales.orders'::regclass`;
        for (let i = 0; i < 100 && (await source.sql(locked, 'shop')) !== '1'; i++) await sleep(100);
        const store = `file://${dir}/locked`;
        const b = await backup('shop', store, '--jobs', '2', '--lock-timeout', '1');
        assert.equal(b.code, 1, b.stderr);
        assert.match(b.stderr, /pg_dump gave up after 1 s waiting for a lock on table sales\.orders/);
        const folders = fs.existsSync(path.join(dir, 'locked')) ? fs.readdirSync(path.join(dir, 'locked')) : [];
        for (const f of folders) assert.equal(fs.existsSync(path.join(dir, 'locked', f, 'manifest.json')), false);
        assert.deepEqual(fs.readdirSync(tmp), [], 'the spool is removed');
      } finally {
        holder.kill('SIGKILL');
      }
    },
  );

  test(
    'tables load while the archive streams; a byte flipped near its end is caught after some loaded: ' +
      'exit 3, the target untouched, the new database dropped',
    async () => {
      const store = `file://${dir}/big`;
      const b = await backup('big', store, '--jobs', '2');
      assert.equal(b.code, 0, b.stderr);
      const m = JSON.parse(b.stdout);
      const ok = await restore(store, 'big_ok', '--jobs', '2');
      assert.equal(ok.code, 0, ok.stderr);
      const sample = (t: number) => `SELECT count(*) || ':' || md5(string_agg(v, '|' ORDER BY id)) FROM big_${t}`;
      for (let t = 0; t < 4; t++)
        assert.equal(await target.sql(sample(t), 'big_ok'), await source.sql(sample(t), 'big'));

      const name = m.artifacts.find((a: { role: string }) => a.role === 'database').name;
      const object = path.join(dir, 'big', m.id, name);
      const bytes = fs.readFileSync(object);
      assert.ok(bytes.length > 8 << 20, `${bytes.length} bytes stored: too small to stream past the held-back end`);
      bytes[bytes.length - (5 << 20)] ^= 0x01;
      fs.writeFileSync(object, bytes);
      const before = await occupied('big_flip');
      const r = await restore(store, 'big_flip', '--clean', '--jobs', '2');
      assert.equal(r.code, 3, r.stderr);
      assert.ok(
        logLines(r.stderr).some((l) => /^loading \d+ table\(s\) into /.test(String(l.msg ?? l.message))),
        'a table was loaded before the damage was found\n' + r.stderr,
      );
      assert.deepEqual(await fingerprint(target, 'big_flip'), before);
      assert.deepEqual(await leftovers(), []);
      assert.deepEqual(fs.readdirSync(tmp), []);
    },
  );

  test('large objects, sequence values, partitions, a materialized view, comments, foreign keys', async () => {
    await source.sql('CREATE DATABASE rich');
    await source.sql(
      `CREATE TABLE a (id serial PRIMARY KEY, v text);
       INSERT INTO a (v) SELECT md5(i::text) FROM generate_series(1, 70000) i;
       CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id), doc jsonb);
       INSERT INTO b SELECT i, i, jsonb_build_object('k', i) FROM generate_series(1, 70000) i;
       CREATE TABLE p (id int, at date) PARTITION BY RANGE (at);
       CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2025-01-01') TO ('2025-07-01');
       CREATE TABLE p2 PARTITION OF p FOR VALUES FROM ('2025-07-01') TO ('2026-01-01');
       INSERT INTO p SELECT i, date '2025-01-01' + (i % 360) FROM generate_series(1, 50000) i;
       CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS c FROM a;
       CREATE INDEX ON b ((doc->>'k'));
       SELECT lo_from_bytea(0, convert_to(repeat('large object ', 1000), 'UTF8'));
       SELECT setval('a_id_seq', 123456);
       COMMENT ON TABLE a IS 'the a table';`,
      'rich',
    );
    const facts =
      `SELECT (SELECT md5(string_agg(v, '' ORDER BY id)) FROM a), (SELECT count(*) FROM b), ` +
      `(SELECT count(*) FROM p1) || '/' || (SELECT count(*) FROM p2), (SELECT c FROM mv), ` +
      `(SELECT last_value FROM a_id_seq), (SELECT md5(string_agg(encode(data, 'hex'), '' ORDER BY loid, pageno)) ` +
      `FROM pg_largeobject), obj_description('a'::regclass), ` +
      `(SELECT count(*) FROM pg_indexes WHERE tablename = 'b'), ` +
      `(SELECT count(*) FROM pg_constraint WHERE contype = 'f')`;
    const store = `file://${dir}/rich`;
    const b = await backup('rich', store, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr);
    const r = await restore(store, 'rich', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /as the archive streams/);
    assert.equal(await target.sql(facts, 'rich'), await source.sql(facts, 'rich'));
  });

  withSmallTmp('a TMPDIR too small for the spool (the 2 largest tables): exit 2 before pg_dump starts', async () => {
    const smallTmp = smallFilesystem(dir, 8)!;
    try {
      const store = path.join(dir, 'small-tmp');
      const b = await dbbackup(
        ['backup', '--engine', 'postgres', '--source', source.url('big'), '--to', `file://${store}`, '--jobs', '2'],
        { env: { ...source.env, TMPDIR: smallTmp } },
      );
      assert.equal(b.code, 2, b.stderr);
      assert.match(b.stderr, /the spool of pg_dump in TMPDIR \(.*dbbackup-spool-\w+\) may need up to [\d.]+ MiB/);
      assert.match(b.stderr, /fewer --jobs, or --jobs 1 \(one stream, no spool\)/);
      assert.deepEqual(fs.readdirSync(smallTmp), []);
      const folders = fs.existsSync(store) ? fs.readdirSync(store) : [];
      for (const f of folders) assert.equal(fs.existsSync(path.join(store, f, 'manifest.json')), false);
    } finally {
      removeSmallFilesystem(smallTmp);
    }
  });

  test('SIGTERM while tables load: exit 1, the target untouched, the new database dropped, no scratch', async () => {
    const store = `file://${dir}/sigterm`;
    const b = await backup('big', store, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr);
    const before = await occupied('sig_target');
    const copying =
      `SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'sig\\_target\\_dbbackup\\_new\\_%' ` +
      `AND query LIKE 'COPY %'`;
    let signalled = false;
    const r = await dbbackup(
      ['restore', '--from', store, '--latest', '--target', target.url('sig_target'), '--clean', '--jobs', '2'],
      {
        env: env(target),
        timeoutMs: 120000,
        onSpawn: (pid) => {
          void (async () => {
            for (const end = Date.now() + 60000; Date.now() < end; await sleep(20)) {
              if ((await target.sql(copying).catch(() => '0')) !== '0') {
                process.kill(pid, 'SIGTERM');
                signalled = true;
                return;
              }
            }
          })();
        },
      },
    );
    assert.ok(signalled, 'no COPY into the new database was seen\n' + r.stderr);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /interrupted by SIGTERM/);
    assert.deepEqual(await fingerprint(target, 'sig_target'), before);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  test('a parallel backup without the stored table of contents (older) restores by laying it down first', async () => {
    const store = `file://${dir}/older`;
    const b = await backup('shop', store, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr);
    const id = JSON.parse(b.stdout).id;
    const manifestPath = path.join(dir, 'older', id, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    delete m.digest;
    m.artifacts = m.artifacts.filter((a: { role: string }) => a.role !== 'database-toc');
    fs.writeFileSync(manifestPath, JSON.stringify({ ...m, digest: manifestDigest(m) }));
    const r = await restore(store, 'older_new', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /laid the parallel dump down/);
    assert.doesNotMatch(r.stderr, /as the archive streams/);
    assert.deepEqual(await fingerprint(target, 'older_new'), expected);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  test(`${TABLES} tables: --jobs 2 backup and restore into a server with the default lock table`, async () => {
    assert.equal(await target.sql('SHOW max_locks_per_transaction'), '64');
    const store = `file://${dir}/many`;
    const b = await backup('many', store, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr.slice(-3000));
    assert.equal(JSON.parse(b.stdout).tables.length, TABLES);
    const r = await restore(store, 'many', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.equal(
      await target.sql(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`, 'many'),
      String(TABLES),
    );
    const sample = `SELECT md5(string_agg(v, '|' ORDER BY id)) FROM t${TABLES}`;
    assert.equal(await target.sql(sample, 'many'), await source.sql(sample, 'many'));
    assert.deepEqual(await leftovers(), []);
  });
});

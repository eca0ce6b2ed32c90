// The checks before and around a parallel MySQL/MariaDB dump (mydumper), against a real MariaDB
// server: a missing mydumper/myloader is exit 2 before anything is read or written; RELOAD is
// checked before the dump (an explicit --jobs N: exit 2; the default: one stream, with a warning);
// the spool's estimate (the N largest tables) is checked against TMPDIR's free space; the lock
// watch stops mydumper when its FLUSH TABLES WITH READ LOCK waits on another session's table lock;
// a parallel restore loads a table's first row file alone (two loaders on an empty table deadlock).
// A small TMPDIR is a tmpfs of a few MiB (mounting needs root: without it those two tests are
// skipped, saying so).
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { findTool } from '../../runner/src/pipeline/stages';
import { loadMariaFixture } from '../harness/mariadb-fixture';
import { waitFor } from '../harness/ports';
import { allCmdlines } from '../harness/procs';
import { DBBACKUP, dbbackup } from '../harness/runner';
import { smallFilesystem, withSmallTmp } from '../harness/small-fs';

describe('MariaDB: the checks of a parallel dump', () => {
  let db: LocalMariaDB;
  let dir: string;
  let tmp: string;
  let password: string;
  const holders: ChildProcess[] = [];
  const mounts: string[] = [];
  const small = (mib: number) => {
    const at = smallFilesystem(dir, mib)!;
    mounts.push(at);
    return at;
  };
  const run = (args: string[], env: Record<string, string | undefined> = {}) =>
    dbbackup(args, { env: { ...db.env, TMPDIR: tmp, ...env }, timeoutMs: 120000 });
  const backup = (database: string, store: string, ...extra: string[]) =>
    run(['backup', '--engine', 'mysql', '--source', db.url(database), '--to', store, '--json', ...extra]);
  /** A backup as `nor`, an account without RELOAD. */
  const limitedBackup = (database: string, store: string, ...extra: string[]) =>
    run(['backup', '--engine', 'mysql', '--source', db.url(database, 'nor'), '--to', store, '--json', ...extra], {
      DBBACKUP_SOURCE_PASSWORD: password,
      MYSQL_PWD: undefined,
    });
  const stored = (store: string) => (fs.existsSync(store) ? fs.readdirSync(store) : []);
  /** A PATH of links to the tools a MariaDB backup and restore run, without `without`. */
  const pathWithout = (...without: string[]) => {
    const bin = fs.mkdtempSync(path.join(dir, 'bin-'));
    const tools = ['mariadb', 'mysql', 'mariadb-dump', 'mysqldump', 'mydumper', 'myloader', 'zstd', 'tar', 'sh'];
    for (const t of tools) {
      const found = findTool([t]);
      if (found !== undefined && !without.includes(t)) fs.symlinkSync(found, path.join(bin, t));
    }
    return bin;
  };

  /** A session holding LOCK TABLES `audit` WRITE on shop until its stdin ends with UNLOCK TABLES. */
  const lockAudit = (): ChildProcess => {
    const holder = spawn(findTool(['mariadb', 'mysql'])!, ['--no-defaults', '-S', db.socket, '-u', 'root', 'shop'], {
      env: { ...process.env, MYSQL_PWD: db.password },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    holders.push(holder);
    holder.stdin!.write('LOCK TABLES `audit` WRITE;\n');
    return holder;
  };

  beforeAll(async () => {
    db = await startLocalMariaDB();
    await loadMariaFixture(db, 'shop', 300);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-parallel-checks-'));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-parallel-checks-tmp-'));
    // Two tables of more than PARALLEL_TABLE_MIN_BYTES (64 MiB) of data and indexes, for the jobs rule
    // (about 75 MiB each, a few seconds).
    await db.sql('CREATE DATABASE wide');
    for (const t of ['a', 'b']) {
      await db.sql(`CREATE TABLE ${t} (id INT PRIMARY KEY, v CHAR(200) NOT NULL, KEY (v)) ENGINE=InnoDB`, 'wide');
      await db.sql(`INSERT INTO ${t} SELECT seq, CONCAT(seq, REPEAT('x', 190)) FROM seq_1_to_120000`, 'wide');
      await db.sql(`ANALYZE TABLE ${t}`, 'wide');
    }
    // A table whose dump is much larger than its (compressed) pages: past the estimate, into ENOSPC.
    await db.sql(
      'CREATE DATABASE packed; CREATE TABLE packed.c (id INT PRIMARY KEY, v MEDIUMTEXT NOT NULL) ' +
        'ENGINE=InnoDB ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=1',
    );
    await db.sql(`INSERT INTO c SELECT seq, REPEAT('a', 8000) FROM seq_1_to_2000; ANALYZE TABLE c`, 'packed');
    // A throwaway password for the throwaway server, made here rather than written in the test.
    password = crypto.randomBytes(12).toString('hex');
    await db.sql(
      `CREATE USER 'nor'@'127.0.0.1' IDENTIFIED BY '${password}';
       GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON wide.* TO 'nor'@'127.0.0.1';
       GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON shop.* TO 'nor'@'127.0.0.1';`,
    );
  }, 300000);
  afterAll(async () => {
    for (const h of holders) h.kill('SIGKILL');
    for (const m of mounts) execFileSync('umount', [m]);
    await db?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('no mydumper on PATH: --jobs 2 is exit 2 naming it and its package, nothing written', async () => {
    const store = path.join(dir, 'no-mydumper');
    const r = await backup('shop', `file://${store}`, '--jobs', '2');
    const PATH = pathWithout('mydumper');
    const missing = await run(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${store}`], {
      PATH,
      DBBACKUP_JOBS: '2',
    });
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /mydumper is not installed or not on PATH .*needed for --jobs 2/);
    assert.match(missing.stderr, /apt-get install mydumper/);
    // The one backup in the store is the one made with mydumper there.
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      stored(store).filter((n) => /^\d{8}T/.test(n)),
      [JSON.parse(r.stdout).id],
    );
    // Without --jobs the same PATH backs up as one stream: mydumper is only needed when asked for.
    const single = await run(
      ['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${store}`, '--json'],
      { PATH },
    );
    assert.equal(single.code, 0, single.stderr);
    assert.equal(JSON.parse(single.stdout).artifacts[0].name, 'database.sql.zst');

    // A backup dumped by mydumper restores with myloader: without it, exit 2 before the target is made.
    const restore = await run(
      ['restore', '--from', `file://${store}`, '--id', JSON.parse(r.stdout).id, '--target', db.url('no_loader')],
      { PATH: pathWithout('myloader') },
    );
    assert.equal(restore.code, 2, restore.stderr);
    assert.match(
      restore.stderr,
      /myloader is not installed or not on PATH .*dumped by mydumper.*apt-get install mydumper/,
    );
    assert.equal(await db.sql(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'no_loader'`), '0');
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  test('a dump tool that ends 0 having written nothing fails the backup: exit 1, nothing stored', async () => {
    // mariadb-dump and mydumper replaced by scripts that answer --version as the real tool and write nothing else.
    const PATH = pathWithout('mariadb-dump', 'mysqldump', 'mydumper');
    for (const t of ['mariadb-dump', 'mydumper']) {
      fs.writeFileSync(
        path.join(PATH, t),
        `#!/bin/sh\nfor a; do [ "$a" = --version ] && exec ${findTool([t])} --version; done\nexit 0\n`,
        { mode: 0o755 },
      );
    }
    for (const [tool, jobs] of [
      ['mariadb-dump', '1'],
      ['mydumper', '2'],
    ]) {
      const store = path.join(dir, `silent-${tool}`);
      const r = await run(
        ['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${store}`, '--jobs', jobs],
        { PATH },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`${tool} ended without an error but wrote no(thing| metadata file)`));
      assert.deepEqual(stored(store), [], `${tool}: ${stored(store)}`);
    }
  });

  /**
   * A backup whose mariadb-dump --system=users (a stub in front of the real tool, which writes each
   * run's arguments to a log) meets an unknown account (1133): without --force it stops there, with
   * --force it goes on to the end (the real tool's output), then does what `after` says (a shell
   * command). The manifest and the arguments of every --system=users run.
   */
  const usersPastUnknown = async (name: string, after: string) => {
    const PATH = pathWithout('mariadb-dump', 'mysqldump');
    const runs = path.join(dir, `${name}.runs`);
    const real = findTool(['mariadb-dump']);
    const unknown =
      `echo "mariadb-dump: Couldn't execute 'SHOW CREATE USER 'g'@'h.example'': ` +
      `Can't find any matching row in the user table (1133)" >&2`;
    fs.writeFileSync(
      path.join(PATH, 'mariadb-dump'),
      `#!/bin/sh
case " $* " in *" --system=users "*) echo "$*" >> ${runs};; esac
` +
        `case " $* " in *" --system=users "*" --force "*) ${real} "$@"; ${unknown}; ${after};;
` +
        `*" --system=users "*) ${unknown}; exit 2;; esac
exec ${real} "$@"
`,
      { mode: 0o755 },
    );
    const store = path.join(dir, name);
    const r = await run(
      ['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${store}`, '--json', '--jobs', '1'],
      { PATH },
    );
    assert.equal(r.code, 0, r.stderr);
    return { m: JSON.parse(r.stdout), runs: fs.readFileSync(runs, 'utf8').trim().split('\n') };
  };

  test('users and grants past an unknown account: one --force run, the rest stored, the account named', async () => {
    const { m, runs } = await usersPastUnknown('users-unknown', 'exit 2');
    assert.equal(runs.length, 1, runs.join('\n'));
    assert.match(runs[0], / --force\b/);
    assert.deepEqual(
      m.artifacts.map((a: { role: string }) => a.role),
      ['database', 'globals'],
    );
    assert.match(m.warnings.join('\n'), /users and grants were saved without 'g'@'h\.example': mysql\.user lists/);
  });

  test('users and grants: another error beside the unknown account skips them, saying so', async () => {
    // It also fails on a table it may not read.
    const denied =
      `echo "mariadb-dump: Couldn't execute 'SELECT * FROM mysql.roles_mapping': ` +
      'SELECT command denied (1142)" >&2; exit 2';
    const { m, runs } = await usersPastUnknown('users-unknown-denied', denied);
    assert.equal(runs.length, 1, runs.join('\n'));
    assert.deepEqual(
      m.artifacts.map((a: { role: string }) => a.role),
      ['database'],
    );
    assert.match(m.warnings.join('\n'), /users and grants were not saved: mysql\.user lists 'g'@'h\.example'/);
  });

  test('an account without RELOAD: --jobs 2 is exit 2 naming the privilege and the fix before any dump', async () => {
    const store = path.join(dir, 'no-reload');
    const r = await limitedBackup('wide', `file://${store}`, '--jobs', '2');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--jobs 2 dumps with mydumper, whose consistent snapshot .* needs the RELOAD privilege/);
    assert.match(r.stderr, /GRANT RELOAD ON \*\.\* TO 'nor'@'127\.0\.0\.1'\), or give --jobs 1/);
    assert.doesNotMatch(r.stderr, /parallel dump: mydumper/);
    assert.deepEqual(
      stored(store).filter((n) => /^\d{8}T/.test(n) && fs.existsSync(path.join(store, n, 'manifest.json'))),
      [],
    );
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  test('without --jobs, two large tables still dump as one stream (mariadb-dump), with or without RELOAD', async () => {
    const root = await backup('wide', `file://${dir}/default-root`);
    assert.equal(root.code, 0, root.stderr);
    assert.equal(JSON.parse(root.stdout).artifacts[0].name, 'database.sql.zst');
    const limited = await limitedBackup('wide', `file://${dir}/default-nor`);
    assert.equal(limited.code, 0, limited.stderr);
    assert.equal(JSON.parse(limited.stdout).artifacts[0].name, 'database.sql.zst');
    assert.doesNotMatch(limited.stderr, /mydumper/);
    assert.deepEqual(fs.readdirSync(tmp), []);
  });

  withSmallTmp(
    "more than TMPDIR's filesystem has free for the spool: exit 2 naming TMPDIR, the bytes, the fix",
    async () => {
      const smallTmp = small(8);
      const store = path.join(dir, 'small-tmp');
      const r = await run(
        ['backup', '--engine', 'mysql', '--source', db.url('wide'), '--to', `file://${store}`, '--jobs', '2'],
        { TMPDIR: smallTmp },
      );
      assert.equal(r.code, 2, r.stderr);
      // The two largest tables' data: about 2 × 28 MiB.
      assert.match(r.stderr, /the spool of mydumper in TMPDIR \(.*dbbackup-spool-\w+\) may need up to [5-6]\d\.\d MiB/);
      assert.match(r.stderr, /but its filesystem has [\d.]+ MiB \(\d+ bytes\) free; give TMPDIR a directory/);
      assert.match(r.stderr, /fewer --jobs, or --jobs 1 \(one stream, no spool\)/);
      assert.doesNotMatch(r.stderr, /mydumper exited/);
      assert.deepEqual(
        stored(store).filter((n) => fs.existsSync(path.join(store, n, 'manifest.json'))),
        [],
      );
      assert.deepEqual(fs.readdirSync(smallTmp), []);
      // --jobs 1 streams with no spool: the same TMPDIR does.
      const single = await run(
        ['backup', '--engine', 'mysql', '--source', db.url('wide'), '--to', `file://${store}`, '--jobs', '1'],
        { TMPDIR: smallTmp },
      );
      assert.equal(single.code, 0, single.stderr);
    },
  );

  withSmallTmp('mydumper filling the spool past the estimate: the error names the spool on TMPDIR', async () => {
    const smallTmp = small(8);
    const estimate = Number(
      await db.sql(`SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'packed'`),
    );
    // The check passes (the pages fit), the dump's 16 MB of text do not.
    assert.ok(estimate < 4 * 1024 * 1024, `packed.c has ${estimate} bytes of pages`);
    const store = path.join(dir, 'full-tmp');
    const r = await run(
      ['backup', '--engine', 'mysql', '--source', db.url('packed'), '--to', `file://${store}`, '--jobs', '2'],
      { TMPDIR: smallTmp },
    );
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trim().split('\n').pop()!;
    assert.match(last, /the spool in TMPDIR \(.*dbbackup-spool-\w+\) filled its filesystem: mydumper could not write/);
    assert.match(last, /give TMPDIR a directory on a filesystem with more free space, fewer --jobs, or --jobs 1/);
    assert.deepEqual(fs.readdirSync(smallTmp), []);
  });

  test("mydumper's global read lock ends once its snapshots are open: no write waits for the dump", async () => {
    // Without --trx-consistency-only mydumper 0.10 keeps FLUSH TABLES WITH READ LOCK until its
    // non-InnoDB tables are dumped, and a race there (the last such table done before the main
    // thread counted it) left it waiting for ever: the dump must not take that path. The lock, when
    // held, spans the main thread's queueing of every table and the Aria table's rows: 300 tables
    // and 500 000 rows, so a write during it cannot miss it (without the option: 3 failures in 3).
    await db.sql('CREATE DATABASE probe; CREATE TABLE probe.p (id INT PRIMARY KEY)');
    await db.sql('CREATE DATABASE span');
    await db.sql(
      'CREATE TABLE r (id INT NOT NULL, v CHAR(20) NOT NULL) ENGINE=Aria; ' +
        `INSERT INTO r SELECT seq, 'v' FROM seq_1_to_500000; ` +
        Array.from(
          { length: 300 },
          (_, i) => `CREATE TABLE t${i} (id INT PRIMARY KEY); INSERT INTO t${i} VALUES (1);`,
        ).join(' '),
      'span',
    );
    const ownTmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
    const store = `file://${dir}/lock-span`;
    const running = run(
      ['backup', '--engine', 'mysql', '--source', db.url('span'), '--to', store, '--jobs', '2', '--json'],
      { TMPDIR: ownTmp },
    );
    // The first file after metadata.partial (written under the lock): the threads' snapshots are open.
    const dumping = () =>
      fs
        .readdirSync(ownTmp)
        .filter((n) => n.startsWith('dbbackup-spool-'))
        .some((n) => {
          const at = path.join(ownTmp, n, 'database.mydumper');
          return fs.existsSync(at) && fs.readdirSync(at).some((f) => !f.startsWith('metadata'));
        });
    await waitFor('mydumper to write a file', async () => dumping(), 60000, 2);
    // lock_wait_timeout 0: a write behind a global read lock fails at once instead of waiting.
    const write = await db.sql('SET SESSION lock_wait_timeout = 0; INSERT INTO probe.p VALUES (1)').then(
      () => 'written',
      (e: Error) => e.message,
    );
    const r = await running;
    assert.equal(write, 'written');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).artifacts[0].format, 'mydumper-directory-tar');
    assert.equal(await db.sql('SELECT COUNT(*) FROM probe.p'), '1');
    assert.deepEqual(fs.readdirSync(ownTmp), []);
  });

  test('a parallel backup takes no table lock besides the moment of FLUSH TABLES WITH READ LOCK', async () => {
    // The routines, events and triggers are read by mariadb-dump alongside mydumper; its default
    // LOCK TABLES … READ on every table of the database would stop the source's writes meanwhile.
    // The server's general log holds every statement of every session of the backup.
    const logFile = path.join(db.dir, 'general.log');
    await db.sql(`SET GLOBAL general_log_file = '${logFile}'; SET GLOBAL general_log = 1`);
    let r: Awaited<ReturnType<typeof backup>>;
    try {
      r = await backup('shop', `file://${dir}/no-table-locks`, '--jobs', '2');
    } finally {
      await db.sql('SET GLOBAL general_log = 0');
    }
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      JSON.parse(r.stdout).artifacts.map((a: { role: string }) => a.role),
      ['database', 'objects', 'globals'],
    );
    const locks = fs
      .readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => /\bLOCK TABLES\b|\bWITH READ LOCK\b/i.test(l))
      .map((l) => l.replace(/^.*?\bQuery\s+/, '').trim());
    // mydumper's lock was logged: the log saw the dump's sessions.
    assert.ok(locks.includes('FLUSH TABLES WITH READ LOCK'), locks.join('\n'));
    assert.deepEqual(
      locks.filter((l) => l !== 'FLUSH TABLES WITH READ LOCK' && !l.startsWith('UNLOCK TABLES')),
      [],
    );
  });

  test("mydumper's snapshot lock behind a LOCK TABLES … WRITE gives up after --lock-timeout", async () => {
    const holder = lockAudit();
    // Held once another session's read of the table times out on it.
    const probe = 'SET SESSION lock_wait_timeout = 1; SELECT COUNT(*) FROM audit';
    const locked = () =>
      db.sql(probe, 'shop').then(
        () => false,
        (e: Error) => /Lock wait timeout/.test(String(e.message ?? e)),
      );
    await waitFor('the lock', locked, 30000);
    const store = `file://${dir}/locked`;
    try {
      const t0 = Date.now();
      const r = await backup('shop', store, '--jobs', '2', '--lock-timeout', '2');
      const ms = Date.now() - t0;
      assert.equal(r.code, 1, r.stderr);
      assert.ok(ms < 30000, `took ${ms} ms`);
      const last = r.stderr.trim().split('\n').pop()!;
      assert.match(last, /mydumper gave up after \d+ s waiting for the lock of its consistent snapshot/);
      assert.match(last, /FLUSH TABLES WITH READ LOCK.*LOCK TABLES … WRITE.*raise --lock-timeout SECONDS/);
      assert.match(r.stderr, /nothing was committed/);
      // mydumper was stopped: none of its sessions is left on the server.
      const left = `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'FLUSH TABLES%'`;
      await waitFor('mydumper to leave', async () => Number(await db.sql(left)) === 0, 10000);
      await waitFor('mydumper to end', async () => !allCmdlines().some((c) => c.includes(`--outputdir=${tmp}`)), 10000);
      assert.deepEqual(fs.readdirSync(tmp), []);
    } finally {
      holder.stdin!.end('UNLOCK TABLES;\n');
    }
    await new Promise((r) => holder.once('close', r));
    const ok = await backup('shop', store, '--jobs', '2', '--lock-timeout', '2');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).artifacts[0].format, 'mydumper-directory-tar');
  });
  test('a runner killed by SIGKILL while mydumper waits for its lock takes mydumper along (no lock left)', async () => {
    const holder = lockAudit();
    const flushing = `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'FLUSH TABLES%'`;
    const store = `file://${dir}/killed`;
    const runner = spawn(
      process.execPath,
      [
        DBBACKUP,
        'backup',
        '--engine',
        'mysql',
        '--source',
        db.url('shop'),
        '--to',
        store,
        '--jobs',
        '2',
        '--lock-timeout',
        '120',
      ],
      { env: { ...process.env, ...db.env, TMPDIR: tmp }, stdio: 'ignore' },
    );
    try {
      // mydumper is waiting for FLUSH TABLES WITH READ LOCK behind the table lock.
      await waitFor('mydumper to wait for its lock', async () => Number(await db.sql(flushing)) > 0, 60000);
      const mine = () => allCmdlines().filter((c) => c.includes('mydumper') && c.includes(`--outputdir=${tmp}`));
      assert.equal(mine().length, 1, allCmdlines().join('\n'));
      runner.kill('SIGKILL');
      await new Promise((r) => runner.once('close', r));
      await waitFor('mydumper to die with the runner', async () => mine().length === 0, 10000);
      await waitFor('its sessions to leave', async () => Number(await db.sql(flushing)) === 0, 10000);
    } finally {
      runner.kill('SIGKILL');
      holder.stdin!.end('UNLOCK TABLES;\n');
    }
    await new Promise((r) => holder.once('close', r));
    // No backup: what the killed run began holds no manifest (the next backup or prune removes it).
    const begun = stored(`${dir}/killed`).map((n) => path.join(dir, 'killed', n));
    assert.deepEqual(
      begun.filter((d) => fs.statSync(d).isDirectory() && fs.existsSync(path.join(d, 'manifest.json'))),
      [],
    );
    // What the killed run left in TMPDIR (its spool and option file) is not a backup; cleared for the next test.
    for (const n of fs.readdirSync(tmp)) fs.rmSync(path.join(tmp, n), { recursive: true, force: true });
  });
  test("a parallel restore loads a table's first row file alone, then the rest side by side", async () => {
    // One table of four mydumper chunks (MYDUMPER_CHUNK_ROWS is 250000). myloader 0.10 loads with
    // UNIQUE_CHECKS=0, under which two first inserts into an empty InnoDB table can deadlock.
    await db.sql('CREATE DATABASE chunked; CREATE TABLE chunked.t (id INT PRIMARY KEY, a INT NOT NULL, KEY (a))');
    await db.sql('INSERT INTO t SELECT seq, seq MOD 977 FROM seq_1_to_1000000; ANALYZE TABLE t', 'chunked');
    const store = path.join(dir, 'chunked');
    const b = await backup('chunked', `file://${store}`, '--jobs', '2');
    assert.equal(b.code, 0, b.stderr);
    // A myloader in front of the real one that logs when each run starts and ends, and its files.
    const PATH = pathWithout('myloader');
    const runs = path.join(dir, 'myloader.runs');
    fs.writeFileSync(
      path.join(PATH, 'myloader'),
      `#!/bin/sh
PATH="$PATH:/usr/bin:/bin"
dir=$(printf '%s\\n' "$@" | sed -n 's/^--directory=//p')
echo "$$ start $(date +%s%N) $(ls "$dir" | tr '\\n' ' ')" >> ${runs}
${findTool(['myloader'])} "$@"; rc=$?
echo "$$ end $(date +%s%N)" >> ${runs}
exit $rc
`,
      { mode: 0o755 },
    );
    const id = JSON.parse(b.stdout).id;
    const r = await run(
      ['restore', '--from', `file://${store}`, '--id', id, '--target', db.url('chunked_r'), '--jobs', '2'],
      {
        PATH,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await db.sql('SELECT COUNT(*), SUM(a) FROM t', 'chunked_r'),
      await db.sql('SELECT COUNT(*), SUM(a) FROM t', 'chunked'),
    );
    const batches = new Map<string, { start: bigint; end?: bigint; files: string[] }>();
    for (const line of fs.readFileSync(runs, 'utf8').trim().split('\n')) {
      const [pid, what, ns, ...files] = line.trim().split(/\s+/);
      if (what === 'start') batches.set(pid, { start: BigInt(ns), files });
      else batches.get(pid)!.end = BigInt(ns);
    }
    const rows = [...batches.values()]
      .filter((x) => x.files.some((f) => /^chunked\.t\.\d{5}\.sql$/.test(f)))
      .sort((x, y) => (x.start < y.start ? -1 : 1));
    assert.ok(rows.length >= 2, `the row files went to ${rows.length} loader(s): ${fs.readFileSync(runs, 'utf8')}`);
    // The first holds that one file of the table: the other loaders wait for one file, not a batch.
    assert.equal(rows[0].files.filter((f) => /^chunked\.t\./.test(f)).length, 1, fs.readFileSync(runs, 'utf8'));
    for (const later of rows.slice(1)) {
      assert.ok(
        rows[0].end! <= later.start,
        `a loader started on t before its first row file was in: ${fs.readFileSync(runs, 'utf8')}`,
      );
    }
  });
});

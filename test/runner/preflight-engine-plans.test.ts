// Check before work on the plans only an engine knows (real PostgreSQL 15 and MariaDB 10.11):
// `restore --target-dir` (physical and to a moment), `wal-fetch`, and MariaDB's chain and
// `--to-time` restores, which replay binary logs with mariadb-binlog. With a program they need
// removed from PATH each fails fast with exit 2 naming it, before anything is read, created or
// written; with PATH intact the same command works (so the refusal is the tool, nothing else).
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { DBBACKUP, dbbackup } from '../harness/runner';
import { sharedTempDir, startArchivingPostgres, switchAndWait } from './pitr-harness';

const PATH_DIRS = (process.env.PATH ?? '').split(':').filter((d) => d !== '');

/** A directory of symlinks to every program on PATH except `without`. */
function pathWithout(root: string, name: string, without: readonly string[]): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  for (const d of PATH_DIRS) {
    let entries: string[];
    try {
      entries = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const e of entries) {
      if (without.includes(e) || fs.existsSync(path.join(dir, e))) continue;
      try {
        if (fs.statSync(path.join(d, e)).isFile()) fs.symlinkSync(path.join(d, e), path.join(dir, e));
      } catch {
        // a dangling link on PATH
      }
    }
  }
  return dir;
}

/** The run started no work: no log line of a restore, a plan or a fetch. */
function noWork(stderr: string): void {
  assert.doesNotMatch(stderr, /"event":"(restore-start|pitr-plan|wal-fetch|restore-done)"/);
}

describe('PostgreSQL: --target-dir restores and wal-fetch check their programs first', () => {
  let pg: LocalPostgres;
  let dir: string;
  let store: string;
  let physical: string;
  let segment: string;
  let noZstd: string;

  beforeAll(async () => {
    dir = sharedTempDir('dbbackup-preflight-plans-');
    const storeDir = path.join(dir, 'store');
    fs.mkdirSync(storeDir);
    fs.chownSync(storeDir, fs.statSync(dir).uid, fs.statSync(dir).gid);
    store = `file://${storeDir}`;
    pg = await startArchivingPostgres(store);
    await pg.sql('CREATE DATABASE app');
    await pg.sql('CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 100)', 'app');
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--method', 'physical', '--source', pg.url('app'), '--to', store, '--json'],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    physical = JSON.parse(b.stdout).id;
    segment = await switchAndWait(pg);
    noZstd = pathWithout(fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-nozstd-')), 'bin', ['zstd']);
  });
  afterAll(async () => {
    await pg?.stop();
    fs.rmSync(path.dirname(noZstd ?? '/nonexistent/x'), { recursive: true, force: true });
  });

  test('restore --id PHYSICAL --target-dir without zstd: exit 2 naming zstd, nothing laid down', async () => {
    const target = path.join(dir, 'restored-physical');
    const args = ['restore', '--from', store, '--id', physical, '--target-dir', target];
    const r = await dbbackup(args, { env: { PATH: noZstd } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /zstd is not installed or not on PATH.*compression zstd/);
    noWork(r.stderr);
    assert.equal(fs.existsSync(target), false, `${target} was created`);
    const ok = await dbbackup(args);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(fs.existsSync(path.join(target, 'PG_VERSION')));
  });

  test('restore --to-time --target-dir without zstd: exit 2 before the WAL is read', async () => {
    const target = path.join(dir, 'restored-pitr');
    const r = await dbbackup(
      ['restore', '--from', store, '--to-time', new Date().toISOString(), '--target-dir', target],
      { env: { PATH: noZstd } },
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /zstd is not installed or not on PATH/);
    noWork(r.stderr);
    assert.equal(fs.existsSync(target), false);
  });

  test('wal-fetch without zstd: exit 2 naming zstd, %p not written; with it the segment arrives', async () => {
    const dest = path.join(dir, 'fetched');
    const args = ['wal-fetch', segment, dest, '--from', store];
    const r = await dbbackup(args, { env: { PATH: noZstd } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /zstd is not installed or not on PATH.*compression zstd/);
    noWork(r.stderr);
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.startsWith('fetched')),
      [],
    );
    const ok = await dbbackup(args);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fs.statSync(dest).size, 16 * 1024 * 1024);
  });
});

describe('MariaDB: chain and --to-time restores check mariadb-binlog first', () => {
  let src: LocalMariaDB;
  let tgt: LocalMariaDB;
  let dir: string;
  let url: string;
  let shipper: ChildProcess | undefined;
  let noBinlog: string;
  let incremental: string;
  let moment: Date;

  const backup = async (type: string) => {
    const b = await dbbackup(
      ['backup', '--engine', 'mysql', '--source', src.url('app'), '--to', url, '--type', type, '--json'],
      { env: src.env },
    );
    assert.equal(b.code, 0, b.stderr);
    return JSON.parse(b.stdout).id as string;
  };
  const exists = async (db: string) =>
    (await tgt.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${db}'`)) === '1';

  beforeAll(async () => {
    [src, tgt] = await Promise.all([startLocalMariaDB(), startLocalMariaDB()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-preflight-binlog-'));
    url = `file://${dir}/store`;
    noBinlog = pathWithout(dir, 'bin', ['mariadb-binlog', 'mysqlbinlog']);
    await src.sql('CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)');
    await src.sql('INSERT INTO t VALUES (1), (2)', 'app');
    shipper = spawn(process.execPath, [DBBACKUP, 'binlog-stream', '--source', src.url('app'), '--to', url], {
      env: { ...process.env, ...src.env, DBBACKUP_LOG_FORMAT: 'json', DBBACKUP_BINLOG_UPLOAD_INTERVAL: '1' },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    await backup('full');
    await src.sql('INSERT INTO t VALUES (3)', 'app');
    incremental = await backup('incremental');
    // A moment alone in its second, with a later event, and the shipper caught up past it.
    const pause = () => new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 150));
    await pause();
    moment = new Date();
    await pause();
    await src.sql('INSERT INTO t VALUES (4)', 'app');
    const asked = Date.now();
    const file = path.join(dir, 'store', 'binlog', 'binlog', 'shipped.json');
    for (let i = 0; i < 300; i++) {
      if (fs.existsSync(file) && Date.parse(JSON.parse(fs.readFileSync(file, 'utf8')).at) > asked) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    shipper?.kill('SIGKILL');
    await Promise.all([src?.stop(), tgt?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('restore --id INCREMENTAL without mariadb-binlog: exit 2 naming it, no database created', async () => {
    const args = ['restore', '--from', url, '--id', incremental, '--target', tgt.url('chain')];
    const env = { DBBACKUP_TARGET_PASSWORD: tgt.password };
    const r = await dbbackup(args, { env: { ...env, PATH: noBinlog } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /mariadb-binlog is not installed or not on PATH.*replaying MySQL\/MariaDB binary logs/);
    noWork(r.stderr);
    assert.equal(await exists('chain'), false);
    const ok = await dbbackup(args, { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await tgt.sql('SELECT COUNT(*) FROM t', 'chain'), '3');
  });

  test('restore --to-time without mariadb-binlog: exit 2 naming it, no database created', async () => {
    const args = ['restore', '--from', url, '--to-time', moment.toISOString(), '--target', tgt.url('pitr')];
    const env = { DBBACKUP_TARGET_PASSWORD: tgt.password };
    const r = await dbbackup(args, { env: { ...env, PATH: noBinlog } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /mariadb-binlog is not installed or not on PATH/);
    assert.doesNotMatch(r.stderr, /"event":"restore-start"/);
    assert.equal(await exists('pitr'), false);
    const ok = await dbbackup(args, { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await tgt.sql('SELECT COUNT(*) FROM t', 'pitr'), '3');
  });
});

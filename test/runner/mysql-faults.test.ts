import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { loadMariaFixture, mariaFingerprint } from '../harness/mariadb-fixture';
import { Moto, startMoto } from '../harness/moto';
import { allCmdlines, findDescendant, poll } from '../harness/procs';
import { TcpProxy } from '../harness/proxy';
import { dbbackup } from '../harness/runner';

/** Files under a directory, recursively, relative to it. */
function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name))).sort();
}

describe('MariaDB faults and bad input: nothing is lost, nothing is taken for a good backup', () => {
  let db: LocalMariaDB;
  let moto: Moto;
  let s3: S3Client;
  let dir: string;
  let identity: string;
  let otherIdentity: string;
  let recipient: string;
  const bucket = 'myfaults';

  beforeAll(async () => {
    [db, moto] = await Promise.all([startLocalMariaDB(), startMoto()]);
    s3 = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await loadMariaFixture(db, 'shop', 500);
    // About 24 MB of incompressible rows (48 MB of SQL with --hex-blob): long enough to interrupt.
    await db.sql('CREATE DATABASE big');
    await db.sql('CREATE TABLE noise (id INT PRIMARY KEY, b BLOB) AS SELECT seq AS id, RANDOM_BYTES(1000) AS b FROM seq_1_to_24000', 'big');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-myfaults-'));
    identity = path.join(dir, 'identity.txt');
    otherIdentity = path.join(dir, 'other.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    execFileSync('age-keygen', ['-o', otherIdentity], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
  });
  afterAll(async () => {
    await Promise.all([db?.stop(), moto?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function openUploads(): Promise<number> {
    return (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.length ?? 0;
  }
  async function manifestsUnder(prefix: string): Promise<string[]> {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (r.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('manifest.json'));
  }
  async function databases(like: string): Promise<string[]> {
    return (await db.sql(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '${like}' ORDER BY 1`)).split('\n').filter((l) => l !== '');
  }
  /** A database with something of its own in it, to restore over with --clean. */
  async function occupied(name: string): Promise<Record<string, string>> {
    await db.sql(`CREATE DATABASE ${name}; USE ${name}; CREATE TABLE customers (id INT PRIMARY KEY, x TEXT); INSERT INTO customers VALUES (42, 'old'); CREATE TABLE keep_me (v TEXT); INSERT INTO keep_me VALUES ('still here');`);
    return mariaFingerprint(db, name);
  }

  test('bad input exits 2 with a message naming the value and the fix', async () => {
    const cases: [string[], RegExp][] = [
      [['backup', '--engine', 'mysql', '--source', 'mysql://u:hunter2@h/db', '--to', `file://${dir}/x`], /contains a password\. Remove it from the URL and give it in DBBACKUP_SOURCE_PASSWORD/],
      [['backup', '--engine', 'mysql', '--source', 'mysql://root@127.0.0.1/', '--to', `file://${dir}/x`], /names no database/],
      [['backup', '--engine', 'mysql', '--source', db.url('shop').replace('mysql:', 'postgres:'), '--to', `file://${dir}/x`], /is a postgres URL but the engine is 'mysql'/],
      [['backup', '--engine', 'mysql', '--source', `${db.url('shop')}?sslmode=require`, '--to', `file://${dir}/x`], /has the parameter 'sslmode', which MySQL\/MariaDB connections do not take/],
      [['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${dir}/x`, '--type', 'incremental'], /there is no backup of shop .* for this incremental backup to build on; take one first with --type full/],
      [['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${dir}/x`, '--method', 'physical'], /--method physical is for PostgreSQL/],
    ];
    for (const [args, message] of cases) {
      const r = await dbbackup(args, { env: db.env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /hunter2/);
    }
    assert.deepEqual(files(`${dir}/x`), []);
  });

  test('an unreachable server: exit 1, a clear message, no manifest', async () => {
    const r = await dbbackup(['backup', '--engine', 'mysql', '--source', 'mysql://root@127.0.0.1:1/shop', '--to', `file://${dir}/unreachable`], { env: db.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /could not connect to mysql:\/\/root@127\.0\.0\.1:1\/shop: mariadb exited with code 1: .*Can't connect to server on '127\.0\.0\.1'/);
    assert.deepEqual(files(`${dir}/unreachable`), []);
  });

  test('a wrong password: exit 1, a clear message, no manifest, and the password is not logged', async () => {
    const wrong = 'not-the-password-' + Date.now();
    const r = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', `file://${dir}/wrongpw`], {
      env: { ...db.env, DBBACKUP_SOURCE_PASSWORD: wrong, MYSQL_PWD: undefined },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Access denied for user 'root'@'127\.0\.0\.1' \(using password: YES\)/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(wrong));
    assert.deepEqual(files(`${dir}/wrongpw`), []);
    const missing = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('no_such_db'), '--to', `file://${dir}/wrongpw`], { env: db.env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /the database no_such_db does not exist on mysql:\/\/root@127\.0\.0\.1:\d+\/no_such_db/);
  });

  test('mariadb-dump killed mid-stream: exit 1, no manifest, no multipart upload left open', async () => {
    const proxy = new TcpProxy(moto.port, 4 * 1024 * 1024);
    await proxy.start();
    try {
      let runner = 0;
      const running = dbbackup(['backup', '--engine', 'mysql', '--source', db.url('big'), '--to', `s3://${bucket}/killed`, '--compression', 'none'], {
        env: { ...db.env, ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}` },
        onSpawn: (pid) => (runner = pid),
      });
      const dump = await poll(() => (proxy.bytesUp > 2 << 20 ? findDescendant(runner, 'mariadb-dump') : undefined));
      process.kill(dump, 'SIGKILL');
      const r = await running;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /mariadb-dump was killed by SIGKILL/);
      assert.match(r.stderr, /nothing was committed/);
      assert.deepEqual(await manifestsUnder('killed/'), []);
      assert.equal(await openUploads(), 0);
    } finally {
      await proxy.stop();
    }
  });

  test('the storage goes away mid-upload: exit 1, no manifest, and the upload is aborted once it is back', async () => {
    const proxy = new TcpProxy(moto.port, 4 * 1024 * 1024);
    const port = await proxy.start();
    try {
      const running = dbbackup(['backup', '--engine', 'mysql', '--source', db.url('big'), '--to', `s3://${bucket}/outage`, '--compression', 'none'], {
        env: { ...db.env, ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` },
      });
      await poll(() => (proxy.bytesUp > 10 << 20 ? true : undefined));
      await proxy.stop();
      assert.ok((await openUploads()) >= 1, 'an upload was open when the storage went away');
      await new Promise((r) => setTimeout(r, 2500));
      await proxy.start(port);
      const r = await running;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /nothing was committed/);
      assert.match(r.stderr, /aborted the incomplete upload/);
      assert.deepEqual(await manifestsUnder('outage/'), []);
      assert.equal(await openUploads(), 0);
    } finally {
      await proxy.stop();
    }
  });

  test('SIGTERM during a backup: exit 1, nothing committed, no partial file left, no commit block left', async () => {
    let runner = 0;
    const running = dbbackup(['backup', '--engine', 'mysql', '--source', db.url('big'), '--to', `file://${dir}/sigterm`, '--compression', 'gzip'], {
      env: db.env,
      onSpawn: (pid) => (runner = pid),
    });
    await poll(() => findDescendant(runner, 'mariadb-dump'));
    process.kill(runner, 'SIGTERM');
    const r = await running;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /interrupted by SIGTERM/);
    assert.deepEqual(files(`${dir}/sigterm`), []);
    // Commits go on: no session of the run holds a BACKUP STAGE or a lock any more.
    await db.sql('CREATE TABLE big.after_sigterm (id INT); INSERT INTO big.after_sigterm VALUES (1); DROP TABLE big.after_sigterm;');
  });

  test('two overlapping backups of the same database to the same place never interleave', async () => {
    const proxy = new TcpProxy(moto.port, 6 * 1024 * 1024);
    await proxy.start();
    try {
      const env = { ...db.env, ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}` };
      const args = ['backup', '--engine', 'mysql', '--source', db.url('big'), '--to', `s3://${bucket}/overlap`, '--compression', 'none'];
      const first = dbbackup(args, { env });
      await poll(() => (proxy.bytesUp > 1 << 20 ? true : undefined));
      const refused = await dbbackup(args, { env });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /another backup of big to the same place is running \(lock dbbackup-[0-9a-f]{48} on .*\).*--lock-wait/);
      const waiter = dbbackup([...args, '--lock-wait', '120'], { env });
      const [a, b] = await Promise.all([first, waiter]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stderr, /waiting for an overlapping backup/);
      assert.equal((await manifestsUnder('overlap/')).length, 2);
    } finally {
      await proxy.stop();
    }
  });

  test('one flipped byte: verify exits 3 naming the object; restore exits 3 and leaves every kind of target as it was', async () => {
    for (const compression of ['zstd', 'none']) {
      const store = `file://${dir}/flip-${compression}`;
      const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', store, '--compression', compression, '--json'], { env: db.env });
      assert.equal(b.code, 0, b.stderr);
      const m = JSON.parse(b.stdout);
      const name = m.artifacts[0].name;
      const object = path.join(dir, `flip-${compression}`, m.id, name);
      const bytes = fs.readFileSync(object);
      bytes[Math.floor(bytes.length / 2)] ^= 0x01;
      fs.writeFileSync(object, bytes);

      const v = await dbbackup(['verify', '--from', store, '--latest'], { env: db.env });
      assert.equal(v.code, 3, v.stderr);
      assert.match(v.stdout, new RegExp(`DAMAGED\\s+${m.id}: ${name.replace(/\./g, '\\.')} sha256`));

      // A target with objects (--clean: loaded into a scratch database first).
      const before = await occupied(`flip_${compression}_target`);
      const r = await dbbackup(['restore', '--from', store, '--latest', '--clean', '--target', db.url(`flip_${compression}_target`)], { env: db.env });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`${name.replace(/\./g, '\\.')}: sha256 .* does not match`));
      assert.deepEqual(await mariaFingerprint(db, `flip_${compression}_target`), before);

      // An existing empty database stays, empty, with its options.
      await db.sql(`CREATE DATABASE flip_${compression}_empty CHARACTER SET latin1`);
      const e = await dbbackup(['restore', '--from', store, '--latest', '--target', db.url(`flip_${compression}_empty`)], { env: db.env });
      assert.equal(e.code, 3, e.stderr);
      assert.deepEqual(await mariaFingerprint(db, `flip_${compression}_empty`), { triggers: 'NULL', routines: 'NULL', events: 'NULL' });
      assert.match(await db.sql(`SHOW CREATE DATABASE flip_${compression}_empty`), /CHARACTER SET latin1/);

      // A database that did not exist is not left behind, half made.
      const fresh = await dbbackup(['restore', '--from', store, '--latest', '--target', db.url(`flip_${compression}_new`)], { env: db.env });
      assert.equal(fresh.code, 3);
      assert.deepEqual(await databases(`flip\\_${compression}\\_new%`), []);
    }
    assert.deepEqual(await databases('%\\_dbbackup\\_%'), [], 'no scratch database is left');
  });

  test('the wrong decryption key: restore fails clearly and the target is unchanged', async () => {
    const store = `file://${dir}/wrongkey`;
    const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', store, '--encrypt', `age:${recipient}`], { env: db.env });
    assert.equal(b.code, 0, b.stderr);
    const before = await occupied('wrongkey_target');
    const r = await dbbackup(['restore', '--from', store, '--latest', '--clean', '--with-globals', '--identity', otherIdentity, '--target', db.url('wrongkey_target')], { env: db.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /age exited with code 1: .*no identity matched any of the recipients/);
    assert.deepEqual(await mariaFingerprint(db, 'wrongkey_target'), before);
    const fresh = await dbbackup(['restore', '--from', store, '--latest', '--identity', otherIdentity, '--target', db.url('wrongkey_new')], { env: db.env });
    assert.equal(fresh.code, 1);
    assert.deepEqual(await databases('wrongkey\\_new'), []);
    assert.deepEqual(await databases('%\\_dbbackup\\_%'), []);
    const missing = await dbbackup(['restore', '--from', store, '--latest', '--target', db.url('wrongkey_target2')], { env: db.env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /encrypted to the age recipient age1.*give its identity file with --identity FILE/);
  });

  test('the server refusing a statement half-way through a --clean restore leaves the target unchanged', async () => {
    const store = `file://${dir}/midway`;
    const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('shop'), '--to', store], { env: db.env });
    assert.equal(b.code, 0, b.stderr);
    const before = await occupied('midway_target');
    // every_byte holds a 100 kB row: its INSERT is larger than the server now accepts.
    await db.sql('SET GLOBAL max_allowed_packet = 65536');
    try {
      const r = await dbbackup(['restore', '--from', store, '--latest', '--clean', '--target', db.url('midway_target')], { env: db.env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /mariadb-restore exited with code 1: .*(packet|max_allowed_packet|gone away)/i);
      assert.match(r.stderr, /the target was not changed/);
    } finally {
      await db.sql('SET GLOBAL max_allowed_packet = 67108864');
    }
    assert.deepEqual(await mariaFingerprint(db, 'midway_target'), before);
    assert.deepEqual(await databases('%\\_dbbackup\\_%'), []);
  });

  test('the password never appears in any process argv nor in any log line', async () => {
    const seen = new Set<string>();
    let done = false;
    const watcher = (async () => {
      while (!done) {
        for (const c of allCmdlines()) if (/mariadb|mysql|zstd|age|dbbackup/.test(c)) seen.add(c);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const store = `file://${dir}/argv`;
    const b = await dbbackup(['backup', '--engine', 'mysql', '--source', db.url('big'), '--to', store, '--encrypt', `age:${recipient}`], { env: db.env });
    await occupied('argv_restored');
    const r = await dbbackup(['restore', '--from', store, '--latest', '--clean', '--with-globals', '--identity', identity, '--target', db.url('argv_restored')], { env: db.env });
    done = true;
    await watcher;
    assert.equal(b.code, 0, b.stderr);
    assert.equal(r.code, 0, r.stderr);
    const cmdlines = [...seen];
    assert.ok(cmdlines.some((c) => c.includes('mariadb-dump') && c.includes('--single-transaction')), 'the watcher saw mariadb-dump running');
    assert.ok(cmdlines.some((c) => c.includes('mariadb') && c.includes('--binary-mode')), 'the watcher saw the restoring client running');
    for (const c of cmdlines) assert.doesNotMatch(c, new RegExp(db.password), c);
    assert.doesNotMatch(b.stdout + b.stderr + r.stdout + r.stderr, new RegExp(db.password));
  });
});

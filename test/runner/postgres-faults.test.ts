import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { Moto, startMoto } from '../harness/moto';
import { fingerprint, loadFixture } from '../harness/pg-fixture';
import { allCmdlines, findDescendant, poll } from '../harness/procs';
import { TcpProxy } from '../harness/proxy';
import { dbbackup } from '../harness/runner';

/** Files under a directory, recursively, relative to it. */
function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name))).sort();
}

describe('PostgreSQL faults and bad input: nothing is lost, nothing is taken for a good backup', () => {
  let pg: LocalPostgres;
  let moto: Moto;
  let s3: S3Client;
  let dir: string;
  let identity: string;
  let otherIdentity: string;
  let recipient: string;
  const bucket = 'faults';

  beforeAll(async () => {
    [pg, moto] = await Promise.all([startLocalPostgres(), startMoto()]);
    s3 = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await loadFixture(pg, 'shop', 500);
    // About 25 MB of incompressible rows: long enough to interrupt.
    await pg.sql('CREATE DATABASE big');
    await pg.sql(`CREATE TABLE noise AS SELECT i, decode(string_agg(md5(i::text || j::text), ''), 'hex') AS b FROM generate_series(1, 8000) i, generate_series(1, 200) j GROUP BY i`, 'big');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-faults-'));
    identity = path.join(dir, 'identity.txt');
    otherIdentity = path.join(dir, 'other.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    execFileSync('age-keygen', ['-o', otherIdentity], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), moto?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function openUploads(): Promise<number> {
    return (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.length ?? 0;
  }
  async function manifestsUnder(prefix: string): Promise<string[]> {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (r.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('manifest.json'));
  }

  test('bad input exits 2 with a message naming the value and the fix', async () => {
    const cases: [string[], RegExp][] = [
      [['backup', '--engine', 'oracle', '--source', pg.url('shop'), '--to', `file://${dir}/x`], /--engine is 'oracle'; use one of: postgres, mysql, mongodb/],
      [['backup', '--engine', 'postgres', '--source', 'not a url', '--to', `file://${dir}/x`], /--source 'not a url' is not a URL\. Use e\.g\. postgres:\/\//],
      [['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${dir}/x`, '--frobnicate'], /unknown option --frobnicate for 'backup'/],
      [['backup', '--engine', 'postgres', '--source', pg.url('shop')], /'backup' needs --to \(or DBBACKUP_TO\)/],
      [['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', './relative'], /--to '\.\/relative' is a path, not a URL\. Write it as file:\/\//],
      [['backup', '--engine', 'postgres', '--source', 'postgres://u:hunter2@h/db', '--to', `file://${dir}/x`], /contains a password\. Remove it from the URL and give it in DBBACKUP_SOURCE_PASSWORD/],
      [['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${dir}/x`, '--encrypt', 'age:nope'], /--encrypt 'age:nope' does not hold an age recipient/],
      [['restore', '--from', `file://${dir}/x`, '--target', pg.url('t')], /'restore' needs one of --latest or --id ID/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const r = await dbbackup(args, { env: pg.env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /hunter2/);
    }
    assert.deepEqual(files(`${dir}/x`), []);
  });

  test('an unreachable database: exit 1, a clear message, no manifest', async () => {
    const r = await dbbackup(['backup', '--engine', 'postgres', '--source', 'postgres://postgres@127.0.0.1:1/shop', '--to', `file://${dir}/unreachable`], { env: pg.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /psql exited with code 2: .*connection to server at "127\.0\.0\.1", port 1 failed/);
    assert.deepEqual(files(`${dir}/unreachable`), []);
  });

  test('a wrong password: exit 1, a clear message, no manifest, and the password is not logged', async () => {
    const wrong = 'not-the-password-' + Date.now();
    const r = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${dir}/wrongpw`], {
      env: { ...pg.env, DBBACKUP_SOURCE_PASSWORD: wrong, PGPASSWORD: undefined },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /password authentication failed for user "postgres"/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(wrong));
    assert.deepEqual(files(`${dir}/wrongpw`), []);
  });

  test('pg_dump killed mid-stream: exit 1, no manifest, no multipart upload left open', async () => {
    const proxy = new TcpProxy(moto.port, 4 * 1024 * 1024);
    await proxy.start();
    try {
      let runner = 0;
      const running = dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('big'), '--to', `s3://${bucket}/killed`, '--compression', 'none'], {
        env: { ...pg.env, ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}` },
        onSpawn: (pid) => (runner = pid),
      });
      const dump = await poll(() => (proxy.bytesUp > 2 << 20 ? findDescendant(runner, 'pg_dump') : undefined));
      process.kill(dump, 'SIGKILL');
      const r = await running;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /pg_dump was killed by SIGKILL/);
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
      const running = dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('big'), '--to', `s3://${bucket}/outage`, '--compression', 'none'], {
        env: { ...pg.env, ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` },
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

  test('SIGTERM during a backup: exit 1, nothing committed, no partial file left', async () => {
    let runner = 0;
    const running = dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('big'), '--to', `file://${dir}/sigterm`, '--compression', 'zstd'], {
      env: pg.env,
      onSpawn: (pid) => (runner = pid),
    });
    await poll(() => findDescendant(runner, 'pg_dump'));
    process.kill(runner, 'SIGTERM');
    const r = await running;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /interrupted by SIGTERM/);
    assert.deepEqual(files(`${dir}/sigterm`), []);
  });

  test('two overlapping backups of the same database to the same place never interleave', async () => {
    const proxy = new TcpProxy(moto.port, 6 * 1024 * 1024);
    await proxy.start();
    try {
      const env = { ...pg.env, ...moto.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}` };
      const args = ['backup', '--engine', 'postgres', '--source', pg.url('big'), '--to', `s3://${bucket}/overlap`, '--compression', 'none'];
      const first = dbbackup(args, { env });
      await poll(() => (proxy.bytesUp > 1 << 20 ? true : undefined));
      const refused = await dbbackup(args, { env });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /another backup of big to the same place is running.*--lock-wait/);
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

  test('one flipped byte: verify exits 3 naming the object, restore exits 3 and leaves the target unchanged', async () => {
    const store = `file://${dir}/flip`;
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--json'], { env: pg.env });
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    const object = path.join(dir, 'flip', m.id, 'database.pgdump.zst');
    const bytes = fs.readFileSync(object);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    fs.writeFileSync(object, bytes);

    const v = await dbbackup(['verify', '--from', store, '--latest'], { env: pg.env });
    assert.equal(v.code, 3, v.stderr);
    assert.match(v.stdout, new RegExp(`DAMAGED\\s+${m.id}: database\\.pgdump\\.zst sha256`));

    await pg.sql('CREATE DATABASE flip_target');
    await pg.sql(`CREATE TABLE keep_me (v text); INSERT INTO keep_me VALUES ('still here')`, 'flip_target');
    const before = await fingerprint(pg, 'flip_target');
    const r = await dbbackup(['restore', '--from', store, '--latest', '--clean', '--target', pg.url('flip_target')], { env: pg.env });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /database\.pgdump\.zst: sha256 .* does not match/);
    assert.deepEqual(await fingerprint(pg, 'flip_target'), before);

    // A restore into a database that did not exist leaves no half-made database behind.
    const fresh = await dbbackup(['restore', '--from', store, '--latest', '--target', pg.url('flip_new')], { env: pg.env });
    assert.equal(fresh.code, 3);
    assert.equal(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = 'flip_new'`), '0');
  });

  test('the wrong decryption key: restore fails clearly and the target is unchanged', async () => {
    const store = `file://${dir}/wrongkey`;
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--encrypt', `age:${recipient}`], { env: pg.env });
    assert.equal(b.code, 0, b.stderr);
    await pg.sql('CREATE DATABASE wrongkey_target');
    await pg.sql(`CREATE TABLE keep_me (v text); INSERT INTO keep_me VALUES ('still here')`, 'wrongkey_target');
    const before = await fingerprint(pg, 'wrongkey_target');
    const r = await dbbackup(['restore', '--from', store, '--latest', '--clean', '--with-globals', '--identity', otherIdentity, '--target', pg.url('wrongkey_target')], { env: pg.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /age exited with code 1: .*no identity matched any of the recipients/);
    assert.deepEqual(await fingerprint(pg, 'wrongkey_target'), before);
    const missing = await dbbackup(['restore', '--from', store, '--latest', '--target', pg.url('wrongkey_target2')], { env: pg.env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /encrypted to the age recipient age1.*give its identity file with --identity FILE/);
  });

  test('an unreadable manifest: verify --all exits 3 naming it', async () => {
    const store = `file://${dir}/badmanifest`;
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--json'], { env: pg.env });
    const m = JSON.parse(b.stdout);
    fs.writeFileSync(path.join(dir, 'badmanifest', m.id, 'manifest.json'), '{"version": 1, "id": ');
    const v = await dbbackup(['verify', '--from', store, '--all'], { env: pg.env });
    assert.equal(v.code, 3);
    assert.match(v.stdout, new RegExp(`DAMAGED\\s+${m.id}: .*manifest\\.json is not JSON`));
    const missing = await dbbackup(['verify', '--from', store, '--id', '20200101T000000Z-none-full-0000'], { env: pg.env });
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /there is no backup '20200101T000000Z-none-full-0000'/);
  });

  test('the password never appears in any process argv nor in any log line', async () => {
    const seen = new Set<string>();
    let done = false;
    const watcher = (async () => {
      while (!done) {
        for (const c of allCmdlines()) if (/pg_dump|pg_dumpall|psql|pg_restore|zstd|age|dbbackup/.test(c)) seen.add(c);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const store = `file://${dir}/argv`;
    const b = await dbbackup(['backup', '--engine', 'postgres', '--source', pg.url('big'), '--to', store, '--encrypt', `age:${recipient}`], { env: pg.env });
    const r = await dbbackup(['restore', '--from', store, '--latest', '--identity', identity, '--target', pg.url('argv_restored')], { env: pg.env });
    done = true;
    await watcher;
    assert.equal(b.code, 0, b.stderr);
    assert.equal(r.code, 0, r.stderr);
    const cmdlines = [...seen];
    assert.ok(cmdlines.some((c) => c.includes('pg_dump') && c.includes('--format=custom')), 'the watcher saw pg_dump running');
    assert.ok(cmdlines.some((c) => c.includes('pg_restore')), 'the watcher saw pg_restore running');
    for (const c of cmdlines) assert.doesNotMatch(c, new RegExp(pg.password), c);
    assert.doesNotMatch(b.stdout + b.stderr + r.stdout + r.stderr, new RegExp(pg.password));
  });
});
